// Package realtime is the library users import in their Lambdas and backends:
// a [Manager] that sends to connections, users, channels and everyone, manages
// channel membership, answers lookups and stats, cleans stale entries, and
// handles API Gateway WebSocket events (see Handle) with user hooks.
//
// It carries over every operation of the original Laravel package
// (WebSocketManager) in Go style: context first, errors instead of booleans,
// per-recipient results.
package realtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// ErrNoEndpoint means no management endpoint is configured and none could be
// derived from an API Gateway event yet.
var ErrNoEndpoint = errors.New("no management endpoint: set Config.ManagementEndpoint (WS_MANAGEMENT_ENDPOINT)")

// ErrInvalidChannel means a channel name is outside [A-Za-z0-9_-=@,.;:]{1,164}.
var ErrInvalidChannel = errors.New("invalid channel name")

// DefaultMaxChannelsPerConnection is the cap on the channels one connection
// may join when Config.MaxChannelsPerConnection is zero: a connection's
// removal must fit in a $disconnect, and each of its channels costs one
// membership item.
const DefaultMaxChannelsPerConnection = 100

// MaxUsersPerSend bounds the users of one SendToUsers call.
const MaxUsersPerSend = 1000

// userLookupConcurrency bounds the users SendToUsers looks up and sends to at once.
const userLookupConcurrency = 16

// ErrTooManyUsers means SendToUsers was given more than MaxUsersPerSend users.
var ErrTooManyUsers = fmt.Errorf("more than %d users in one send", MaxUsersPerSend)

// EventPublisher receives lifecycle events (connected, disconnected, message,
// channel.joined, channel.left), for example to an EventBridge bus. Errors are
// logged and never fail the operation that raised the event.
type EventPublisher interface {
	Publish(ctx context.Context, detailType string, detail map[string]any) error
}

// Lifecycle event detail types.
const (
	EventConnected     = "websocket.connected"
	EventDisconnected  = "websocket.disconnected"
	EventMessage       = "websocket.message"
	EventChannelJoined = "websocket.channel.joined"
	EventChannelLeft   = "websocket.channel.left"
)

// Config builds a Manager.
type Config struct {
	// Store is the connection registry (required).
	Store store.Store
	// Poster posts to connections. When nil, the Manager builds one per
	// endpoint with NewPoster, from ManagementEndpoint or, failing that, from
	// the first event's https://{domainName}/{stage}.
	Poster sender.Poster
	// NewPoster builds a Poster for an endpoint; required when Poster is nil.
	NewPoster func(endpoint string) (sender.Poster, error)
	// ManagementEndpoint overrides the endpoint derived from events (custom domains).
	ManagementEndpoint string
	// Sender configures fan-out: concurrency, retries, rate cap.
	Sender sender.Options
	// TTL is how long a connection record lives (0: store.DefaultTTL; a
	// negative one is an error).
	TTL time.Duration
	// MaxChannelsPerConnection caps the channels one connection may join
	// (WS_MAX_CHANNELS_PER_CONNECTION); zero means
	// DefaultMaxChannelsPerConnection. Join beyond it fails with
	// store.ErrTooManyChannels: a client's subscribe answers
	// too_many_channels, a $connect whose ?channels= lists more is refused
	// with 400.
	MaxChannelsPerConnection int
	// Distributor hands channel sends and broadcasts above its threshold to
	// fan-out workers (package fanout over SQS); nil sends everything from
	// this process.
	Distributor Distributor
	// History keeps the streams of history channels; required with HistoryRules.
	History store.History
	// HistoryRules opt channels into history (WS_HISTORY); see docs/protocol.md.
	HistoryRules HistoryRules
	// Presence keeps the users of protocol v1 presence-* channels; nil
	// refuses subscribes to them.
	Presence store.Presence
	// Events receives lifecycle events; nil disables them.
	Events EventPublisher
	// Hooks are the user's callbacks.
	Hooks Hooks
	// Logger logs one line per event; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Metrics receives connection, message and delivery counters (see
	// package metrics); it is also the senders' recorder unless
	// Sender.Metrics is set. nil records nothing.
	Metrics metrics.Recorder
}

