package localgw_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// httpBase turns the ws URL of startGateway into the server's http base URL.
func httpBase(wsURL string) string {
	u := "http" + strings.TrimPrefix(wsURL, "ws")
	return u[:strings.LastIndex(u, "/")]
}

// dialNonReading connects a client that never reads, with a small receive
// buffer so that the kernel absorbs little of what the gateway sends.
func dialNonReading(ctx context.Context, t *testing.T, url string) *websocket.Conn {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// peakSampler records the largest values of a pair of gauges until stopped.
func peakSampler(sample func() (int, int)) (stop func() (int, int)) {
	var done atomic.Bool
	var peakA, peakB int
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for !done.Load() {
			a, b := sample()
			peakA, peakB = max(peakA, a), max(peakB, b)
			runtime.Gosched()
		}
	}()
	return func() (int, int) {
		done.Store(true)
		<-finished
		return peakA, peakB
	}
}

// TestSlowClientPostsAnswerThrottledThenGone: posts to a client that does
// not read fill its outgoing buffer (bounded); past it they answer 429
// LimitExceededException, as AWS documents for a full client-side buffer,
// and the connection stays open; once a write has waited SendTimeout the
// client is closed with 1008 and posts answer 410 GoneException.
func TestSlowClientPostsAnswerThrottledThenGone(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	gw, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle), SendTimeout: 2 * time.Second})
	dialNonReading(ctx, t, url)
	localgwtest.WaitFor(ctx, t, "connection", func() bool { return len(gw.ConnectionIDs()) == 1 })
	id := gw.ConnectionIDs()[0]
	post := func() (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, httpBase(url)+"/dev/@connections/"+id, bytes.NewReader(bytes.Repeat([]byte("x"), 128*1024)))
		if !assert.NoError(t, err) {
			return 0, ""
		}
		resp, err := http.DefaultClient.Do(req)
		if !assert.NoError(t, err) {
			return 0, ""
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType")
	}

	stop := peakSampler(func() (int, int) { return gw.QueuedBytes(id) })
	const posts = 200
	statuses := make([]int, posts)
	errorTypes := make([]string, posts)
	var wg sync.WaitGroup
	for i := range posts {
		wg.Go(func() { statuses[i], errorTypes[i] = post() })
	}
	wg.Wait()
	peakOut, _ := stop()

	throttled := 0
	for i, status := range statuses {
		switch status {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			throttled++
			assert.Equal(t, "LimitExceededException", errorTypes[i])
		case http.StatusGone:
			assert.Equal(t, "GoneException", errorTypes[i], "only once a write waited SendTimeout")
		default:
			t.Errorf("post %d answered %d %s, want 200, 429 LimitExceededException or 410 GoneException", i, status, errorTypes[i])
		}
	}
	assert.Positive(t, throttled, "posts past the full buffer are throttled")
	assert.LessOrEqual(t, peakOut, localgw.DefaultMaxQueuedBytes, "bytes queued for the client")

	// Posting on fills the kernel's socket buffers too; then a write waits
	// SendTimeout and the client is dropped: 1008, then 410.
	status, errorType := 0, ""
	for range 1000 {
		if status, errorType = post(); status == http.StatusGone {
			break
		}
		require.Contains(t, []int{http.StatusOK, http.StatusTooManyRequests}, status)
		if status == http.StatusTooManyRequests {
			time.Sleep(20 * time.Millisecond)
		}
	}
	assert.Equal(t, http.StatusGone, status)
	assert.Equal(t, "GoneException", errorType)
	localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))
	disc := rec.byRoute("$disconnect")[0].RequestContext
	assert.Equal(t, int64(websocket.StatusPolicyViolation), disc.DisconnectStatusCode)
}

// TestInboundMessagesAreBounded: while the route's function is busy, the
// gateway stops reading a client's messages once MaxQueuedBytes of them wait,
// and dispatches all of them in order once the function is free.
func TestInboundMessagesAreBounded(t *testing.T) {
	ctx := testCtx(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	fn := func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.RequestContext.RouteKey == "$default" {
			<-release
			mu.Lock()
			got = append(got, ev.Body[:4])
			mu.Unlock()
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	const limit, size = 64 * 1024, 16 * 1024 // messages of one frame, under the 32 KB frame limit
	gw, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(fn), MaxQueuedBytes: limit})
	c := localgwtest.MustDial(ctx, t, url, "")
	localgwtest.WaitFor(ctx, t, "connection", func() bool { return len(gw.ConnectionIDs()) == 1 })
	id := gw.ConnectionIDs()[0]

	stop := peakSampler(func() (int, int) { return gw.QueuedBytes(id) })
	const messages = 40 // ten times the limit
	var want []string
	written := make(chan error, 1)
	go func() {
		for i := range messages {
			head := []byte{byte('a' + i/26), byte('a' + i%26), '-', '-'}
			if err := c.Conn.Write(ctx, websocket.MessageText, append(head, bytes.Repeat([]byte("m"), size-4)...)); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	for i := range messages {
		want = append(want, string([]byte{byte('a' + i/26), byte('a' + i%26), '-', '-'}))
	}
	localgwtest.WaitFor(ctx, t, "the inbound budget used up", func() bool {
		_, in := gw.QueuedBytes(id)
		return in > limit-size
	})
	close(release)
	require.NoError(t, <-written)
	localgwtest.WaitFor(ctx, t, "every message dispatched", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == messages })
	_, peakIn := stop()
	assert.LessOrEqual(t, peakIn, limit, "client bytes waiting for their route")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, got, "dispatched in order")
}

