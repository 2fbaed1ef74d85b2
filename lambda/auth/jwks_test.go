package auth

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jwksServer is an identity provider's HTTPS jwks_uri whose key set the test
// rotates, and which can be made to fail.
type jwksServer struct {
	*httptest.Server
	doc     atomic.Pointer[[]byte]
	failing atomic.Bool
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(doc)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.failing.Load() {
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.doc.Load())
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case fails handshakes on purpose
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(doc []byte) { s.doc.Store(&doc) }

// URL is the jwks_uri, shaped like Cognito's.
func (s *jwksServer) URL() string { return s.Server.URL + "/.well-known/jwks.json" }

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newRemoteVerifier(t *testing.T, srv *jwksServer, clock *testClock, logs *bytes.Buffer) (*Verifier, *RemoteJWKS) {
	t.Helper()
	remote, err := NewRemoteJWKS(context.Background(), JWKSConfig{
		URL: srv.URL(), Client: srv.Client(), Now: clock.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err, "cold start fetch")
	return mustVerifier(t, Config{RemoteKeys: remote}), remote
}

func TestRemoteJWKSRotation(t *testing.T) {
	k := testKeys(t)
	ctx := context.Background()
	jwk1, jwk2, jwk3 := jwkJSON(t, "k1", &k.rsa.PublicKey), jwkJSON(t, "k2", &k.rsa2.PublicKey), jwkJSON(t, "k3", &k.ec.PublicKey)
	tok1 := signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": "k1"})
	tok2 := signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), map[string]any{"kid": "k2"})
	tok3 := signToken(t, jwt.SigningMethodES256, k.ec, baseClaims(), map[string]any{"kid": "k3"})
	verify := func(v *Verifier, token string) error { _, err := v.Verify(ctx, token); return err }

	srv := newJWKSServer(t, jwksDocument(t, jwk1))
	clock := &testClock{now: testNow}
	var logs bytes.Buffer
	v, remote := newRemoteVerifier(t, srv, clock, &logs)
	require.EqualValues(t, 1, srv.fetches.Load(), "fetched once at cold start")

	// The cached set serves every request: no fetch per token.
	for range 5 {
		require.NoError(t, verify(v, tok1))
	}
	assert.EqualValues(t, 1, srv.fetches.Load())

	// The provider publishes k2 next to k1. Within the minute after the
	// last fetch an unknown kid is denied without asking again.
	srv.serve(jwksDocument(t, jwk1, jwk2))
	clock.Advance(30 * time.Second)
	err := verify(v, tok2)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.ErrorContains(t, err, `no RS256 key with kid "k2"`)
	assert.EqualValues(t, 1, srv.fetches.Load(), "no refetch within the minute")

	// A minute after the last fetch, the unknown kid triggers one refetch.
	clock.Advance(30 * time.Second)
	require.NoError(t, verify(v, tok2))
	assert.EqualValues(t, 2, srv.fetches.Load(), "one refetch for the new kid")
	require.NoError(t, verify(v, tok1), "the old kid still works")
	require.NoError(t, verify(v, tok2))
	assert.EqualValues(t, 2, srv.fetches.Load())

	// Made-up kids right after cannot make it fetch again.
	for range 5 {
		require.ErrorIs(t, verify(v, signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": "made-up"})), ErrInvalidToken)
	}
	assert.EqualValues(t, 2, srv.fetches.Load(), "the refetch rate limit holds")

	// The provider fails: the refetch is tried once, the last good set stays.
	srv.failing.Store(true)
	clock.Advance(JWKSRefetchInterval)
	require.ErrorIs(t, verify(v, tok3), ErrInvalidToken)
	assert.EqualValues(t, 3, srv.fetches.Load(), "one failed attempt")
	assert.Contains(t, logs.String(), "jwks refetch failed; keeping the last good key set")
	require.NoError(t, verify(v, tok1), "the last good set is kept")
	require.NoError(t, verify(v, tok2))
	require.ErrorIs(t, verify(v, tok3), ErrInvalidToken)
	assert.EqualValues(t, 3, srv.fetches.Load(), "a failed attempt counts against the rate limit")
	assert.Equal(t, []string{"k1", "k2"}, keyIDs(remote.Keys()))

	// The provider is back and has rotated k1 out and an EC key in.
	srv.failing.Store(false)
	srv.serve(jwksDocument(t, jwk2, jwk3))
	clock.Advance(JWKSRefetchInterval)
	require.NoError(t, verify(v, tok3), "an EC key after RSA ones")
	assert.EqualValues(t, 4, srv.fetches.Load())
	require.ErrorIs(t, verify(v, tok1), ErrInvalidToken, "a withdrawn key no longer verifies")
	assert.Equal(t, []string{"k2", "k3"}, keyIDs(remote.Keys()))
}

func TestRemoteJWKSRefetchesAnHourOldSet(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey)))
	clock := &testClock{now: testNow}
	v, _ := newRemoteVerifier(t, srv, clock, &bytes.Buffer{})
	tok1 := signToken(t, jwt.SigningMethodRS256, k.rsa, baseClaims(), map[string]any{"kid": "k1"})

	clock.Advance(JWKSMaxAge - time.Second)
	_, err := v.Verify(context.Background(), tok1)
	require.NoError(t, err)
	assert.EqualValues(t, 1, srv.fetches.Load())

	// The provider withdrew k1; an hour after the fetch the set is renewed.
	srv.serve(jwksDocument(t, jwkJSON(t, "k2", &k.rsa2.PublicKey)))
	clock.Advance(time.Second)
	_, err = v.Verify(context.Background(), tok1)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.EqualValues(t, 2, srv.fetches.Load())
}