// Manager is safe for concurrent use. Build it with New, once per process
// (at Lambda cold start), and reuse it: it keeps its HTTP connections and
// learnt send rate. The zero value is not usable.
type Manager struct {
	cfg   Config
	store store.Store
	log   *slog.Logger

	mu      sync.Mutex
	senders map[string]*sender.Sender // by endpoint; "" is the configured Poster
	removed []store.RemovedFunc       // OnRemoved callbacks
}

// OnRemoved registers fn to run for each connection this Manager removes:
// on its $disconnect, one that answered 410 GoneException to a post, one
// Cleanup removed, one closed by Disconnect. fn gets the channels whose
// memberships went with it (read by the removal itself), so a protocol can
// leave the presence channels among them (the Pusher handler registers
// itself here). Protocol v1 presence-* channels are left by the Manager
// itself.
func (m *Manager) OnRemoved(fn store.RemovedFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removed = append(m.removed, fn)
}

// connectionRemoved runs after every removal of a connection ($disconnect,
// 410, Cleanup, Disconnect): it leaves the connection's protocol v1 presence
// channels (member_left once per user)
// and calls the OnRemoved callbacks. Its cost is one presence leave per
// presence channel of the connection; nothing is scanned.
func (m *Manager) connectionRemoved(ctx context.Context, r store.Removed) {
	ctx = context.WithoutCancel(ctx)
	for _, ch := range r.Channels {
		if strings.HasPrefix(ch, protocol.PresencePrefix) {
			m.leavePresence(ctx, r.ID, ch)
		}
	}
	m.mu.Lock()
	hooks := slices.Clone(m.removed)
	m.mu.Unlock()
	for _, fn := range hooks {
		fn(ctx, r)
	}
}

// New validates cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("realtime: Config.Store is required")
	}
	if cfg.Poster == nil && cfg.NewPoster == nil {
		return nil, errors.New("realtime: Config.Poster or Config.NewPoster is required")
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("realtime: Config.TTL %s: want a positive duration (0 for the default %s)", cfg.TTL, store.DefaultTTL)
	}
	if cfg.TTL == 0 {
		cfg.TTL = store.DefaultTTL
	}
	if cfg.MaxChannelsPerConnection < 0 {
		return nil, fmt.Errorf("realtime: Config.MaxChannelsPerConnection %d: want at least 1 (0 for the default %d)", cfg.MaxChannelsPerConnection, DefaultMaxChannelsPerConnection)
	}
	if cfg.MaxChannelsPerConnection == 0 {
		cfg.MaxChannelsPerConnection = DefaultMaxChannelsPerConnection
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, r := range cfg.HistoryRules {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("realtime: %w", err)
		}
	}
	if len(cfg.HistoryRules) > 0 && cfg.History == nil {
		return nil, ErrNoHistory
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.ManagementEndpoint = strings.TrimSuffix(cfg.ManagementEndpoint, "/")
	cfg.Metrics = metrics.Or(cfg.Metrics)
	if cfg.Sender.Metrics == nil {
		cfg.Sender.Metrics = cfg.Metrics
	}
	m := &Manager{cfg: cfg, store: cfg.Store, log: cfg.Logger, senders: map[string]*sender.Sender{}}
	return m, nil
}

// MaxChannelsPerConnection is the cap on one connection's channels.
func (m *Manager) MaxChannelsPerConnection() int { return m.cfg.MaxChannelsPerConnection }

// Metrics returns the recorder the Manager counts into (Config.Metrics, a
// no-op recorder when unset), for a protocol handler's own counts.
func (m *Manager) Metrics() metrics.Recorder { return m.cfg.Metrics }

// Presence returns the protocol v1 presence store (Config.Presence), or nil.
func (m *Manager) Presence() store.Presence { return m.cfg.Presence }

// Store returns the registry the manager uses.
func (m *Manager) Store() store.Store { return m.store }

// senderFor returns the fan-out sender for endpoint hint ("" = configured).
func (m *Manager) senderFor(hint string) (*sender.Sender, error) {
	s, _, err := m.senderAndEndpoint(hint)
	return s, err
}

