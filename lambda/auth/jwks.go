package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Timing of a [RemoteJWKS].
const (
	// JWKSFetchTimeout bounds one fetch of the key set, connection included.
	JWKSFetchTimeout = 5 * time.Second
	// JWKSRefetchInterval is the least time between two fetches: a token
	// whose kid is unknown triggers a refetch at most this often, so tokens
	// with made-up kids cannot make the authorizer hammer the provider.
	JWKSRefetchInterval = time.Minute
	// JWKSMaxAge is how long a fetched set is used before the next request
	// refetches it anyway, so a key the provider withdrew stops verifying.
	JWKSMaxAge = time.Hour

	// maxJWKSBytes bounds the response read; real sets are a few KiB.
	maxJWKSBytes = 1 << 20
	// maxJWKSRedirects bounds the redirects followed, each to https only.
	maxJWKSRedirects = 3
)

// JWKSConfig configures a [RemoteJWKS].
type JWKSConfig struct {
	// URL is the provider's jwks_uri. It must be https; it comes from
	// configuration only, never from a token ("jku" and "x5u" headers are
	// ignored).
	URL string
	// Client fetches the set; nil means a client with the system's root
	// certificates. Either way its Timeout defaults to JWKSFetchTimeout and
	// redirects are followed to https URLs only. Tests pass the client of an
	// httptest TLS server here.
	Client *http.Client
	// Now is the clock for the refetch interval and the maximum age;
	// time.Now when nil.
	Now func() time.Time
	// Logger receives one line per fetch; nil means slog.Default().
	Logger *slog.Logger
}

// RemoteJWKS is a JSON Web Key Set fetched from an https URL, the way
// identity providers (Amazon Cognito, Auth0, Okta, Entra ID) publish their
// rotating signing keys. [NewRemoteJWKS] fetches it once; after that it is
// refetched only when a token names a kid the set lacks, or when the set is
// older than JWKSMaxAge, and never more often than JWKSRefetchInterval. A
// failed fetch keeps the last good set. It is safe for concurrent use.
type RemoteJWKS struct {
	url    string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	set atomic.Pointer[fetchedSet]

	mu          sync.Mutex // serialises fetches; guards lastAttempt
	lastAttempt time.Time
}

// fetchedSet is one successfully fetched key set. A new fetch stores a new
// one, so pointer identity tells whether the set changed.
type fetchedSet struct {
	keys []PublicKey
	at   time.Time
}

// NewRemoteJWKS checks cfg and fetches the key set, so that a wrong URL or an
// unreachable provider fails at cold start rather than on every handshake.
func NewRemoteJWKS(ctx context.Context, cfg JWKSConfig) (*RemoteJWKS, error) {
	if err := checkJWKSURL(cfg.URL); err != nil {
		return nil, err
	}
	client := &http.Client{}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	if client.Timeout == 0 {
		client.Timeout = JWKSFetchTimeout
	}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxJWKSRedirects {
			return fmt.Errorf("more than %d redirects", maxJWKSRedirects)
		}
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to %s: only https is allowed", req.URL.Redacted())
		}
		return nil
	}
	r := &RemoteJWKS{url: cfg.URL, client: client, now: cfg.Now, log: cfg.Logger}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fetchLocked(ctx, "cold start"); err != nil {
		return nil, err
	}
	return r, nil
}

// checkJWKSURL accepts an absolute https URL with a host and no user
// information (which would put a credential into logs).
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("JWKS URL is empty")
	case err != nil:
		return fmt.Errorf("JWKS URL %q: %w", raw, err)
	case u.Scheme != "https":
		return fmt.Errorf("JWKS URL %s: only https is allowed", u.Redacted())
	case u.Host == "":
		return fmt.Errorf("JWKS URL %s: no host", u.Redacted())
	case u.User != nil:
		return fmt.Errorf("JWKS URL %s: user information is not allowed", u.Redacted())
	}
	return nil
}

// URL is the configured jwks_uri.
func (r *RemoteJWKS) URL() string { return r.url }

// Keys returns the current set.
func (r *RemoteJWKS) Keys() []PublicKey { return r.set.Load().keys }

func (r *RemoteJWKS) current() *fetchedSet { return r.set.Load() }

// refreshIfStale refetches when the set is older than JWKSMaxAge and the
// refetch interval allows it. The common case, a fresh set, takes no lock.
func (r *RemoteJWKS) refreshIfStale(ctx context.Context) {
	if r.now().Sub(r.current().at) < JWKSMaxAge {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.now().Sub(r.current().at) < JWKSMaxAge {
		return
	}
	r.refetchLocked(ctx, "the set is older than "+JWKSMaxAge.String())
}

// refreshForUnknownKey refetches because a token names a key that the set
// the caller looked in (seen) lacks. If another request has replaced the set
// meanwhile, that set is used without a fetch. It reports whether the current
// set differs from seen.
func (r *RemoteJWKS) refreshForUnknownKey(ctx context.Context, seen *fetchedSet, kid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current() != seen {
		return true
	}
	return r.refetchLocked(ctx, fmt.Sprintf("unknown kid %q", kid))
}

// refetchLocked fetches unless the last attempt is more recent than
// JWKSRefetchInterval.
func (r *RemoteJWKS) refetchLocked(ctx context.Context, reason string) bool {
	if since := r.now().Sub(r.lastAttempt); since < JWKSRefetchInterval {
		r.log.DebugContext(ctx, "jwks refetch skipped", "url", r.url, "reason", reason, "lastAttemptAgo", since.String())
		return false
	}
	if err := r.fetchLocked(ctx, reason); err != nil {
		r.log.WarnContext(ctx, "jwks refetch failed; keeping the last good key set", "url", r.url, "reason", reason, "error", err)
		return false
	}
	return true
}

// fetchLocked downloads and parses the set and stores it on success.
func (r *RemoteJWKS) fetchLocked(ctx context.Context, reason string) error {
	r.lastAttempt = r.now()
	keys, err := r.download(ctx)
	if err != nil {
		return fmt.Errorf("fetch JWKS %s: %w", r.url, err)
	}
	r.set.Store(&fetchedSet{keys: keys, at: r.lastAttempt})
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.KeyID
	}
	r.log.InfoContext(ctx, "jwks fetched", "url", r.url, "reason", reason, "kids", kids)
	return nil
}

func (r *RemoteJWKS) download(ctx context.Context) ([]PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, JWKSFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("response is larger than %d bytes", maxJWKSBytes)
	}
	if body = bytes.TrimSpace(body); len(body) == 0 || body[0] != '{' {
		return nil, errors.New("response is not a JSON key set")
	}
	return ParsePublicKeys(body)
}

// remoteAlgorithms are the algorithms a remote set may use. The set can
// change after start-up (an RSA key rotated to an EC one), so every
// asymmetric algorithm the verifier supports is allowed up front; the key
// function still demands that the selected key fits the token's algorithm,
// and HMAC and "none" are never among them.
var remoteAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
