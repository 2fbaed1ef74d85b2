package localgw

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frame encodes a masked client frame with the given opcode and payload
// length, choosing the 7, 16 or 64-bit length form as RFC 6455 requires.
func frame(opcode byte, n int) []byte {
	h := []byte{0x80 | opcode}
	switch {
	case n <= 125:
		h = append(h, 0x80|byte(n))
	case n <= 0xffff:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	h = append(h, 1, 2, 3, 4) // masking key
	return append(h, bytes.Repeat([]byte{'p'}, n)...)
}

func TestFrameGuard(t *testing.T) {
	ping := frame(0x9, 4)
	closeFrame := frame(0x8, 2)
	for _, tc := range []struct {
		name    string
		max     int64
		stream  [][]byte
		want    []byte // delivered before errFrameTooBig (or EOF)
		after   []byte // delivered after errFrameTooBig
		tooBig  bool
		oneByte bool
	}{
		{name: "7-bit frames under the limit", max: 100, stream: [][]byte{frame(1, 100), ping, frame(2, 3)}},
		{name: "7-bit frame over the limit", max: 100, stream: [][]byte{frame(1, 10), frame(1, 101), closeFrame}, tooBig: true},
		{name: "16-bit frame over the limit", max: 1000, stream: [][]byte{frame(1, 1000), frame(0, 1001), closeFrame}, tooBig: true},
		{name: "64-bit frame over the limit", max: 70000, stream: [][]byte{frame(1, 70000), frame(2, 70001), closeFrame}, tooBig: true},
		{name: "control frames are not limited here", max: 2, stream: [][]byte{ping, closeFrame}},
		{name: "one byte at a time", max: 1000, stream: [][]byte{frame(1, 1000), ping, frame(0, 1001), ping, closeFrame}, tooBig: true, oneByte: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(bytes.Join(tc.stream, nil))
			if tc.oneByte {
				src = iotest.OneByteReader(src)
			}
			g := &frameGuard{src: src, max: tc.max}
			var got bytes.Buffer
			buf := make([]byte, 7)
			var sawTooBig bool
			var before []byte
			for {
				n, err := g.Read(buf)
				got.Write(buf[:n])
				if errors.Is(err, errFrameTooBig) {
					require.False(t, sawTooBig, "errFrameTooBig is returned once")
					sawTooBig = true
					before = bytes.Clone(got.Bytes())
					got.Reset()
					continue
				}
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
			}
			assert.Equal(t, tc.tooBig, sawTooBig)
			if !tc.tooBig {
				assert.True(t, bytes.Equal(bytes.Join(tc.stream, nil), got.Bytes()), "everything delivered")
				return
			}
			// The oversized frame (the first one over max) is dropped whole;
			// what comes before and after it is delivered.
			var wantBefore, wantAfter []byte
			dropped := false
			for _, f := range tc.stream {
				over := !dropped && f[0]&0x0f <= 2 && payloadLength(f) > tc.max
				switch {
				case over:
					dropped = true
				case dropped:
					wantAfter = append(wantAfter, f...)
				default:
					wantBefore = append(wantBefore, f...)
				}
			}
			assert.Equal(t, len(wantBefore), len(before), "frames before the oversized one")
			assert.True(t, bytes.Equal(wantBefore, before), "frames before the oversized one")
			assert.True(t, bytes.Equal(wantAfter, got.Bytes()), "frames after the oversized one (the client's close frame)")
		})
	}
}

// TestPostRacingAnAbruptDisconnectIsGone puts a connection in the state of
// the race: the client reset the TCP connection but the gateway's reader
// has not noticed yet (here: there is no reader). A POST must answer 410.
func TestPostRacingAnAbruptDisconnectIsGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := New(Config{WebSocket: func(context.Context, []byte) ([]byte, error) { return []byte(`{"statusCode":200}`), nil }})
	require.NoError(t, err)

	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err == nil {
			accepted <- ws
		}
	}))
	defer srv.Close()

	// A raw client: handshake by hand, so the socket can be reset.
	nc, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	_, err = io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	ws := <-accepted
	defer ws.CloseNow()

	c := &conn{gw: g, id: newID(), connectedAt: time.Now(), lastActive: time.Now(), ws: ws}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	g.mu.Lock()
	g.conns[c.id] = c
	g.mu.Unlock()

	require.NoError(t, nc.(*net.TCPConn).SetLinger(0))
	require.NoError(t, nc.Close()) // RST

	var statuses []int
	for ctx.Err() == nil {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/dev/@connections/"+c.id, strings.NewReader("hello"))
		g.ServeHTTP(rec, req)
		statuses = append(statuses, rec.Code)
		if rec.Code != http.StatusOK {
			assert.Equal(t, http.StatusGone, rec.Code, "statuses %v", statuses)
			assert.Equal(t, "GoneException", rec.Header().Get("x-amzn-ErrorType"))
			return
		}
	}
	t.Fatalf("POST never failed after the reset: %v", statuses)
}

func TestRuntimeAPISecondResponseIsRefused(t *testing.T) {
	p := &process{pending: map[string]*invocation{}}
	inv := &invocation{id: newUUID(), done: make(chan invokeResult, 1)}
	p.pending[inv.id] = inv
	post := func(kind string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, runtimeAPIPrefix+"invocation/"+inv.id+"/"+kind, strings.NewReader(`{"ok":true}`)))
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s for an answered invocation blocked", kind)
		}
		return rec
	}
	assert.Equal(t, http.StatusAccepted, post("response").Code)
	for _, kind := range []string{"response", "error"} {
		rec := post(kind)
		assert.Equal(t, http.StatusBadRequest, rec.Code, kind)
		assert.Contains(t, rec.Body.String(), "InvalidRequestID", kind)
	}
	assert.Equal(t, `{"ok":true}`, string((<-inv.done).body))
}

func TestBootstrapStartAfterCloseLeavesNoProcess(t *testing.T) {
	b, err := NewBootstrap(BootstrapConfig{Name: "sh", Path: "/bin/sh"})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	_, err = b.start()
	require.Error(t, err)
	assert.Empty(t, b.Processes(), "a process started after Close is stopped, not tracked")
}