// senderAndEndpoint is senderFor that also names the endpoint the sender
// posts to ("" when Config.Poster was given).
func (m *Manager) senderAndEndpoint(hint string) (*sender.Sender, string, error) {
	key := ""
	if m.cfg.Poster == nil {
		key = m.cfg.ManagementEndpoint
		if key == "" {
			key = hint
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.senders[key]; ok {
		return s, key, nil
	}
	if key == "" && m.cfg.Poster == nil {
		// Reuse the one endpoint learnt from events, if any.
		for k, s := range m.senders {
			return s, k, nil
		}
		return nil, "", ErrNoEndpoint
	}
	poster := m.cfg.Poster
	if poster == nil {
		p, err := m.cfg.NewPoster(key)
		if err != nil {
			return nil, "", fmt.Errorf("management api for %s: %w", key, err)
		}
		poster = p
	}
	opts := m.cfg.Sender
	userOnGone := opts.OnGone
	opts.OnGone = func(ctx context.Context, id string) {
		m.RemoveGone(ctx, id)
		if userOnGone != nil {
			userOnGone(ctx, id)
		}
	}
	s := sender.NewSender(poster, opts)
	m.senders[key] = s
	return s, key, nil
}

// RemoveGone drops a connection that answered 410, with all its memberships,
// and leaves its presence channels (see OnRemoved); errors are logged. The
// Manager's own senders call it; a sender built elsewhere (the fan-out
// worker's) can use it as its sender.Options.OnGone.
func (m *Manager) RemoveGone(ctx context.Context, id string) {
	// Detach from the fan-out's cancellation: the cleanup must finish.
	ctx = context.WithoutCancel(ctx)
	removed, err := RemoveGoneFunc(ctx, m.store, id, m.cfg.Now(), m.connectionRemoved)
	if err != nil {
		m.log.ErrorContext(ctx, "remove gone connection", "connectionId", id, "error", err)
		return
	}
	m.log.InfoContext(ctx, "gone connection", "connectionId", id, "removed", removed)
}

// GoneGrace is how old a pending connection (store.Connection.Pending: recorded
// by its $connect, not heard from since) must be before a 410 GoneException
// removes it. API Gateway answers 410 to posts made while a connection is
// still in its $connect (up to 29 s), so such a connection may be about to
// go live; if it really is dead, its $disconnect or Cleanup removes it. A
// connection that has sent a subscribe is up, and a 410 removes it at once,
// as it does any connection recorded by other code.
const GoneGrace = 30 * time.Second

// RemoveGone removes a connection that answered 410 GoneException, with all
// its memberships, unless it is pending and connected less than GoneGrace
// before now. It
// reports whether it removed anything. It does not leave presence channels:
// Manager.RemoveGone (what the Manager's and the fan-out worker's senders
// call) does, through RemoveGoneFunc.
func RemoveGone(ctx context.Context, st store.Store, id string, now time.Time) (bool, error) {
	return RemoveGoneFunc(ctx, st, id, now, nil)
}

// RemoveGoneFunc is RemoveGone that hands the removed connection and its
// channels to fn (see store.Store.RemoveConnectionFunc), so the caller can
// leave its presence channels.
func RemoveGoneFunc(ctx context.Context, st store.Store, id string, now time.Time, fn store.RemovedFunc) (bool, error) {
	c, err := st.GetConnection(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Expired or half removed: clear whatever is left.
	case err != nil:
		return false, fmt.Errorf("remove gone connection %s: %w", id, err)
	case c.Pending && now.Sub(c.ConnectedAt) < GoneGrace:
		return false, nil
	}
	return st.RemoveConnectionFunc(ctx, id, fn)
}

// SendToConnection sends data, unchanged, to one connection. A gone connection
// is reported as sender.ErrGone and removed from the registry, unless it is
// pending and connected less than GoneGrace ago (it may still be finishing
// its handshake).
func (m *Manager) SendToConnection(ctx context.Context, id string, data []byte) error {
	rep, err := m.SendToConnections(ctx, []string{id}, data)
	if err != nil {
		return err
	}
	if len(rep.Results) == 1 && rep.Results[0].Err != nil {
		return rep.Results[0].Err
	}
	return nil
}

// SendToNewConnection sends data to a connection whose $connect may not
// have returned yet (a welcome posted from the $connect handler's
// goroutine): API Gateway answers 410 until it has, and those 410s are
// posted again, with short waits, until ctx ends (see
// sender.Sender.SendToNewConnection). The metrics count one send to one
// recipient, and the waiting 410s never remove the connection. It returns
// nil once delivered; an error wrapping sender.ErrGone if ctx ended while
// the connection still answered 410; otherwise the send's error. Data and
// id are checked as SendToConnections checks them.
func (m *Manager) SendToNewConnection(ctx context.Context, id string, data []byte) error {
	if err := checkSend(data, id); err != nil {
		return err
	}
	s, err := m.senderFor(endpointHint(ctx))
	if err != nil {
		return err
	}
	res := s.SendToNewConnection(ctx, id, data)
	if res.Status == sender.StatusFailed {
		m.cfg.Metrics.Add(metrics.DeliveriesLost, 1)
	}
	return res.Err
}

// SendToConnections sends data to each id, concurrently, and returns one
// result per distinct id (a repeated id is sent to once). Data over API Gateway's limit is an error wrapping
// sender.ErrTooLarge, and an id that fails store.ValidConnectionID one
// wrapping store.ErrInvalidID, before anything is sent; a send cut short by
// ctx returns ctx's error with the report.
func (m *Manager) SendToConnections(ctx context.Context, ids []string, data []byte) (sender.Report, error) {
	if err := checkSend(data, ids...); err != nil {
		return sender.Report{}, err
	}
	s, err := m.senderFor(endpointHint(ctx))
	if err != nil {
		return sender.Report{}, err
	}
	rep := s.Send(ctx, ids, data)
	m.cfg.Metrics.Add(metrics.DeliveriesLost, float64(rep.Failed))
	if rep.Failed > 0 && ctx.Err() != nil {
		return rep, fmt.Errorf("send to %d connections: %w", len(ids), ctx.Err())
	}
	return rep, nil
}

// checkSend is the checks of a send to connection ids, before anything is
// sent: the data's size (checkPayload) and each id (store.ValidConnectionID).
func checkSend(data []byte, ids ...string) error {
	if err := checkPayload(data); err != nil {
		return err
	}
	for _, id := range ids {
		if !store.ValidConnectionID(id) {
			return fmt.Errorf("send to connection %.*q: %w", store.MaxConnectionIDLength, id, store.ErrInvalidID)
		}
	}
	return nil
}

// checkPayload refuses data over API Gateway's message limit.
func checkPayload(data []byte) error {
	if len(data) > sender.MaxPayload {
		return fmt.Errorf("send %d bytes: %w (API Gateway's limit is %d)", len(data), sender.ErrTooLarge, sender.MaxPayload)
	}
	return nil
}

// SendToUser sends data to every live connection of the user. A user id
// that fails store.ValidUserID is an error wrapping store.ErrInvalidUserID.
func (m *Manager) SendToUser(ctx context.Context, userID string, data []byte) (sender.Report, error) {
	if !store.ValidUserID(userID) {
		return sender.Report{}, fmt.Errorf("send to user of %d bytes: %w", len(userID), store.ErrInvalidUserID)
	}
	if err := checkPayload(data); err != nil {
		return sender.Report{}, err
	}
	ids, err := m.store.UserConnections(ctx, userID)
	if err != nil {
		return sender.Report{}, fmt.Errorf("send to user %s: %w", userID, err)
	}
	return m.SendToConnections(ctx, ids, data)
}

// SendToUsers sends data to every live connection of each user and returns a
// report per user. It takes at most MaxUsersPerSend distinct users
// (ErrTooManyUsers otherwise) and works on up to 16 of them at once. Every
// user id is checked (store.ValidUserID) and the data's size before
// anything is sent; a user whose send fails does not stop the others: the
// reports of those that were sent come back with the joined errors.
func (m *Manager) SendToUsers(ctx context.Context, userIDs []string, data []byte) (map[string]sender.Report, error) {
	users := make([]string, 0, len(userIDs))
	seen := make(map[string]struct{}, len(userIDs))
	for _, u := range userIDs {
		if _, dup := seen[u]; !dup {
			seen[u] = struct{}{}
			users = append(users, u)
		}
	}
	if len(users) > MaxUsersPerSend {
		return nil, fmt.Errorf("send to %d users: %w", len(users), ErrTooManyUsers)
	}
	for _, u := range users {
		if !store.ValidUserID(u) {
			return nil, fmt.Errorf("send to user of %d bytes: %w", len(u), store.ErrInvalidUserID)
		}
	}
	if err := checkPayload(data); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var errs []error
	out := make(map[string]sender.Report, len(users))
	var g errgroup.Group
	g.SetLimit(userLookupConcurrency)
	for _, u := range users {
		g.Go(func() error {
			rep, err := m.SendToUser(ctx, u, data)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			out[u] = rep
			return nil
		})
	}
	_ = g.Wait()
	return out, errors.Join(errs...)
}

// SendToChannel sends data to every member of the channel except the ids in
// exclude (the publisher of a client message). On a history channel
// (Config.HistoryRules) data is stored as the stream's next message and
// delivered in the v1 envelope {"type":"message","channel","data","offset","epoch"}. Members are streamed from the
// store page by page; above the Distributor's threshold they are enqueued for
// fan-out workers and the report counts Batches. Report.Results lists only the
// recipients that were not delivered, so memory stays flat for large channels.
func (m *Manager) SendToChannel(ctx context.Context, channel string, data []byte, exclude ...string) (sender.Report, error) {
	if !protocol.ValidChannel(channel) {
		return sender.Report{}, fmt.Errorf("send to channel %q: %w", channel, ErrInvalidChannel)
	}
	if lim, ok := m.cfg.HistoryRules.Limits(channel); ok {
		_, rep, err := m.publishToHistory(ctx, channel, protocol.Payload(data), lim, exclude)
		return rep, err
	}
	return m.sendPages(ctx, data, exclude, func(fn store.PageFunc) error {
		return m.store.ChannelMembers(ctx, channel, fn)
	})
}

// Broadcast sends data to every live connection except the ids in exclude,
// like SendToChannel.
func (m *Manager) Broadcast(ctx context.Context, data []byte, exclude ...string) (sender.Report, error) {
	return m.sendPages(ctx, data, exclude, func(fn store.PageFunc) error {
		return m.store.AllConnections(ctx, fn)
	})
}

func (m *Manager) sendPages(ctx context.Context, data []byte, exclude []string, iterate func(store.PageFunc) error) (sender.Report, error) {
	if len(data) > sender.MaxPayload {
		// Refused before reading the audience: one result per member of a
		// large channel would only say the same thing.
		return sender.Report{}, fmt.Errorf("send %d bytes: %w (API Gateway's limit is %d)", len(data), sender.ErrTooLarge, sender.MaxPayload)
	}
	s, endpoint, err := m.senderAndEndpoint(endpointHint(ctx))
	if err != nil {
		return sender.Report{}, err
	}
	skip := make(map[string]struct{}, len(exclude))
	for _, id := range exclude {
		skip[id] = struct{}{}
	}
	pages := func(fn func([]string) error) error {
		return iterate(func(ids []string) error {
			if len(skip) == 0 {
				return fn(ids)
			}
			kept := make([]string, 0, len(ids))
			for _, id := range ids {
				if _, ok := skip[id]; !ok {
					kept = append(kept, id)
				}
			}
			return fn(kept)
		})
	}
	var rep sender.Report
	if m.cfg.Distributor != nil {
		rep, err = m.cfg.Distributor.SendOrDistribute(ctx, s, endpoint, data, pages)
		m.cfg.Metrics.Add(metrics.BatchesEnqueued, float64(rep.Batches))
	} else {
		rep, err = s.SendPagesOmitDelivered(ctx, data, pages)
	}
	// Sent from this process, a failed recipient is not retried by anyone.
	m.cfg.Metrics.Add(metrics.DeliveriesLost, float64(rep.Failed))
	return rep, err
}

// ErrPresenceNeedsUser means a connection without a user was to join a
// presence channel.
var ErrPresenceNeedsUser = errors.New("presence channels need a connection with a user")

// ErrNoPresence means a presence channel was to be joined on a Manager
// without Config.Presence, where a client's subscribe to it is refused too.
var ErrNoPresence = errors.New("presence channels are not enabled: set Config.Presence")

// Join adds the connection to the channel and reports whether it is a new
// membership. It returns store.ErrNotFound for an unknown or removed
// connection and store.ErrTooManyChannels when the connection already holds
// Config.MaxChannelsPerConnection channels. On a presence channel (with
// Config.Presence) it joins as a client's subscribe does: the connection's
// user becomes a member (member_joined to the others on the user's first
// connection), and a connection without a user gets ErrPresenceNeedsUser.
// Without Config.Presence a presence channel gets ErrNoPresence, as a
// client's subscribe to it is refused (Leave still takes a membership back).
func (m *Manager) Join(ctx context.Context, id, channel string) (bool, error) {
	if !protocol.ValidChannel(channel) {
		return false, fmt.Errorf("join %s to %q: %w", id, channel, ErrInvalidChannel)
	}
	if !strings.HasPrefix(channel, protocol.PresencePrefix) {
		return m.join(ctx, id, channel)
	}
	if m.cfg.Presence == nil {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, ErrNoPresence)
	}
	c, err := m.store.GetConnection(ctx, id)
	if err != nil {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, err)
	}
	if c.UserID == "" {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, ErrPresenceNeedsUser)
	}
	added, err := m.join(ctx, id, channel)
	if err != nil {
		return false, err
	}
	if err := m.enterPresence(ctx, id, c.UserID, channel, c.ExpiresAt); err != nil {
		m.undoJoin(ctx, id, channel)
		return false, fmt.Errorf("join %s to presence %s: %w", id, channel, err)
	}
	return added, nil
}

