package sender

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// directConns sends the lean path's posts over HTTP/1.1 keep-alive
// connections it owns, one request at a time per connection, in the calling
// goroutine: the request is written with net/http's own Request.Write and the
// answer read with http.ReadResponse, over the TLS configuration and dialer of
// the caller's *http.Transport. net/http's Transport hands every request to a
// connection's write goroutine and every answer back from its read goroutine;
// at 10,000 posts a second those hand-offs (and HTTP/2's per-request goroutine
// and header compression) cost more CPU than the post itself
// (docs/benchmarks.md, "CPU per post").
//
// It is used only when the transport is a plain *http.Transport with no proxy
// for the endpoint; anything else goes through http.Client.Do.
type directConns struct {
	addr      string      // host:port to dial
	tlsConfig *tls.Config // nil for http://
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout   time.Duration // per request, when ctx has no earlier deadline
	idleTTL   time.Duration // idle connections older than this are closed, not reused
	maxIdle   int

	mu   sync.Mutex
	idle []*directConn
}

// directConn is one keep-alive connection.
type directConn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	deadline time.Time // the read and write deadline last set
}

// deadlineSlack is how much earlier than asked a connection's deadline may
// be left: a connection busy with one post after another resets its
// deadline (two runtime timers) about once a second instead of every post,
// so a post's timeout is between Client.Timeout less a second and
// Client.Timeout. A context deadline is always kept exactly.
const deadlineSlack = time.Second

// Idle connections are kept this long: API Gateway closes idle keep-alive
// connections on its side after a while, and a connection it closed is
// retried once on a fresh one anyway.
const directIdleTTL = 50 * time.Second

// newDirectConns returns the direct path for base over client's transport, or
// nil when client cannot be bypassed (not an *http.Transport, a proxy for
// base, a custom dialer for TLS).
func newDirectConns(base *url.URL, client *http.Client, maxIdle int) *directConns {
	tr, ok := client.Transport.(*http.Transport)
	if !ok || tr.DialTLSContext != nil || tr.DialTLS != nil || tr.Dial != nil { //nolint:staticcheck // Dial and DialTLS are honoured by net/http, so their presence rules the bypass out
		return nil
	}
	if tr.Proxy != nil {
		if u, err := tr.Proxy(&http.Request{URL: base}); err != nil || u != nil {
			return nil
		}
	}
	host, port := base.Hostname(), base.Port()
	d := &directConns{timeout: client.Timeout, idleTTL: directIdleTTL, maxIdle: max(maxIdle, 16)}
	if d.timeout <= 0 {
		d.timeout = 30 * time.Second
	}
	switch base.Scheme {
	case "https":
		if port == "" {
			port = "443"
		}
		cfg := &tls.Config{}
		if tr.TLSClientConfig != nil {
			cfg = tr.TLSClientConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		cfg.NextProtos = []string{"http/1.1"}
		d.tlsConfig = cfg
	case "http":
		if port == "" {
			port = "80"
		}
	default:
		return nil
	}
	d.addr = net.JoinHostPort(host, port)
	d.dial = tr.DialContext
	if d.dial == nil {
		d.dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return d
}

// get returns an idle connection (reused true) or dials a new one.
func (d *directConns) get(ctx context.Context) (*directConn, bool, error) {
	now := time.Now()
	d.mu.Lock()
	for len(d.idle) > 0 {
		c := d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
		if now.Sub(c.lastUsed) < d.idleTTL {
			d.mu.Unlock()
			return c, true, nil
		}
		_ = c.nc.Close()
	}
	d.mu.Unlock()
	nc, err := d.dial(ctx, "tcp", d.addr)
	if err != nil {
		return nil, false, err
	}
	if d.tlsConfig != nil {
		tc := tls.Client(nc, d.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	return &directConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096)}, false, nil
}

// put keeps c for the next request.
func (d *directConns) put(c *directConn) {
	c.lastUsed = time.Now()
	d.mu.Lock()
	if len(d.idle) < d.maxIdle {
		d.idle = append(d.idle, c)
		c = nil
	}
	d.mu.Unlock()
	if c != nil {
		_ = c.nc.Close()
	}
}

// errConnReset marks a failure on a reused connection before any byte of an
// answer arrived: the server closed it while it was idle.
var errConnReset = errors.New("keep-alive connection closed by the server")

// postRequest is what http.ReadResponse is told the answer is for.
var postRequest = &http.Request{Method: http.MethodPost}

// do sends the request head and body and returns the answer with its body
// read (at most limit bytes kept). A reused connection that fails before any
// byte of an answer is retried once on a fresh one, as net/http does for a
// connection the server closed while idle.
func (d *directConns) do(ctx context.Context, head, body []byte, limit int64) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := d.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		resp, answer, err := d.roundTrip(ctx, c, head, body, limit)
		if err == nil {
			return resp, answer, nil
		}
		_ = c.nc.Close()
		if reused && attempt == 0 && errors.Is(err, errConnReset) && ctx.Err() == nil {
			continue
		}
		return nil, nil, err
	}
}

func (d *directConns) roundTrip(ctx context.Context, c *directConn, head, body []byte, limit int64) (*http.Response, []byte, error) {
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if deadline.Before(c.deadline) || deadline.Sub(c.deadline) > deadlineSlack {
		if err := c.nc.SetDeadline(deadline); err != nil {
			return nil, nil, err
		}
		c.deadline = deadline
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		// A cancelled context interrupts the read or write in progress.
		stop = context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	_, _ = c.bw.Write(head)
	_, _ = c.bw.Write(body)
	if err := c.bw.Flush(); err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("%w: write: %w", errConnReset, err))
	}
	if _, err := c.br.Peek(1); err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("%w: read: %w", errConnReset, err))
	}
	resp, err := http.ReadResponse(c.br, postRequest)
	if err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("read answer: %w", err))
	}
	var answer []byte
	if resp.ContentLength != 0 {
		answer, err = io.ReadAll(io.LimitReader(resp.Body, limit))
		if err == nil {
			// Whatever is left beyond limit is read and dropped, so the
			// connection can carry the next request.
			var n int64
			n, err = io.Copy(io.Discard, resp.Body)
			if n > 1<<20 {
				err = errors.New("answer body too long")
			}
		}
	}
	_ = resp.Body.Close()
	if err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("read answer body: %w", err))
	}
	// A connection whose deadline the cancellation moved (stop comes too
	// late) is not kept: its deadline is no longer the one recorded.
	if resp.Close || !stop() {
		_ = c.nc.Close()
	} else {
		d.put(c)
	}
	return resp, answer, nil
}

// ctxErr prefers the context's error (as http.Client does) when it ended the request.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}
