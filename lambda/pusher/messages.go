package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// message handles one client frame, received by API Gateway at at, and
// returns the route response (nil for none).
func (h *Handler) message(ctx context.Context, id string, body []byte, at time.Time) []byte {
	f, err := ParseFrame(body)
	if err != nil {
		return ErrorFrame(CodeInvalidMessage, "Invalid message format: a JSON object with an event is expected")
	}
	switch {
	case f.Event == EventPing:
		return Pong()
	case f.Event == EventSubscribe:
		return h.subscribe(ctx, id, f)
	case f.Event == EventUnsubscribe:
		return h.unsubscribe(ctx, id, f)
	case f.Event == EventSignin:
		return h.signin(ctx, id, f)
	case strings.HasPrefix(f.Event, PrefixClientEvent):
		return h.clientEvent(ctx, id, f, at)
	}
	return nil // unknown events are ignored, as Pusher does
}

// subscribeData is pusher:subscribe's data.
type subscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
	// Since, on a history channel, asks for the events after this offset
	// of this epoch before subscription_succeeded (docs/pusher.md).
	Since *since `json:"since"`
}

// since is subscribeData's since, read as protocol v1 reads its own: an
// offset that is a JSON integer and an epoch that is a string, both given.
type since store.StreamPosition

func (s *since) UnmarshalJSON(b []byte) error {
	p, err := protocol.ParseSince(b)
	if err != nil {
		return err
	}
	if p != nil {
		*s = since{Offset: p.Offset, Epoch: p.Epoch}
	}
	return nil
}

// channelData is a presence subscription's channel_data.
type channelData struct {
	UserID   json.RawMessage `json:"user_id"`
	UserInfo json.RawMessage `json:"user_info"`
}

