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

// splitReader serves data in chunks whose sizes come from sizes, then err.
// With errWithData the last chunk comes with err, as io.Reader allows.
type splitReader struct {
	data        []byte
	sizes       []byte
	i           int
	err         error
	errWithData bool
	before      func() // called before every Read
}

func (r *splitReader) Read(p []byte) (int, error) {
	if r.before != nil {
		r.before()
	}
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)]) + 1
		r.i++
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	if len(r.data) == 0 && r.errWithData {
		return n, r.err
	}
	return n, nil
}

// guardModel is what a frameGuard must deliver for a whole stream, computed
// without streaming: every frame except data frames over max, whose
// positions in the output are where errFrameTooBig is due; a frame or header
// cut short by the end of the stream is delivered as far as it goes.
func guardModel(stream []byte, max int64) (delivered []byte, tooBigAt []int) {
	for len(stream) > 0 {
		if len(stream) < 2 {
			return append(delivered, stream...), tooBigAt
		}
		hl, length := 2, int64(stream[1]&0x7f)
		switch length {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		if stream[1]&0x80 != 0 {
			hl += 4
		}
		if len(stream) < hl {
			return append(delivered, stream...), tooBigAt
		}
		switch length {
		case 126:
			length = int64(binary.BigEndian.Uint16(stream[2:4]))
		case 127:
			length = int64(binary.BigEndian.Uint64(stream[2:10]) &^ (1 << 63))
		}
		end := hl + int(min(length, int64(len(stream)-hl)))
		if opcode := stream[0] & 0x0f; opcode <= 2 && length > max {
			tooBigAt = append(tooBigAt, len(delivered))
		} else {
			delivered = append(delivered, stream[:end]...)
		}
		stream = stream[end:]
	}
	return delivered, tooBigAt
}

// readGuarded reads g to its end, with read sizes taken from sizes (1 to
// 256 bytes, 4 KB for 255; 4 KB each without sizes, as bufio.Reader reads
// for coder/websocket), and returns the bytes, where errFrameTooBig came and
// the final error.
func readGuarded(t *testing.T, g *frameGuard, sizes []byte, limit int) (out []byte, tooBigAt []int, final error) {
	buf := make([]byte, 4096)
	for i := 0; ; i++ {
		if i > limit {
			t.Fatalf("no end after %d reads", i)
		}
		n := len(buf)
		if len(sizes) > 0 && sizes[i%len(sizes)] != 255 {
			n = int(sizes[i%len(sizes)]) + 1
		}
		got, err := g.Read(buf[:n])
		out = append(out, buf[:got]...)
		switch {
		case errors.Is(err, errFrameTooBig):
			require.Zero(t, got, "errFrameTooBig comes alone")
			tooBigAt = append(tooBigAt, len(out))
		case err != nil:
			return out, tooBigAt, err
		case got == 0:
			t.Fatalf("Read returned 0, nil")
		}
	}
}

// FuzzFrameGuard feeds arbitrary byte streams to a frameGuard in arbitrary
// splits (srcSizes: what each network read returns; readSizes: what each
// caller's Read asks for) and compares what it delivers with an unguarded
// reader (no frame over the limit) and with guardModel (a limit that some
// frames exceed). The guard must never read the network while it holds bytes
// it could deliver: that stalls a complete message.
func FuzzFrameGuard(f *testing.F) {
	writerClose := func(n int) []byte { // coder/websocket's Writer()+Close()
		first := frame(1, n)
		first[0] &^= 0x80 // FIN=0
		return append(first, frame(0, 0)...)
	}
	// The network returns everything at once and the caller reads 16 bytes:
	// the empty continuation's header straddles two reads.
	f.Add(writerClose(7), []byte{}, []byte{15}, uint16(32768), false)
	f.Add(writerClose(130), []byte{}, []byte{255, 127}, uint16(32768), true)
	f.Add(bytes.Join([][]byte{frame(1, 100), frame(9, 4), frame(2, 3)}, nil), []byte{0, 3, 9}, []byte{6}, uint16(100), false)
	f.Add(bytes.Join([][]byte{frame(1, 10), frame(1, 101), frame(2, 200), frame(8, 2)}, nil), []byte{4, 1, 200}, []byte{}, uint16(100), true)
	f.Add(bytes.Join([][]byte{frame(1, 300), frame(8, 2), frame(2, 70001)[:40]}, nil), []byte{7}, []byte{2, 30}, uint16(65535), false) // 64-bit length, cut short
	f.Add(append(frame(1, 5), 0x81, 0xfe, 0x01), []byte{2}, []byte{}, uint16(1000), false)                                             // cut inside a header
	f.Fuzz(func(t *testing.T, stream, srcSizes, readSizes []byte, max uint16, errWithData bool) {
		finalErr := io.ErrUnexpectedEOF
		if errWithData {
			finalErr = io.EOF
		}
		limit := 4*len(stream) + 16
		for _, tc := range []struct {
			name string
			max  int64
		}{{"unlimited", 1<<63 - 1}, {"limited", int64(max)}} {
			g := &frameGuard{max: tc.max}
			g.src = &splitReader{data: stream, sizes: srcSizes, err: finalErr, errWithData: errWithData, before: func() {
				if len(g.flush) > 0 || len(g.in) > 0 {
					t.Fatalf("%s: the guard reads the network holding %d header and %d stream bytes it could deliver", tc.name, len(g.flush), len(g.in))
				}
			}}
			out, tooBigAt, final := readGuarded(t, g, readSizes, limit)
			assert.Equal(t, finalErr, final, tc.name)
			if tc.name == "unlimited" {
				unguarded, err := io.ReadAll(&splitReader{data: stream, sizes: srcSizes, err: finalErr, errWithData: errWithData})
				if finalErr != io.EOF {
					assert.Equal(t, finalErr, err)
				}
				assert.Empty(t, tooBigAt, tc.name)
				assert.True(t, bytes.Equal(unguarded, out), "%s: the guard delivers what an unguarded reader does", tc.name)
				continue
			}
			wantOut, wantTooBig := guardModel(stream, tc.max)
			assert.True(t, bytes.Equal(wantOut, out), "%s: delivered bytes", tc.name)
			assert.Equal(t, wantTooBig, tooBigAt, tc.name)
		}
	})
}

// serverFrame encodes an unmasked server frame with the given FIN bit,
// opcode and payload (the 7, 16 or 64-bit length form as RFC 6455 requires).
func serverFrame(fin bool, opcode byte, payload []byte) []byte {
	h := []byte{opcode}
	if fin {
		h[0] |= 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		h = append(h, byte(n))
	case n <= 0xffff:
		h = append(h, 126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 127)
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	return append(h, payload...)
}

func TestFinMerger(t *testing.T) {
	const text, binaryOp, cont, ping, closeOp = 1, 2, 0, 9, 8
	a, b, c := bytes.Repeat([]byte("a"), 40), bytes.Repeat([]byte("b"), 300), bytes.Repeat([]byte("c"), 70000)
	for _, tc := range []struct {
		name     string
		in, want [][]byte
	}{
		{
			name: "unfragmented frames pass unchanged",
			in:   [][]byte{serverFrame(true, text, a), serverFrame(true, binaryOp, b), serverFrame(true, ping, nil), serverFrame(true, closeOp, []byte{3, 232})},
			want: [][]byte{serverFrame(true, text, a), serverFrame(true, binaryOp, b), serverFrame(true, ping, nil), serverFrame(true, closeOp, []byte{3, 232})},
		},
		{
			name: "the empty final continuation folds into the last fragment",
			in:   [][]byte{serverFrame(false, text, a), serverFrame(false, cont, b), serverFrame(false, cont, c), serverFrame(true, cont, nil), serverFrame(true, text, a)},
			want: [][]byte{serverFrame(false, text, a), serverFrame(false, cont, b), serverFrame(true, cont, c), serverFrame(true, text, a)},
		},
		{
			name: "a message of one fragment becomes one final frame",
			in:   [][]byte{serverFrame(false, binaryOp, b), serverFrame(true, cont, nil)},
			want: [][]byte{serverFrame(true, binaryOp, b)},
		},
		{
			name: "a final continuation with data is left alone",
			in:   [][]byte{serverFrame(false, text, a), serverFrame(true, cont, b)},
			want: [][]byte{serverFrame(false, text, a), serverFrame(true, cont, b)},
		},
		{
			name: "a control frame between fragments keeps its place",
			in:   [][]byte{serverFrame(false, text, a), serverFrame(true, ping, b[:4]), serverFrame(false, cont, b), serverFrame(true, cont, nil)},
			want: [][]byte{serverFrame(false, text, a), serverFrame(true, ping, b[:4]), serverFrame(true, cont, b)},
		},
		{
			name: "a close frame after an unfinished message comes after its fragment",
			in:   [][]byte{serverFrame(false, text, a), serverFrame(true, closeOp, []byte{3, 240})},
			want: [][]byte{serverFrame(false, text, a), serverFrame(true, closeOp, []byte{3, 240})},
		},
	} {
		for _, chunk := range []int{1, 3, 4096, 1 << 20} {
			var out bytes.Buffer
			m := &finMerger{w: &out}
			in := bytes.Join(tc.in, nil)
			for len(in) > 0 {
				n := min(chunk, len(in))
				written, err := m.Write(in[:n])
				require.NoError(t, err)
				require.Equal(t, n, written)
				in = in[n:]
			}
			assert.True(t, bytes.Equal(bytes.Join(tc.want, nil), out.Bytes()), "%s, written %d bytes at a time", tc.name, chunk)
		}
	}
}

func TestFinMergerReportsWriteErrors(t *testing.T) {
	broken := errors.New("broken pipe")
	m := &finMerger{w: errWriter{broken}}
	_, err := m.Write(serverFrame(true, 1, []byte("hi")))
	assert.ErrorIs(t, err, broken, "a frame passed through")
	m = &finMerger{w: errWriter{broken}}
	held := serverFrame(false, 1, []byte("hi"))
	n, err := m.Write(held)
	require.NoError(t, err, "a held fragment is not written yet")
	require.Equal(t, len(held), n)
	_, err = m.Write(serverFrame(true, 0, nil))
	assert.ErrorIs(t, err, broken, "the held fragment, written when the message ends")
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }
