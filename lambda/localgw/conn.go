package localgw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"golang.org/x/sync/semaphore"

	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// errClosed means the connection is closing or closed.
var errClosed = errors.New("connection closed")

// errSlowClient means a message could not be written within
// Config.SendTimeout: the client does not read, and the gateway closes it.
var errSlowClient = errors.New("client does not read fast enough")

// errBufferFull means a message did not fit in the connection's outgoing
// buffer (Config.MaxQueuedBytes): the management API answers 429
// LimitExceededException, as AWS documents for a full client-side buffer,
// and the connection stays open.
var errBufferFull = errors.New("the client's outgoing buffer is full")

// DefaultSendTimeout is Config.SendTimeout when unset.
const DefaultSendTimeout = 30 * time.Second

// Close code and reason for a client that does not keep up with its messages.
const (
	slowClientCode   = websocket.StatusPolicyViolation
	slowClientReason = "Slow client: an outgoing message was not read in time"
)

// conn is one accepted WebSocket connection.
type conn struct {
	gw          *Gateway
	id          string
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	domainName  string
	authorizer  map[string]any

	ws     *websocket.Conn
	ctx    context.Context // ends when the connection closes
	cancel context.CancelFunc

	// inboundBytes bounds the client messages read but not yet dispatched:
	// when it is used up the reader stops reading and TCP pushes back.
	inboundBytes *semaphore.Weighted
	inbound      atomic.Int64 // bytes taken from inboundBytes

	mu         sync.Mutex
	lastActive time.Time
	closeCode  websocket.StatusCode // set by the side of the gateway that closed it
	closeMsg   string
	queued     int // bytes of outgoing messages waiting for or in their write
}

type inbound struct {
	typ  websocket.MessageType
	data []byte
	at   time.Time // when the gateway received it: the event's requestTimeEpoch
}

// touch records activity for the idle timeout and GET's lastActiveAt.
func (c *conn) touch() {
	now := c.gw.cfg.Now()
	c.mu.Lock()
	c.lastActive = now
	c.mu.Unlock()
}

func (c *conn) lastActiveAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastActive
}

// close starts closing the connection from the gateway's side; the first
// caller's code and reason are what $disconnect reports.
func (c *conn) close(code websocket.StatusCode, reason string) {
	if c.markClosed(code, reason) {
		// Close waits for the client's close frame, which run's reader consumes.
		go func() { _ = c.ws.Close(code, reason) }()
	}
}

// markClosed records the code and reason the connection closes with, unless
// one is recorded already, and reports whether it was the first.
func (c *conn) markClosed(code websocket.StatusCode, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode != 0 {
		return false
	}
	c.closeCode, c.closeMsg = code, reason
	return true
}

// closeNow closes the connection from run's goroutine, the connection's
// reader, so the close handshake is done before run tears the socket down.
func (c *conn) closeNow(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	first := c.closeCode == 0
	if first {
		c.closeCode, c.closeMsg = code, reason
	}
	c.mu.Unlock()
	if first {
		_ = c.ws.Close(code, reason)
	}
}

// closing reports whether the connection is closing or closed.
func (c *conn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode != 0 || c.ctx.Err() != nil
}

// send delivers one message as a text message when it is valid UTF-8 and as
// a binary one otherwise, in one frame when it fits in FrameSize. Messages
// waiting for the connection (their writes run one at a time) may hold at
// most MaxQueuedBytes together; one that does not fit is refused with
// errBufferFull and the connection stays open. A write that does not end
// within SendTimeout closes the connection with 1008 and returns
// errSlowClient. A caller that goes away does not cut a write short: that
// would leave half a frame on the wire.
func (c *conn) send(ctx context.Context, data []byte) error {
	if c.closing() {
		return errClosed
	}
	if queued, ok := c.reserve(len(data)); !ok {
		return fmt.Errorf("send %d bytes to %s with %d bytes queued: %w", len(data), c.id, queued, errBufferFull)
	}
	defer c.release(len(data))
	typ := websocket.MessageText
	if !utf8.Valid(data) {
		typ = websocket.MessageBinary
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	// A write still running after SendTimeout drops the client. The close
	// code is recorded before the write is cancelled: cancelling it tears
	// the socket down at once, and the reader must find 1008, not the 1006
	// of a connection that just broke.
	var timedOut atomic.Bool
	timer := time.AfterFunc(c.gw.cfg.SendTimeout, func() {
		timedOut.Store(true)
		c.markClosed(slowClientCode, slowClientReason)
		cancel()
	})
	defer timer.Stop()
	err := c.write(ctx, typ, data)
	if timedOut.Load() {
		// Even a write that ended as the timer fired: the client is marked
		// closing, so it goes.
		go func() { _ = c.ws.Close(slowClientCode, slowClientReason) }()
		return fmt.Errorf("send %d bytes to %s: %w (%v)", len(data), c.id, errSlowClient, err)
	}
	if err != nil {
		return fmt.Errorf("send to %s: %w", c.id, err)
	}
	c.touch()
	return nil
}

// write writes one message: one frame when it fits in FrameSize, else
// frames of FrameSize and a last one with the rest, as API Gateway does.
// coder/websocket writes one frame per Write and ends the message with an
// empty final continuation frame; finMerger (frameguard.go) folds that
// into the last fragment on the way out.
func (c *conn) write(ctx context.Context, typ websocket.MessageType, data []byte) error {
	if len(data) <= c.gw.cfg.FrameSize {
		return c.ws.Write(ctx, typ, data)
	}
	wr, err := c.ws.Writer(ctx, typ)
	if err != nil {
		return err
	}
	for len(data) > 0 {
		n := min(len(data), c.gw.cfg.FrameSize)
		if _, err := wr.Write(data[:n]); err != nil {
			_ = wr.Close()
			return err
		}
		data = data[n:]
	}
	return wr.Close()
}

// reserve admits n bytes to the outgoing buffer. A message always fits in an
// empty buffer, so one larger than MaxQueuedBytes can still be sent.
func (c *conn) reserve(n int) (queued int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queued > 0 && c.queued+n > c.gw.cfg.MaxQueuedBytes {
		return c.queued, false
	}
	c.queued += n
	return c.queued, true
}

func (c *conn) release(n int) {
	c.mu.Lock()
	c.queued -= n
	c.mu.Unlock()
}

// queuedBytes is the size of the outgoing messages waiting for or in their write.
func (c *conn) queuedBytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// run reads messages until the connection ends, hands them in order to a
// dispatcher, then unregisters the connection and runs $disconnect.
func (c *conn) run() {
	g := c.gw
	defer g.sessions.Done()
	// The dispatcher always makes progress (invocations are bounded by
	// FunctionTimeout), so the reader waiting for inbound bytes cannot deadlock.
	queue := make(chan inbound, 1024)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for m := range queue {
			c.dispatch(m)
			w := inboundWeight(m.data, g.cfg.MaxQueuedBytes)
			c.inbound.Add(-w)
			c.inboundBytes.Release(w)
		}
	}()
	go c.watchdog()

	code, reason := websocket.StatusAbnormalClosure, "Going away"
read:
	for {
		typ, data, err := c.ws.Read(c.ctx)
		at := g.cfg.Now() // the event's requestTimeEpoch
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrMessageTooBig):
				code, reason = websocket.StatusMessageTooBig, "Message too big"
			case errors.Is(err, errFrameTooBig), errors.Is(err, errMessageTooBig):
				// coder/websocket never saw the frame: send the close frame here.
				code, reason = websocket.StatusMessageTooBig, "Message too big"
				c.closeNow(code, reason)
			case websocket.CloseStatus(err) != -1:
				var ce websocket.CloseError
				errors.As(err, &ce)
				code, reason = ce.Code, ce.Reason
			}
			break read
		}
		c.touch()
		if typ == websocket.MessageBinary && !g.cfg.AllowBinary {
			// API Gateway WebSocket APIs close a binary client frame with 1003.
			code, reason = websocket.StatusUnsupportedData, "Unsupported data"
			c.closeNow(code, reason)
			break read
		}
		if typ == websocket.MessageText && !utf8.Valid(data) {
			// RFC 6455 section 8.1: a text message must be valid UTF-8.
			code, reason = websocket.StatusInvalidFramePayloadData, "Invalid frame payload data"
			c.closeNow(code, reason)
			break read
		}
		w := inboundWeight(data, g.cfg.MaxQueuedBytes)
		if err := c.inboundBytes.Acquire(c.ctx, w); err != nil {
			break read
		}
		c.inbound.Add(w)
		queue <- inbound{typ: typ, data: data, at: at}
	}
	c.mu.Lock()
	if c.closeCode != 0 {
		code, reason = c.closeCode, c.closeMsg
	} else {
		c.closeCode, c.closeMsg = code, reason
	}
	c.mu.Unlock()
	close(queue)
	<-dispatched
	c.cancel()
	_ = c.ws.CloseNow()

	g.mu.Lock()
	delete(g.conns, c.id)
	g.mu.Unlock()
	g.disconnectEvent(c, int(code), reason)
	g.log.Info("disconnected", "connectionId", c.id, "code", int(code), "reason", reason)
}

// inboundWeight is what a client message takes from the inbound budget: its
// size, capped so that one message larger than the budget still goes through.
func inboundWeight(data []byte, budget int) int64 {
	return int64(max(1, min(len(data), budget)))
}

// watchdog closes the connection after IdleTimeout without messages or after MaxDuration.
func (c *conn) watchdog() {
	cfg := c.gw.cfg
	t := time.NewTimer(min(cfg.IdleTimeout, cfg.MaxDuration))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		now := cfg.Now()
		idleAt := c.lastActiveAt().Add(cfg.IdleTimeout)
		endAt := c.connectedAt.Add(cfg.MaxDuration)
		if !now.Before(endAt) || !now.Before(idleAt) {
			c.close(websocket.StatusGoingAway, "Going away")
			return
		}
		t.Reset(min(idleAt.Sub(now), endAt.Sub(now)))
	}
}

// dispatch selects the route of one message, invokes its integration and
// sends a non-empty result body back as the route response.
func (c *conn) dispatch(m inbound) {
	g := c.gw
	routeKey, fn := g.selectRoute(m.data)
	// Stamped when the message arrived, as API Gateway does, not when its
	// turn came behind the connection's earlier messages.
	rc := g.requestContext(c, routeKey, "MESSAGE", m.at)
	rc.MessageID = newID()
	ev := events.APIGatewayWebsocketProxyRequest{RequestContext: rc, Body: string(m.data)}
	if m.typ == websocket.MessageBinary {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(m.data), true
	}
	ictx, cancel := g.invocationContext(c.ctx)
	defer cancel()
	resp, err := g.invokeRoute(ictx, fn, ev)
	if err != nil {
		g.log.Error("route failed", "connectionId", c.id, "routeKey", routeKey, "error", err)
		// API Gateway's answer to a failed integration.
		body, _ := json.Marshal(map[string]string{"message": "Internal server error", "connectionId": c.id, "requestId": rc.RequestID})
		_ = c.send(c.ctx, body)
		return
	}
	if resp.Body == "" {
		return
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	if len(body) > sender.MaxPayload {
		// API Gateway's messages are at most 128 KB, route responses too
		// (as the management API's POSTs, which answer 413): delivering a
		// larger one here would hide a reply AWS cannot deliver.
		g.log.Error("route response not delivered: over API Gateway's 128 KB message limit", "connectionId", c.id, "routeKey", routeKey, "bytes", len(body))
		return
	}
	if err := c.send(c.ctx, body); err != nil && !errors.Is(err, errClosed) {
		g.log.Info("route response not delivered", "connectionId", c.id, "routeKey", routeKey, "error", err)
	}
}

// selectRoute evaluates $request.body.action: a JSON object whose action
// names a configured custom route selects it, anything else goes to $default.
// The key is matched exactly, as AWS's JSON path does ("Action" is not
// "action"; encoding/json's struct fields would match any case).
func (g *Gateway) selectRoute(body []byte) (string, Function) {
	if len(g.cfg.Routes) > 0 {
		var frame map[string]json.RawMessage
		var action string
		if json.Unmarshal(body, &frame) == nil && json.Unmarshal(frame["action"], &action) == nil {
			if fn, ok := g.cfg.Routes[action]; ok {
				return action, fn
			}
		}
	}
	return RouteDefault, g.cfg.WebSocket
}
