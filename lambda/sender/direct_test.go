package sender_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// countingServer answers 200 (or what answer says) and counts the TCP
// connections and the requests it was given.
func countingServer(t *testing.T, tlsOn bool, answer http.HandlerFunc) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var conns, requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if answer != nil {
			answer(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns, &requests
}

// clientFor is the fan-out HTTP client trusting srv's certificate.
func clientFor(srv *httptest.Server) *http.Client {
	c := sender.NewHTTPClient(16)
	if srv.TLS != nil {
		c.Transport.(*http.Transport).TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	}
	return c
}

// Sequential posts share one keep-alive connection, over HTTPS and HTTP.
func TestLeanPostKeepsItsConnectionAlive(t *testing.T) {
	for _, tlsOn := range []bool{true, false} {
		srv, conns, requests := countingServer(t, tlsOn, nil)
		api := newPoster(t, srv.URL+"/dev", mgmtapitest.TestCredentials, clientFor(srv), nil)
		for range 20 {
			require.NoError(t, api.Post(context.Background(), "c1", []byte("x")))
		}
		assert.Equal(t, int64(20), requests.Load())
		assert.Equal(t, int64(1), conns.Load(), "tls %v: one connection for 20 sequential posts", tlsOn)
	}
}

// A keep-alive connection the server closed while idle (API Gateway does so
// after a while) costs neither an error nor a second delivery: the post goes
// out once, on a fresh connection.
func TestLeanPostSurvivesIdleConnectionsClosedByTheServer(t *testing.T) {
	srv, conns, requests := countingServer(t, true, nil)
	api := newPoster(t, srv.URL+"/dev", mgmtapitest.TestCredentials, clientFor(srv), nil)
	require.NoError(t, api.Post(context.Background(), "c1", []byte("x")))
	srv.CloseClientConnections()
	require.NoError(t, api.Post(context.Background(), "c1", []byte("y")))
	assert.Equal(t, int64(2), requests.Load(), "each post delivered once")
	assert.Equal(t, int64(2), conns.Load())
}

// An answer with Connection: close is honoured: the next post dials anew.
func TestLeanPostHonoursConnectionClose(t *testing.T) {
	srv, conns, requests := countingServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusOK)
	})
	api := newPoster(t, srv.URL+"/dev", mgmtapitest.TestCredentials, clientFor(srv), nil)
	for range 3 {
		require.NoError(t, api.Post(context.Background(), "c1", []byte("x")))
	}
	assert.Equal(t, int64(3), requests.Load())
	assert.Equal(t, int64(3), conns.Load())
}

// Cancelling the context ends a post that is waiting for its answer, with an
// error that is context.Canceled and not retryable, as on net/http's path.
func TestLeanPostCancelEndsAWaitingPost(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv, _, _ := countingServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	})
	defer close(release)
	for _, kind := range posterKinds {
		t.Run(kind.name, func(t *testing.T) {
			api := newPoster(t, srv.URL+"/dev", mgmtapitest.TestCredentials, clientFor(srv), kind.opts)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- api.Post(ctx, "c1", []byte("x")) }()
			<-arrived
			cancel()
			err := <-done
			require.Error(t, err)
			assert.ErrorIs(t, err, context.Canceled)
			assert.False(t, sender.Retryable(err))
		})
	}
}

// A proxy configured for the endpoint is used: the lean path then goes
// through net/http's Transport, which knows how to talk to proxies.
func TestLeanPostUsesTheTransportsProxy(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String())
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer proxy.Close()
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	c := sender.NewHTTPClient(16)
	c.Transport.(*http.Transport).Proxy = http.ProxyURL(proxyURL)
	api := newPoster(t, "http://api.example.test/dev", mgmtapitest.TestCredentials, c, nil)
	require.NoError(t, api.Post(context.Background(), "c1", []byte("x")))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"POST http://api.example.test/dev/@connections/c1"}, seen)
}

