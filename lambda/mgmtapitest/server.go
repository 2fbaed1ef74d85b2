// Package mgmtapitest is a stand-in for the API Gateway management API
// (@connections) for tests and benchmarks, in the spirit of net/http/httptest.
// It speaks AWS's wire format (200 on POST, 200 JSON on GET, 204 on DELETE,
// errors with their x-amzn-ErrorType header and a JSON message body), so the
// unmodified aws-sdk-go-v2 client classifies its answers exactly as on AWS.
// It can serve HTTPS with a self-signed certificate (Options.TLS, the
// client trusts CACertPEM) and verify every call's SigV4 signature
// (Options.SigV4), as the real endpoint does. It can add latency per call, throttle with a token bucket (429
// LimitExceededException), fail a share of calls with 5xx and answer 410 for
// dead connections. Besides AWS's paths it answers GET /_mgmtapitest/counts
// with its Counts as JSON, so a benchmark can read them from another process.
package mgmtapitest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// Options configure a Server.
type Options struct {
	// Stage is the first path segment. Default "test".
	Stage string
	// Latency is added to every call.
	Latency time.Duration
	// RateLimit is the token bucket's rate in calls per second; 0 means none.
	RateLimit float64
	// Burst is the token bucket's size. Default RateLimit/100 (10 ms worth), at least 1.
	Burst int
	// FailEvery makes every n-th call answer 500 InternalServerError. 0 means never.
	FailEvery int
	// AutoRegister treats unknown ids as live instead of gone, for benchmarks
	// that do not want to register 100,000 ids one by one. Dead ids still answer 410.
	AutoRegister bool
	// DeadShare is the share (0 to 1) of unknown ids that AutoRegister treats
	// as dead connections answering 410. The choice is a hash of the id, so the
	// same id is always dead or always live.
	DeadShare float64
	// KeepMessages records every delivered payload for Messages. Off for benchmarks.
	KeepMessages bool
	// PayloadLimit is the largest body POST accepts before answering 413
	// PayloadTooLargeException. Default sender.MaxPayload (128 KB).
	PayloadLimit int
	// Inject decides, before anything else, to answer a call with an error
	// status: it gets the method, the connection id and the call number for
	// that id (1 for the first call) and returns 0 for a normal answer or one
	// of 403, 410, 413, 429, 500, 502, 503, 504, answered with AWS's error type.
	Inject func(method, id string, call int) int
	// TLS serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with a self-signed
	// certificate for 127.0.0.1; clients trust it through CACertPEM or RootCAs.
	TLS bool
	// SigV4, when set, verifies every call's signature and answers 403 as API
	// Gateway does when it is missing (MissingAuthenticationTokenException),
	// names an unknown access key (UnrecognizedClientException) or does not
	// match (InvalidSignatureException).
	SigV4 *SigV4
}

// errorTypes are the x-amzn-ErrorType values API Gateway sends per status.
var errorTypes = map[int]string{
	http.StatusForbidden:             sender.ErrorTypeForbidden,
	http.StatusGone:                  sender.ErrorTypeGone,
	http.StatusRequestEntityTooLarge: sender.ErrorTypePayloadTooLarge,
	http.StatusTooManyRequests:       sender.ErrorTypeLimitExceeded,
	http.StatusInternalServerError:   "InternalServerErrorException",
	http.StatusBadGateway:            "BadGatewayException",
	http.StatusServiceUnavailable:    "ServiceUnavailableException",
	http.StatusGatewayTimeout:        "GatewayTimeoutException",
}

// Benchmark defaults: the latency of one management API call as seen from a
// Lambda in the same region, and the account-level request rate.
const (
	DefaultLatency   = 20 * time.Millisecond
	DefaultRateLimit = 10000
)

// CountsPath is the fake's own path (not AWS's) that serves Counts as JSON.
const CountsPath = "/_mgmtapitest/counts"

