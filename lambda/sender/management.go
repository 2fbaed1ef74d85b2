// Package sender delivers messages to WebSocket connections through the API
// Gateway management API (@connections): one connection at a time with
// [ManagementAPI], or to many with the throttle-aware fan-out [Sender].
package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// MaxPayload is API Gateway's limit for one message (128 KB).
const MaxPayload = 128 * 1024

// Error types of the management API, as sent in the x-amzn-ErrorType header.
const (
	ErrorTypeGone            = "GoneException"
	ErrorTypeForbidden       = "ForbiddenException"
	ErrorTypePayloadTooLarge = "PayloadTooLargeException"
	ErrorTypeLimitExceeded   = "LimitExceededException"
)

// Sentinel errors for the outcomes a caller acts on. Match with errors.Is.
var (
	// ErrGone means the connection no longer exists (HTTP 410).
	ErrGone = errors.New("connection gone")
	// ErrTooLarge means the payload exceeds 128 KB (HTTP 413 or the local guard).
	ErrTooLarge = errors.New("payload too large")
	// ErrForbidden means the caller may not manage the connection (HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrThrottled means API Gateway answered 429 LimitExceededException.
	ErrThrottled = errors.New("throttled")
)

// ConnectionInfo is what GET @connections/{id} returns.
type ConnectionInfo struct {
	// ConnectedAt is when the connection was established.
	ConnectedAt time.Time
	// LastActiveAt is when the connection last sent or received a message.
	LastActiveAt time.Time
	// SourceIP is the client's address.
	SourceIP string
	// UserAgent is the client's User-Agent.
	UserAgent string
}

// Poster is the management API as the rest of the runtime sees it. Errors are
// classified: errors.Is(err, ErrGone), ErrTooLarge, ErrForbidden, ErrThrottled;
// anything else is a transport or server failure, retryable when
// [Retryable] says so.
type Poster interface {
	// Post sends data to one connection.
	Post(ctx context.Context, id string, data []byte) error
	// Delete closes one connection.
	Delete(ctx context.Context, id string) error
	// Get describes one connection.
	Get(ctx context.Context, id string) (ConnectionInfo, error)
}

// ManagementAPI is the Poster over the management API. Post goes through a
// lean path (leanpost.go): SigV4 computed byte for byte as the SDK's
// v4.Signer computes it (sigv4.go; cached signing key and credentials, one
// payload hash per payload), sent over its own HTTP/1.1 keep-alive
// connections (direct.go); Delete and Get go through the aws-sdk-go-v2
// client. Both sign and classify alike.
type ManagementAPI struct {
	client *apigatewaymanagementapi.Client
	lean   *leanPoster // nil with WithSDKPost
}

// ManagementOption adjusts NewManagementAPI.
type ManagementOption func(*managementOptions)

type managementOptions struct {
	sdkPost   bool
	viaClient bool
}

// WithClientTransport makes the lean Post path send through the
// http.Client (net/http's Transport, HTTP/2 when offered) instead of its own
// HTTP/1.1 keep-alive connections: for comparison in tests and benchmarks.
func WithClientTransport() ManagementOption {
	return func(o *managementOptions) { o.viaClient = true }
}

// WithSDKPost makes Post use the aws-sdk-go-v2 client's PostToConnection
// instead of the lean path: for comparison in tests and benchmarks.
func WithSDKPost() ManagementOption {
	return func(o *managementOptions) { o.sdkPost = true }
}

var _ Poster = (*ManagementAPI)(nil)

