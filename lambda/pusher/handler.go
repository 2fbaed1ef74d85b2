package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Defaults of Config.
const (
	DefaultMaxPresenceUsers = 100
	DefaultMaxUserInfoBytes = 1024
	DefaultClientEventRate  = 10
	DefaultCacheTTL         = 30 * time.Minute
	DefaultMaxEventBytes    = 10 * 1024
	// DefaultWelcomeTimeout bounds how long the welcome step keeps trying
	// to post connection_established while $connect has not returned.
	DefaultWelcomeTimeout = 10 * time.Second
)

// QueryAppKey is the $connect query parameter that carries the app key of
// ws://HOST/app/{key}: API Gateway has no path parameters on WebSocket APIs,
// so whatever serves /app/{key} (the local gateway, a CloudFront function)
// moves the key there.
const QueryAppKey = "app_key"

// storePrefix namespaces Pusher channels in the store. "/" is outside both
// protocol v1's and Pusher's channel grammar, so the faces never collide.
const storePrefix = "pusher/"

// StoreChannel is the store key of a Pusher channel.
func StoreChannel(ch string) string { return storePrefix + ch }

// Welcomer arranges for the welcome (connection_established, or an error and
// a close) to be posted right after $connect returns: on AWS nothing can be
// posted to a connection while its $connect runs.
type Welcomer interface {
	Welcome(ctx context.Context, w Welcome) error
}

// WelcomerFunc adapts a function to Welcomer.
type WelcomerFunc func(ctx context.Context, w Welcome) error

// Welcome implements Welcomer.
func (f WelcomerFunc) Welcome(ctx context.Context, w Welcome) error { return f(ctx, w) }

// Welcome is the asynchronous welcome step's event: the Lambda invokes
// itself with {"pusherWelcome": {...}}.
type Welcome struct {
	// ConnectionID is the new connection.
	ConnectionID string `json:"connectionId"`
	// SocketID is its socket id; empty when Code is set.
	SocketID string `json:"socketId,omitempty"`
	// Endpoint is the management endpoint the connection came through.
	Endpoint string `json:"endpoint,omitempty"`
	// Code, when not zero, is a pusher:error code (4001, 4007): the step
	// sends the error and closes the connection.
	Code int `json:"code,omitempty"`
	// Message goes with Code.
	Message string `json:"message,omitempty"`
	// ConnectedAt is the handshake time in Unix milliseconds (for the latency log).
	ConnectedAt int64 `json:"connectedAt,omitempty"`
}

// WelcomeEvent is the payload of the welcome step's invocation.
type WelcomeEvent struct {
	// Welcome is the step to run.
	Welcome *Welcome `json:"pusherWelcome"`
}