// undoJoin takes back a membership whose presence record could not be
// written: without it the membership would be invisible to the others.
func (m *Manager) undoJoin(ctx context.Context, id, channel string) {
	removed, err := m.store.Leave(context.WithoutCancel(ctx), id, channel)
	if err != nil {
		m.log.ErrorContext(ctx, "roll back presence join", "connectionId", id, "channel", channel, "error", err)
		return
	}
	if removed {
		m.emit(ctx, EventChannelLeft, map[string]any{"connectionId": id, "channel": channel}) // after its channel.joined
	}
}

// join is Join without presence: the store's membership, the event and the hook.
func (m *Manager) join(ctx context.Context, id, channel string) (bool, error) {
	return m.joinAs(ctx, id, channel, false)
}

// joinAs is join; live is set for a join the connection asked for itself (a
// subscribe frame), which also records that it is up (store.JoinLive).
func (m *Manager) joinAs(ctx context.Context, id, channel string, live bool) (bool, error) {
	if !protocol.ValidChannel(channel) {
		return false, fmt.Errorf("join %s to %q: %w", id, channel, ErrInvalidChannel)
	}
	var (
		added bool
		err   error
	)
	if live {
		added, err = store.JoinLive(ctx, m.store, id, channel, m.cfg.MaxChannelsPerConnection)
	} else {
		added, err = m.store.JoinAtMost(ctx, id, channel, m.cfg.MaxChannelsPerConnection)
	}
	if err != nil {
		return false, err
	}
	if added {
		m.emit(ctx, EventChannelJoined, map[string]any{"connectionId": id, "channel": channel})
		m.runHook(ctx, "channel.joined", func() error { return callJoinLeave(m.cfg.Hooks.OnJoin, ctx, id, channel) })
	}
	return added, nil
}

