package realtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Route keys API Gateway uses for the built-in routes.
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// Request is one API Gateway WebSocket event as hooks see it.
type Request struct {
	// ConnectionID is the caller's connection.
	ConnectionID string
	// RouteKey is the route API Gateway selected.
	RouteKey string
	// UserID is the authorizer context's userId, empty when anonymous.
	UserID string
	// Channels is the authorizer context's comma-separated private channel patterns.
	Channels string
	// Body is the frame as received (base64-decoded when needed); empty on $connect and $disconnect.
	Body []byte
	// Event is the raw API Gateway event.
	Event events.APIGatewayWebsocketProxyRequest
}

// RouteFunc handles a frame on a route. A non-nil reply is sent back to the
// caller as the route response; return a *protocol.Error to answer an error frame.
type RouteFunc func(ctx context.Context, m *Manager, req *Request) (reply []byte, err error)

// Hooks mirror the original package's events. Every hook is optional. A hook
// that returns an error or panics is logged and answered; it never crashes the function.
type Hooks struct {
	// OnConnect runs after the connection is recorded ("websocket.connected").
	// Returning a *Reject refuses the handshake with its status code; any other
	// error refuses it with 500.
	OnConnect func(ctx context.Context, m *Manager, req *Request) error
	// OnDisconnect runs after the connection is removed ("websocket.disconnected").
	OnDisconnect func(ctx context.Context, m *Manager, req *Request) error
	// OnMessage handles $default frames that are not protocol v1 actions
	// ("websocket.message"). Without it such frames answer unknown_action or bad_request.
	OnMessage RouteFunc
	// Routes handle custom route keys (without one, a custom route's frame
	// goes to the event bus as "websocket.message" with its routeKey).
	Routes map[string]RouteFunc
	// OnRoute handles custom route keys that have no entry in Routes.
	OnRoute RouteFunc
	// OnJoin and OnLeave run when a connection joins or leaves a channel
	// ("websocket.channel.joined", "websocket.channel.left").
	OnJoin, OnLeave func(ctx context.Context, connectionID, channel string) error
}

// Reject refuses a $connect with an HTTP status (for example 403).
type Reject struct {
	// Status is the HTTP status API Gateway returns to the client: 400 to
	// 599; anything else (a Reject is a refusal) answers 500.
	Status int
	// Reason is logged, never sent.
	Reason string
}

// Error implements error.
func (r *Reject) Error() string {
	return fmt.Sprintf("connection rejected (%d): %s", r.Status, r.Reason)
}

// Response is what Handle returns: API Gateway's proxy response. On a
// two-way route its Body reaches the caller as the route response.
type Response = events.APIGatewayProxyResponse

// Handle processes one API Gateway WebSocket event: $connect records the
// connection (and joins the channels of a "channels" query parameter),
// $disconnect removes it with its memberships, $default speaks client
// protocol v1, and custom route keys reach the user's hooks. It never returns
// an error for a bad frame or a failing hook: those are answered.
func (m *Manager) Handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (resp Response, err error) {
	start := time.Now()
	req, derr := newRequest(ev)
	log := m.log.With("connectionId", ev.RequestContext.ConnectionID, "routeKey", ev.RequestContext.RouteKey, "requestId", ev.RequestContext.RequestID)
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "panic while handling event", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = m.failure(ev.RequestContext.RouteKey, fmt.Errorf("panic: %v", p)), nil
		}
		log.InfoContext(ctx, "handled", "status", resp.StatusCode, "durationMs", time.Since(start).Milliseconds())
	}()
	if derr != nil {
		return reply(http.StatusBadRequest, protocol.ErrorReply(protocol.Errorf(protocol.CodeBadRequest, "body is not valid base64"))), nil
	}
	if ev.RequestContext.ConnectionID == "" {
		return reply(http.StatusBadRequest, protocol.ErrorReply(protocol.Errorf(protocol.CodeBadRequest, "event has no connectionId"))), nil
	}
	hint := ""
	if ev.RequestContext.DomainName != "" && ev.RequestContext.Stage != "" {
		hint = "https://" + ev.RequestContext.DomainName + "/" + ev.RequestContext.Stage
	}
	ctx = withEndpointHint(ctx, hint)
	switch ev.RequestContext.RouteKey {
	case RouteConnect:
		resp, err = m.handleConnect(ctx, req)
		if err == nil && resp.StatusCode == http.StatusOK {
			m.cfg.Metrics.Add(metrics.ConnectionsOpened, 1)
		}
		return resp, err
	case RouteDisconnect:
		m.cfg.Metrics.Add(metrics.ConnectionsClosed, 1)
		return m.handleDisconnect(ctx, req)
	case RouteDefault:
		m.cfg.Metrics.Add(metrics.MessagesReceived, 1)
		return m.handleDefault(ctx, req)
	default:
		m.cfg.Metrics.Add(metrics.MessagesReceived, 1)
		return m.handleCustom(ctx, req)
	}
}