// userID accepts a string or a number, as the server SDKs send either.
func (c channelData) userID() string {
	var s string
	if json.Unmarshal(c.UserID, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(c.UserID, &n) == nil {
		return n.String()
	}
	return ""
}

func (h *Handler) subscribe(ctx context.Context, id string, f Frame) []byte {
	var d subscribeData
	if err := f.DataObject(&d); err != nil {
		return SubscriptionError(d.Channel, http.StatusBadRequest, "Invalid subscribe data: want {channel, auth, channel_data, since: {offset, epoch}}")
	}
	if !ValidChannel(d.Channel) {
		return SubscriptionError(d.Channel, http.StatusBadRequest, "Invalid channel name")
	}
	ch := d.Channel
	var member *store.PresenceMember
	switch {
	case strings.HasPrefix(ch, PrefixServerToUser):
		// Only the connection signed in as this user is in it (see signin).
		in, err := h.m.Store().IsMember(ctx, id, StoreChannel(ch))
		if err != nil {
			return h.internal(ctx, id, ch, err)
		}
		if !in {
			return SubscriptionError(ch, http.StatusUnauthorized, "Sign in as this user before subscribing to "+ch)
		}
		return SubscriptionSucceeded(ch)
	case IsPresence(ch):
		sid, err := h.SocketIDOf(ctx, id)
		if err != nil {
			return h.internal(ctx, id, ch, err)
		}
		if !h.cfg.App.VerifyChannelAuth(d.Auth, sid, ch, d.ChannelData) {
			return SubscriptionError(ch, http.StatusUnauthorized, "Invalid signature: the auth of "+ch+" does not match")
		}
		var cd channelData
		if d.ChannelData == "" {
			// No user object from the authorization: the one the
			// connection signed in with (pusher:signin), as Pusher does.
			signed, err := h.signedInUser(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return SubscriptionError(ch, http.StatusBadRequest, "channel_data missing: authorize "+ch+" with the user's presence data (user_id, user_info), or sign in (pusher:signin) first")
			}
			if err != nil {
				return h.internal(ctx, id, ch, err)
			}
			cd = signed
		} else if err := json.Unmarshal([]byte(d.ChannelData), &cd); err != nil || cd.userID() == "" {
			return SubscriptionError(ch, http.StatusBadRequest, "channel_data must be a JSON object with a user_id")
		}
		if !store.ValidUserID(cd.userID()) {
			return SubscriptionError(ch, http.StatusBadRequest, fmt.Sprintf("channel_data user_id exceeds %d bytes", store.MaxUserIDLength))
		}
		if len(cd.UserInfo) > h.cfg.MaxUserInfoBytes {
			return SubscriptionError(ch, http.StatusForbidden, fmt.Sprintf("user_info exceeds %d bytes", h.cfg.MaxUserInfoBytes))
		}
		member = &store.PresenceMember{ConnectionID: id, UserID: cd.userID(), UserInfo: cd.UserInfo, ExpiresAt: h.cfg.Now().Add(store.DefaultTTL)}
	case IsPrivate(ch):
		sid, err := h.SocketIDOf(ctx, id)
		if err != nil {
			return h.internal(ctx, id, ch, err)
		}
		if !h.cfg.App.VerifyChannelAuth(d.Auth, sid, ch, "") {
			return SubscriptionError(ch, http.StatusUnauthorized, "Invalid signature: the auth of "+ch+" does not match")
		}
	}
	joined, err := store.JoinLive(ctx, h.m.Store(), id, StoreChannel(ch), h.m.MaxChannelsPerConnection())
	if err != nil {
		if errors.Is(err, store.ErrTooManyChannels) {
			return SubscriptionError(ch, http.StatusForbidden, fmt.Sprintf("Too many channels: a connection may subscribe to at most %d", h.m.MaxChannelsPerConnection()))
		}
		return h.internal(ctx, id, ch, err)
	}
	reply := SubscriptionSucceeded(ch)
	if member != nil && !joined {
		// Subscribed before: a member as one user cannot become another by
		// subscribing again (the store keeps the first).
		if was, err := h.cfg.Presence.PresenceMember(ctx, StoreChannel(ch), id); err == nil && was.UserID != member.UserID {
			return SubscriptionError(ch, http.StatusBadRequest, fmt.Sprintf("Already subscribed to %s as another user: unsubscribe first to join as %s", ch, member.UserID))
		}
	}
	if member != nil {
		first, err := h.cfg.Presence.JoinPresence(ctx, StoreChannel(ch), *member, h.cfg.MaxPresenceUsers)
		if errors.Is(err, store.ErrPresenceFull) {
			if joined {
				_, _ = h.m.Store().Leave(ctx, id, StoreChannel(ch))
			}
			return SubscriptionError(ch, http.StatusForbidden, fmt.Sprintf("The presence channel has reached its limit of %d members", h.cfg.MaxPresenceUsers))
		}
		if err != nil {
			return h.internal(ctx, id, ch, err)
		}
		if first {
			added := MemberAdded(ch, Member{UserID: member.UserID, UserInfo: member.UserInfo})
			if _, err := h.m.SendToStoredChannel(ctx, StoreChannel(ch), added, id); err != nil {
				h.log.ErrorContext(ctx, "send member_added", "channel", ch, "error", err)
			}
		}
		// A $disconnect racing this subscribe leaves the presence channels
		// among the memberships its removal deletes; when it deleted this one
		// before the member above was written, the member would stay listed
		// until it expires. The membership is gone then: leave at once.
		if ok, err := h.m.Store().IsMember(ctx, id, StoreChannel(ch)); err == nil && !ok {
			h.leavePresence(context.WithoutCancel(ctx), id, ch)
			return nil
		}
		members, err := h.Members(ctx, ch)
		if err != nil {
			return h.internal(ctx, id, ch, err)
		}
		reply = PresenceSucceeded(ch, members)
		if len(reply) > sender.MaxPayload {
			// API Gateway delivers no message over 128 KB: the subscriber
			// would get no answer while listed as a member. Taken back
			// (the others get member_removed after their member_added) and
			// refused, as protocol v1 refuses such a reply with too_large.
			// A connection that was subscribed before this (repeated)
			// subscribe stays subscribed.
			if joined {
				h.leavePresence(context.WithoutCancel(ctx), id, ch)
				if _, err := h.m.Store().Leave(context.WithoutCancel(ctx), id, StoreChannel(ch)); err != nil {
					h.log.ErrorContext(ctx, "leave presence channel with a reply over 128 KB", "connectionId", id, "channel", ch, "error", err)
				}
			}
			return SubscriptionError(ch, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"The member list of %s (%d members, a reply of %d bytes) is more than the %d bytes a message may carry", ch, len(members), len(reply), sender.MaxPayload))
		}
	}
	// History is read after the join, so an event published in between
	// arrives live and recovered: clients drop duplicates by offset.
	frames, err := h.withHistory(ctx, ch, reply, (*store.StreamPosition)(d.Since))
	if err != nil {
		return h.internal(ctx, id, ch, err)
	}
	if !IsCache(ch) {
		// Recovered events go as posts, which arrive before the route response.
		recovered, reply := frames[:len(frames)-1], frames[len(frames)-1]
		for _, frame := range recovered {
			if err := h.m.SendToConnection(ctx, id, frame); err != nil {
				return h.internal(ctx, id, ch, fmt.Errorf("send recovered event: %w", err))
			}
		}
		return reply
	}
	// A cache channel answers twice: both go as posts, in order.
	next := CacheMiss(ch)
	if cached, err := h.cfg.Values.GetValue(ctx, cacheKey(ch)); err == nil {
		next = cached
	}
	for _, frame := range append(frames, next) {
		if err := h.m.SendToConnection(ctx, id, frame); err != nil {
			h.log.ErrorContext(ctx, "send cache channel reply", "connectionId", id, "channel", ch, "error", err)
		}
	}
	return nil
}

