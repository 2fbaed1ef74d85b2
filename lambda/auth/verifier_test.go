package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerify(t *testing.T) {
	k := testKeys(t)
	const issuer, audience = "https://issuer.example", "wsforge"

	hsCfg := Config{Secret: []byte(testSecret), Issuer: issuer, Audience: audience}
	rsaPEM := pemPublicKey(t, &k.rsa.PublicKey)
	rsCfg := Config{PublicKeys: mustParseKeys(t, rsaPEM), Issuer: issuer, Audience: audience}
	esCfg := Config{PublicKeys: mustParseKeys(t, pemPublicKey(t, &k.ec.PublicKey))}
	jwks := jwksDocument(t,
		jwkJSON(t, "rsa-1", &k.rsa.PublicKey),
		jwkJSON(t, "rsa-2", &k.rsa2.PublicKey),
		jwkJSON(t, "ec-1", &k.ec.PublicKey),
		jwkJSON(t, "ec-2", &k.ec2.PublicKey),
	)
	jwksCfg := Config{PublicKeys: mustParseKeys(t, jwks)}

	hs := func(c jwt.MapClaims) string { return signToken(t, jwt.SigningMethodHS256, []byte(testSecret), c, nil) }
	rs := func(c jwt.MapClaims) string { return signToken(t, jwt.SigningMethodRS256, k.rsa, c, nil) }
	noneToken := signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, baseClaims(), nil)
	defaultChannels := "private-team-1,private-chat.*"

	tests := []struct {
		name string
		cfg  Config
		// token is the compact JWT handed to Verify.
		token string
		// wantUser and wantChannels are checked when wantErr is nil.
		wantUser, wantChannels string
		wantErr                error
		// wantJWTErr is a golang-jwt sentinel the error must also match.
		wantJWTErr error
		// wantMsg is a substring of the error message.
		wantMsg string
	}{
		{name: "HS256 valid", cfg: hsCfg, token: hs(baseClaims()), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "HS512 valid", cfg: hsCfg, token: signToken(t, jwt.SigningMethodHS512, []byte(testSecret), baseClaims(), nil), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "RS256 valid", cfg: rsCfg, token: rs(baseClaims()), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "PS256 valid with an RSA key", cfg: rsCfg, token: signToken(t, jwt.SigningMethodPS256, k.rsa, baseClaims(), nil), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "ES256 valid", cfg: esCfg, token: signToken(t, jwt.SigningMethodES256, k.ec, baseClaims(), nil), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "RS256 with a kid against a PEM key", cfg: rsCfg, token: signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": "whatever"}), wantUser: "user-1", wantChannels: defaultChannels},

		{name: "JWKS kid selects the second RSA key", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), map[string]any{"kid": "rsa-2"}), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "JWKS kid selects the second EC key", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodES256, k.ec2, baseClaims(), map[string]any{"kid": "ec-2"}), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "JWKS without kid tries every fitting key", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), nil), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "JWKS kid of another key than the signer", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), map[string]any{"kid": "rsa-1"}), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid},
		{name: "JWKS unknown kid", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": "rotated-away"}), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenUnverifiable, wantMsg: `no RS256 key with kid "rotated-away"`},
		{name: "JWKS kid of an RSA key on an ES256 token", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodES256, k.ec, baseClaims(), map[string]any{"kid": "rsa-1"}), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenUnverifiable},
		{name: "kid that is not a string", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": 7}), wantErr: ErrInvalidToken, wantMsg: "kid header is not a string"},

		{name: "expired", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Second).Unix() })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenExpired},
		{name: "expired within the leeway", cfg: Config{Secret: []byte(testSecret), Leeway: 30 * time.Second}, token: hs(claimsWith(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-10 * time.Second).Unix() })), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "no exp", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { delete(c, "exp") })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "issued in the future", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["iat"] = testNow.Add(time.Hour).Unix() })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenUsedBeforeIssued},
		{name: "issued in the future within the leeway", cfg: Config{Secret: []byte(testSecret), Leeway: 30 * time.Second}, token: hs(claimsWith(func(c jwt.MapClaims) { c["iat"] = testNow.Add(10 * time.Second).Unix() })), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "not yet valid", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Minute).Unix() })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenNotValidYet},
		{name: "wrong issuer", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenInvalidIssuer},
		{name: "no issuer when one is configured", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { delete(c, "iss") })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong audience", cfg: rsCfg, token: rs(claimsWith(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenInvalidAudience},
		{name: "audience list containing ours", cfg: rsCfg, token: rs(claimsWith(func(c jwt.MapClaims) { c["aud"] = []string{"other", audience} })), wantUser: "user-1", wantChannels: defaultChannels},
		{name: "no audience when one is configured", cfg: rsCfg, token: rs(claimsWith(func(c jwt.MapClaims) { delete(c, "aud") })), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "issuer and audience ignored when not configured", cfg: esCfg, token: signToken(t, jwt.SigningMethodES256, k.ec, claimsWith(func(c jwt.MapClaims) { c["iss"], c["aud"] = "x", "y" }), nil), wantUser: "user-1", wantChannels: defaultChannels},

		{name: "HS256 bad signature", cfg: hsCfg, token: signToken(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), baseClaims(), nil), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid},
		{name: "RS256 signed by another key", cfg: rsCfg, token: signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), nil), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid},
		{name: "tampered payload", cfg: hsCfg, token: tamper(t, hs(baseClaims())), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid},
		{name: "alg none against a secret", cfg: hsCfg, token: noneToken, wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid, wantMsg: "signing method none is invalid"},
		{name: "alg none against public keys", cfg: jwksCfg, token: noneToken, wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid, wantMsg: "signing method none is invalid"},
		{name: "HS256 signed with the public key PEM", cfg: rsCfg, token: signToken(t, jwt.SigningMethodHS256, rsaPEM, baseClaims(), nil), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid, wantMsg: "signing method HS256 is invalid"},
		{name: "HS256 signed with the JWKS document", cfg: jwksCfg, token: signToken(t, jwt.SigningMethodHS256, jwks, baseClaims(), map[string]any{"kid": "rsa-1"}), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid},
		{name: "RS256 against a secret", cfg: hsCfg, token: rs(baseClaims()), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid, wantMsg: "signing method RS256 is invalid"},
		{name: "ES384 against a P-256 key", cfg: esCfg, token: signToken(t, jwt.SigningMethodES384, k.ec384, baseClaims(), nil), wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenSignatureInvalid},
		{name: "critical header", cfg: hsCfg, token: signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), map[string]any{"crit": []string{"exp"}}), wantErr: ErrInvalidToken, wantMsg: "critical header"},

		{name: "missing token", cfg: hsCfg, token: "", wantErr: ErrNoToken},
		{name: "malformed token", cfg: hsCfg, token: "not-a-jwt", wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenMalformed},
		{name: "three garbage segments", cfg: hsCfg, token: "a.b.c", wantErr: ErrInvalidToken, wantJWTErr: jwt.ErrTokenMalformed},
		{name: "oversized token", cfg: hsCfg, token: strings.Repeat("a", maxTokenLength+1), wantErr: ErrInvalidToken, wantMsg: "longer than"},

		{name: "numeric sub", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["sub"] = 12345 })), wantUser: "12345", wantChannels: defaultChannels},
		{name: "numeric sub beyond float64 precision", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["sub"] = json.Number("12345678901234567891") })), wantUser: "12345678901234567891", wantChannels: defaultChannels},
		{name: "missing sub", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { delete(c, "sub") })), wantErr: ErrInvalidToken, wantMsg: `claim "sub" is missing`},
		{name: "empty sub", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["sub"] = "" })), wantErr: ErrInvalidToken, wantMsg: `claim "sub" is empty`},
		{name: "boolean sub", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["sub"] = true })), wantErr: ErrInvalidToken, wantMsg: `claim "sub" is a bool`},
		{name: "custom user claim", cfg: Config{Secret: []byte(testSecret), UserClaim: "email"}, token: hs(claimsWith(func(c jwt.MapClaims) { c["email"] = "ada@example.com" })), wantUser: "ada@example.com", wantChannels: defaultChannels},

		{name: "channels as a comma-separated string", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["channels"] = " private-a , private-b.*,, " })), wantUser: "user-1", wantChannels: "private-a,private-b.*"},
		{name: "channels as an empty array", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["channels"] = []string{} })), wantUser: "user-1", wantChannels: ""},
		{name: "channels absent", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { delete(c, "channels") })), wantUser: "user-1", wantChannels: ""},
		{name: "channels null", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["channels"] = nil })), wantUser: "user-1", wantChannels: ""},
		{name: "channels as a number", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["channels"] = 3 })), wantErr: ErrInvalidToken, wantMsg: `claim "channels" is a json.Number`},
		{name: "channels array with a number", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["channels"] = []any{"private-a", 3} })), wantErr: ErrInvalidToken, wantMsg: `claim "channels" item 1`},
		{name: "channels array item with a comma", cfg: hsCfg, token: hs(claimsWith(func(c jwt.MapClaims) { c["channels"] = []string{"private-a,private-b"} })), wantErr: ErrInvalidToken, wantMsg: "contains a comma"},
		{name: "custom channels claim", cfg: Config{Secret: []byte(testSecret), ChannelsClaim: "https://example.com/rooms"}, token: hs(claimsWith(func(c jwt.MapClaims) { c["https://example.com/rooms"] = []string{"private-room-*"} })), wantUser: "user-1", wantChannels: "private-room-*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, tt.cfg)
			got, err := v.Verify(context.Background(), tt.token)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				if tt.wantJWTErr != nil {
					assert.ErrorIs(t, err, tt.wantJWTErr)
				}
				if tt.wantMsg != "" {
					assert.ErrorContains(t, err, tt.wantMsg)
				}
				assert.Equal(t, Identity{}, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantUser, got.UserID)
			assert.Equal(t, tt.wantChannels, got.Channels)
			assert.NotEmpty(t, got.Claims["exp"], "claims are returned")
		})
	}
}

