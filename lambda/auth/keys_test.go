package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePublicKeysPEM(t *testing.T) {
	k := testKeys(t)
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer.example"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer.example"}}, &k.ec2.PublicKey, k.ec2)
	require.NoError(t, err)

	bundle := strings.Join([]string{
		"RSA signing key, PKIX:",
		string(pemPublicKey(t, &k.rsa.PublicKey)),
		string(pemPublicKey(t, &k.ec.PublicKey)),
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa2.PublicKey)})),
		"subject=CN = issuer.example",
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})),
	}, "\n")

	keys, err := ParsePublicKeys([]byte(bundle))
	require.NoError(t, err)
	require.Len(t, keys, 4)
	assert.True(t, k.rsa.PublicKey.Equal(keys[0].Key), "PKIX RSA key")
	assert.True(t, k.ec.PublicKey.Equal(keys[1].Key), "PKIX EC key")
	assert.True(t, k.rsa2.PublicKey.Equal(keys[2].Key), "PKCS#1 RSA key")
	assert.True(t, k.ec2.PublicKey.Equal(keys[3].Key), "certificate key")
	for _, key := range keys {
		assert.Empty(t, key.KeyID)
		assert.Empty(t, key.Algorithm)
	}
}

func TestParsePublicKeysPEMWithEscapedNewlines(t *testing.T) {
	k := testKeys(t)
	escaped := strings.ReplaceAll(string(pemPublicKey(t, &k.ec.PublicKey)), "\n", `\n`)
	keys, err := ParsePublicKeys([]byte(escaped))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.True(t, k.ec.PublicKey.Equal(keys[0].Key))
}

func TestParsePublicKeysJWKS(t *testing.T) {
	k := testKeys(t)
	rsaSig := jwkJSON(t, "rsa-1", &k.rsa.PublicKey)
	rsaSig["alg"] = "RS256"
	ecSig := jwkJSON(t, "ec-1", &k.ec.PublicKey)
	rsaEnc := jwkJSON(t, "rsa-enc", &k.rsa2.PublicKey)
	rsaEnc["use"] = "enc"
	rsaOAEP := jwkJSON(t, "rsa-oaep", &k.rsa2.PublicKey)
	delete(rsaOAEP, "use")
	rsaOAEP["alg"] = "RSA-OAEP"
	okp := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}

	keys, err := ParsePublicKeys(jwksDocument(t, rsaSig, rsaEnc, okp, ecSig, rsaOAEP))
	require.NoError(t, err)
	require.Len(t, keys, 2, "encryption and OKP keys are skipped")
	assert.Equal(t, "rsa-1", keys[0].KeyID)
	assert.Equal(t, "RS256", keys[0].Algorithm)
	assert.True(t, k.rsa.PublicKey.Equal(keys[0].Key))
	assert.Equal(t, "ec-1", keys[1].KeyID)
	assert.Empty(t, keys[1].Algorithm)
	assert.True(t, k.ec.PublicKey.Equal(keys[1].Key))
}

func TestParsePublicKeysSingleJWK(t *testing.T) {
	k := testKeys(t)
	doc, err := json.Marshal(jwkJSON(t, "ec-384", &k.ec384.PublicKey))
	require.NoError(t, err)
	keys, err := ParsePublicKeys(doc)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, "ec-384", keys[0].KeyID)
	assert.True(t, k.ec384.PublicKey.Equal(keys[0].Key))
	assert.Equal(t, []string{"ES384"}, algorithmsFor(keys[0].Key))
}

