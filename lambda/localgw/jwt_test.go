package localgw_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
)

// The in-process built-in authorizer with an identity provider's https
// jwks_uri, a header identity source and a leeway: the token is taken from
// the configured header only, never from ?token=.
func TestBuiltinAuthorizerJWKSURLLeewayAndIdentitySource(t *testing.T) {
	ctx := testCtx(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	jwks, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": "k1", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	require.NoError(t, err)
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	t.Cleanup(idp.Close)

	srv := startServer(t, localgw.ServerConfig{
		JWT:             localgw.JWTConfig{JWKSURL: idp.URL + "/.well-known/jwks.json", Leeway: 30 * time.Second, HTTPClient: idp.Client()},
		IdentitySources: []string{"route.request.header.Authorization"},
	})
	sign := func(sub string, exp time.Time) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": sub, "exp": exp.Unix()})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	dial := func(authorization, queryToken string) (*websocket.Conn, int) {
		u := srv.URL()
		if queryToken != "" {
			u += "?token=" + url.QueryEscape(queryToken)
		}
		h := http.Header{}
		if authorization != "" {
			h.Set("Authorization", authorization)
		}
		conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			require.NotNil(t, resp, "dial: %v", err)
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { conn.CloseNow() })
		return conn, http.StatusSwitchingProtocols
	}

	// Expired 10 s ago, inside the 30 s leeway.
	conn, status := dial("Bearer "+sign("user-9", time.Now().Add(-10*time.Second)), "")
	require.Equal(t, http.StatusSwitchingProtocols, status)
	require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, msg, err := conn.Read(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(msg), `"user-9"`)

	valid := sign("user-9", time.Now().Add(time.Hour))
	_, status = dial("", valid)
	assert.Equal(t, http.StatusUnauthorized, status, "a token in ?token= does not satisfy a header identity source")
	_, status = dial("Bearer "+sign("user-9", time.Now().Add(-time.Minute)), valid)
	assert.Equal(t, http.StatusForbidden, status, "the header's token is verified, not ?token=")
}

// The claim settings of the module's authorizer.jwt (issuer, audience,
// token_use, user and channels claims) apply locally as on AWS.
func TestBuiltinAuthorizerClaimSettings(t *testing.T) {
	ctx := testCtx(t)
	secret := "0123456789abcdef0123456789abcdef"
	srv := startServer(t, localgw.ServerConfig{JWTSecret: secret, JWT: localgw.JWTConfig{
		Issuer: "https://issuer.example", Audience: "app-client", TokenUse: "id", UserClaim: "email", ChannelsClaim: "rooms",
	}})
	sign := func(claims jwt.MapClaims) string {
		base := jwt.MapClaims{"sub": "abc-123", "email": "ann@example.com", "iss": "https://issuer.example", "aud": "app-client",
			"token_use": "id", "rooms": "private-lobby", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range claims {
			if v == nil {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, base).SignedString([]byte(secret))
		require.NoError(t, err)
		return s
	}
	dial := func(token string) (*websocket.Conn, int) {
		conn, resp, err := websocket.Dial(ctx, srv.URL()+"?token="+url.QueryEscape(token), nil)
		if err != nil {
			require.NotNil(t, resp, "dial: %v", err)
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { conn.CloseNow() })
		return conn, http.StatusSwitchingProtocols
	}
	for name, claims := range map[string]jwt.MapClaims{
		"another audience":  {"aud": "other-client"},
		"another issuer":    {"iss": "https://evil.example"},
		"another token_use": {"token_use": "access"},
		"no user claim":     {"email": nil},
	} {
		_, status := dial(sign(claims))
		assert.Equal(t, http.StatusForbidden, status, name)
	}
	conn, status := dial(sign(nil))
	require.Equal(t, http.StatusSwitchingProtocols, status)
	require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, msg, err := conn.Read(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(msg), `"userId":"ann@example.com"`, "the user claim, not sub")
	// The channels claim grants private channels.
	for channel, want := range map[string]string{"private-lobby": `"type":"subscribed"`, "private-other": `"code":"forbidden"`} {
		require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"action":"subscribe","channel":"`+channel+`"}`)))
		_, msg, err = conn.Read(ctx)
		require.NoError(t, err)
		assert.Contains(t, string(msg), want, channel)
	}
}