// HandleJSON is Handle for an event still in JSON, the entry point of the
// websocket Lambda (lambda.Start(m.HandleJSON)). Decoding the event here
// keeps the authorizer context's numbers as written: a numeric userId above
// 2^53 keeps every digit instead of being rounded to a float64.
func (m *Manager) HandleJSON(ctx context.Context, payload json.RawMessage) (Response, error) {
	var ev events.APIGatewayWebsocketProxyRequest
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		m.log.ErrorContext(ctx, "undecodable event", "error", err)
		return Response{StatusCode: http.StatusBadRequest}, fmt.Errorf("decode websocket event: %w", err)
	}
	return m.Handle(ctx, ev)
}

func newRequest(ev events.APIGatewayWebsocketProxyRequest) (*Request, error) {
	req := &Request{ConnectionID: ev.RequestContext.ConnectionID, RouteKey: ev.RequestContext.RouteKey, Event: ev}
	req.UserID, req.Channels = AuthorizerContext(ev.RequestContext.Authorizer)
	body := []byte(ev.Body)
	if ev.IsBase64Encoded && ev.Body != "" {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return req, err
		}
		body = b
	}
	req.Body = body
	return req, nil
}

// AuthorizerContext reads userId and channels from an API Gateway authorizer
// context, accepting strings, numbers and booleans as API Gateway may pass
// them. A json.Number keeps its exact text; a float64 is written with the
// fewest digits that read back as the same number (42, not 42.000000).
func AuthorizerContext(auth any) (userID, channels string) {
	ctxMap, ok := auth.(map[string]any)
	if !ok {
		return "", ""
	}
	return contextString(ctxMap["userId"]), contextString(ctxMap["channels"])
}

func contextString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

func reply(status int, body []byte) Response {
	return Response{StatusCode: status, Body: string(body)}
}

// failure answers a crashed hook or an internal error without leaking details.
func (m *Manager) failure(routeKey string, _ error) Response {
	if routeKey == RouteConnect {
		return Response{StatusCode: http.StatusInternalServerError}
	}
	return reply(http.StatusOK, protocol.ErrorReply(errors.New("internal")))
}

func (m *Manager) runHook(ctx context.Context, name string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			m.log.ErrorContext(ctx, "hook panicked", "hook", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("hook %s panicked: %v", name, p)
		}
	}()
	if err = fn(); err != nil {
		m.log.ErrorContext(ctx, "hook failed", "hook", name, "error", err)
	}
	return err
}

