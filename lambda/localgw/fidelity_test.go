package localgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// writeFrames sends one message as frames of the given sizes (coder/websocket
// writes one frame per Write call on a message writer).
func writeFrames(ctx context.Context, t *testing.T, c *websocket.Conn, sizes ...int) []byte {
	t.Helper()
	w, err := c.Writer(ctx, websocket.MessageText)
	require.NoError(t, err)
	var all []byte
	for i, n := range sizes {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, n)
		all = append(all, chunk...)
		if _, err := w.Write(chunk); err != nil {
			return all // the gateway may close before the message ends
		}
	}
	_ = w.Close()
	return all
}

func TestClientFrameAndMessageLimits(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name      string
		frameSize int
		maxMsg    int
		frames    []int
		wantClose bool
	}{
		{"7-bit length frame at the limit", 100, 1000, []int{100}, false},
		{"7-bit length frame over the limit", 100, 1000, []int{101}, true},
		{"16-bit length frame at the limit", 1024, 4096, []int{1024}, false},
		{"16-bit length frame over the limit", 1024, 4096, []int{1025}, true},
		{"64-bit length frame at the limit", 70000, 200000, []int{70000}, false},
		{"64-bit length frame over the limit", 70000, 200000, []int{70001}, true},
		{"fragmented message under the message limit", 1024, 4096, []int{1024, 1024, 1024, 1024}, false},
		{"fragmented message over the message limit", 1024, 4096, []int{1024, 1024, 1024, 1024, 1}, true},
		{"second fragment over the frame limit", 1024, 4096, []int{1000, 1025}, true},
		{"default 32 KB frame limit", 0, 0, []int{32*1024 + 1}, true},
		{"default 128 KB message in 32 KB frames", 0, 0, []int{32 * 1024, 32 * 1024, 32 * 1024, 32 * 1024}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				if ev.RequestContext.RouteKey == "$default" {
					return events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body}, nil
				}
				return events.APIGatewayProxyResponse{StatusCode: 200}, nil
			}}
			_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle), FrameSize: tc.frameSize, MaxMessageSize: tc.maxMsg})
			c := localgwtest.MustDial(ctx, t, url, "")
			sent := writeFrames(ctx, t, c.Conn, tc.frames...)
			if !tc.wantClose {
				got := c.Expect(ctx, "echo", func(localgwtest.Frame) bool { return true })
				assert.True(t, bytes.Equal(sent, got.Raw), "the message arrives whole")
				return
			}
			var ce websocket.CloseError
			require.ErrorAs(t, c.Closed(ctx), &ce)
			assert.Equal(t, websocket.StatusMessageTooBig, ce.Code)
			assert.Equal(t, "Message too big", ce.Reason, "the client's close frame carries API Gateway's reason")
			localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))
			disc := rec.byRoute("$disconnect")[0].RequestContext
			assert.Equal(t, int64(1009), disc.DisconnectStatusCode)
			assert.Equal(t, "Message too big", *disc.DisconnectReason)
			assert.Empty(t, rec.byRoute("$default"), "an oversized message is never dispatched")
		})
	}
}

func TestFramesBeforeAnOversizedFrameAreDispatched(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle), FrameSize: 64})
	c := localgwtest.MustDial(ctx, t, url, "")
	require.NoError(t, c.Conn.Write(ctx, websocket.MessageText, []byte("first")))
	require.NoError(t, c.Conn.Write(ctx, websocket.MessageText, []byte("second")))
	_ = c.Conn.Write(ctx, websocket.MessageText, make([]byte, 65))
	assert.Equal(t, websocket.StatusMessageTooBig, localgwtest.CloseCode(c.Closed(ctx)))
	localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))
	var bodies []string
	for _, ev := range rec.byRoute("$default") {
		bodies = append(bodies, ev.Body)
	}
	assert.Equal(t, []string{"first", "second"}, bodies)
}

func TestBinaryFramesCloseWith1003(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle)})
	c := localgwtest.MustDial(ctx, t, url, "")
	require.NoError(t, c.Conn.Write(ctx, websocket.MessageBinary, []byte{0xff, 0x00}))
	assert.Equal(t, websocket.StatusUnsupportedData, localgwtest.CloseCode(c.Closed(ctx)))
	localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))
	assert.Equal(t, int64(1003), rec.byRoute("$disconnect")[0].RequestContext.DisconnectStatusCode)
	assert.Empty(t, rec.byRoute("$default"), "a binary frame is not dispatched")
}

