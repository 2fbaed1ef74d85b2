package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
)

func TestTokenFromRequest(t *testing.T) {
	tok := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)
	other := signToken(t, jwt.SigningMethodHS384, []byte(testSecret), baseClaims(), nil)

	tests := []struct {
		name    string
		headers map[string]string
		query   map[string]string
		want    string
	}{
		{name: "nothing", want: ""},
		{name: "query parameter", query: map[string]string{"token": tok}, want: tok},
		{name: "Authorization Bearer", headers: map[string]string{"Authorization": "Bearer " + tok}, want: tok},
		{name: "lower-case header and scheme", headers: map[string]string{"authorization": "bearer   " + tok + " "}, want: tok},
		{name: "Basic scheme is not a token", headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, want: ""},
		{name: "Bearer without a token", headers: map[string]string{"Authorization": "Bearer "}, want: ""},
		{name: "bare Authorization value", headers: map[string]string{"Authorization": tok}, want: ""},
		{name: "subprotocol after a named protocol", headers: map[string]string{"Sec-WebSocket-Protocol": "chat.v1, " + tok}, want: tok},
		{name: "subprotocol alone, lower-case header", headers: map[string]string{"sec-websocket-protocol": tok}, want: tok},
		{name: "dotted protocol names are not tokens", headers: map[string]string{"Sec-WebSocket-Protocol": "wamp.2.json, " + tok}, want: tok},
		{name: "subprotocols without a token", headers: map[string]string{"Sec-WebSocket-Protocol": "wamp.2.json, graphql-ws"}, want: ""},
		{name: "query wins over headers", query: map[string]string{"token": tok}, headers: map[string]string{"Authorization": "Bearer " + other, "Sec-WebSocket-Protocol": other}, want: tok},
		{name: "Authorization wins over subprotocol", headers: map[string]string{"Authorization": "Bearer " + tok, "Sec-WebSocket-Protocol": other}, want: tok},
		{name: "empty query parameter falls through", query: map[string]string{"token": ""}, headers: map[string]string{"Authorization": "Bearer " + tok}, want: tok},
		{name: "other query parameters", query: map[string]string{"access_token": tok}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, TokenFromRequest(tt.headers, tt.query))
		})
	}
}

func TestResponseSubprotocol(t *testing.T) {
	tok := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)
	tests := []struct {
		name   string
		header string
		want   string
	}{
		{name: "none offered", header: "", want: ""},
		{name: "token after the protocol", header: "chat.v1, " + tok, want: "chat.v1"},
		{name: "token before the protocol", header: tok + ",chat.v1", want: "chat.v1"},
		{name: "token only", header: tok, want: tok},
		{name: "no token", header: "graphql-ws, wamp.2.json", want: "graphql-ws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ResponseSubprotocol(map[string]string{"Sec-WebSocket-Protocol": tt.header}))
		})
	}
}

func TestLooksLikeJWT(t *testing.T) {
	tok := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)
	for s, want := range map[string]bool{
		tok:                                  true,
		"wamp.2.json":                        false,
		"a.b.c":                              false,
		"eyJhbGciOiJIUzI1NiJ9..sig":          false,
		"eyJhbGciOiJIUzI1NiJ9.e30.":          false,
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln":      true,
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln.more": false,
		"":                                   false,
	} {
		assert.Equal(t, want, looksLikeJWT(s), "%q", s)
	}
}
