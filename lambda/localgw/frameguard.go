package localgw

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// errFrameTooBig means a client sent a data frame larger than FrameSize.
var errFrameTooBig = errors.New("client frame exceeds the frame size limit")

// errMessageTooBig means a client's message (its data frames together) grew
// past MaxMessageSize.
var errMessageTooBig = errors.New("client message exceeds the message size limit")

// frameLimitWriter hands websocket.Accept a hijacked connection whose
// client-to-server byte stream is checked frame by frame (coder/websocket
// limits whole messages only, API Gateway also limits each frame) and whose
// server-to-client frames end a fragmented message as API Gateway does
// (finMerger).
type frameLimitWriter struct {
	http.ResponseWriter
	max        int64 // bytes per data frame
	maxMessage int64 // bytes per message (0: unchecked)
}

// Hijack implements http.Hijacker. Bytes the server already buffered go
// through the guard too, so no frame escapes the check.
func (w frameLimitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack: http.ResponseWriter does not implement http.Hijacker")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	g := &frameGuard{Conn: nc, src: io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), nc), max: w.max, maxMessage: w.maxMessage}
	// Anything net/http left in its writer (nothing, once the 101 is out)
	// goes first; the frames then pass through finMerger.
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	return g, bufio.NewReadWriter(bufio.NewReader(g), bufio.NewWriterSize(&finMerger{w: nc}, brw.Writer.Size())), nil
}

// frameGuard is a net.Conn whose Read parses RFC 6455 frame headers
// (FIN/RSV/opcode, MASK, 7/16/64-bit payload length, masking key). A data
// frame whose payload exceeds max, or that takes its message past
// maxMessage, is never delivered: the bytes before it are, then Read fails
// once with errFrameTooBig or errMessageTooBig, then the offending frame is
// skipped and the stream goes on, so the close handshake still sees the
// client's close frame. (The gateway then closes with 1009 "Message too
// big" itself, as API Gateway does, instead of coder/websocket's own read
// limit answering with its own reason.)
type frameGuard struct {
	net.Conn
	src        io.Reader
	max        int64
	maxMessage int64
	message    int64 // payload bytes of the current message so far
	err        error // errFrameTooBig or errMessageTooBig, for the next Read

	rbuf      [32 * 1024]byte
	in        []byte   // bytes read from src, not yet filtered
	srcErr    error    // src's error, returned once in is drained
	hdr       [14]byte // the header being parsed
	hn        int      // bytes of hdr collected
	flush     []byte   // a complete header (in hdr) not yet delivered
	remaining int64    // payload bytes of the current frame still to deliver
	skip      int64    // payload bytes of an oversized frame still to drop
	tooBig    bool     // err is due on the next Read
}

// Read delivers what is buffered before it reads the network again: a
// complete header held back in flush (the last frame of a message may be an
// empty continuation, whose header is all there is) must not wait for bytes
// the client has no reason to send.
func (g *frameGuard) Read(p []byte) (int, error) {
	if g.tooBig {
		g.tooBig = false
		return 0, g.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(g.in) > 0 || len(g.flush) > 0 {
			out, tooBig := g.filter(p)
			if tooBig {
				if out == 0 {
					return 0, g.err
				}
				g.tooBig = true
				return out, nil
			}
			if out > 0 {
				return out, nil
			}
			// Everything was part of a skipped frame or of a header still
			// incomplete: read on.
			continue
		}
		if g.srcErr != nil {
			if g.hn > 0 {
				// The stream ended inside a header: deliver its bytes as an
				// unguarded reader would; no payload follows them.
				g.flush, g.hn = g.hdr[:g.hn], 0
				continue
			}
			return 0, g.srcErr
		}
		n, err := g.src.Read(g.rbuf[:])
		g.in, g.srcErr = g.rbuf[:n], err
	}
}

// filter moves bytes from g.in to p, parsing frame headers on the way. A
// header is held back until it is complete, so no byte of an oversized frame
// is ever delivered; filter stops there and reports it.
func (g *frameGuard) filter(p []byte) (out int, tooBig bool) {
	for (len(g.in) > 0 || len(g.flush) > 0) && out < len(p) {
		switch {
		case len(g.flush) > 0:
			n := copy(p[out:], g.flush)
			g.flush = g.flush[n:]
			out += n
		case g.skip > 0:
			n := int(min(g.skip, int64(len(g.in))))
			g.skip -= int64(n)
			g.in = g.in[n:]
		case g.remaining > 0:
			n := copy(p[out:], g.in[:min(g.remaining, int64(len(g.in)))])
			g.remaining -= int64(n)
			g.in = g.in[n:]
			out += n
		default:
			g.hdr[g.hn] = g.in[0]
			g.hn++
			g.in = g.in[1:]
			if g.hn < headerLength(g.hdr[:g.hn]) {
				continue
			}
			length := payloadLength(g.hdr[:g.hn])
			n := g.hn
			g.hn = 0
			if opcode := g.hdr[0] & 0x0f; opcode <= 2 { // continuation, text, binary
				if opcode != 0 {
					g.message = 0 // a new message
				}
				g.message += length
				switch {
				case length > g.max:
					g.skip, g.err = length, errFrameTooBig
					return out, true
				case g.maxMessage > 0 && g.message > g.maxMessage:
					g.skip, g.err = length, errMessageTooBig
					return out, true
				}
			}
			g.flush = g.hdr[:n]
			g.remaining = length
		}
	}
	return out, false
}

// headerLength is the length of the frame header starting with h (at least
// 2 bytes once the second byte is known).
func headerLength(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

// payloadLength decodes the payload length of a complete header.
func payloadLength(h []byte) int64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return int64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return int64(binary.BigEndian.Uint64(h[2:10]) & (1<<63 - 1))
	default:
		return int64(l)
	}
}
