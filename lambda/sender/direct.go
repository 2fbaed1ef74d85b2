package sender

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// directConns sends the lean path's posts over HTTP/1.1 keep-alive
// connections it owns, one request at a time per connection, in the calling
// goroutine: the request head prepared by leanPoster.appendHead and the body
// are written as they are, and the answer is read by readAnswer, over the TLS
// configuration and dialer of the caller's *http.Transport. Connections open
// in slow start (maxDialing). net/http's Transport hands every request to a
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

	dials     int              // dials in progress (guarded by mu, as opened and dialEnded)
	opened    int              // connections opened so far
	dialEnded chan struct{}    // closed (and replaced) when a dial ends
	handoff   chan *directConn // a connection handed from put to a waiting get
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
	d := &directConns{timeout: client.Timeout, idleTTL: directIdleTTL, maxIdle: max(maxIdle, 16),
		dialEnded: make(chan struct{}), handoff: make(chan *directConn)}
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

// maxDialing is how many connections the direct path opens at once before
// any is open; each connection opened adds one more (like TCP's slow start:
// 16, then about twice as many each round). A cold fan-out's first posts
// would otherwise start up to its concurrency's worth of TLS handshakes
// together; on a function with one vCPU or less they share the CPU, so none
// finishes (and no post goes out) until nearly all have. This way the first
// connections are ready at once and carry posts while the next ones open, a
// post that waits for a dial takes a connection coming back from another
// post if that is sooner, and a warm sender, which has opened its
// connections before, dials as many as it needs at once.
const maxDialing = 16

