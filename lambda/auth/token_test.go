package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIdentitySourceToken(t *testing.T) {
	tok := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)
	other := signToken(t, jwt.SigningMethodHS384, []byte(testSecret), baseClaims(), nil)
	const (
		query         = "route.request.querystring.token"
		authorization = "route.request.header.Authorization"
		subprotocol   = "route.request.header.Sec-WebSocket-Protocol"
	)

	tests := []struct {
		name    string
		source  string
		headers map[string]string
		query   map[string]string
		want    string
	}{
		{name: "nothing", source: query, want: ""},
		{name: "query parameter", source: query, query: map[string]string{"token": tok}, want: tok},
		{name: "query parameter names are case-sensitive", source: query, query: map[string]string{"Token": tok}, want: ""},
		{name: "query source ignores headers", source: query, headers: map[string]string{"Authorization": "Bearer " + tok, "Sec-WebSocket-Protocol": tok}, want: ""},
		{name: "other query parameter", source: "route.request.querystring.access_token", query: map[string]string{"access_token": tok, "token": other}, want: tok},
		{name: "Authorization Bearer", source: authorization, headers: map[string]string{"Authorization": "Bearer " + tok}, want: tok},
		{name: "header source ignores the query", source: authorization, query: map[string]string{"token": tok}, want: ""},
		{name: "lower-case header and scheme", source: authorization, headers: map[string]string{"authorization": "bearer   " + tok + " "}, want: tok},
		{name: "upper-case scheme", source: authorization, headers: map[string]string{"Authorization": "BEARER " + tok}, want: tok},
		{name: "bare header value", source: authorization, headers: map[string]string{"Authorization": tok}, want: tok},
		{name: "Bearer without a token", source: authorization, headers: map[string]string{"Authorization": "Bearer "}, want: ""},
		{name: "other scheme is passed on and fails verification", source: authorization, headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, want: "Basic dXNlcjpwYXNz"},
		{name: "custom header", source: "route.request.header.X-Token", headers: map[string]string{"x-token": tok}, want: tok},
		{name: "subprotocol after a named protocol", source: subprotocol, headers: map[string]string{"Sec-WebSocket-Protocol": "chat.v1, " + tok}, want: tok},
		{name: "subprotocol alone, lower-case header", source: subprotocol, headers: map[string]string{"sec-websocket-protocol": tok}, want: tok},
		{name: "dotted protocol names are not tokens", source: subprotocol, headers: map[string]string{"Sec-WebSocket-Protocol": "wamp.2.json, " + tok}, want: tok},
		{name: "subprotocols without a token", source: subprotocol, headers: map[string]string{"Sec-WebSocket-Protocol": "wamp.2.json, graphql-ws"}, want: ""},
		{name: "subprotocol source ignores Authorization", source: subprotocol, headers: map[string]string{"Authorization": "Bearer " + tok}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := ParseIdentitySource(tt.source)
			require.NoError(t, err)
			assert.Equal(t, tt.source, src.String())
			assert.Equal(t, tt.want, src.Token(tt.headers, tt.query))
		})
	}
}

func TestParseIdentitySourceRefusesWhatAPIGatewayRefuses(t *testing.T) {
	for _, s := range []string{
		"", "token", "route.request.querystring.", "route.request.header.",
		"route.request.querystring.to ken", "route.request.header.X:Y",
		"Route.Request.Header.Authorization", "stageVariables.token", "context.token",
		"route.request.querystring.token,route.request.header.Authorization",
	} {
		_, err := ParseIdentitySource(s)
		assert.Error(t, err, "%q", s)
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