// Many posts at once from a sender open at most its concurrency in
// connections, and every one arrives once.
func TestLeanPostConcurrentFanOut(t *testing.T) {
	srv := verifyingServer(t, mgmtapitest.Options{AutoRegister: true, Latency: 2 * time.Millisecond})
	api := newPoster(t, srv.URL(), mgmtapitest.TestCredentials, trustingClient(srv, nil), nil)
	s := sender.NewSender(api, sender.Options{Concurrency: 32})
	rep := s.Send(context.Background(), ids(2000), []byte("x"))
	assert.Equal(t, 2000, rep.Delivered)
	assert.Equal(t, int64(2000), srv.Counts().Delivered)
	assert.Zero(t, srv.Counts().Refused)
	assert.LessOrEqual(t, srv.Counts().MaxInFlight, int64(32))
}

// TestLeanPostOpensConnectionsAFewAtATime: a cold sender with 256 posts at
// once opens 16 connections, then one more per connection opened, instead
// of 256 handshakes that share the CPU and all finish late; posts that find
// no connection take one coming back. A warm sender dials what it needs at
// once.
func TestLeanPostOpensConnectionsAFewAtATime(t *testing.T) {
	srv, _, _ := countingServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	var (
		mu               sync.Mutex
		inFlight, opened int
		maxOverAllowance int // most dials in flight beyond 16 + opened
		maxColdInFlight  int // most dials in flight before any connection was open
	)
	client := sender.NewHTTPClient(256) // keeps 512 idle connections
	tr := client.Transport.(*http.Transport)
	base := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		inFlight++
		if opened == 0 {
			maxColdInFlight = max(maxColdInFlight, inFlight)
		}
		maxOverAllowance = max(maxOverAllowance, inFlight-(16+opened))
		mu.Unlock()
		time.Sleep(10 * time.Millisecond) // a handshake's worth, and more
		c, err := base(ctx, network, addr)
		mu.Lock()
		inFlight--
		if err == nil {
			opened++
		}
		mu.Unlock()
		return c, err
	}
	api := newPoster(t, srv.URL+"/dev", mgmtapitest.TestCredentials, client, nil)
	s := sender.NewSender(api, sender.Options{Concurrency: 256, StartRate: -1})
	rep := s.Send(context.Background(), ids(2000), []byte("x"))
	require.Equal(t, 2000, rep.Delivered)
	mu.Lock()
	assert.LessOrEqual(t, maxOverAllowance, 0, "at most 16 dials, plus one per connection opened, at once")
	assert.LessOrEqual(t, maxColdInFlight, 16, "the first round dials at most 16 at once")
	assert.Greater(t, maxColdInFlight, 1, "dials overlap")
	assert.LessOrEqual(t, opened, 256, "no more connections than posts in flight")
	coldOpened := opened
	mu.Unlock()

	// Warm: the connections are there; a second fan-out opens few or none.
	rep = s.Send(context.Background(), ids(2000), []byte("y"))
	require.Equal(t, 2000, rep.Delivered)
	mu.Lock()
	defer mu.Unlock()
	assert.LessOrEqual(t, opened-coldOpened, 16, "a warm sender reuses its connections")
}

