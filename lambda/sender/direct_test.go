package sender_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