func cacheKey(ch string) string { return "pusher-cache#" + ch }

// remember keeps a cache channel's last event.
func (h *Handler) remember(ctx context.Context, ch string, frame []byte) {
	if !IsCache(ch) {
		return
	}
	if _, err := h.cfg.Values.PutValue(ctx, cacheKey(ch), frame, h.cfg.Now().Add(h.cfg.CacheTTL), false); err != nil {
		h.log.ErrorContext(ctx, "cache channel event", "channel", ch, "error", err)
	}
}

// internal answers a subscription that failed inside the server, without details.
func (h *Handler) internal(ctx context.Context, id, ch string, err error) []byte {
	h.log.ErrorContext(ctx, "subscribe failed", "connectionId", id, "channel", ch, "error", err)
	return SubscriptionError(ch, http.StatusInternalServerError, "Internal error")
}

func (h *Handler) unsubscribe(ctx context.Context, id string, f Frame) []byte {
	var d subscribeData
	if err := f.DataObject(&d); err != nil || !ValidChannel(d.Channel) {
		return nil
	}
	if IsPresence(d.Channel) {
		h.leavePresence(ctx, id, d.Channel)
	}
	if strings.HasPrefix(d.Channel, PrefixServerToUser) {
		return nil // the signed-in user's channel stays until the connection ends
	}
	if _, err := h.m.Store().Leave(ctx, id, StoreChannel(d.Channel)); err != nil {
		h.log.ErrorContext(ctx, "unsubscribe", "connectionId", id, "channel", d.Channel, "error", err)
	}
	return nil
}