func TestRemoteJWKSFetchesOnceForConcurrentUnknownKids(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey)))
	clock := &testClock{now: testNow}
	v, _ := newRemoteVerifier(t, srv, clock, &bytes.Buffer{})
	srv.serve(jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey), jwkJSON(t, "k2", &k.rsa2.PublicKey)))
	clock.Advance(JWKSRefetchInterval)

	tok2 := signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), map[string]any{"kid": "k2"})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok2)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.EqualValues(t, 2, srv.fetches.Load(), "cold start plus exactly one refetch")
}

// Keys come from the configured URL only: a token's jku, x5u or jwk header
// is never followed, even when its kid is unknown.
func TestRemoteJWKSIgnoresKeyURLsInTheToken(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey)))
	attacker := newJWKSServer(t, jwksDocument(t, jwkJSON(t, "evil", &k.rsa2.PublicKey)))
	clock := &testClock{now: testNow}
	v, _ := newRemoteVerifier(t, srv, clock, &bytes.Buffer{})
	clock.Advance(JWKSRefetchInterval)

	forged := signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), map[string]any{
		"kid": "evil", "jku": attacker.URL(), "x5u": attacker.URL(), "jwk": jwkJSON(t, "evil", &k.rsa2.PublicKey),
	})
	_, err := v.Verify(context.Background(), forged)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.EqualValues(t, 0, attacker.fetches.Load(), "the token's URLs are never fetched")
	assert.EqualValues(t, 2, srv.fetches.Load(), "the configured URL is")
}

func TestRemoteJWKSKeepsTheAlgorithmDefences(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey)))
	v, _ := newRemoteVerifier(t, srv, &testClock{now: testNow}, &bytes.Buffer{})
	for name, token := range map[string]string{
		"alg none": signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, baseClaims(), map[string]any{"kid": "k1"}),
		"HS256 signed with the public key as secret": signToken(t, jwt.SigningMethodHS256, pemPublicKey(t, &k.rsa.PublicKey), baseClaims(), map[string]any{"kid": "k1"}),
		"ES256 token naming an RSA kid":              signToken(t, jwt.SigningMethodES256, k.ec, baseClaims(), map[string]any{"kid": "k1"}),
		"RS256 signed by another key":                signToken(t, jwt.SigningMethodRS256, k.rsa2, baseClaims(), map[string]any{"kid": "k1"}),
	} {
		_, err := v.Verify(context.Background(), token)
		assert.ErrorIs(t, err, ErrInvalidToken, name)
	}
}

func TestNewRemoteJWKSRefuses(t *testing.T) {
	k := testKeys(t)
	good := jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey))
	srv := newJWKSServer(t, good)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(good) }))
	t.Cleanup(plain.Close)
	redirect := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/jwks.json", http.StatusFound))
	t.Cleanup(redirect.Close)
	serve := func(status int, body string) string {
		s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(s.Close)
		return s.URL
	}

	tests := []struct {
		name, url string
		client    *http.Client
		wantMsg   string
	}{
		{name: "empty URL", url: "", wantMsg: "JWKS URL is empty"},
		{name: "http URL", url: plain.URL + "/jwks.json", wantMsg: "only https is allowed"},
		{name: "no scheme", url: "issuer.example/jwks.json", wantMsg: "only https is allowed"},
		{name: "user information", url: "https://user:pass@issuer.example/jwks.json", wantMsg: "user information is not allowed"},
		{name: "redirect to http", url: redirect.URL, client: redirect.Client(), wantMsg: "only https is allowed"},
		{name: "untrusted certificate", url: srv.URL(), client: &http.Client{}, wantMsg: "certificate"},
		{name: "error status", url: serve(http.StatusNotFound, "{}"), wantMsg: "status 404"},
		{name: "not JSON", url: serve(http.StatusOK, "<html>login</html>"), wantMsg: "not a JSON key set"},
		{name: "PEM instead of a key set", url: serve(http.StatusOK, string(pemPublicKey(t, &k.rsa.PublicKey))), wantMsg: "not a JSON key set"},
		{name: "no signature key", url: serve(http.StatusOK, `{"keys":[{"kty":"OKP","crv":"X25519","x":"AA"}]}`), wantMsg: "no RSA or EC signature key"},
		{name: "symmetric key", url: serve(http.StatusOK, `{"keys":[{"kty":"oct","k":"AAAA"}]}`), wantMsg: "symmetric (oct) key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := tt.client
			if client == nil {
				client = srv.Client() // trusts every httptest TLS server's certificate
			}
			r, err := NewRemoteJWKS(context.Background(), JWKSConfig{URL: tt.url, Client: client, Logger: slog.New(slog.DiscardHandler)})
			require.ErrorContains(t, err, tt.wantMsg)
			assert.Nil(t, r)
		})
	}
}