func TestParsePublicKeysShortECCoordinates(t *testing.T) {
	// Some issuers drop leading zero bytes of x and y; the key is still valid.
	// This P-256 point has an x coordinate starting with a zero byte.
	point, err := hex.DecodeString("040034a2f21cef966040934d0ed42adc61f224a0ee17b09b2a1cfa96f849d8a802" +
		"06c670d3c1352903e1780f00a5a3847ba1c9d01e6ffc5216a55e9f95cd7b86d4")
	require.NoError(t, err)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	require.NoError(t, err)
	jwk := jwkJSON(t, "short", pub)
	jwk["x"] = b64url(point[2:33])

	keys, err := ParsePublicKeys(jwksDocument(t, jwk))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.True(t, pub.Equal(keys[0].Key))
}

func TestParsePublicKeysErrors(t *testing.T) {
	k := testKeys(t)
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	require.NoError(t, err)
	offCurve := jwkJSON(t, "bad", &k.ec.PublicKey)
	offCurve["y"] = offCurve["x"]
	evenExponent := jwkJSON(t, "even", &k.rsa.PublicKey)
	evenExponent["e"] = b64url([]byte{1, 0, 0})
	longX := jwkJSON(t, "long", &k.ec.PublicKey)
	longX["x"] = b64url(make([]byte, 33))

	tests := []struct {
		name    string
		input   string
		wantMsg string
	}{
		{name: "empty", input: "  \n", wantMsg: "empty input"},
		{name: "garbage", input: "not a key", wantMsg: "no PEM block and no JWKS JSON found"},
		{name: "private key", input: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})), wantMsg: "a private key was given"},
		{name: "RSA private key", input: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.rsa)})), wantMsg: "a private key was given"},
		{name: "unknown PEM block", input: string(pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: []byte{1}})), wantMsg: "PEM block 1 (DH PARAMETERS): unsupported PEM block type"},
		{name: "corrupt PUBLIC KEY", input: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})), wantMsg: "PEM block 1 (PUBLIC KEY)"},
		{name: "invalid JSON", input: `{"keys": [`, wantMsg: "parse JWKS"},
		{name: "symmetric key", input: `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`, wantMsg: `kid "s"): symmetric (oct) key`},
		{name: "no usable key", input: `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`, wantMsg: "no RSA or EC signature key found"},
		{name: "empty key set", input: `{"keys":[]}`, wantMsg: "no RSA or EC signature key found"},
		{name: "point not on the curve", input: string(jwksDocument(t, offCurve)), wantMsg: `kid "bad"`},
		{name: "unsupported curve", input: `{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}`, wantMsg: `unsupported EC curve "secp256k1"`},
		{name: "coordinate too long", input: string(jwksDocument(t, longX)), wantMsg: "longer than the curve size"},
		{name: "even RSA exponent", input: string(jwksDocument(t, evenExponent)), wantMsg: "invalid RSA exponent"},
		{name: "bad base64", input: `{"kty":"RSA","kid":"b","n":"!!!","e":"AQAB"}`, wantMsg: `decode "n"`},
		{name: "empty modulus", input: `{"kty":"RSA","kid":"m","n":"","e":"AQAB"}`, wantMsg: "empty RSA modulus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParsePublicKeys([]byte(tt.input))
			require.ErrorContains(t, err, tt.wantMsg)
			assert.Nil(t, keys)
		})
	}
}

func TestAlgorithmsFor(t *testing.T) {
	k := testKeys(t)
	assert.Equal(t, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, algorithmsFor(&k.rsa.PublicKey))
	assert.Equal(t, []string{"ES256"}, algorithmsFor(&k.ec.PublicKey))
	assert.Equal(t, []string{"ES384"}, algorithmsFor(&k.ec384.PublicKey))
	assert.Nil(t, algorithmsFor(k.rsa), "private keys are not verification keys")
}

func TestParsePublicKeysRefusesShortRSA(t *testing.T) {
	k := testKeys(t)
	weak := jwkJSON(t, "weak", &k.rsa.PublicKey)
	weak["n"] = b64url(big.NewInt(0xFFFF1).Bytes()) // a 20-bit modulus
	_, err := ParsePublicKeys(jwksDocument(t, weak))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at least 2048 are required")
}