// Leave removes the connection from the channel and reports whether it was a
// member. On a presence channel the connection leaves the members too
// (member_left to the others when it was the user's last connection).
func (m *Manager) Leave(ctx context.Context, id, channel string) (bool, error) {
	if !protocol.ValidChannel(channel) {
		return false, fmt.Errorf("leave %s from %q: %w", id, channel, ErrInvalidChannel)
	}
	removed, err := m.store.Leave(ctx, id, channel)
	if err != nil {
		return false, err
	}
	if strings.HasPrefix(channel, protocol.PresencePrefix) {
		m.leavePresence(ctx, id, channel)
	}
	if removed {
		m.emit(ctx, EventChannelLeft, map[string]any{"connectionId": id, "channel": channel})
		m.runHook(ctx, "channel.left", func() error { return callJoinLeave(m.cfg.Hooks.OnLeave, ctx, id, channel) })
	}
	return removed, nil
}

func callJoinLeave(fn func(context.Context, string, string) error, ctx context.Context, id, ch string) error {
	if fn == nil {
		return nil
	}
	return fn(ctx, id, ch)
}

func collect(ctx context.Context, iterate func(store.PageFunc) error) ([]string, error) {
	out := []string{}
	err := iterate(func(ids []string) error {
		out = append(out, ids...)
		return ctx.Err()
	})
	return out, err
}