// signin authenticates the connection as a user: it joins the user's
// #server-to-user-{id} channel, which carries sends to the user and names
// the connections terminate_connections closes.
func (h *Handler) signin(ctx context.Context, id string, f Frame) []byte {
	var d struct {
		Auth     string `json:"auth"`
		UserData string `json:"user_data"`
	}
	if err := f.DataObject(&d); err != nil {
		return ErrorFrame(CodeUnauthorized, "pusher:signin needs auth and user_data")
	}
	sid, err := h.SocketIDOf(ctx, id)
	if err != nil {
		h.log.ErrorContext(ctx, "signin", "connectionId", id, "error", err)
		return h.reconnect(ctx, id)
	}
	if !h.cfg.App.VerifyUserAuth(d.Auth, sid, d.UserData) {
		return ErrorFrame(CodeUnauthorized, "Invalid signature: the signin auth does not match")
	}
	var user struct {
		ID       json.RawMessage `json:"id"`
		UserInfo json.RawMessage `json:"user_info"`
	}
	if err := json.Unmarshal([]byte(d.UserData), &user); err != nil {
		return ErrorFrame(CodeUnauthorized, "user_data must be a JSON object with an id")
	}
	userID := channelData{UserID: user.ID}.userID()
	if userID == "" || !ValidChannel(PrefixServerToUser+userID) {
		return ErrorFrame(CodeUnauthorized, "user_data.id must be 1 to 148 characters of [A-Za-z0-9_-=@,.;]")
	}
	// The reply carries user_data encoded twice; API Gateway delivers no
	// message over 128 KB, so such a signin would join with no answer.
	reply := SigninSuccess(d.UserData)
	if len(reply) > sender.MaxPayload {
		return ErrorFrame(CodeUnauthorized, fmt.Sprintf("user_data is too large: its signin_success reply of %d bytes is more than the %d a message may carry", len(reply), sender.MaxPayload))
	}
	// Kept for the presence channels it then subscribes to without
	// channel_data: the signed-in user is the member.
	member, err := json.Marshal(struct {
		UserID   json.RawMessage `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info,omitempty"`
	}{user.ID, user.UserInfo})
	if err != nil {
		return ErrorFrame(CodeUnauthorized, "user_data must be a JSON object with an id")
	}
	// A connection is one user: a signin as another user would leave it in
	// the first user's channel, receiving what is sent to that user, so it is
	// refused (as a presence subscribe as another user is); a new connection
	// signs in as someone else. A repeated signin as the same user is fine.
	// The first signin claims the connection with a conditional write, so
	// two signins as different users running at once cannot both pass.
	claimed, err := h.claimSignin(ctx, id, userID, member)
	switch {
	case errors.Is(err, errSignedInAsAnother):
		return ErrorFrame(CodeUnauthorized, "Already signed in as another user: a connection signs in as one user; connect again to sign in as another")
	case err != nil:
		h.log.ErrorContext(ctx, "signin: signed-in user", "connectionId", id, "error", err)
		return h.reconnect(ctx, id)
	}
	// The user's channel counts against the connection's channel cap, as a
	// subscription does (a repeated signin as the same user adds nothing).
	if _, err := store.JoinLive(ctx, h.m.Store(), id, StoreChannel(PrefixServerToUser+userID), h.m.MaxChannelsPerConnection()); err != nil {
		if claimed {
			h.releaseSignin(ctx, id)
		}
		if errors.Is(err, store.ErrTooManyChannels) {
			return ErrorFrame(CodeOverCapacity, fmt.Sprintf("Too many channels: signing in joins the user's channel, and a connection may be in at most %d", h.m.MaxChannelsPerConnection()))
		}
		h.log.ErrorContext(ctx, "signin join", "connectionId", id, "error", err)
		return h.reconnect(ctx, id)
	}
	if !claimed { // the same user again: its user_info may have changed
		if _, err := h.cfg.Values.PutValue(ctx, signedInKey(id), member, h.cfg.Now().Add(store.DefaultTTL), false); err != nil {
			h.log.ErrorContext(ctx, "signin user", "connectionId", id, "error", err)
			return h.reconnect(ctx, id)
		}
	}
	return reply
}

// reconnect answers a failure of the server's own (a store error) as Pusher
// does with 4200, "reconnect immediately": pusher:error 4200 and then the
// connection closed, since pusher-js acts on error codes only as close
// codes or during the handshake, and API Gateway closes a connection with
// its own code. The client reconnects and starts over on a new connection.
// When the notice cannot be posted, the error frame is the answer instead.
func (h *Handler) reconnect(ctx context.Context, id string) []byte {
	frame := ErrorFrame(CodeGenericReconnect, "Internal error: reconnect")
	ctx = context.WithoutCancel(ctx)
	if err := h.m.SendToConnection(ctx, id, frame); err != nil {
		h.log.ErrorContext(ctx, "reconnect: notify", "connectionId", id, "error", err)
		return frame
	}
	h.cleanup(ctx, id)
	if err := h.m.Disconnect(ctx, id); err != nil {
		h.log.ErrorContext(ctx, "reconnect: close", "connectionId", id, "error", err)
	}
	return nil
}

// signedInKey keys the user a connection signed in as.
func signedInKey(id string) string { return "pusher-user#" + id }

// errSignedInAsAnother: the connection is signed in as another user.
var errSignedInAsAnother = errors.New("signed in as another user")

// claimSignin records member as the user connection id is signed in as,
// with a write that succeeds only when the connection has none, and reports
// whether it wrote. A connection already signed in as userID is not written
// (false, nil); one signed in as another user gives errSignedInAsAnother.
func (h *Handler) claimSignin(ctx context.Context, id, userID string, member []byte) (bool, error) {
	for range 3 { // a claim released between the write and the read is tried again
		ok, err := h.cfg.Values.PutValue(ctx, signedInKey(id), member, h.cfg.Now().Add(store.DefaultTTL), true)
		if err != nil || ok {
			return ok, err
		}
		prev, err := h.signedInUser(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return false, err
		case prev.userID() != userID:
			return false, errSignedInAsAnother
		}
		return false, nil
	}
	return false, fmt.Errorf("signin of %s: the signed-in user kept changing", id)
}