func (m *Manager) handleConnect(ctx context.Context, req *Request) (Response, error) {
	rc := req.Event.RequestContext
	var channels []string
	seen := map[string]struct{}{}
	if q := queryParam(req.Event, "channels"); q != "" {
		for _, ch := range strings.Split(q, ",") {
			ch = strings.TrimSpace(ch)
			if ch == "" {
				continue
			}
			if !protocol.ValidChannel(ch) {
				m.log.InfoContext(ctx, "connect refused: invalid channel in query", "connectionId", req.ConnectionID)
				return Response{StatusCode: http.StatusBadRequest}, nil
			}
			if !protocol.AllowsChannel(req.Channels, ch) {
				m.log.InfoContext(ctx, "connect refused: private channel not allowed", "connectionId", req.ConnectionID, "channel", ch)
				return Response{StatusCode: http.StatusForbidden}, nil
			}
			if strings.HasPrefix(ch, protocol.PresencePrefix) && (m.cfg.Presence == nil || req.UserID == "") {
				// As subscribe answers forbidden: presence needs a user.
				m.log.InfoContext(ctx, "connect refused: presence channel without a user", "connectionId", req.ConnectionID, "channel", ch)
				return Response{StatusCode: http.StatusForbidden}, nil
			}
			if _, dup := seen[ch]; dup {
				continue
			}
			if len(channels) == m.cfg.MaxChannelsPerConnection {
				m.log.InfoContext(ctx, "connect refused: more channels in query than the cap", "connectionId", req.ConnectionID,
					"max", m.cfg.MaxChannelsPerConnection)
				return Response{StatusCode: http.StatusBadRequest}, nil
			}
			seen[ch] = struct{}{}
			channels = append(channels, ch)
		}
	}
	if !store.ValidUserID(req.UserID) {
		// A custom authorizer's userId the store cannot key (the built-in
		// JWT authorizer refuses such a claim with 403 itself).
		m.log.InfoContext(ctx, "connect refused: userId from the authorizer is invalid", "connectionId", req.ConnectionID,
			"userIdBytes", len(req.UserID), "max", store.MaxUserIDLength)
		return Response{StatusCode: http.StatusForbidden}, nil
	}
	connectedAt := m.cfg.Now()
	if rc.ConnectedAt > 0 {
		connectedAt = time.UnixMilli(rc.ConnectedAt)
	}
	conn := store.Connection{
		ID:          req.ConnectionID,
		UserID:      req.UserID,
		ConnectedAt: connectedAt.UTC(),
		RouteKey:    rc.RouteKey,
		SourceIP:    rc.Identity.SourceIP,
		UserAgent:   rc.Identity.UserAgent,
		ExpiresAt:   connectedAt.Add(m.cfg.TTL).UTC(),
		// Until it asks for something itself, API Gateway may still be
		// finishing its handshake (GoneGrace).
		Pending: true,
	}
	if conn.UserAgent == "" {
		conn.UserAgent = header(req.Event, "User-Agent")
	}
	if err := m.store.AddConnection(ctx, conn); err != nil && !errors.Is(err, store.ErrExists) {
		if errors.Is(err, store.ErrInvalidID) {
			// Not an id API Gateway gives: a hand-made event.
			m.log.WarnContext(ctx, "connect refused: invalid connection id", "connectionId", fmt.Sprintf("%.64q", req.ConnectionID))
			return Response{StatusCode: http.StatusBadRequest}, nil
		}
		m.log.ErrorContext(ctx, "record connection", "connectionId", req.ConnectionID, "error", err)
		return Response{StatusCode: http.StatusInternalServerError}, nil
	}
	if m.cfg.Hooks.OnConnect != nil {
		if err := m.runHook(ctx, "connected", func() error { return m.cfg.Hooks.OnConnect(ctx, m, req) }); err != nil {
			m.rollbackConnect(ctx, req.ConnectionID)
			var rej *Reject
			if errors.As(err, &rej) && rej.Status >= 400 && rej.Status <= 599 {
				return Response{StatusCode: rej.Status}, nil
			}
			return Response{StatusCode: http.StatusInternalServerError}, nil
		}
	}
	// Query-string joins come after the hook, so a connection the hook
	// refuses never raises joined events. A presence channel is joined as
	// subscribe joins it (member_joined to the others); its member list
	// comes with a subscribe, which is idempotent.
	for _, ch := range channels {
		_, err := m.join(ctx, req.ConnectionID, ch)
		if err == nil && strings.HasPrefix(ch, protocol.PresencePrefix) {
			err = m.enterPresence(ctx, req.ConnectionID, req.UserID, ch, conn.ExpiresAt)
		}
		if err != nil {
			m.rollbackConnect(ctx, req.ConnectionID)
			if errors.Is(err, store.ErrTooManyChannels) {
				// The query fitted, but the connect hook joined channels too.
				m.log.InfoContext(ctx, "connect refused: too many channels", "connectionId", req.ConnectionID, "channel", ch)
				return Response{StatusCode: http.StatusBadRequest}, nil
			}
			m.log.ErrorContext(ctx, "join channel from query", "connectionId", req.ConnectionID, "channel", ch, "error", err)
			return Response{StatusCode: http.StatusInternalServerError}, nil
		}
	}
	m.emit(ctx, EventConnected, map[string]any{"connectionId": req.ConnectionID, "userId": req.UserID, "connectedAt": connectedAt.UTC().Format(time.RFC3339Nano)})
	resp := Response{StatusCode: http.StatusOK}
	// Browsers abort a handshake whose response names none of the
	// subprotocols they offered (a token may travel there).
	if proto := auth.ResponseSubprotocol(req.Event.Headers); proto != "" {
		resp.Headers = map[string]string{"Sec-WebSocket-Protocol": proto}
	}
	return resp, nil
}