func TestConnectHeadersUseAWSNames(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle)})
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"chat"}, HTTPHeader: http.Header{"User-Agent": {"t"}}})
	require.NoError(t, err)
	defer c.CloseNow()
	localgwtest.WaitFor(ctx, t, "$connect", rec.count("$connect"))
	ev := rec.byRoute("$connect")[0]
	var names []string
	for k := range ev.MultiValueHeaders {
		names = append(names, k)
	}
	sort.Strings(names)
	// The names of aws-lambda-go's apigw-websocket-request.json, plus the
	// client's Accept-Encoding, User-Agent and Sec-WebSocket-Protocol.
	assert.Equal(t, []string{"Accept-Encoding", "Host", "Sec-WebSocket-Key", "Sec-WebSocket-Protocol", "Sec-WebSocket-Version", "User-Agent",
		"X-Amzn-Trace-Id", "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"}, names)
	assert.Equal(t, "chat", ev.Headers["Sec-WebSocket-Protocol"])
	assert.Len(t, ev.Headers, len(names))
}

func TestIdentitySourcesRefuseBeforeTheAuthorizer(t *testing.T) {
	ctx := testCtx(t)
	var calls atomic.Int32
	allow := func(_ context.Context, req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
		calls.Add(1)
		return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "u", PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17", Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{req.MethodArn}}},
		}}, nil
	}
	rec := &recorder{}
	_, url := startGateway(t, localgw.Config{
		WebSocket: localgw.Handler(rec.handle), Authorizer: localgw.Handler(allow),
		IdentitySources: []string{"route.request.querystring.token", "route.request.header.X-Tenant"},
	})
	for _, tc := range []struct {
		name, query, tenant string
		status              int
	}{
		{"nothing", "", "", http.StatusUnauthorized},
		{"empty token", "?token=", "acme", http.StatusUnauthorized},
		{"token only", "?token=abc", "", http.StatusUnauthorized},
		{"tenant only", "?other=1", "acme", http.StatusUnauthorized},
		{"both", "?token=abc", "acme", http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			h := http.Header{}
			if tc.tenant != "" {
				h.Set("x-tenant", tc.tenant) // header names are case-insensitive
			}
			c, resp, err := websocket.Dial(ctx, url+tc.query, &websocket.DialOptions{HTTPHeader: h})
			require.NotNil(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status != http.StatusSwitchingProtocols {
				require.Error(t, err)
				assert.Equal(t, before, calls.Load(), "the authorizer does not run")
				return
			}
			require.NoError(t, err)
			c.CloseNow()
			assert.Equal(t, before+1, calls.Load())
		})
	}
}

func TestNewValidatesIdentitySources(t *testing.T) {
	fn := localgw.Handler((&recorder{}).handle)
	for _, src := range []string{"route.request.querystring.", "stageVariables.x", "context.x", "token", "route.request.header"} {
		_, err := localgw.New(localgw.Config{WebSocket: fn, IdentitySources: []string{src}})
		assert.Error(t, err, src)
	}
}

func TestServerDefaultsIdentitySourceWithAnAuthorizer(t *testing.T) {
	ctx := testCtx(t)
	var calls atomic.Int32
	allow := func(_ context.Context, req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
		calls.Add(1)
		return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "u", PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17", Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{req.MethodArn}}},
		}}, nil
	}
	srv := startServer(t, localgw.ServerConfig{Authorizer: localgw.Handler(allow)})
	_, resp, err := localgwtest.Dial(ctx, t, srv.URL(), "")
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Zero(t, calls.Load(), "no ?token: 401 before the authorizer runs")
	c := localgwtest.MustDial(ctx, t, srv.URL(), "anything")
	c.Whoami(ctx)
	assert.Equal(t, int32(1), calls.Load())

	// Without an authorizer nothing is required.
	open := startServer(t, localgw.ServerConfig{})
	localgwtest.MustDial(ctx, t, open.URL(), "").Whoami(ctx)
}

// hangUpRecorder wraps a handler and closes hungUp once the request's
// context ends, i.e. once the server noticed the caller hanging up.
func hangUpRecorder(h http.Handler) (http.Handler, <-chan struct{}) {
	hungUp := make(chan struct{})
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			<-r.Context().Done()
			once.Do(func() { close(hungUp) })
		}()
		h.ServeHTTP(w, r)
	}), hungUp
}