// Counts are what the server has answered so far.
type Counts struct {
	// Posts counts every POST received; Delivered those answered 200.
	Posts, Delivered int64
	// Gone, Throttled, TooLarge and ServerErrors count the error answers.
	Gone, Throttled, TooLarge, ServerErrors int64
	// Deletes and Gets count the other calls.
	Deletes, Gets int64
	// MaxInFlight is the highest number of calls served at once.
	MaxInFlight int64
	// Refused counts calls answered 403 for a missing or wrong signature.
	Refused int64
	// Accepted counts the calls the rate limit let through (every call when
	// there is none), per AcceptedWindow since the first call: the rate over
	// time, so a benchmark can tell a sender's ramp-up from its steady state.
	// Calls after MaxAcceptedWindows are not counted here.
	Accepted []int64 `json:"accepted,omitempty"`
}

// AcceptedWindow is the width of Counts.Accepted's windows, and
// MaxAcceptedWindows how many it holds (10 minutes).
const (
	AcceptedWindow     = 50 * time.Millisecond
	MaxAcceptedWindows = 12000
)

// Server is a fake management API. Create it with New; Close it when done.
type Server struct {
	opts    Options
	srv     *httptest.Server
	limiter *rate.Limiter
	sigv4   *sigv4Verifier

	mu        sync.Mutex
	live      map[string]time.Time // id -> connectedAt
	dead      map[string]struct{}
	messages  map[string][][]byte
	deleted   map[string]struct{}
	callsByID map[string]int // per id, for Inject

	posts, delivered, gone, throttled, tooLarge, serverErrors, deletes, gets atomic.Int64
	inFlight, maxInFlight, refused                                           atomic.Int64
	calls                                                                    atomic.Int64

	firstCall atomic.Int64 // unix nanoseconds of the first call, 0 before it
	accepted  []atomic.Int64
}

// New starts a server on a loopback port.
func New(opts Options) *Server {
	if opts.Stage == "" {
		opts.Stage = "test"
	}
	s := &Server{
		opts:      opts,
		live:      map[string]time.Time{},
		dead:      map[string]struct{}{},
		messages:  map[string][][]byte{},
		deleted:   map[string]struct{}{},
		callsByID: map[string]int{},
		accepted:  make([]atomic.Int64, MaxAcceptedWindows),
	}
	if s.opts.PayloadLimit <= 0 {
		s.opts.PayloadLimit = sender.MaxPayload
	}
	if opts.RateLimit > 0 {
		burst := opts.Burst
		if burst <= 0 {
			burst = max(1, int(opts.RateLimit/100))
		}
		s.limiter = rate.NewLimiter(rate.Limit(opts.RateLimit), burst)
	}
	if opts.SigV4 != nil {
		s.sigv4 = newSigV4Verifier(*opts.SigV4)
	}
	if opts.TLS {
		s.srv = httptest.NewUnstartedServer(s)
		s.srv.EnableHTTP2 = true
		// A client that gives up a dial mid-handshake (net/http does when an
		// idle connection frees up first) is normal, not worth a log line.
		s.srv.Config.ErrorLog = log.New(dropHandshakeErrors{os.Stderr}, "", log.LstdFlags)
		s.srv.StartTLS()
	} else {
		s.srv = httptest.NewServer(s)
	}
	return s
}

// dropHandshakeErrors passes on every log line but TLS handshake errors.
type dropHandshakeErrors struct{ w io.Writer }

func (d dropHandshakeErrors) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		return len(p), nil
	}
	return d.w.Write(p)
}

// CACertPEM is the PEM of the self-signed certificate a client must trust
// when Options.TLS is on (nil otherwise).
func (s *Server) CACertPEM() []byte {
	if !s.opts.TLS {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// RootCAs is a certificate pool holding CACertPEM, for tls.Config.RootCAs.
func (s *Server) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	if s.opts.TLS {
		pool.AddCert(s.srv.Certificate())
	}
	return pool
}

// TLSConfig is a client TLS configuration that trusts the server, verifying
// its certificate as any HTTPS client does.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.RootCAs(), MinVersion: tls.VersionTLS12}
}

// URL is the endpoint to give the SDK's BaseEndpoint: http://127.0.0.1:port/stage
// (https:// with Options.TLS).
func (s *Server) URL() string { return s.srv.URL + "/" + s.opts.Stage }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Connect registers live connection ids.
func (s *Server) Connect(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.live[id] = time.Now().UTC()
		delete(s.dead, id)
	}
}