// Config configures a Handler.
type Config struct {
	// App is the Pusher app this handler serves (required).
	App App
	// Manager is the runtime shared with protocol v1 (required).
	Manager *realtime.Manager
	// Presence keeps presence channel members (required).
	Presence store.Presence
	// Values keeps socket ids, cache channel events and rate windows (required).
	Values store.Values
	// Welcomer runs the welcome step after $connect (required).
	Welcomer Welcomer
	// MaxPresenceUsers caps users per presence channel (default 100).
	MaxPresenceUsers int
	// MaxUserInfoBytes caps channel_data.user_info (default 1024).
	MaxUserInfoBytes int
	// ClientEventRate is how many client events a connection may send per second (default 10).
	ClientEventRate int
	// DisableClientEvents refuses every client event with 4301.
	DisableClientEvents bool
	// CacheTTL is how long a cache channel keeps its last event (default 30 minutes).
	CacheTTL time.Duration
	// ActivityTimeout is the activity_timeout in seconds announced in
	// connection_established (default ActivityTimeout, 120).
	ActivityTimeout int
	// MaxEventBytes caps an HTTP API event's data (default 10 KB, Pusher's limit).
	MaxEventBytes int
	// WelcomeTimeout bounds the welcome step's retries (default 10 s).
	WelcomeTimeout time.Duration
	// Logger logs; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler speaks the Pusher Channels protocol 7 on API Gateway WebSocket
// events, the Pusher HTTP API on HTTP events, and runs the welcome step, all
// through one Lambda entry point (Invoke).
type Handler struct {
	cfg Config
	m   *realtime.Manager
	log *slog.Logger
	// removed leaves the presence channels among a connection's channels,
	// announcing member_removed for users whose last connection it was: on
	// $disconnect (cleanup) and for connections the Manager removed without
	// one (LeavePresence through this handler's Manager).
	removed store.RemovedFunc
}

// NewHandler validates cfg and returns a Handler.
func NewHandler(cfg Config) (*Handler, error) {
	if err := cfg.App.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Manager == nil || cfg.Presence == nil || cfg.Values == nil || cfg.Welcomer == nil:
		return nil, errors.New("pusher: Manager, Presence, Values and Welcomer are required")
	}
	if cfg.MaxPresenceUsers <= 0 {
		cfg.MaxPresenceUsers = DefaultMaxPresenceUsers
	}
	if cfg.MaxUserInfoBytes <= 0 {
		cfg.MaxUserInfoBytes = DefaultMaxUserInfoBytes
	}
	if cfg.ClientEventRate <= 0 {
		cfg.ClientEventRate = DefaultClientEventRate
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if cfg.ActivityTimeout <= 0 {
		cfg.ActivityTimeout = ActivityTimeout
	}
	if cfg.WelcomeTimeout <= 0 {
		cfg.WelcomeTimeout = DefaultWelcomeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, m: cfg.Manager, log: cfg.Logger, removed: LeavePresence(cfg.Presence, cfg.Manager, cfg.Logger)}
	// A connection removed without $disconnect (410 on a send, Cleanup)
	// leaves its presence channels too.
	cfg.Manager.OnRemoved(h.removed)
	return h, nil
}

// Invoke is the Lambda entry point: a welcome step ({"pusherWelcome":...}),
// an HTTP API request (a Lambda function URL or HTTP API payload 2.0 event)
// or an API Gateway WebSocket event.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		Welcome        *Welcome `json:"pusherWelcome"`
		RequestContext struct {
			HTTP *json.RawMessage `json:"http"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("pusher: decode event: %w", err)
	}
	switch {
	case probe.Welcome != nil:
		return nil, h.RunWelcome(ctx, *probe.Welcome)
	case probe.RequestContext.HTTP != nil:
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, fmt.Errorf("pusher: decode http event: %w", err)
		}
		return h.ServeAPI(ctx, req), nil
	}
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("pusher: decode websocket event: %w", err)
	}
	return h.Handle(ctx, ev)
}

// Handle processes one API Gateway WebSocket event. Replies to the sender
// travel as the route response.
func (h *Handler) Handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (realtime.Response, error) {
	ctx = realtime.WithEndpoint(ctx, realtime.EventEndpoint(ev))
	switch ev.RequestContext.RouteKey {
	case realtime.RouteConnect:
		return h.connect(ctx, ev)
	case realtime.RouteDisconnect:
		// The Manager's removal leaves the presence channels among the
		// memberships it deletes, through h.removed (OnRemoved).
		return h.m.Handle(ctx, ev)
	default:
		h.m.Metrics().Add(metrics.MessagesReceived, 1)
		body := []byte(ev.Body)
		out := h.message(ctx, ev.RequestContext.ConnectionID, body, h.receivedAt(ev))
		return realtime.Response{StatusCode: http.StatusOK, Body: string(out)}, nil
	}
}

// receivedAt is when API Gateway received the message (requestTimeEpoch),
// or now for an event without it.
func (h *Handler) receivedAt(ev events.APIGatewayWebsocketProxyRequest) time.Time {
	if ms := ev.RequestContext.RequestTimeEpoch; ms > 0 {
		return time.UnixMilli(ms)
	}
	return h.cfg.Now()
}

func (h *Handler) connect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (realtime.Response, error) {
	// Protocol v1's ?channels= joins would put a Pusher connection in v1
	// channels (v1 frames); Pusher clients subscribe with frames instead.
	recordEv := ev
	if _, ok := ev.QueryStringParameters["channels"]; ok {
		recordEv.QueryStringParameters = without(ev.QueryStringParameters, "channels")
	}
	if _, ok := ev.MultiValueQueryStringParameters["channels"]; ok {
		recordEv.MultiValueQueryStringParameters = without(ev.MultiValueQueryStringParameters, "channels")
	}
	resp, err := h.m.Handle(ctx, recordEv)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	id := ev.RequestContext.ConnectionID
	uid, _ := realtime.AuthorizerContext(ev.RequestContext.Authorizer)
	w := Welcome{ConnectionID: id, Endpoint: realtime.EventEndpoint(ev), ConnectedAt: ev.RequestContext.ConnectedAt}
	q := ev.QueryStringParameters
	proto, perr := strconv.Atoi(q["protocol"])
	switch {
	case q[QueryAppKey] != h.cfg.App.Key:
		w.Code, w.Message = CodeAppNotFound, fmt.Sprintf("App key %s not in this cluster. Did you forget to specify the cluster?", q[QueryAppKey])
	case q["protocol"] != "" && (perr != nil || proto < Protocol):
		w.Code, w.Message = CodeProtocolTooOld, "Unsupported protocol version"
	default:
		expires := h.cfg.Now().Add(store.DefaultTTL)
		sid, err := h.claimSocketID(ctx, id, expires)
		if err != nil {
			h.log.ErrorContext(ctx, "claim socket id", "connectionId", id, "error", err)
			h.m.UndoConnect(ctx, id, uid)
			return realtime.Response{StatusCode: http.StatusInternalServerError}, nil
		}
		w.SocketID = sid
		// A user the JWT authorizer accepted counts as signed in: sends to
		// the user and terminate_connections reach the connection.
		if uid != "" && ValidChannel(PrefixServerToUser+uid) {
			if _, err := h.m.Store().Join(ctx, id, StoreChannel(PrefixServerToUser+uid)); err != nil {
				h.log.ErrorContext(ctx, "join authorizer user channel", "connectionId", id, "error", err)
				h.m.UndoConnect(ctx, id, uid)
				return realtime.Response{StatusCode: http.StatusInternalServerError}, nil
			}
		}
	}
	if err := h.cfg.Welcomer.Welcome(ctx, w); err != nil {
		h.log.ErrorContext(ctx, "schedule welcome", "connectionId", id, "error", err)
		h.m.UndoConnect(ctx, id, uid)
		return realtime.Response{StatusCode: http.StatusInternalServerError}, nil
	}
	return resp, nil
}

func without[V any](m map[string]V, key string) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

const maxSocketIDAttempts = 8

func socketKey(sid string) string { return "pusher-socket#" + sid }

// claimSocketID maps a socket id to the connection with a conditional put:
// the first free candidate wins, so a socket id names exactly one connection.
func (h *Handler) claimSocketID(ctx context.Context, id string, expires time.Time) (string, error) {
	for attempt := range maxSocketIDAttempts {
		sid := SocketID(id, attempt)
		ok, err := h.cfg.Values.PutValue(ctx, socketKey(sid), []byte(id), expires, true)
		if err != nil {
			return "", fmt.Errorf("claim socket id %s for %s: %w", sid, id, err)
		}
		if ok {
			return sid, nil
		}
		if owner, err := h.cfg.Values.GetValue(ctx, socketKey(sid)); err == nil && string(owner) == id {
			return sid, nil
		}
	}
	return "", fmt.Errorf("claim socket id for %s: %d candidates taken", id, maxSocketIDAttempts)
}

// SocketIDOf returns the connection's socket id.
func (h *Handler) SocketIDOf(ctx context.Context, id string) (string, error) {
	for attempt := range maxSocketIDAttempts {
		sid := SocketID(id, attempt)
		owner, err := h.cfg.Values.GetValue(ctx, socketKey(sid))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("socket id of %s: %w", id, err)
		}
		if string(owner) == id {
			return sid, nil
		}
	}
	return "", fmt.Errorf("socket id of %s: %w", id, store.ErrNotFound)
}

// ConnectionOf returns the connection a socket id names.
func (h *Handler) ConnectionOf(ctx context.Context, socketID string) (string, error) {
	if !ValidSocketID(socketID) {
		return "", fmt.Errorf("connection of socket %q: invalid socket id", socketID)
	}
	owner, err := h.cfg.Values.GetValue(ctx, socketKey(socketID))
	if err != nil {
		return "", fmt.Errorf("connection of socket %s: %w", socketID, err)
	}
	return string(owner), nil
}

// RunWelcome posts connection_established (or the error and a close),
// retrying while API Gateway still answers 410 because $connect has not
// returned yet.
func (h *Handler) RunWelcome(ctx context.Context, w Welcome) error {
	ctx = realtime.WithEndpoint(ctx, w.Endpoint)
	ctx, cancel := context.WithTimeout(ctx, h.cfg.WelcomeTimeout)
	defer cancel()
	frame := ConnectionEstablished(w.SocketID, h.cfg.ActivityTimeout)
	if w.Code != 0 {
		frame = ErrorFrame(w.Code, w.Message)
	}
	if err := h.m.SendToNewConnection(ctx, w.ConnectionID, frame); err != nil {
		if !errors.Is(err, sender.ErrGone) {
			return fmt.Errorf("welcome %s: %w", w.ConnectionID, err)
		}
		h.log.InfoContext(ctx, "welcome gave up: connection never came up", "connectionId", w.ConnectionID)
		return nil
	}
	latency := int64(-1)
	if w.ConnectedAt > 0 {
		latency = h.cfg.Now().UnixMilli() - w.ConnectedAt
	}
	h.log.InfoContext(ctx, "welcomed", "connectionId", w.ConnectionID, "socketId", w.SocketID, "code", w.Code, "sinceHandshakeMs", latency)
	if w.Code != 0 {
		if err := h.m.CloseConnection(ctx, w.ConnectionID); err != nil && !errors.Is(err, sender.ErrGone) {
			return fmt.Errorf("welcome %s: close: %w", w.ConnectionID, err)
		}
	}
	return nil
}

// cleanup leaves every presence channel of a connection that is going away
// (terminate_connections, before it closes them), announcing member_removed
// for users whose last connection it was.
func (h *Handler) cleanup(ctx context.Context, id string) {
	chans, err := h.m.Store().ConnectionChannels(ctx, id)
	if err != nil {
		h.log.ErrorContext(ctx, "channels of leaving connection", "connectionId", id, "error", err)
		return
	}
	h.removed(ctx, store.Removed{ID: id, Channels: chans})
}

// LeavePresenceQuietly returns a store.RemovedFunc for a runtime that cannot
// post to the Pusher API: it leaves the Pusher presence channels of each
// removed connection in p, so member lists, user_count and the member limit
// stop counting it, but announces nothing. Register it with
// realtime.Manager.OnRemoved. A runtime that can post to the Pusher stage
// uses [LeavePresence] instead.
func LeavePresenceQuietly(p store.Presence, log *slog.Logger) store.RemovedFunc {
	return LeavePresence(p, nil, log)
}

// LeavePresence returns a store.RemovedFunc for a runtime other than the
// Pusher-mode function that removes Pusher connections, such as the
// publisher function, whose scheduled Cleanup also removes expired Pusher
// connections (same table). It leaves the Pusher presence channels of each
// removed connection in p and, when that was the user's last connection in a
// channel, sends member_removed to the channel's other members through
// announce: a Manager on the same table whose management endpoint is the
// Pusher stage's (WS_PUSHER_MANAGEMENT_ENDPOINT), exactly as $disconnect
// would. A nil announce announces nothing (LeavePresenceQuietly); a nil log
// logs to slog.Default(). Register it with realtime.Manager.OnRemoved, on
// announce too, so that a member found gone (410) while announcing leaves as
// well.
func LeavePresence(p store.Presence, announce *realtime.Manager, log *slog.Logger) store.RemovedFunc {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, r store.Removed) {
		for _, sc := range r.Channels {
			ch, ok := strings.CutPrefix(sc, storePrefix)
			if !ok || !IsPresence(ch) {
				continue
			}
			leavePresence(ctx, p, announce, log, r.ID, ch)
		}
	}
}

func (h *Handler) leavePresence(ctx context.Context, id, ch string) {
	leavePresence(ctx, h.cfg.Presence, h.m, h.log, id, ch)
}

// leavePresence takes connection id out of Pusher presence channel ch and,
// with the user's last connection there, sends member_removed to the others
// through m (nil: to nobody).
func leavePresence(ctx context.Context, p store.Presence, m *realtime.Manager, log *slog.Logger, id, ch string) {
	member, last, err := p.LeavePresence(ctx, StoreChannel(ch), id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			log.ErrorContext(ctx, "leave presence", "connectionId", id, "channel", ch, "error", err)
		}
		return
	}
	if last && m != nil {
		if _, err := m.SendToStoredChannel(ctx, StoreChannel(ch), MemberRemoved(ch, member.UserID), id); err != nil {
			log.ErrorContext(ctx, "send member_removed", "channel", ch, "error", err)
		}
	}
}

// Manager returns the runtime the handler shares with protocol v1.
func (h *Handler) Manager() *realtime.Manager { return h.m }