// ConnectionsOfUser returns the ids of the user's live connections.
func (m *Manager) ConnectionsOfUser(ctx context.Context, userID string) ([]string, error) {
	if !store.ValidUserID(userID) {
		return nil, fmt.Errorf("connections of user of %d bytes: %w", len(userID), store.ErrInvalidUserID)
	}
	return m.store.UserConnections(ctx, userID)
}

// ConnectionsOfChannel returns the ids of the channel's live members. For
// large channels prefer SendToChannel, which streams. An invalid channel name
// is an error wrapping ErrInvalidChannel.
func (m *Manager) ConnectionsOfChannel(ctx context.Context, channel string) ([]string, error) {
	if !protocol.ValidChannel(channel) {
		return nil, fmt.Errorf("connections of channel %.*q: %w", 164, channel, ErrInvalidChannel)
	}
	return collect(ctx, func(fn store.PageFunc) error { return m.store.ChannelMembers(ctx, channel, fn) })
}

// ChannelsOfConnection returns the channels the connection has joined.
func (m *Manager) ChannelsOfConnection(ctx context.Context, id string) ([]string, error) {
	return m.store.ConnectionChannels(ctx, id)
}

// Channels returns every channel with at least one member.
func (m *Manager) Channels(ctx context.Context) ([]string, error) { return m.store.Channels(ctx) }

