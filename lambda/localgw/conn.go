package localgw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// errClosed means the connection is closing or closed.
var errClosed = errors.New("connection closed")

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

	mu         sync.Mutex
	lastActive time.Time
	closeCode  websocket.StatusCode // set by the side of the gateway that closed it
	closeMsg   string
}

type inbound struct {
	typ  websocket.MessageType
	data []byte
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
	c.mu.Lock()
	first := c.closeCode == 0
	if first {
		c.closeCode, c.closeMsg = code, reason
	}
	c.mu.Unlock()
	if first {
		// Close waits for the client's close frame, which run's reader consumes.
		go func() { _ = c.ws.Close(code, reason) }()
	}
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

// send delivers one message, split into FrameSize frames, as a text message
// when it is valid UTF-8 and as a binary one otherwise.
func (c *conn) send(ctx context.Context, data []byte) error {
	if c.closing() {
		return errClosed
	}
	typ := websocket.MessageText
	if !utf8.Valid(data) {
		typ = websocket.MessageBinary
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	wr, err := c.ws.Writer(ctx, typ)
	if err != nil {
		return fmt.Errorf("send to %s: %w", c.id, err)
	}
	for len(data) > 0 {
		n := min(len(data), c.gw.cfg.FrameSize)
		if _, err := wr.Write(data[:n]); err != nil {
			_ = wr.Close()
			return fmt.Errorf("send to %s: %w", c.id, err)
		}
		data = data[n:]
	}
	if err := wr.Close(); err != nil {
		return fmt.Errorf("send to %s: %w", c.id, err)
	}
	c.touch()
	return nil
}

// run reads messages until the connection ends, hands them in order to a
// dispatcher, then unregisters the connection and runs $disconnect.
func (c *conn) run() {
	g := c.gw
	defer g.sessions.Done()
	queue := make(chan inbound, 1024)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for m := range queue {
			c.dispatch(m)
		}
	}()
	go c.watchdog()

	code, reason := websocket.StatusAbnormalClosure, "Going away"
read:
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrMessageTooBig):
				code, reason = websocket.StatusMessageTooBig, "Message too big"
			case errors.Is(err, errFrameTooBig):
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
			// An API without binaryMediaTypes rejects binary frames.
			code, reason = websocket.StatusUnsupportedData, "Unsupported data"
			c.closeNow(code, reason)
			break read
		}
		queue <- inbound{typ: typ, data: data}
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
	rc := g.requestContext(c, routeKey, "MESSAGE", g.cfg.Now())
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
	if err := c.send(c.ctx, body); err != nil && !errors.Is(err, errClosed) {
		g.log.Info("route response not delivered", "connectionId", c.id, "routeKey", routeKey, "error", err)
	}
}

// selectRoute evaluates $request.body.action: a JSON object whose action
// names a configured custom route selects it, anything else goes to $default.
func (g *Gateway) selectRoute(body []byte) (string, Function) {
	if len(g.cfg.Routes) > 0 {
		var frame struct {
			Action any `json:"action"`
		}
		if json.Unmarshal(body, &frame) == nil {
			if action, ok := frame.Action.(string); ok {
				if fn, ok := g.cfg.Routes[action]; ok {
					return action, fn
				}
			}
		}
	}
	return RouteDefault, g.cfg.WebSocket
}