// Kill marks ids as gone: later calls for them answer 410.
func (s *Server) Kill(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.live, id)
		s.dead[id] = struct{}{}
	}
}

// Messages returns the payloads delivered to id (KeepMessages must be on).
func (s *Server) Messages(id string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.messages[id]...)
}

// Deleted reports whether DELETE was called for id.
func (s *Server) Deleted(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.deleted[id]
	return ok
}

// Counts returns the counters.
func (s *Server) Counts() Counts {
	return Counts{
		Posts: s.posts.Load(), Delivered: s.delivered.Load(), Gone: s.gone.Load(),
		Throttled: s.throttled.Load(), TooLarge: s.tooLarge.Load(), ServerErrors: s.serverErrors.Load(),
		Deletes: s.deletes.Load(), Gets: s.gets.Load(), MaxInFlight: s.maxInFlight.Load(),
		Refused: s.refused.Load(), Accepted: s.acceptedSoFar(),
	}
}

// countAccepted adds a call the rate limit let through at t to its window.
func (s *Server) countAccepted(t time.Time) {
	now := t.UnixNano()
	first := s.firstCall.Load()
	if first == 0 {
		s.firstCall.CompareAndSwap(0, now) // the first call sets it; a concurrent one reads the winner's
		first = s.firstCall.Load()
	}
	if i := (now - first) / int64(AcceptedWindow); i >= 0 && i < int64(len(s.accepted)) {
		s.accepted[i].Add(1)
	}
}

// acceptedSoFar is Counts.Accepted: the windows up to the last non-empty one.
func (s *Server) acceptedSoFar() []int64 {
	n := 0
	for i := range s.accepted {
		if s.accepted[i].Load() != 0 {
			n = i + 1
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = s.accepted[i].Load()
	}
	return out
}

// WriteError writes an error the way API Gateway does: status, the
// x-amzn-ErrorType header and a JSON body with a message.
func WriteError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", errorType)
	w.Header().Set("x-amzn-RequestId", newRequestID())
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"message": message})
	_, _ = w.Write(body)
}

var reqSeq atomic.Int64

func newRequestID() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", reqSeq.Add(1))
}

// ConnectionID extracts and unescapes the id from /{stage}/@connections/{id},
// given the escaped path (r.URL.EscapedPath()).
// It reports false when the path is not a management API path of stage.
func ConnectionID(stage, path string) (string, bool) {
	prefix := "/" + stage + "/@connections/"
	if !strings.HasPrefix(path, prefix) {
		return "", false
	}
	escaped := path[len(prefix):]
	if strings.Contains(escaped, "/") { // an escaped slash (%2F) is part of the id
		return "", false
	}
	id, err := url.PathUnescape(escaped)
	if err != nil || id == "" {
		return "", false
	}
	return id, true
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == CountsPath {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Counts())
		return
	}
	if s.sigv4 != nil && !s.verified(w, r) {
		return
	}
	// API Gateway decides on throttling when a call arrives; the answer, like
	// every answer, travels back after the round trip.
	arrived := time.Now()
	limited := s.limiter != nil && !s.limiter.AllowN(arrived, 1)
	if !limited {
		s.countAccepted(arrived)
	}
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency - time.Since(arrived))
	}
	if limited {
		if r.Method == http.MethodPost {
			s.posts.Add(1)
		}
		s.throttled.Add(1)
		WriteError(w, http.StatusTooManyRequests, sender.ErrorTypeLimitExceeded, "Rate exceeded")
		return
	}
	id, ok := ConnectionID(s.opts.Stage, r.URL.EscapedPath())
	if !ok {
		WriteError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if s.inject(w, r.Method, id) {
		return
	}
	switch r.Method {
	case http.MethodPost:
		s.post(w, r, id)
	case http.MethodGet:
		s.gets.Add(1)
		s.get(w, id)
	case http.MethodDelete:
		s.deletes.Add(1)
		s.delete(w, id)
	default:
		WriteError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
}

// verified checks the call's signature over its body (read here and handed
// on) and answers 403 when it fails.
func (s *Server) verified(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.opts.PayloadLimit)+1))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "BadRequestException", "could not read body")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > s.opts.PayloadLimit {
		return true // answered 413 by post, as the body is not all here to verify
	}
	status, errorType, message := s.sigv4.verify(r, body)
	if status == 0 {
		return true
	}
	if r.Method == http.MethodPost {
		s.posts.Add(1)
	}
	s.refused.Add(1)
	WriteError(w, status, errorType, message)
	return false
}