// Connection returns one connection's info (id, connected at, user, route key,
// source IP, user agent, channels) or store.ErrNotFound.
func (m *Manager) Connection(ctx context.Context, id string) (store.Connection, error) {
	return m.store.GetConnection(ctx, id)
}

// Exists reports whether the connection is live in the registry.
func (m *Manager) Exists(ctx context.Context, id string) (bool, error) {
	_, err := m.store.GetConnection(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// AllConnections returns every live connection id. For large numbers prefer
// Broadcast, which streams.
func (m *Manager) AllConnections(ctx context.Context) ([]string, error) {
	return collect(ctx, func(fn store.PageFunc) error { return m.store.AllConnections(ctx, fn) })
}

// Stats returns total connections, total channels and members per channel.
func (m *Manager) Stats(ctx context.Context) (store.Stats, error) { return m.store.Stats(ctx) }

// Cleanup removes stale connections (past their TTL) with their memberships
// and returns how many it removed. Each removed connection leaves its
// presence channels (see OnRemoved).
func (m *Manager) Cleanup(ctx context.Context) (int, error) {
	return m.store.CleanupFunc(ctx, m.cfg.Now(), m.connectionRemoved)
}

// Disconnect closes the connection through the management API and removes it
// from the registry. A connection that is already gone is not an error.
func (m *Manager) Disconnect(ctx context.Context, id string) error {
	if !store.ValidConnectionID(id) {
		return fmt.Errorf("disconnect %.*q: %w", store.MaxConnectionIDLength, id, store.ErrInvalidID)
	}
	s, err := m.senderFor(endpointHint(ctx))
	if err != nil {
		return err
	}
	if err := s.Poster().Delete(ctx, id); err != nil && !errors.Is(err, sender.ErrGone) {
		return err
	}
	// Its $disconnect will find nothing to leave: leave presence here.
	if _, err := m.store.RemoveConnectionFunc(ctx, id, m.connectionRemoved); err != nil {
		return fmt.Errorf("disconnect %s: %w", id, err)
	}
	return nil
}

func (m *Manager) emit(ctx context.Context, detailType string, detail map[string]any) (err error) {
	if m.cfg.Events == nil {
		return nil
	}
	// A publisher is user code (Config.Events): its panic must not cut a
	// $connect or a subscribe short after their writes, leaving them half
	// done. It is logged and returned like an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("publish %s: the event publisher panicked: %v", detailType, r)
		}
		if err != nil {
			m.log.WarnContext(ctx, "publish lifecycle event", "detailType", detailType, "error", err)
		}
	}()
	return m.cfg.Events.Publish(ctx, detailType, detail)
}

// MaxEventBytes is the largest event detail (JSON) handed to the event bus:
// EventBridge's 256 KB per entry, less room for its source, detail type and
// time.
const MaxEventBytes = 256*1024 - 512