func TestInvocationsOutliveTheirCaller(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, base string)
	}{
		{"lambda invoke api", func(ctx context.Context, base string) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/2015-03-31/functions/slow/invocations", strings.NewReader(`{}`))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}},
		{"$connect", func(ctx context.Context, base string) {
			if c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/dev", nil); err == nil {
				c.CloseNow()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			ctxErr := make(chan error, 1)
			slow := func(fctx context.Context, payload []byte) ([]byte, error) {
				var ev events.APIGatewayWebsocketProxyRequest
				_ = json.Unmarshal(payload, &ev)
				if ev.RequestContext.RouteKey == "$disconnect" {
					return []byte(`{"statusCode":200}`), nil
				}
				close(started)
				<-release
				ctxErr <- fctx.Err()
				return []byte(`{"statusCode":200}`), nil
			}
			gw, err := localgw.New(localgw.Config{WebSocket: slow, Functions: map[string]localgw.Function{"slow": slow}})
			require.NoError(t, err)
			h, hungUp := hangUpRecorder(gw)
			srv := httptest.NewServer(h)
			defer srv.Close()
			callCtx, hangUp := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); tc.call(callCtx, srv.URL) }()
			<-started
			hangUp()
			<-done
			<-hungUp
			close(release)
			assert.NoError(t, <-ctxErr, "the invocation's context is not cancelled by the caller hanging up")
		})
	}
}

func TestBootstrapInvocationOutlivesItsCaller(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{MaxProcesses: 1})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Invoke(ctx, []byte(`{"mode":"sleep","value":"300ms"}`))
		errc <- err
	}()
	wctx := testCtx(t)
	localgwtest.WaitFor(wctx, t, "invocation handed to a process", func() bool {
		ps := b.Processes()
		return len(ps) == 1 && ps[0].Invocations == 1
	})
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	r, err := invokeEcho(t, b, "echo", "after")
	require.NoError(t, err)
	assert.Equal(t, "after", r.Value)
	ps := b.Processes()
	require.Len(t, ps, 1, "the process of the abandoned invocation was kept, not killed")
	assert.Equal(t, r.PID, ps[0].PID)
	assert.Equal(t, 2, ps[0].Invocations)
	assert.False(t, ps[0].Exited)
}

func TestShutdownWaitsForAHandshakeInProgress(t *testing.T) {
	ctx := testCtx(t)
	started, release := make(chan struct{}), make(chan struct{})
	rec := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.RequestContext.RouteKey == "$connect" {
			close(started)
			<-release
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}}
	gw, err := localgw.New(localgw.Config{WebSocket: localgw.Handler(rec.handle)})
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/dev"
	dialed := make(chan *localgwtest.Client, 1)
	go func() {
		c, _, err := localgwtest.Dial(ctx, t, url, "")
		if err == nil {
			dialed <- c
		}
		close(dialed)
	}()
	<-started
	shutdown := make(chan error, 1)
	go func() { shutdown <- gw.Shutdown(ctx) }()
	localgwtest.WaitFor(ctx, t, "new handshakes refused", func() bool {
		_, resp, err := websocket.Dial(ctx, url, nil)
		return err != nil && resp != nil && resp.StatusCode == http.StatusServiceUnavailable
	})
	close(release)
	require.NoError(t, <-shutdown)
	require.Len(t, rec.byRoute("$disconnect"), 1, "Shutdown returned after the $disconnect of the handshake it interrupted")
	assert.Equal(t, int64(1001), rec.byRoute("$disconnect")[0].RequestContext.DisconnectStatusCode)
	if c, ok := <-dialed; ok {
		assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(c.Closed(ctx)))
	}
}

// TestMessageEndingInAnEmptyContinuationIsDispatched sends each message the
// way coder/websocket's Writer()+Close() does: a text frame with FIN=0, then
// an empty final continuation frame. For these body sizes the continuation's
// header straddles the 4 KB reads of the gateway's buffered reader, which once
// held it back until the client sent more: no reply came.
func TestMessageEndingInAnEmptyContinuationIsDispatched(t *testing.T) {
	ctx := testCtx(t)
	echo := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body}, nil
	}}
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(echo.handle)})
	for _, size := range []int{4083, 4084, 4085, 4086, 4087, 8179, 8180, 8181, 8182, 8183} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c := localgwtest.MustDial(ctx, t, url, "")
			defer c.Conn.CloseNow()
			sent := writeFrames(ctx, t, c.Conn, size)
			// The client sends nothing more: a stalled gateway never answers.
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			got := c.Expect(wctx, "echo of the whole message", func(localgwtest.Frame) bool { return true })
			assert.True(t, bytes.Equal(sent, got.Raw), "the message arrives whole")
		})
	}
}