// UndoConnect removes a connection whose $connect Handle accepted but whose
// caller then refuses it (the Pusher handler, when its own steps of $connect
// fail): the websocket.connected event already sent is followed by
// websocket.disconnected (statusCode 1011, reason "connect refused"), every
// channel it had joined by then by channel.left, and the ConnectionsOpened
// Handle counted by a ConnectionsClosed.
func (m *Manager) UndoConnect(ctx context.Context, id, userID string) {
	m.rollbackConnect(ctx, id)
	// Handle counted it opened: count it closed, so opened - closed stays
	// the connections that exist.
	m.cfg.Metrics.Add(metrics.ConnectionsClosed, 1)
	m.emit(context.WithoutCancel(ctx), EventDisconnected, map[string]any{
		"connectionId": id, "userId": userID, "statusCode": 1011, "reason": "connect refused",
	})
}

// rollbackConnect removes a connection whose $connect is refused after it
// was recorded. The channels it had joined by then (the connect hook's, the
// query's) already raised channel.joined events, so each gets its
// channel.left, and its presence channels their member_left;
// websocket.connected was not sent, so no disconnected follows.
func (m *Manager) rollbackConnect(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	if _, err := m.store.RemoveConnectionFunc(ctx, id, func(ctx context.Context, r store.Removed) {
		for _, ch := range r.Channels {
			if strings.HasPrefix(ch, protocol.PresencePrefix) {
				m.leavePresence(ctx, id, ch)
			}
			m.emit(ctx, EventChannelLeft, map[string]any{"connectionId": id, "channel": ch})
			// OnJoin ran for the joins taken back here: OnLeave pairs them.
			m.runHook(ctx, "channel.left", func() error { return callJoinLeave(m.cfg.Hooks.OnLeave, ctx, id, ch) })
		}
	}); err != nil {
		m.log.ErrorContext(ctx, "roll back refused connection", "connectionId", id, "error", err)
	}
}

// queryParam is a query parameter's value; a repeated one's values joined
// with commas (API Gateway keeps only the last in queryStringParameters and
// all of them in multiValueQueryStringParameters), so ?channels=a&channels=b
// is ?channels=a,b.
func queryParam(ev events.APIGatewayWebsocketProxyRequest, name string) string {
	if vs := ev.MultiValueQueryStringParameters[name]; len(vs) > 0 {
		return strings.Join(vs, ",")
	}
	return ev.QueryStringParameters[name]
}