// tamper flips the user in a signed token's payload, keeping the signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	c := baseClaims()
	c["sub"] = "admin"
	payload, err := json.Marshal(c)
	require.NoError(t, err)
	parts[1] = b64url(payload)
	return strings.Join(parts, ".")
}

func TestVerifyRequestFindsTheToken(t *testing.T) {
	token := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)

	v := mustVerifier(t, Config{Secret: []byte(testSecret)})
	id, err := v.VerifyRequest(context.Background(), nil, map[string]string{"token": token})
	require.NoError(t, err)
	assert.Equal(t, "user-1", id.UserID)
	_, err = v.VerifyRequest(context.Background(), map[string]string{"authorization": "Bearer " + token}, nil)
	assert.ErrorIs(t, err, ErrNoToken, "the default identity source is the token query parameter only")

	v = mustVerifier(t, Config{Secret: []byte(testSecret), IdentitySource: "route.request.header.Authorization"})
	id, err = v.VerifyRequest(context.Background(), map[string]string{"authorization": "Bearer " + token}, nil)
	require.NoError(t, err)
	assert.Equal(t, "user-1", id.UserID)
	_, err = v.VerifyRequest(context.Background(), map[string]string{"Host": "example.com"}, map[string]string{"token": token})
	assert.ErrorIs(t, err, ErrNoToken, "a header source ignores ?token=")
}