func TestCognitoTokenUse(t *testing.T) {
	k := testKeys(t)
	const issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"
	const clientID = "4b7c1pqr2stuv3wxyz5abcdefg"
	srv := newJWKSServer(t, jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey)))
	remote, err := NewRemoteJWKS(context.Background(), JWKSConfig{URL: srv.URL(), Client: srv.Client(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	sign := func(c jwt.MapClaims) string {
		return signToken(t, jwt.SigningMethodRS256, k.rsa, c, map[string]any{"kid": "k1"})
	}
	common := func() jwt.MapClaims {
		return jwt.MapClaims{
			"sub": "8a6e0804-2bd0-4672-b79d-d97027f9071a", "iss": issuer,
			"iat": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(time.Hour).Unix(),
		}
	}
	idToken := func(edit func(jwt.MapClaims)) string {
		c := common()
		c["aud"], c["token_use"], c["cognito:username"] = clientID, "id", "alice"
		edit(c)
		return sign(c)
	}
	accessToken := func(edit func(jwt.MapClaims)) string {
		c := common()
		c["client_id"], c["token_use"], c["scope"], c["username"] = clientID, "access", "openid", "alice"
		edit(c)
		return sign(c)
	}
	keep := func(jwt.MapClaims) {}

	tests := []struct {
		name     string
		tokenUse string
		token    string
		wantMsg  string // "" means valid
	}{
		{name: "ID token, token_use id", tokenUse: TokenUseID, token: idToken(keep)},
		{name: "ID token, no token_use configured", token: idToken(keep)},
		{name: "ID token for another app client", tokenUse: TokenUseID, token: idToken(func(c jwt.MapClaims) { c["aud"] = "other-client" }), wantMsg: "token has invalid audience"},
		{name: "access token where ID tokens are expected", tokenUse: TokenUseID, token: accessToken(keep), wantMsg: "aud claim is required"},
		{name: "access token with the client id as aud where ID tokens are expected", tokenUse: TokenUseID, token: accessToken(func(c jwt.MapClaims) { c["aud"] = clientID }), wantMsg: `token_use is "access", want "id"`},
		{name: "access token, no token_use configured: no aud", token: accessToken(keep), wantMsg: "aud"},
		{name: "access token, token_use access", tokenUse: TokenUseAccess, token: accessToken(keep)},
		{name: "access token for another app client", tokenUse: TokenUseAccess, token: accessToken(func(c jwt.MapClaims) { c["client_id"] = "other-client" }), wantMsg: "client_id is not the configured audience"},
		{name: "access token without client_id", tokenUse: TokenUseAccess, token: accessToken(func(c jwt.MapClaims) { delete(c, "client_id") }), wantMsg: "client_id is not the configured audience"},
		{name: "aud is no substitute for client_id on access tokens", tokenUse: TokenUseAccess, token: accessToken(func(c jwt.MapClaims) { delete(c, "client_id"); c["aud"] = clientID }), wantMsg: "client_id is not the configured audience"},
		{name: "ID token where access tokens are expected", tokenUse: TokenUseAccess, token: idToken(keep), wantMsg: `token_use is "id", want "access"`},
		{name: "token without token_use", tokenUse: TokenUseAccess, token: accessToken(func(c jwt.MapClaims) { delete(c, "token_use") }), wantMsg: `token_use is "", want "access"`},
		{name: "wrong issuer", tokenUse: TokenUseAccess, token: accessToken(func(c jwt.MapClaims) { c["iss"] = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other" }), wantMsg: "token has invalid issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, Config{RemoteKeys: remote, Issuer: issuer, Audience: clientID, TokenUse: tt.tokenUse})
			id, err := v.Verify(context.Background(), tt.token)
			if tt.wantMsg != "" {
				require.ErrorIs(t, err, ErrInvalidToken)
				assert.ErrorContains(t, err, tt.wantMsg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "8a6e0804-2bd0-4672-b79d-d97027f9071a", id.UserID)
		})
	}

	_, err = NewVerifier(Config{RemoteKeys: remote, TokenUse: "refresh"})
	assert.ErrorContains(t, err, `token use "refresh"`)
}

func keyIDs(keys []PublicKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KeyID
	}
	return out
}