func header(ev events.APIGatewayWebsocketProxyRequest, name string) string {
	for k, v := range ev.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (m *Manager) handleDisconnect(ctx context.Context, req *Request) (Response, error) {
	// The presence channels left (protocol v1's, and the OnRemoved
	// callbacks': the Pusher protocol's) are those among the memberships the
	// removal itself read and deleted, no extra lookup: a subscribe racing it
	// either joined before that read, or finds its membership gone and leaves
	// by itself (enterPresence).
	if _, err := m.store.RemoveConnectionFunc(ctx, req.ConnectionID, m.connectionRemoved); err != nil {
		m.log.ErrorContext(ctx, "remove connection", "connectionId", req.ConnectionID, "error", err)
		return Response{StatusCode: http.StatusInternalServerError}, nil
	}
	if m.cfg.Hooks.OnDisconnect != nil {
		_ = m.runHook(ctx, "disconnected", func() error { return m.cfg.Hooks.OnDisconnect(ctx, m, req) })
	}
	m.emit(ctx, EventDisconnected, map[string]any{
		"connectionId": req.ConnectionID, "userId": req.UserID,
		"statusCode": req.Event.RequestContext.DisconnectStatusCode, "reason": derefString(req.Event.RequestContext.DisconnectReason),
	})
	return Response{StatusCode: http.StatusOK}, nil
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (m *Manager) handleDefault(ctx context.Context, req *Request) (Response, error) {
	frame, perr := protocol.Parse(req.Body)
	var pe *protocol.Error
	if perr != nil && errors.As(perr, &pe) && m.cfg.Hooks.OnMessage != nil &&
		(pe.Code == protocol.CodeUnknownAction || (pe.Code == protocol.CodeBadRequest && frame.Action == "")) {
		// Not a protocol v1 frame: the user's message hook owns it.
		return m.runRoute(ctx, "message", m.cfg.Hooks.OnMessage, req), nil
	}
	if perr != nil {
		return reply(http.StatusOK, protocol.ErrorReply(perr)), nil
	}
	out, err := m.dispatch(ctx, req, frame)
	if err != nil {
		if !errors.As(err, &pe) {
			m.log.ErrorContext(ctx, "protocol action failed", "connectionId", req.ConnectionID, "action", frame.Action, "error", err)
		}
		return reply(http.StatusOK, protocol.ErrorReply(err)), nil
	}
	return reply(http.StatusOK, out), nil
}

func (m *Manager) dispatch(ctx context.Context, req *Request, f protocol.Frame) ([]byte, error) {
	switch f.Action {
	case protocol.ActionPing:
		return protocol.Pong(), nil
	case protocol.ActionWhoami:
		userID := req.UserID
		if userID == "" {
			if c, err := m.store.GetConnection(ctx, req.ConnectionID); err == nil {
				userID = c.UserID
			}
		}
		return protocol.Whoami(req.ConnectionID, userID), nil
	case protocol.ActionSubscribe:
		if !protocol.AllowsChannel(req.Channels, f.Channel) {
			return nil, protocol.Errorf(protocol.CodeForbidden, "not allowed to join %s", f.Channel)
		}
		presence := strings.HasPrefix(f.Channel, protocol.PresencePrefix)
		if presence && m.cfg.Presence == nil {
			return nil, protocol.Errorf(protocol.CodeForbidden, "presence channels are not enabled on this server")
		}
		if presence && req.UserID == "" {
			return nil, protocol.Errorf(protocol.CodeForbidden, "presence channels need an authenticated user")
		}
		added, err := m.joinAs(ctx, req.ConnectionID, f.Channel, true)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, protocol.Errorf(protocol.CodeBadRequest, "connection is not registered")
			}
			if errors.Is(err, store.ErrTooManyChannels) {
				return nil, protocol.Errorf(protocol.CodeTooManyChannels, "a connection may join at most %d channels; unsubscribe from one first", m.cfg.MaxChannelsPerConnection)
			}
			return nil, err
		}
		return m.subscribed(ctx, req, f, presence, added)
	case protocol.ActionHistory:
		if !protocol.AllowsChannel(req.Channels, f.Channel) {
			return nil, protocol.Errorf(protocol.CodeForbidden, "not allowed to read %s", f.Channel)
		}
		if strings.HasPrefix(f.Channel, protocol.PresencePrefix) && req.UserID == "" {
			// Like subscribe: a presence channel is for authenticated users.
			return nil, protocol.Errorf(protocol.CodeForbidden, "presence channels need an authenticated user")
		}
		lim, ok := m.cfg.HistoryRules.Limits(f.Channel)
		if !ok {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "channel %s keeps no history", f.Channel)
		}
		return m.streamReply(ctx, protocol.StreamReply{Type: replyHistory, Channel: f.Channel}, f.Since, f.Limit, lim)
	case protocol.ActionUnsubscribe:
		if _, err := m.Leave(ctx, req.ConnectionID, f.Channel); err != nil {
			return nil, err
		}
		return protocol.Unsubscribed(f.Channel), nil
	case protocol.ActionPublish:
		member, err := m.store.IsMember(ctx, req.ConnectionID, f.Channel)
		if err != nil {
			return nil, err
		}
		if !member {
			return nil, protocol.Errorf(protocol.CodeNotSubscribed, "subscribe to %s before publishing", f.Channel)
		}
		if lim, ok := m.cfg.HistoryRules.Limits(f.Channel); ok {
			return m.publishHistoryFrame(ctx, req, f, lim)
		}
		msg := protocol.Message(f.Channel, f.Data)
		if len(msg) > protocol.MaxFrame {
			return nil, protocol.Errorf(protocol.CodeTooLarge, "message of %d bytes exceeds %d", len(msg), protocol.MaxFrame)
		}
		rep, err := m.sendPages(ctx, msg, []string{req.ConnectionID}, func(fn store.PageFunc) error {
			return m.store.ChannelMembers(ctx, f.Channel, fn)
		})
		if err != nil {
			return nil, err
		}
		m.log.InfoContext(ctx, "published", "connectionId", req.ConnectionID, "channel", f.Channel,
			"delivered", rep.Delivered, "gone", rep.Gone, "failed", rep.Failed+rep.TooLarge+rep.Forbidden)
		m.emit(ctx, EventMessage, map[string]any{"connectionId": req.ConnectionID, "userId": req.UserID, "channel": f.Channel, "data": f.Data})
		return protocol.Published(f.Channel), nil
	}
	return nil, protocol.Errorf(protocol.CodeUnknownAction, "unknown action %q", f.Action)
}

