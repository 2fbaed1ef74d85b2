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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// signingService is the SigV4 service name of the management API.
const signingService = "execute-api"

// leanPoster posts to @connections with SigV4 signing and a plain HTTP/1.1
// request, skipping the SDK client's per-call middleware stack (endpoint
// resolution, auth scheme resolution, retry and interceptor steps, schema
// serialisation): that stack is most of the client CPU of a post, and a
// fan-out makes the same call hundreds of thousands of times.
//
// It builds the request as the SDK does (POST {base path}/@connections/{id},
// the id escaped with smithy's httpbinding.EscapePath, the path joined with
// smithyhttp.JoinPath, Content-Type application/octet-stream, the Host
// without the scheme's default port), signs it as v4.Signer signs it
// (postSigner, sigv4.go: the same canonical request, the derived key cached
// per day, region and service) using credentials from an
// aws.CredentialsCache, hashes a payload once for all its recipients, and
// returns errors shaped like the SDK's (smithy.OperationError around an
// awshttp.ResponseError around a smithy.GenericAPIError whose code comes from
// x-amzn-ErrorType), so Classify and Retryable treat both alike.
type leanPoster struct {
	base   *url.URL
	prefix []byte // smithyhttp.JoinPath(base.EscapedPath(), "/@connections/"): a post's path is this and the escaped id
	host   string // the Host header: base.Host without the scheme's default port, as v4.Signer sends it
	client *http.Client
	direct *directConns // nil: through client.Do
	signer *postSigner
	creds  aws.CredentialsProvider // nil: unsigned, as the SDK with no credentials
	last   atomic.Pointer[payloadHash]
	heads  sync.Pool // *[]byte request heads for the direct path
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
	p := &leanPoster{base: base, host: sanitizedHost(base), client: client, signer: newPostSigner(cfg.Region),
		prefix: []byte(smithyhttp.JoinPath(base.EscapedPath(), "/@connections/"))}
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

// sanitizedHost is u.Host without the port when it is the scheme's default,
// as v4.Signer rewrites the Host of the request it signs.
func sanitizedHost(u *url.URL) string {
	port := u.Port()
	if (strings.EqualFold(u.Scheme, "https") && port == "443") || (strings.EqualFold(u.Scheme, "http") && port == "80") {
		return u.Hostname()
	}
	return u.Host
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

// sign returns the signature headers of a post of data to escapedPath (none
// without credentials).
func (p *leanPoster) sign(ctx context.Context, escapedPath string, data []byte) (signed, error) {
	if p.creds == nil {
		return signed{}, nil
	}
	creds, err := p.creds.Retrieve(ctx)
	if err != nil {
		return signed{}, fmt.Errorf("retrieve credentials: %w", err)
	}
	sg, err := p.signer.sign(creds, p.host, escapedPath, len(data), p.hash(data), time.Now())
	if err != nil {
		return signed{}, fmt.Errorf("sign request: %w", err)
	}
	return sg, nil
}

// request builds the signed POST for id as an http.Request, for net/http.
func (p *leanPoster) request(ctx context.Context, id, escapedPath string, data []byte, sg signed) *http.Request {
	u := *p.base
	u.Path = smithyhttp.JoinPath(p.base.Path, "/@connections/"+id)
	u.RawPath = escapedPath
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
		Host:          p.host,
	}
	if len(data) == 0 {
		req.Body = http.NoBody
	}
	if sg.authorization != "" {
		sg.set(req.Header)
	}
	return req.WithContext(ctx)
}

// appendHead appends the HTTP/1.1 request line and headers of a post of
// length bytes to escapedPath: the header set net/http's Request.Write
// writes for the request above (Host, User-Agent, Content-Length, then the
// rest sorted by name).
func (p *leanPoster) appendHead(b []byte, escapedPath string, length int, sg signed) []byte {
	b = append(b, "POST "...)
	b = append(b, escapedPath...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, p.host...)
	b = append(b, "\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(length), 10)
	if sg.authorization != "" {
		b = append(b, "\r\nAuthorization: "...)
		b = append(b, sg.authorization...)
	}
	b = append(b, "\r\nContent-Type: application/octet-stream"...)
	if sg.date != "" {
		b = append(b, "\r\nX-Amz-Date: "...)
		b = append(b, sg.date...)
	}
	if sg.token != "" {
		b = append(b, "\r\nX-Amz-Security-Token: "...)
		b = append(b, sg.token...)
	}
	return append(b, "\r\n\r\n"...)
}

// post sends one message; errors are wrapped as the SDK wraps them.
func (p *leanPoster) post(ctx context.Context, id string, data []byte) error {
	opErr := func(err error) error {
		return &smithy.OperationError{ServiceID: "ApiGatewayManagementApi", OperationName: "PostToConnection", Err: err}
	}
	// smithyhttp.JoinPath(base.EscapedPath(), "/@connections/"+httpbinding.EscapePath(id, true)), as the SDK builds it.
	escapedPath := string(appendEscapePath(p.prefix[:len(p.prefix):len(p.prefix)], id, true))
	sg, err := p.sign(ctx, escapedPath, data)
	if err != nil {
		return opErr(err)
	}
	var (
		status int
		resp   *http.Response // nil for a 2xx on the direct path
		body   []byte
	)
	if p.direct != nil {
		hp, _ := p.heads.Get().(*[]byte)
		if hp == nil {
			hp = new([]byte)
		}
		*hp = p.appendHead((*hp)[:0], escapedPath, len(data), sg)
		status, resp, body, err = p.direct.do(ctx, *hp, data, 64*1024)
		p.heads.Put(hp)
	} else if resp, body, err = p.viaClient(p.request(ctx, id, escapedPath, data, sg)); err == nil {
		status = resp.StatusCode
	}
	if err != nil {
		return opErr(&smithyhttp.RequestSendError{Err: err})
	}
	if status >= 200 && status < 300 {
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
