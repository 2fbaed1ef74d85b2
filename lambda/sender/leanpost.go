package sender

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// signingService is the SigV4 service name of the management API.
const signingService = "execute-api"

// leanPoster posts to @connections with the SDK's own SigV4 signer and a
// plain net/http request, skipping the SDK client's per-call middleware stack
// (endpoint resolution, auth scheme resolution, retry and interceptor steps,
// schema serialisation): that stack is most of the client CPU of a post, and
// a fan-out makes the same call hundreds of thousands of times.
//
// It builds the request as the SDK does (POST {base path}/@connections/{id},
// the id escaped with smithy's httpbinding.EscapePath, the path joined with
// smithyhttp.JoinPath, Content-Type application/octet-stream), signs it with
// v4.Signer (which caches the derived signing key per day, region and
// service) using credentials from an aws.CredentialsCache, hashes a payload
// once for all its recipients, and returns errors shaped like the SDK's
// (smithy.OperationError around an awshttp.ResponseError around a
// smithy.GenericAPIError whose code comes from x-amzn-ErrorType), so Classify
// and Retryable treat both alike.
type leanPoster struct {
	base   *url.URL
	client *http.Client
	direct *directConns // nil: through client.Do
	signer *v4.Signer
	creds  aws.CredentialsProvider // nil: unsigned, as the SDK with no credentials
	region string
	last   atomic.Pointer[payloadHash]
}

// payloadHash is the SHA-256 of the payload last posted, kept with a copy of
// it: a fan-out posts the same bytes to every recipient.
type payloadHash struct {
	data []byte
	hex  string
}

func newLeanPoster(cfg aws.Config, endpoint string, client *http.Client, maxIdle int, noDirect bool) (*leanPoster, error) {
	base, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("management api: endpoint %q: %w", endpoint, err)
	}
	p := &leanPoster{base: base, client: client, signer: v4.NewSigner(), region: cfg.Region}
	if !noDirect {
		p.direct = newDirectConns(base, client, maxIdle)
	}
	// No credentials, or aws.AnonymousCredentials: the SDK sends the call
	// unsigned, and so does this path.
	if cfg.Credentials != nil && !aws.IsCredentialsProvider(cfg.Credentials, aws.AnonymousCredentials{}) {
		p.creds = cfg.Credentials
		if !aws.IsCredentialsProvider(cfg.Credentials, (*aws.CredentialsCache)(nil)) {
			p.creds = aws.NewCredentialsCache(cfg.Credentials)
		}
	}
	return p, nil
}

// hash returns the hex SHA-256 of data, computed once per distinct payload.
func (p *leanPoster) hash(data []byte) string {
	if last := p.last.Load(); last != nil && bytes.Equal(last.data, data) {
		return last.hex
	}
	sum := sha256.Sum256(data)
	h := &payloadHash{data: bytes.Clone(data), hex: hex.EncodeToString(sum[:])}
	p.last.Store(h)
	return h.hex
}

// request builds the signed POST for id.
func (p *leanPoster) request(ctx context.Context, id string, data []byte) (*http.Request, error) {
	u := *p.base
	u.Path = smithyhttp.JoinPath(p.base.Path, "/@connections/"+id)
	u.RawPath = smithyhttp.JoinPath(p.base.EscapedPath(), "/@connections/"+httpbinding.EscapePath(id, true))
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           &u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/octet-stream"}},
		Body:          io.NopCloser(bytes.NewReader(data)),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		ContentLength: int64(len(data)),
		Host:          u.Host,
	}
	if len(data) == 0 {
		req.Body = http.NoBody
	}
	req = req.WithContext(ctx)
	if p.creds == nil {
		return req, nil
	}
	creds, err := p.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	if err := p.signer.SignHTTP(ctx, creds, req, p.hash(data), signingService, p.region, time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	return req, nil
}

// post sends one message; errors are wrapped as the SDK wraps them.
func (p *leanPoster) post(ctx context.Context, id string, data []byte) error {
	opErr := func(err error) error {
		return &smithy.OperationError{ServiceID: "ApiGatewayManagementApi", OperationName: "PostToConnection", Err: err}
	}
	req, err := p.request(ctx, id, data)
	if err != nil {
		return opErr(err)
	}
	var (
		resp *http.Response
		body []byte
	)
	if p.direct != nil {
		resp, body, err = p.direct.do(ctx, req, 64*1024)
	} else {
		resp, body, err = p.viaClient(req)
	}
	if err != nil {
		return opErr(&smithyhttp.RequestSendError{Err: err})
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return opErr(&awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: apiError(resp.Header, body)},
		RequestID:     resp.Header.Get("X-Amzn-Requestid"),
	})
}

// viaClient sends req through the http.Client and reads the answer's body
// (drained, so the connection is reused; at most 64 KB kept).
func (p *leanPoster) viaClient(req *http.Request) (*http.Response, []byte, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, body, nil
}

// apiError reads an error answer as restjson1 does: the code from the
// x-amzn-ErrorType header, else the body's __type or code; anything from a
// ':' on and up to a '#' is dropped; the message from the body's message.
func apiError(h http.Header, body []byte) error {
	var info struct {
		Type       string `json:"__type"`
		Code       any    `json:"code"`
		Message    string `json:"message"`
		MessageCap string `json:"Message"`
	}
	_ = json.Unmarshal(body, &info) // a body that is not JSON leaves the header and the status
	code := h.Get("X-Amzn-Errortype")
	if code == "" {
		code = info.Type
	}
	if s, ok := info.Code.(string); code == "" && ok {
		code = s
	}
	if code == "" {
		code = "UnknownError"
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.IndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	msg := info.Message
	if msg == "" {
		msg = info.MessageCap
	}
	if msg == "" {
		msg = "UnknownError"
	}
	return &smithy.GenericAPIError{Code: code, Message: msg}
}