// inject answers the status Options.Inject picks, if any.
func (s *Server) inject(w http.ResponseWriter, method, id string) bool {
	if s.opts.Inject == nil {
		return false
	}
	s.mu.Lock()
	s.callsByID[id]++
	call := s.callsByID[id]
	s.mu.Unlock()
	status := s.opts.Inject(method, id, call)
	if status == 0 {
		return false
	}
	if method == http.MethodPost {
		s.posts.Add(1)
	}
	switch status {
	case http.StatusGone:
		s.gone.Add(1)
	case http.StatusTooManyRequests:
		s.throttled.Add(1)
	case http.StatusRequestEntityTooLarge:
		s.tooLarge.Add(1)
	default:
		if status >= 500 {
			s.serverErrors.Add(1)
		}
	}
	et, ok := errorTypes[status]
	if !ok {
		et = "InternalServerErrorException"
	}
	WriteError(w, status, et, http.StatusText(status))
	return true
}

// throttle answers 500 to every FailEvery-th call. (429s are decided on arrival in ServeHTTP.)
func (s *Server) throttle(w http.ResponseWriter) bool {
	if s.opts.FailEvery > 0 && s.calls.Add(1)%int64(s.opts.FailEvery) == 0 {
		s.serverErrors.Add(1)
		WriteError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
		return true
	}
	return false
}

// isLive reports whether id is a live connection, registering it when AutoRegister is on.
func (s *Server) isLive(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dead := s.dead[id]; dead {
		return time.Time{}, false
	}
	at, ok := s.live[id]
	if !ok && s.opts.AutoRegister {
		if s.deadByShare(id) {
			return time.Time{}, false
		}
		return time.Now().UTC(), true
	}
	return at, ok
}

func (s *Server) deadByShare(id string) bool { return DeadByShare(id, s.opts.DeadShare) }

// DeadByShare reports whether Options.DeadShare = share makes id a dead
// connection: an FNV-1a hash of the id picks that share of all ids.
func DeadByShare(id string, share float64) bool {
	if share <= 0 {
		return false
	}
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return float64(h%1_000_000) < share*1_000_000
}

// IsDead reports whether id would answer 410 (a Kill, or DeadShare with AutoRegister).
func (s *Server) IsDead(id string) bool {
	_, ok := s.isLive(id)
	return !ok
}

func (s *Server) post(w http.ResponseWriter, r *http.Request, id string) {
	s.posts.Add(1)
	if s.throttle(w) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.opts.PayloadLimit)+1))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "BadRequestException", "could not read body")
		return
	}
	if len(body) > s.opts.PayloadLimit {
		s.tooLarge.Add(1)
		WriteError(w, http.StatusRequestEntityTooLarge, sender.ErrorTypePayloadTooLarge, "Request entity too large")
		return
	}
	if _, ok := s.isLive(id); !ok {
		s.gone.Add(1)
		WriteError(w, http.StatusGone, sender.ErrorTypeGone, "")
		return
	}
	if s.opts.KeepMessages {
		s.mu.Lock()
		s.messages[id] = append(s.messages[id], body)
		s.mu.Unlock()
	}
	s.delivered.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) get(w http.ResponseWriter, id string) {
	if s.throttle(w) {
		return
	}
	at, ok := s.isLive(id)
	if !ok {
		WriteError(w, http.StatusGone, sender.ErrorTypeGone, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"connectedAt":  at.Format(time.RFC3339Nano),
		"identity":     map[string]string{"sourceIp": "127.0.0.1", "userAgent": "mgmtapitest"},
		"lastActiveAt": at.Format(time.RFC3339Nano),
	})
}

func (s *Server) delete(w http.ResponseWriter, id string) {
	if s.throttle(w) {
		return
	}
	if _, ok := s.isLive(id); !ok {
		WriteError(w, http.StatusGone, sender.ErrorTypeGone, "")
		return
	}
	s.Kill(id)
	s.mu.Lock()
	s.deleted[id] = struct{}{}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
