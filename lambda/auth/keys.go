package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// PublicKey is one verification key for RS*, PS* or ES* tokens.
type PublicKey struct {
	// KeyID is the JWKS "kid"; empty for PEM keys, which match any token kid
	// that no other configured key claims.
	KeyID string
	// Algorithm is the JWKS "alg" the key is restricted to; empty allows every
	// algorithm that fits the key type.
	Algorithm string
	// Key is an *rsa.PublicKey or an *ecdsa.PublicKey on P-256, P-384 or P-521.
	Key crypto.PublicKey
}

// ParsePublicKeys reads verification keys from PEM or from JWKS JSON.
//
// Input that starts with "{" is JSON: a JWKS ({"keys": [...]}) or a single
// JWK. Only RSA and EC keys meant for signatures are used; keys with "use"
// other than "sig", or of another type (OKP), are skipped, and a symmetric
// ("oct") key is an error because it has no place in a public key set.
//
// Anything else is PEM, possibly several blocks of type PUBLIC KEY, RSA PUBLIC
// KEY or CERTIFICATE (the certificate's key is used). A private key is an
// error: the authorizer must only ever hold the public half. PEM given with
// literal "\n" sequences instead of newlines (a common environment variable
// mishap) is accepted.
func ParsePublicKeys(data []byte) ([]PublicKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("parse public keys: empty input")
	}
	var (
		keys []PublicKey
		err  error
	)
	if trimmed[0] == '{' {
		keys, err = parseJWKS(trimmed)
	} else {
		keys, err = parsePEM(trimmed)
	}
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("parse public keys: RSA key %q has %d bits, at least %d are required", k.KeyID, rk.N.BitLen(), MinRSABits)
		}
	}
	return keys, nil
}

// MinRSABits is the smallest RSA modulus accepted, refused at load time
// rather than token by token.
const MinRSABits = 2048

func parsePEM(data []byte) ([]PublicKey, error) {
	if !bytes.Contains(data, []byte("\n")) && bytes.Contains(data, []byte(`\n`)) {
		data = bytes.ReplaceAll(data, []byte(`\n`), []byte("\n"))
	}
	var keys []PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		key, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("parse PEM block %d (%s): %w", n, block.Type, err)
		}
		keys = append(keys, PublicKey{Key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("parse public keys: no PEM block and no JWKS JSON found")
	}
	return keys, nil
}

func parsePEMBlock(block *pem.Block) (crypto.PublicKey, error) {
	switch {
	case block.Type == "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, errors.New("a private key was given; configure only the public key")
	default:
		return nil, errors.New("unsupported PEM block type; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE")
	}
}

// jwk holds the JWK members the authorizer understands (RFC 7517, RFC 7518 section 6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func parseJWKS(data []byte) ([]PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
		jwk
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	if set.Keys == nil && set.Kty != "" {
		set.Keys = []jwk{set.jwk}
	}
	var keys []PublicKey
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var (
			key crypto.PublicKey
			err error
		)
		switch k.Kty {
		case "RSA":
			key, err = k.rsaKey()
		case "EC":
			key, err = k.ecKey()
		case "oct":
			return nil, fmt.Errorf("parse JWKS key %d (kid %q): symmetric (oct) key in a public key set; use the secret settings for HS256", i, k.Kid)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		if k.Alg != "" && !slices.Contains(algorithmsFor(key), k.Alg) {
			// Keys for other purposes (RSA-OAEP, EdDSA...) may share a JWKS.
			continue
		}
		keys = append(keys, PublicKey{KeyID: k.Kid, Algorithm: k.Alg, Key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("parse JWKS: no RSA or EC signature key found")
	}
	return keys, nil
}

func (k jwk) rsaKey() (*rsa.PublicKey, error) {
	n, err := decodeB64URL("n", k.N)
	if err != nil {
		return nil, err
	}
	e, err := decodeB64URL("e", k.E)
	if err != nil {
		return nil, err
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
		return nil, errors.New("invalid RSA exponent")
	}
	if len(n) == 0 {
		return nil, errors.New("empty RSA modulus")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
}

func (k jwk) ecKey() (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch k.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported EC curve %q", k.Crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := decodeB64URL("x", k.X)
	if err != nil {
		return nil, err
	}
	y, err := decodeB64URL("y", k.Y)
	if err != nil {
		return nil, err
	}
	if len(x) > size || len(y) > size {
		return nil, errors.New("EC coordinate longer than the curve size")
	}
	point := make([]byte, 1+2*size)
	point[0] = 4 // uncompressed
	copy(point[1+size-len(x):1+size], x)
	copy(point[1+2*size-len(y):], y)
	return ecdsa.ParseUncompressedPublicKey(curve, point)
}

func decodeB64URL(member, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("decode %q: %w", member, err)
	}
	return b, nil
}

// algorithmsFor lists the JWS algorithms a public key can verify; nil for
// unsupported key types.
func algorithmsFor(key crypto.PublicKey) []string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	}
	return nil
}