func TestVerifyHonoursCancellation(t *testing.T) {
	v := mustVerifier(t, Config{Secret: []byte(testSecret)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil))
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrInvalidToken)
}

func TestVerifyIsSafeForConcurrentUse(t *testing.T) {
	k := testKeys(t)
	v := mustVerifier(t, Config{PublicKeys: mustParseKeys(t, jwksDocument(t,
		jwkJSON(t, "rsa-1", &k.rsa.PublicKey), jwkJSON(t, "ec-1", &k.ec.PublicKey)))})
	tokens := []string{
		signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": "rsa-1"}),
		signToken(t, jwt.SigningMethodES256, k.ec, baseClaims(), map[string]any{"kid": "ec-1"}),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tokens[i%len(tokens)])
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	k := testKeys(t)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rsaKeys := mustParseKeys(t, pemPublicKey(t, &k.rsa.PublicKey))

	tests := []struct {
		name    string
		cfg     Config
		wantMsg string
	}{
		{name: "no key", cfg: Config{}, wantMsg: "no key configured"},
		{name: "secret and public keys", cfg: Config{Secret: []byte(testSecret), PublicKeys: rsaKeys}, wantMsg: "more than one of a secret, public keys and a remote key set"},
		{name: "short secret", cfg: Config{Secret: []byte("secret")}, wantMsg: "secret is 6 bytes; HS256 needs at least 32"},
		{name: "Ed25519 key", cfg: Config{PublicKeys: []PublicKey{{KeyID: "ed", Key: edPub}}}, wantMsg: `public key 0 (kid "ed") is a ed25519.PublicKey`},
		{name: "RSA key restricted to ES256", cfg: Config{PublicKeys: []PublicKey{{KeyID: "r", Algorithm: "ES256", Key: &k.rsa.PublicKey}}}, wantMsg: "cannot verify ES256"},
		{name: "private key", cfg: Config{PublicKeys: []PublicKey{{Key: k.rsa}}}, wantMsg: "is a *rsa.PrivateKey"},
		{name: "negative leeway", cfg: Config{Secret: []byte(testSecret), Leeway: -time.Second}, wantMsg: "leeway -1s is negative"},
		{name: "bad identity source", cfg: Config{Secret: []byte(testSecret), IdentitySource: "route.request.cookie.token"}, wantMsg: `identity source "route.request.cookie.token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg)
			require.ErrorContains(t, err, tt.wantMsg)
			assert.Nil(t, v)
		})
	}
}

func TestJWKSAlgorithmRestrictsTheKey(t *testing.T) {
	k := testKeys(t)
	jwk := jwkJSON(t, "rsa-1", &k.rsa.PublicKey)
	jwk["alg"] = "RS256"
	v := mustVerifier(t, Config{PublicKeys: mustParseKeys(t, jwksDocument(t, jwk))})

	_, err := v.Verify(context.Background(), signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": "rsa-1"}))
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), signToken(t, jwt.SigningMethodPS256, k.rsa, baseClaims(), map[string]any{"kid": "rsa-1"}))
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.ErrorContains(t, err, "signing method PS256 is invalid")
}

func TestVerifierKeepsItsOwnCopyOfTheSecret(t *testing.T) {
	secret := []byte(testSecret)
	v := mustVerifier(t, Config{Secret: secret})
	token := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)
	secret[0] ^= 0xff
	_, err := v.Verify(context.Background(), token)
	assert.NoError(t, err)
}