// get returns an idle connection (reused true) or dials a new one; when
// dialing is at its limit it waits for a dial to end or for a connection to
// come back, whichever is first.
func (d *directConns) get(ctx context.Context) (*directConn, bool, error) {
	for {
		if c := d.takeIdle(); c != nil {
			return c, true, nil
		}
		d.mu.Lock()
		if d.dials < maxDialing+d.opened {
			d.dials++
			d.mu.Unlock()
			c, err := d.open(ctx)
			d.mu.Lock()
			d.dials--
			if err == nil {
				d.opened++
			}
			close(d.dialEnded)
			d.dialEnded = make(chan struct{})
			d.mu.Unlock()
			return c, false, err
		}
		ended := d.dialEnded
		d.mu.Unlock()
		select {
		case c := <-d.handoff:
			return c, true, nil
		case <-ended:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// takeIdle pops the most recently used idle connection, closing those idle
// for longer than idleTTL; nil when there is none.
func (d *directConns) takeIdle() *directConn {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.idle) > 0 {
		c := d.idle[len(d.idle)-1]
		d.idle = d.idle[:len(d.idle)-1]
		if now.Sub(c.lastUsed) < d.idleTTL {
			return c
		}
		_ = c.nc.Close()
	}
	return nil
}

// open dials a new connection (and its TLS handshake).
func (d *directConns) open(ctx context.Context) (*directConn, error) {
	nc, err := d.dial(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	if d.tlsConfig != nil {
		tc := tls.Client(nc, d.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &directConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), bw: bufio.NewWriterSize(nc, 4096)}, nil
}

// put hands c to a post waiting for a connection, or keeps it for the next.
func (d *directConns) put(c *directConn) {
	c.lastUsed = time.Now()
	select {
	case d.handoff <- c:
		return
	default:
	}
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

// do sends the request head and body and returns the answer's status, the
// answer itself unless it is a 2xx (whose headers nobody reads), and its body
// (at most limit bytes kept). A reused connection that fails before any byte
// of an answer is retried once on a fresh one, as net/http does for a
// connection the server closed while idle.
func (d *directConns) do(ctx context.Context, head, body []byte, limit int64) (int, *http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := d.get(ctx)
		if err != nil {
			return 0, nil, nil, err
		}
		status, resp, answer, err := d.roundTrip(ctx, c, head, body, limit)
		if err == nil {
			return status, resp, answer, nil
		}
		_ = c.nc.Close()
		if reused && attempt == 0 && errors.Is(err, errConnReset) && ctx.Err() == nil {
			continue
		}
		return 0, nil, nil, err
	}
}

func (d *directConns) roundTrip(ctx context.Context, c *directConn, head, body []byte, limit int64) (int, *http.Response, []byte, error) {
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if deadline.Before(c.deadline) || deadline.Sub(c.deadline) > deadlineSlack {
		if err := c.nc.SetDeadline(deadline); err != nil {
			return 0, nil, nil, err
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
		return 0, nil, nil, ctxErr(ctx, fmt.Errorf("%w: write: %w", errConnReset, err))
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, nil, nil, ctxErr(ctx, fmt.Errorf("%w: read: %w", errConnReset, err))
	}
	a, err := readAnswer(c.br, limit)
	if err != nil {
		return 0, nil, nil, ctxErr(ctx, err)
	}
	// A connection whose deadline the cancellation moved (stop comes too
	// late) is not kept: its deadline is no longer the one recorded.
	if a.close || !stop() {
		_ = c.nc.Close()
	} else {
		d.put(c)
	}
	return a.status, a.resp, a.body, nil
}

// answer is one HTTP/1.1 answer read by readAnswer.
type answer struct {
	status int
	resp   *http.Response // with its headers; nil for a 2xx
	body   []byte         // at most the limit given
	close  bool           // the connection cannot carry another request
}

// maxAnswerBody is how much of an answer body beyond the kept part is read
// and dropped to keep the connection; a longer one fails the post.
const maxAnswerBody = 1 << 20

// readAnswer reads one answer to a POST from br, as http.ReadResponse and
// the body's reader would, without their allocations for a 2xx: the status
// line, the headers (only Content-Length, Transfer-Encoding and Connection
// are looked at unless the status is an error, whose headers are all kept
// for the error's code and request id), and the body, by Content-Length,
// chunked, or up to the end of the connection. Answers to a POST always
// carry a body unless they are 1xx, 204 or 304.
func readAnswer(br *bufio.Reader, limit int64) (answer, error) {
	for {
		a, err := readOneAnswer(br, limit)
		if err != nil || a.status >= 200 {
			return a, err
		}
		// An informational answer (100 Continue, 103 Early Hints) comes
		// before the real one, as net/http's Transport skips it; 101 would
		// switch protocols, which a POST never asks for.
		if a.status == http.StatusSwitchingProtocols {
			return a, errors.New("read answer: unexpected 101 Switching Protocols")
		}
	}
}

func readOneAnswer(br *bufio.Reader, limit int64) (answer, error) {
	var a answer
	line, err := readLine(br)
	if err != nil {
		return a, fmt.Errorf("read answer: %w", err)
	}
	// "HTTP/1.x SSS reason"
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return a, fmt.Errorf("read answer: malformed status line %q", line)
	}
	for _, ch := range line[9:12] {
		if ch < '0' || ch > '9' {
			return a, fmt.Errorf("read answer: malformed status code %q", line)
		}
		a.status = a.status*10 + int(ch-'0')
	}
	if a.status < 100 {
		return a, fmt.Errorf("read answer: malformed status code %q", line)
	}
	http10 := line[7] == '0'
	a.close = http10
	var (
		header   http.Header
		reason   string
		length   int64 = -1
		chunked  bool
		keepHdrs = a.status < 200 || a.status >= 300
	)
	if keepHdrs {
		header = http.Header{}
		if len(line) > 13 {
			reason = string(line[13:])
		}
	}
	for {
		line, err := readLine(br)
		if err != nil {
			return a, fmt.Errorf("read answer headers: %w", err)
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			return a, fmt.Errorf("read answer: malformed header line %q", line)
		}
		name := bytes.TrimRight(line[:colon], " \t")
		value := bytes.Trim(line[colon+1:], " \t")
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return a, fmt.Errorf("read answer: bad Content-Length %q", value)
			}
			length = n
		case asciiEqualFold(name, "transfer-encoding"):
			if !asciiEqualFold(value, "chunked") {
				return a, fmt.Errorf("read answer: unsupported Transfer-Encoding %q", value)
			}
			chunked = true
		case asciiEqualFold(name, "connection"):
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				if asciiEqualFold(tok, "close") {
					a.close = true
				} else if http10 && asciiEqualFold(tok, "keep-alive") {
					a.close = false
				}
			}
		}
		if keepHdrs {
			header.Add(textproto.CanonicalMIMEHeaderKey(string(name)), string(value))
		}
	}
	var r io.Reader
	switch {
	case a.status < 200 || a.status == http.StatusNoContent || a.status == http.StatusNotModified:
		// No body.
	case chunked:
		r = httputil.NewChunkedReader(br)
	case length >= 0:
		r = io.LimitReader(br, length)
	default:
		// Delimited by the end of the connection.
		r = br
		a.close = true
	}
	if r != nil {
		if a.body, err = readBody(r, limit, length); err != nil {
			return a, fmt.Errorf("read answer body: %w", err)
		}
		if chunked {
			// The chunked reader stops at the last chunk; the (empty)
			// trailer section ends with a blank line.
			for {
				line, err := readLine(br)
				if err != nil {
					return a, fmt.Errorf("read answer trailer: %w", err)
				}
				if len(line) == 0 {
					break
				}
			}
		}
	}
	if keepHdrs {
		proto, minor := "HTTP/1.1", 1
		if http10 {
			proto, minor = "HTTP/1.0", 0
		}
		a.resp = &http.Response{
			Status: strconv.Itoa(a.status) + " " + reason, StatusCode: a.status,
			Proto: proto, ProtoMajor: 1, ProtoMinor: minor,
			Header: header, ContentLength: length, Close: a.close,
			Body: io.NopCloser(bytes.NewReader(a.body)),
		}
	}
	return a, nil
}

// readBody reads at most limit bytes of r and drops the rest (up to
// maxAnswerBody), so the connection can carry the next request. A body that
// ends before its Content-Length (length, -1 when there is none) is an
// error, as in net/http, and the connection is not kept.
func readBody(r io.Reader, limit, length int64) ([]byte, error) {
	if length == 0 {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxAnswerBody+1))
	if err != nil {
		return nil, err
	}
	if n > maxAnswerBody {
		return nil, errors.New("answer body too long")
	}
	if length > 0 && int64(len(body))+n < length {
		return nil, io.ErrUnexpectedEOF
	}
	return body, nil
}

// readLine returns the next line of br without its CRLF (or LF); it is
// valid until the next read. Lines longer than br's buffer are refused.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errors.New("answer line too long")
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring
// ASCII case only, as net/http's internal ascii.EqualFold compares header
// names: bytes.EqualFold would also fold Unicode (the Kelvin sign matches
// "k"), which HTTP header names must not.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// ctxErr prefers the context's error (as http.Client does) when it ended the request.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}