func TestIdleKeepAliveConnectionsAreClosed(t *testing.T) {
	ctx := testCtx(t)
	srv, err := localgw.Start(ctx, localgw.ServerConfig{HTTPIdleTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer srv.Close(ctx)
	nc, err := net.Dial("tcp", srv.Addr())
	require.NoError(t, err)
	defer nc.Close()
	// A hang detector, not a timing assertion: without an idle timeout the
	// server keeps the connection forever.
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = io.WriteString(nc, "GET /dev/@connections/x HTTP/1.1\r\nHost: "+srv.Addr()+"\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	assert.False(t, resp.Close, "the connection is kept alive after the response")
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the server closes the idle keep-alive connection")
}

func TestInvalidUTF8TextClosesWith1007(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle)})
	c := localgwtest.MustDial(ctx, t, url, "")
	require.NoError(t, c.Conn.Write(ctx, websocket.MessageText, []byte("ok \xff\xfe")))
	assert.Equal(t, websocket.StatusInvalidFramePayloadData, localgwtest.CloseCode(c.Closed(ctx)))
	localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))
	assert.Equal(t, int64(1007), rec.byRoute("$disconnect")[0].RequestContext.DisconnectStatusCode)
	assert.Empty(t, rec.byRoute("$default"), "an invalid text message is not dispatched")
}

// rawFrame is one frame as the client receives it.
type rawFrame struct {
	fin     bool
	opcode  byte
	payload int
}

// readRawFrame reads one unmasked server frame.
func readRawFrame(t *testing.T, r *bufio.Reader) rawFrame {
	t.Helper()
	var h [2]byte
	_, err := io.ReadFull(r, h[:])
	require.NoError(t, err)
	require.Zero(t, h[1]&0x80, "server frames are not masked")
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(r, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, err = io.ReadFull(r, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	require.NoError(t, err)
	_, err = io.CopyN(io.Discard, r, int64(n))
	require.NoError(t, err)
	return rawFrame{fin: h[0]&0x80 != 0, opcode: h[0] & 0x0f, payload: int(n)}
}

// TestOutgoingMessagesUseOneFrameWhenTheyFit reads the frames the gateway
// writes: a message up to the frame size is one final frame; a larger one is
// split into frames of the frame size.
func TestOutgoingMessagesUseOneFrameWhenTheyFit(t *testing.T) {
	ctx := testCtx(t)
	gw, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler((&recorder{}).handle)})
	base := httpBase(url)
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer nc.Close()
	_, err = io.WriteString(nc, "GET /dev HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	localgwtest.WaitFor(ctx, t, "connection", func() bool { return len(gw.ConnectionIDs()) == 1 })
	id := gw.ConnectionIDs()[0]

	const text, binaryOp, continuation = 1, 2, 0
	for _, tc := range []struct {
		name   string
		body   []byte
		frames []rawFrame
	}{
		{"small text", []byte("hello"), []rawFrame{{true, text, 5}}},
		{"text of exactly 32 KB", bytes.Repeat([]byte("a"), 32*1024), []rawFrame{{true, text, 32 * 1024}}},
		{"binary", []byte{0xff, 0x00, 0xfe}, []rawFrame{{true, binaryOp, 3}}},
		// As API Gateway frames it: 32 KB frames, the last one final with
		// the rest (no empty final continuation frame).
		{"text over 32 KB", bytes.Repeat([]byte("b"), 40000), []rawFrame{
			{false, text, 32 * 1024}, {true, continuation, 40000 - 32*1024},
		}},
		{"text of exactly 64 KB", bytes.Repeat([]byte("c"), 64*1024), []rawFrame{
			{false, text, 32 * 1024}, {true, continuation, 32 * 1024},
		}},
		{"binary of 128 KB", bytes.Repeat([]byte{0xff}, 128*1024), []rawFrame{
			{false, binaryOp, 32 * 1024}, {false, continuation, 32 * 1024}, {false, continuation, 32 * 1024}, {true, continuation, 32 * 1024},
		}},
		{"small text after a fragmented message", []byte("again"), []rawFrame{{true, text, 5}}},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/dev/@connections/"+id, bytes.NewReader(tc.body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.name)
		var frames []rawFrame
		for len(frames) == 0 || !frames[len(frames)-1].fin {
			frames = append(frames, readRawFrame(t, br))
		}
		assert.Equal(t, tc.frames, frames, tc.name)
	}
}

// TestPingsDoNotResetTheIdleTimer: on API Gateway only messages count as
// activity (its quota is an idle timeout of messages; WebSocket ping frames
// do not keep a connection open), so a client that only pings is closed
// with 1001 when the idle timeout passes.
func TestPingsDoNotResetTheIdleTimer(t *testing.T) {
	ctx := testCtx(t)
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler((&recorder{}).handle), IdleTimeout: time.Second})
	c := localgwtest.MustDial(ctx, t, url, "")
	// A client that pings 20 times per idle period until it is closed.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	pings := 0
	for c.CloseErr() == nil {
		if err := c.Conn.Ping(ctx); err == nil {
			pings++
		} else {
			require.NoError(t, ctx.Err(), "ping failed, connection still open: %v", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the pinging client was never closed: %v", ctx.Err())
		}
	}
	assert.Greater(t, pings, 1, "the gateway answers pings with pongs")
	assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(c.Closed(ctx)))
}
