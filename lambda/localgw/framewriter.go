package localgw

import "io"

// finMerger carries the gateway's outgoing frames to the client unchanged
// but for one rewrite. coder/websocket writes a message in pieces as one
// frame per Write, all non-final, and ends it with an empty final
// continuation frame. API Gateway sends a message over 32 KB as frames of
// 32 KB whose last one, carrying the rest, is final. So a non-final data
// frame is held back until the next frame's header: when that is an empty
// final continuation, the held frame goes out as the final one and the
// empty frame is dropped; anything else sends the held frame as it was
// first (a control frame between fragments keeps its place).
//
// The gateway writes fragments of at most FrameSize, so at most one frame of
// that size is held per connection, and only while a message is being
// written: coder/websocket writes the next frame (or the close frame, on an
// error) right after it.
type finMerger struct {
	w io.Writer

	hdr       [14]byte // the header being parsed
	hn        int      // bytes of hdr collected
	remaining int64    // payload bytes of the current frame still to pass
	holding   bool     // the current frame's bytes go to held
	held      []byte   // a non-final data frame (header and payload) held back
	heldDone  bool     // held is complete: its payload has all arrived
	out       []byte   // what one Write passes on, written at once
}

// Write parses p frame by frame and passes on what it can in one write to
// the underlying writer (a header and its payload in one TCP segment, as
// coder/websocket's buffered writer sent them). It returns len(p) once every
// byte is sent or held, or 0 and the underlying writer's error.
func (m *finMerger) Write(p []byte) (int, error) {
	total := len(p)
	m.out = m.out[:0]
	for len(p) > 0 {
		if m.remaining > 0 {
			n := int(min(m.remaining, int64(len(p))))
			if m.holding {
				m.held = append(m.held, p[:n]...)
			} else {
				m.out = append(m.out, p[:n]...)
			}
			m.remaining -= int64(n)
			p = p[n:]
			if m.remaining == 0 && m.holding {
				m.heldDone = true
			}
			continue
		}
		m.hdr[m.hn] = p[0]
		m.hn++
		p = p[1:]
		if m.hn == headerLength(m.hdr[:m.hn]) {
			m.header()
		}
	}
	if len(m.out) > 0 {
		_, err := m.w.Write(m.out)
		m.out = shrink(m.out)
		if err != nil {
			return 0, err
		}
	}
	return total, nil
}

// keptBuffer is the most capacity a buffer keeps between messages: a
// connection that once got a large message does not hold its size for good.
const keptBuffer = 8 << 10

func shrink(b []byte) []byte {
	if cap(b) > keptBuffer {
		return nil
	}
	return b[:0]
}

// header handles a complete header in hdr.
func (m *finMerger) header() {
	h := m.hdr[:m.hn]
	m.hn = 0
	fin, opcode, length := h[0]&0x80 != 0, h[0]&0x0f, payloadLength(h)
	if m.heldDone {
		m.heldDone = false
		folds := opcode == 0 && fin && length == 0
		if folds {
			m.held[0] |= 0x80 // the held fragment becomes the message's final frame
		}
		m.out = append(m.out, m.held...)
		m.held = shrink(m.held)
		if folds {
			return
		}
	}
	m.remaining = length
	m.holding = !fin && opcode <= 2 // continuation, text, binary
	if m.holding {
		m.held = append(m.held[:0], h...)
		m.heldDone = length == 0
		return
	}
	m.out = append(m.out, h...)
}