// releaseSignin undoes a claim whose signin failed afterwards, so that the
// connection may sign in again as anyone: the value is written as expired,
// which both stores treat as absent.
func (h *Handler) releaseSignin(ctx context.Context, id string) {
	if _, err := h.cfg.Values.PutValue(ctx, signedInKey(id), nil, h.cfg.Now().Add(-time.Minute), false); err != nil {
		h.log.ErrorContext(ctx, "signin: release", "connectionId", id, "error", err)
	}
}

// signedInUser is the user connection id signed in as (pusher:signin), as a
// presence member's channel_data, or store.ErrNotFound.
func (h *Handler) signedInUser(ctx context.Context, id string) (channelData, error) {
	v, err := h.cfg.Values.GetValue(ctx, signedInKey(id))
	if err != nil {
		return channelData{}, err
	}
	var cd channelData
	if err := json.Unmarshal(v, &cd); err != nil {
		return channelData{}, fmt.Errorf("signed-in user of %s: %w", id, err)
	}
	return cd, nil
}

// clientEvent relays client-* on a private or presence channel the sender
// is subscribed to, to every other subscriber. The rate is counted per second
// of at, when API Gateway received the event: what the client sent in one
// second counts together however late the invocations run.
func (h *Handler) clientEvent(ctx context.Context, id string, f Frame, at time.Time) []byte {
	if h.cfg.DisableClientEvents {
		return ErrorFrame(CodeClientEvent, "Client events are disabled for this app")
	}
	ch := f.Channel
	if !IsPrivate(ch) && !IsPresence(ch) {
		return ErrorFrame(CodeClientEvent, "Client events are only supported on private and presence channels")
	}
	if strings.HasPrefix(ch, PrefixPrivateEncrypted) {
		return ErrorFrame(CodeClientEvent, "Client events are not supported on encrypted channels")
	}
	window := at.Unix()
	expires := time.Unix(window+2, 0)
	if late := h.cfg.Now().Add(2 * time.Second); late.After(expires) {
		expires = late // a window still counting when its invocations run late
	}
	n, err := h.cfg.Values.Increment(ctx, fmt.Sprintf("pusher-rate#%s#%d", id, window), expires)
	if err != nil {
		h.log.ErrorContext(ctx, "client event rate", "connectionId", id, "error", err)
		return h.reconnect(ctx, id)
	}
	if n > int64(h.cfg.ClientEventRate) {
		return ErrorFrame(CodeClientEvent, fmt.Sprintf("Client event rejected: more than %d per second", h.cfg.ClientEventRate))
	}
	// One membership read (GetItem), not the connection's whole partition.
	in, err := h.m.Store().IsMember(ctx, id, StoreChannel(ch))
	if err != nil {
		h.log.ErrorContext(ctx, "client event membership", "connectionId", id, "error", err)
		return h.reconnect(ctx, id)
	}
	if !in {
		return ErrorFrame(CodeClientEvent, "Client event rejected: subscribe to "+ch+" first")
	}
	out := Frame{Event: f.Event, Channel: ch, Data: quote(dataText(f.Data))}
	if IsPresence(ch) {
		m, err := h.cfg.Presence.PresenceMember(ctx, StoreChannel(ch), id)
		if err == nil {
			out.UserID = m.UserID
		}
	}
	if len(f.Data) > h.cfg.MaxEventBytes {
		return ErrorFrame(CodeClientEvent, fmt.Sprintf("Client event rejected: data exceeds %d bytes", h.cfg.MaxEventBytes))
	}
	frame, err := h.number(ctx, ch, out.Encode())
	if err != nil {
		h.log.ErrorContext(ctx, "client event history", "connectionId", id, "channel", ch, "error", err)
		return h.reconnect(ctx, id)
	}
	h.remember(ctx, ch, frame)
	if _, err := h.m.SendToStoredChannel(ctx, StoreChannel(ch), frame, id); err != nil {
		h.log.ErrorContext(ctx, "relay client event", "connectionId", id, "channel", ch, "error", err)
	}
	return nil
}
