package localgw

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

// JWTConfig are the built-in JWT authorizer's settings beyond the key
// (ServerConfig.JWTSecret and JWTPublicKey).
type JWTConfig struct {
	// JWKSURL is an identity provider's https jwks_uri (WS_JWT_JWKS_URL): a
	// third key source, exclusive with JWTSecret and JWTPublicKey.
	JWKSURL string
	// Leeway is the clock skew tolerated on exp and nbf (WS_JWT_LEEWAY);
	// zero tolerates none.
	Leeway time.Duration
	// Issuer and Audience are the required "iss" and "aud" (WS_JWT_ISSUER,
	// WS_JWT_AUDIENCE), TokenUse the required Cognito "token_use" ("id" or
	// "access", WS_JWT_TOKEN_USE), UserClaim and ChannelsClaim the claims
	// read as userId and channels (WS_JWT_USER_CLAIM, WS_JWT_CHANNELS_CLAIM;
	// default sub and channels): the module's authorizer.jwt settings of
	// the same names. Empty leaves each check off or at its default.
	Issuer, Audience, TokenUse, UserClaim, ChannelsClaim string
	// HTTPClient fetches JWKSURL in process; nil means the system's root
	// certificates. The compiled authorizer bootstrap always uses those; it
	// inherits the gateway's SSL_CERT_FILE and SSL_CERT_DIR to trust a local
	// provider's certificate.
	HTTPClient *http.Client
}

// jwtEnabled reports whether the built-in JWT authorizer is configured.
func (cfg ServerConfig) jwtEnabled() bool {
	return cfg.JWTSecret != "" || cfg.JWTPublicKey != "" || cfg.JWT.JWKSURL != ""
}

// jwtEnv is the WS_JWT_* environment of the built-in authorizer, as the
// module sets it on AWS: the key source, the leeway, and the first identity
// source, where the authorizer takes the token from.
func (cfg ServerConfig) jwtEnv() map[string]string {
	env := map[string]string{auth.EnvLeeway: cfg.JWT.Leeway.String()}
	for name, v := range map[string]string{
		auth.EnvSecret:        cfg.JWTSecret,
		auth.EnvPublicKey:     cfg.JWTPublicKey,
		auth.EnvJWKSURL:       cfg.JWT.JWKSURL,
		auth.EnvIssuer:        cfg.JWT.Issuer,
		auth.EnvAudience:      cfg.JWT.Audience,
		auth.EnvTokenUse:      cfg.JWT.TokenUse,
		auth.EnvUserClaim:     cfg.JWT.UserClaim,
		auth.EnvChannelsClaim: cfg.JWT.ChannelsClaim,
	} {
		if v != "" {
			env[name] = v
		}
	}
	if len(cfg.IdentitySources) > 0 {
		env[auth.EnvIdentitySource] = cfg.IdentitySources[0]
	}
	return env
}

// jwtEnvList is jwtEnv as NAME=VALUE entries for a bootstrap process. With
// a JWKS URL, the gateway's SSL_CERT_FILE and SSL_CERT_DIR are passed on, so
// the bootstrap trusts the provider's certificate as the gateway does.
func (cfg ServerConfig) jwtEnvList() []string {
	var list []string
	for name, v := range cfg.jwtEnv() {
		list = append(list, name+"="+v)
	}
	if cfg.JWT.JWKSURL != "" {
		for _, name := range []string{"SSL_CERT_FILE", "SSL_CERT_DIR"} {
			if v := os.Getenv(name); v != "" {
				list = append(list, name+"="+v)
			}
		}
	}
	sort.Strings(list)
	return list
}

// newJWTAuthorizer is the in-process built-in authorizer, configured from the
// same environment the compiled bootstrap receives.
func newJWTAuthorizer(ctx context.Context, cfg ServerConfig, rec metrics.Recorder) (Function, error) {
	env := cfg.jwtEnv()
	acfg, err := auth.ConfigFromEnv(ctx, func(name string) string { return env[name] },
		auth.EnvClients{HTTP: cfg.JWT.HTTPClient, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("localgw: %w", err)
	}
	v, err := auth.NewVerifier(acfg)
	if err != nil {
		return nil, fmt.Errorf("localgw: %w", err)
	}
	a, err := auth.NewAuthorizer(v, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("localgw: %w", err)
	}
	a.SetMetrics(rec)
	return Handler(a.Handle), nil
}