// NewHTTPClient returns the keep-alive HTTP client that fan-out should reuse:
// enough idle connections per host for the sender's concurrency, TLS session
// resumption for the connections it opens later, and HTTP/2 when the server
// offers it.
func NewHTTPClient(concurrency int) *http.Client {
	if concurrency < 16 {
		concurrency = 16
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		TLSClientConfig: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(concurrency * 2),
		},
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// NewManagementAPI returns a Poster for the stage at endpoint
// (https://{api-id}.execute-api.{region}.amazonaws.com/{stage}, a custom
// domain, or the local gateway's http://127.0.0.1:8080/dev). The SDK's own
// retries are off: the fan-out sender retries with its own backoff and
// throttle awareness. httpClient may be nil for a default keep-alive client.
func NewManagementAPI(cfg aws.Config, endpoint string, httpClient *http.Client, opts ...ManagementOption) (*ManagementAPI, error) {
	if endpoint == "" {
		return nil, errors.New("management api: empty endpoint")
	}
	if !strings.HasPrefix(endpoint, "https://") && !strings.HasPrefix(endpoint, "http://") {
		return nil, fmt.Errorf("management api: endpoint %q must start with https:// or http://", endpoint)
	}
	if httpClient == nil {
		httpClient = NewHTTPClient(64)
	}
	var mo managementOptions
	for _, o := range opts {
		o(&mo)
	}
	endpoint = strings.TrimSuffix(endpoint, "/")
	client := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = httpClient
		o.Retryer = aws.NopRetryer{}
	})
	m := &ManagementAPI{client: client}
	if !mo.sdkPost {
		lean, err := newLeanPoster(cfg, endpoint, httpClient, idleConns(httpClient), mo.viaClient)
		if err != nil {
			return nil, err
		}
		m.lean = lean
	}
	return m, nil
}

// idleConns is how many idle connections the lean path keeps: as many as
// the client's transport would.
func idleConns(c *http.Client) int {
	if tr, ok := c.Transport.(*http.Transport); ok && tr.MaxIdleConnsPerHost > 0 {
		return tr.MaxIdleConnsPerHost
	}
	return 2 * DefaultConcurrency
}

// Post implements Poster.
func (m *ManagementAPI) Post(ctx context.Context, id string, data []byte) error {
	if len(data) > MaxPayload {
		return fmt.Errorf("post to connection %s: %d bytes: %w", id, len(data), ErrTooLarge)
	}
	if m.lean != nil {
		if err := m.lean.post(ctx, id, data); err != nil {
			return fmt.Errorf("post to connection %s: %w", id, Classify(err))
		}
		return nil
	}
	_, err := m.client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(id),
		Data:         data,
	})
	if err != nil {
		return fmt.Errorf("post to connection %s: %w", id, Classify(err))
	}
	return nil
}

// Delete implements Poster.
func (m *ManagementAPI) Delete(ctx context.Context, id string) error {
	_, err := m.client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("delete connection %s: %w", id, Classify(err))
	}
	return nil
}

// Get implements Poster.
func (m *ManagementAPI) Get(ctx context.Context, id string) (ConnectionInfo, error) {
	out, err := m.client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		return ConnectionInfo{}, fmt.Errorf("get connection %s: %w", id, Classify(err))
	}
	info := ConnectionInfo{
		ConnectedAt:  aws.ToTime(out.ConnectedAt),
		LastActiveAt: aws.ToTime(out.LastActiveAt),
	}
	if out.Identity != nil {
		info.SourceIP = aws.ToString(out.Identity.SourceIp)
		info.UserAgent = aws.ToString(out.Identity.UserAgent)
	}
	return info, nil
}

// classified wraps an SDK error with the sentinel it maps to, keeping both
// reachable through errors.Is/As.
type classified struct {
	sentinel error
	err      error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.sentinel, c.err} }

// Classify maps an SDK error to ErrGone, ErrTooLarge, ErrForbidden or
// ErrThrottled by its error code, keeping the original error in the chain.
func Classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case ErrorTypeGone:
			return &classified{ErrGone, err}
		case ErrorTypePayloadTooLarge:
			return &classified{ErrTooLarge, err}
		case ErrorTypeForbidden:
			return &classified{ErrForbidden, err}
		case ErrorTypeLimitExceeded, "ThrottlingException", "TooManyRequestsException":
			return &classified{ErrThrottled, err}
		}
	}
	switch httpStatus(err) {
	case http.StatusGone:
		return &classified{ErrGone, err}
	case http.StatusRequestEntityTooLarge:
		return &classified{ErrTooLarge, err}
	case http.StatusForbidden:
		return &classified{ErrForbidden, err}
	case http.StatusTooManyRequests:
		return &classified{ErrThrottled, err}
	}
	return err
}

func httpStatus(err error) int {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	return 0
}

// Retryable reports whether a failed post is worth another attempt: throttling,
// 5xx answers and transport errors are; gone, too large and forbidden are not.
func Retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrThrottled):
		return true
	case errors.Is(err, ErrGone), errors.Is(err, ErrTooLarge), errors.Is(err, ErrForbidden):
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	if s := httpStatus(err); s != 0 {
		return s >= 500
	}
	return true // transport failure: connection reset, timeout of one attempt
}
