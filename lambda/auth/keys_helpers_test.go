package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// testSecret is exactly MinSecretLength bytes.
const testSecret = "0123456789abcdef0123456789abcdef"

// testNow is the fixed clock every verifier in the tests uses.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// testKeyPairs are generated once per test binary: RSA generation is slow
// under the race detector.
type testKeyPairs struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
}

var generateTestKeys = sync.OnceValues(func() (testKeyPairs, error) {
	var k testKeyPairs
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return k, err
	}
	if k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return k, err
	}
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	return k, err
})

func testKeys(t *testing.T) testKeyPairs {
	t.Helper()
	k, err := generateTestKeys()
	require.NoError(t, err, "generate test keys")
	return k
}

// baseClaims are valid for testNow, issuer "https://issuer.example" and
// audience "wsforge".
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":      "user-1",
		"iss":      "https://issuer.example",
		"aud":      "wsforge",
		"iat":      testNow.Add(-time.Minute).Unix(),
		"nbf":      testNow.Add(-time.Minute).Unix(),
		"exp":      testNow.Add(time.Hour).Unix(),
		"channels": []string{"private-team-1", "private-chat.*"},
	}
}

// claimsWith returns baseClaims changed by edit.
func claimsWith(edit func(c jwt.MapClaims)) jwt.MapClaims {
	c := baseClaims()
	edit(c)
	return c
}

// signToken signs claims with method and key, adding header fields.
func signToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err, "sign %s token", method.Alg())
	return s
}

func pemPublicKey(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// jwkJSON renders a public key as a JWK map (RFC 7518 section 6).
func jwkJSON(t *testing.T, kid string, pub any) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		point, err := k.Bytes()
		require.NoError(t, err)
		size := (len(point) - 1) / 2
		return map[string]any{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name, "x": b64(point[1 : 1+size]), "y": b64(point[1+size:])}
	}
	t.Fatalf("jwkJSON: unsupported key %T", pub)
	return nil
}

func jwksDocument(t *testing.T, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	require.NoError(t, err)
	return b
}

func mustVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	v, err := NewVerifier(cfg)
	require.NoError(t, err, "new verifier")
	return v
}

func mustParseKeys(t *testing.T, data []byte) []PublicKey {
	t.Helper()
	keys, err := ParsePublicKeys(data)
	require.NoError(t, err, "parse public keys")
	return keys
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