func (m *Manager) handleCustom(ctx context.Context, req *Request) (Response, error) {
	fn := m.cfg.Hooks.Routes[req.RouteKey]
	if fn == nil {
		fn = m.cfg.Hooks.OnRoute
	}
	if fn == nil {
		if m.cfg.Events != nil {
			// No Go hook, but lifecycle events are on: the frame goes to
			// the bus as websocket.message (with its routeKey), where an
			// EventBridge rule handles it. Nothing is sent back, unless the
			// bus cannot take it: the event is its only delivery, so the
			// client learns it was not handed on.
			detail := map[string]any{"connectionId": req.ConnectionID, "userId": req.UserID, "routeKey": req.RouteKey, "body": string(req.Body)}
			// JSON escapes (quotes, <, >, &, control characters) can make a
			// 128 KB frame's event pass 256 KB; each byte takes at most 6,
			// so only a frame past a sixth of the bound (less room for the
			// other fields) is encoded here to be measured.
			if len(req.Body) > (MaxEventBytes-4096)/6 {
				if b, err := json.Marshal(detail); err == nil && len(b) > MaxEventBytes {
					return reply(http.StatusOK, protocol.ErrorReply(protocol.Errorf(protocol.CodeTooLarge,
						"route %q: the frame makes an event of %d bytes, over the event bus's %d", req.RouteKey, len(b), MaxEventBytes))), nil
				}
			}
			if err := m.emit(ctx, EventMessage, detail); err != nil {
				return reply(http.StatusOK, protocol.ErrorReply(protocol.Errorf(protocol.CodeInternal,
					"route %q: the frame could not be handed to the event bus", req.RouteKey))), nil
			}
			return Response{StatusCode: http.StatusOK}, nil
		}
		return reply(http.StatusOK, protocol.ErrorReply(protocol.Errorf(protocol.CodeUnknownAction, "no handler for route %q", req.RouteKey))), nil
	}
	return m.runRoute(ctx, req.RouteKey, fn, req), nil
}

func (m *Manager) runRoute(ctx context.Context, name string, fn RouteFunc, req *Request) Response {
	m.emit(ctx, EventMessage, map[string]any{"connectionId": req.ConnectionID, "userId": req.UserID, "routeKey": req.RouteKey, "body": string(req.Body)})
	var out []byte
	err := m.runHook(ctx, name, func() error {
		var err error
		out, err = fn(ctx, m, req)
		return err
	})
	if err != nil {
		return reply(http.StatusOK, protocol.ErrorReply(err))
	}
	return reply(http.StatusOK, out)
}

type endpointKey struct{}

func withEndpointHint(ctx context.Context, hint string) context.Context {
	return context.WithValue(ctx, endpointKey{}, hint)
}

func endpointHint(ctx context.Context) string {
	s, _ := ctx.Value(endpointKey{}).(string)
	return s
}
