package localgw

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The compiled authorizer bootstrap gets the same settings as the in-process
// one, as WS_JWT_* variables.
func TestJWTEnvForBootstraps(t *testing.T) {
	t.Setenv("SSL_CERT_FILE", "/tmp/ca.pem")
	t.Setenv("SSL_CERT_DIR", "")
	cfg := ServerConfig{
		JWT:             JWTConfig{JWKSURL: "https://issuer.example/.well-known/jwks.json", Leeway: 5 * time.Second},
		IdentitySources: []string{"route.request.header.Authorization", "route.request.querystring.tenant"},
	}
	assert.Equal(t, []string{
		"SSL_CERT_FILE=/tmp/ca.pem",
		"WS_JWT_IDENTITY_SOURCE=route.request.header.Authorization",
		"WS_JWT_JWKS_URL=https://issuer.example/.well-known/jwks.json",
		"WS_JWT_LEEWAY=5s",
	}, cfg.jwtEnvList(), "the bootstrap trusts the provider's certificate as the gateway does")

	assert.Equal(t, []string{"WS_JWT_LEEWAY=0s", "WS_JWT_SECRET=s3cret"}, ServerConfig{JWTSecret: "s3cret"}.jwtEnvList(),
		"no identity source means the authorizer's default, ?token=")

	// The module's authorizer.jwt claim settings, under the module's names.
	assert.Equal(t, []string{
		"WS_JWT_AUDIENCE=app-client", "WS_JWT_CHANNELS_CLAIM=rooms", "WS_JWT_ISSUER=https://issuer.example",
		"WS_JWT_LEEWAY=0s", "WS_JWT_SECRET=s3cret", "WS_JWT_TOKEN_USE=id", "WS_JWT_USER_CLAIM=email",
	}, ServerConfig{JWTSecret: "s3cret", JWT: JWTConfig{Issuer: "https://issuer.example", Audience: "app-client", TokenUse: "id", UserClaim: "email", ChannelsClaim: "rooms"}}.jwtEnvList())
}