// rawServer answers every request with answer, written byte for byte, and
// counts the requests it read. It closes the connection after an answer
// whose body runs to the end of the connection (HTTP/1.0) or that says
// Connection: close, and after two answers.
func rawServer(t *testing.T, answer string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	var requests atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for range 2 {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					requests.Add(1)
					if _, err := c.Write([]byte(answer)); err != nil {
						return
					}
					if strings.HasPrefix(answer, "HTTP/1.0") || strings.Contains(answer, "Connection: close") {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/dev", &requests
}

// postOutcome is how a post ended, as the sender sees it.
type postOutcome struct {
	ok, gone, throttled, forbidden, tooLarge, retryable bool
	code                                                string
}

func outcomeOf(err error, withCode bool) postOutcome {
	o := postOutcome{ok: err == nil, gone: errors.Is(err, sender.ErrGone), throttled: errors.Is(err, sender.ErrThrottled),
		forbidden: errors.Is(err, sender.ErrForbidden), tooLarge: errors.Is(err, sender.ErrTooLarge)}
	if err != nil {
		o.retryable = sender.Retryable(err)
		if withCode {
			o.code = errorCode(err)
		}
	}
	return o
}

// TestLeanPostReadsAnswersLikeNetHTTP: the direct path reads the answers a
// server may send as net/http does (the SDK and the lean path through the
// Transport read them with net/http): bodies by Content-Length, chunked or
// up to the end of the connection, header names in any case, informational
// answers before the real one, HTTP/1.0, bare LF line ends; the same
// sentinel, retryability and error code, on a first post and on a second
// one over the same connection where the answer allows it.
func TestLeanPostReadsAnswersLikeNetHTTP(t *testing.T) {
	const throttled = `{"message":"Rate exceeded"}`
	answers := map[string]string{
		"200 lower-case headers":     "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-amzn-requestid: r1\r\n\r\n",
		"200 with a body":            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
		"204":                        "HTTP/1.1 204 No Content\r\n\r\n",
		"chunked 429":                "HTTP/1.1 429 Too Many Requests\r\nX-Amzn-ErrorType: LimitExceededException\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(throttled), throttled),
		"chunked 410 in two chunks":  "HTTP/1.1 410 Gone\r\nTRANSFER-ENCODING: chunked\r\n\r\n5\r\n{\"mes\r\n9\r\nsage\":\"\"}\r\n0\r\n\r\n",
		"100 Continue then 200":      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"103 then 410":               "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 410 Gone\r\nx-amzn-ErrorType: GoneException\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.0 403 to the end":    "HTTP/1.0 403 Forbidden\r\nx-amzn-ErrorType: ForbiddenException\r\n\r\n{\"message\":\"Forbidden\"}",
		"bare LF lines":              "HTTP/1.1 413 Payload Too Large\nx-amzn-ErrorType: PayloadTooLargeException\nContent-Length: 2\n\n{}",
		"503 with Connection: close": "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"500 with a long body":       "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000),
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			withCode := !strings.Contains(name, "long body") // the SDK reads no code from a body that is not JSON
			var got []postOutcome
			for _, kind := range posterKinds {
				url, requests := rawServer(t, answer)
				api := newPoster(t, url, mgmtapitest.TestCredentials, nil, kind.opts)
				first := outcomeOf(api.Post(context.Background(), "c1", []byte("x")), withCode)
				assert.Equal(t, first, outcomeOf(api.Post(context.Background(), "c1", []byte("x")), withCode), "%s: the second post ends alike", kind.name)
				assert.EqualValues(t, 2, requests.Load(), kind.name)
				got = append(got, first)
			}
			for i := 1; i < len(got); i++ {
				assert.Equal(t, got[0], got[i], posterKinds[i].name)
			}
		})
	}
}

// TestLeanPostRefusesMalformedAnswers: an answer that is not HTTP fails the
// post as a send error (retryable, as the SDK's), never as a delivery.
func TestLeanPostRefusesMalformedAnswers(t *testing.T) {
	for name, answer := range map[string]string{
		"not http":                     "SSH-2.0-OpenSSH\r\n\r\n",
		"bad code":                     "HTTP/1.1 2x0 OK\r\n\r\n",
		"bad length":                   "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"two lengths":                  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"101":                          "HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"header without name":          "HTTP/1.1 200 OK\r\n: x\r\n\r\n",
		"body shorter than its length": "HTTP/1.0 410 Gone\r\nContent-Length: 10\r\n\r\n{}",
	} {
		t.Run(name, func(t *testing.T) {
			url, _ := rawServer(t, answer)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := newPoster(t, url, mgmtapitest.TestCredentials, nil, nil).Post(ctx, "c1", []byte("x"))
			require.Error(t, err)
			o := outcomeOf(err, false)
			assert.Equal(t, postOutcome{retryable: true}, o, "%v", err)
		})
	}
}
