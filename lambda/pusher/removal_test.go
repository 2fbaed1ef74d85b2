package pusher_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

func (e *env) joinPresence(id, socketID, ch, user string) {
	e.t.Helper()
	cd := `{"user_id":"` + user + `"}`
	r := e.send(id, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch, "auth": app.ChannelAuth(socketID, ch, cd), "channel_data": cd}})
	require.Equal(e.t, "pusher_internal:subscription_succeeded", r["event"], "%s joins %s", id, ch)
}

// removedUsers lists the users of the member_removed frames id received on ch.
func (e *env) removedUsers(id, ch string) []string {
	out := []string{}
	for _, f := range e.frames(id) {
		if f["event"] == "pusher_internal:member_removed" && f["channel"] == ch {
			out = append(out, data(e.t, f)["user_id"].(string))
		}
	}
	return out
}

func (e *env) userCount(ch string) int {
	e.t.Helper()
	n, err := e.presence.PresenceUserCount(context.Background(), pusher.StoreChannel(ch))
	require.NoError(e.t, err)
	return n
}

// TestGoneMemberLeavesPresence: a presence member whose connection died
// without $disconnect answers 410 to the next post (here a whisper); its
// removal leaves the channel: member_removed to the others, once per user
// (u1's two connections go in one relay), and the user count drops.
func TestGoneMemberLeavesPresence(t *testing.T) {
	e := newEnv(t, nil)
	old := e.now().Add(-time.Minute) // past realtime.GoneGrace
	sa1, sa2 := e.connectAt("a1", old), e.connectAt("a2", old)
	sb, sc := e.connect("b"), e.connect("c")
	e.joinPresence("a1", sa1, "presence-r", "u1")
	e.joinPresence("a2", sa2, "presence-r", "u1")
	e.joinPresence("b", sb, "presence-r", "u2")
	e.joinPresence("c", sc, "presence-r", "u3")
	require.Equal(t, 3, e.userCount("presence-r"))

	e.api.Kill("a1", "a2") // gone; API Gateway's $disconnect never came
	assert.Nil(t, e.send("c", map[string]any{"event": "client-typing", "channel": "presence-r", "data": map[string]any{}}))
	assert.Equal(t, []string{"u1"}, e.removedUsers("b", "presence-r"), "member_removed once for u1's two gone connections")
	assert.Equal(t, []string{"u1"}, e.removedUsers("c", "presence-r"))
	assert.Equal(t, 2, e.userCount("presence-r"), "user_count no longer counts u1")
	for _, id := range []string{"a1", "a2"} {
		_, err := e.presence.PresenceMember(context.Background(), pusher.StoreChannel("presence-r"), id)
		assert.ErrorIs(t, err, store.ErrNotFound, "%s left the channel", id)
	}
}

// TestCleanupLeavesPusherPresence: Cleanup, removing an expired connection,
// leaves its presence channels with member_removed to the others.
func TestCleanupLeavesPusherPresence(t *testing.T) {
	e := newEnv(t, nil)
	sd := e.connectAt("d", e.now().Add(-2*time.Hour)) // expires in 10 minutes
	sb := e.connect("b")
	e.joinPresence("d", sd, "presence-r", "u4")
	e.joinPresence("b", sb, "presence-r", "u2")
	require.Equal(t, 2, e.userCount("presence-r"))

	e.mu.Lock()
	e.ahead = 15 * time.Minute
	e.mu.Unlock()
	n, err := e.h.Manager().Cleanup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"u4"}, e.removedUsers("b", "presence-r"))
	assert.Equal(t, 1, e.userCount("presence-r"))
}

// TestOverlongPresenceUserIDIsRefused: a presence channel_data user_id over
// store.MaxUserIDLength bytes is a subscription_error 400, before DynamoDB
// would refuse it as a key.
func TestOverlongPresenceUserIDIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	sa := e.connect("a")
	cd := `{"user_id":"` + strings.Repeat("u", store.MaxUserIDLength+1) + `"}`
	r := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-r", "auth": app.ChannelAuth(sa, "presence-r", cd), "channel_data": cd}})
	assert.Equal(t, "pusher:subscription_error", r["event"])
	assert.EqualValues(t, 400, data(t, r)["status"])
	assert.Contains(t, data(t, r)["error"], "exceeds 255 bytes")
	assert.Zero(t, e.userCount("presence-r"))
	e.joinPresence("a", sa, "presence-r", strings.Repeat("u", store.MaxUserIDLength))
}

// TestPublisherCleanupLeavesPusherPresenceQuietly: the publisher's Cleanup
// (another Manager on the same table, which posts to the protocol v1 API
// only) removes an expired Pusher connection; LeavePresenceQuietly takes it
// out of the Pusher presence channel, so user_count and the member list stop
// counting it, and nothing is posted.
func TestPublisherCleanupLeavesPusherPresenceQuietly(t *testing.T) {
	e := newEnv(t, nil)
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	pub, err := realtime.New(realtime.Config{Store: e.h.Manager().Store(), ManagementEndpoint: "https://v1.invalid/prod",
		NewPoster: func(string) (sender.Poster, error) { return nil, errors.New("the publisher posts nothing here") },
		Now:       e.now, Logger: quiet})
	require.NoError(t, err)
	pub.OnRemoved(pusher.LeavePresenceQuietly(e.presence, quiet))

	sd := e.connectAt("d", e.now().Add(-2*time.Hour)) // expires in 10 minutes
	sb := e.connect("b")
	e.joinPresence("d", sd, "presence-r", "u4")
	e.joinPresence("b", sb, "presence-r", "u2")
	require.Equal(t, 2, e.userCount("presence-r"))
	posts := e.api.Counts().Posts

	e.mu.Lock()
	e.ahead = 15 * time.Minute
	e.mu.Unlock()
	n, err := pub.Cleanup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, e.userCount("presence-r"), "u4 no longer counts")
	users, err := e.presence.PresenceUsers(context.Background(), pusher.StoreChannel("presence-r"))
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, "u2", users[0].UserID)
	assert.Equal(t, posts, e.api.Counts().Posts, "nothing announced from the publisher")
}

// TestPublisherCleanupAnnouncesPusherMemberRemoved: with the Pusher stage's
// endpoint (WS_PUSHER_MANAGEMENT_ENDPOINT), the publisher's Cleanup announces
// what $disconnect would: member_removed to the others, through a second
// Manager on the same table that posts to the Pusher stage; nothing goes to
// the protocol v1 API. A member found gone (410) while announcing leaves too,
// and the others hear of it.
func TestPublisherCleanupAnnouncesPusherMemberRemoved(t *testing.T) {
	e := newEnv(t, nil)
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	v1Posts := 0
	pub, err := realtime.New(realtime.Config{Store: e.h.Manager().Store(), ManagementEndpoint: "https://v1.invalid/prod",
		NewPoster: func(string) (sender.Poster, error) {
			v1Posts++
			return nil, errors.New("nothing of Pusher goes to the protocol v1 API")
		},
		Now: e.now, Logger: quiet})
	require.NoError(t, err)
	pusherPoster, err := sender.NewManagementAPI(aws.Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}}, e.api.URL(), nil)
	require.NoError(t, err)
	announce, err := realtime.New(realtime.Config{Store: e.h.Manager().Store(), Poster: pusherPoster, Now: e.now, Logger: quiet,
		Sender: sender.Options{Concurrency: 4, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}})
	require.NoError(t, err)
	leave := pusher.LeavePresence(e.presence, announce, quiet)
	pub.OnRemoved(leave)
	announce.OnRemoved(leave)

	old := e.now().Add(-2 * time.Hour) // expires in 10 minutes
	sd1, sd2 := e.connectAt("d1", old), e.connectAt("d2", old)
	sg := e.connectAt("g", e.now().Add(-time.Minute)) // past realtime.GoneGrace
	sb := e.connect("b")
	e.joinPresence("d1", sd1, "presence-r", "u4")
	e.joinPresence("d2", sd2, "presence-r", "u4")
	e.joinPresence("g", sg, "presence-r", "u5")
	e.joinPresence("b", sb, "presence-r", "u2")
	require.Equal(t, 3, e.userCount("presence-r"))
	e.api.Kill("g") // its socket died; no $disconnect came

	e.mu.Lock()
	e.ahead = 15 * time.Minute
	e.mu.Unlock()
	n, err := pub.Cleanup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "d1 and d2 expired")
	// u5's member_removed may reach b before u4's: g's 410 comes while u4's
	// is still being posted.
	assert.ElementsMatch(t, []string{"u4", "u5"}, e.removedUsers("b", "presence-r"),
		"member_removed once for u4's two connections, and for u5, gone while hearing it")
	assert.Equal(t, 1, e.userCount("presence-r"))
	for _, id := range []string{"d1", "d2", "g"} {
		_, err := e.presence.PresenceMember(context.Background(), pusher.StoreChannel("presence-r"), id)
		assert.ErrorIs(t, err, store.ErrNotFound, "%s left the channel", id)
	}
	assert.Zero(t, v1Posts, "the v1 sender was never built")
}

// TestPusherFramesAndConnectionsAreCounted: the Pusher-mode function counts
// ConnectionsOpened, ConnectionsClosed and MessagesReceived (each frame) like
// the websocket function, for its dashboard widget.
func TestPusherFramesAndConnectionsAreCounted(t *testing.T) {
	e := newEnv(t, nil)
	e.connect("a")
	e.send("a", map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	e.send("a", map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	_, err := e.h.Handle(t.Context(), e.event("$disconnect", "a", "", nil))
	require.NoError(t, err)
	assert.Equal(t, 1.0, e.metrics.Count(metrics.ConnectionsOpened))
	assert.Equal(t, 2.0, e.metrics.Count(metrics.MessagesReceived))
	assert.Equal(t, 1.0, e.metrics.Count(metrics.ConnectionsClosed))
}

// TestV1AndPusherPresenceDoNotShareMembers: protocol v1 and Pusher clients do
// not share channels (docs/pusher.md), presence included: with one presence
// store under both faces, as on DynamoDB, a v1 member of presence-room is not
// in the Pusher channel presence-room (subscription_succeeded, the users
// endpoint, user_count) and a Pusher member is not in the v1 one.
func TestV1AndPusherPresenceDoNotShareMembers(t *testing.T) {
	shared := store.NewMemoryPresence(nil)
	e := newEnvWith(t, func(c *realtime.Config) { c.Presence = shared }, func(c *pusher.Config) { c.Presence = shared })
	m := e.h.Manager()

	conn := e.event("$connect", "v", "", nil)
	conn.RequestContext.Authorizer = map[string]any{"userId": "v1-user"}
	_, err := m.Handle(t.Context(), conn)
	require.NoError(t, err)
	e.api.Connect("v")
	sub := e.event("$default", "v", `{"action":"subscribe","channel":"presence-room"}`, nil)
	sub.RequestContext.Authorizer = conn.RequestContext.Authorizer // API Gateway passes it on every route
	resp, err := m.Handle(t.Context(), sub)
	require.NoError(t, err)
	require.Contains(t, resp.Body, "subscribed")
	v1Users, err := shared.PresenceUsers(t.Context(), "presence-room")
	require.NoError(t, err)
	require.Len(t, v1Users, 1, "the v1 member joined")

	sa := e.connect("a")
	cd := `{"user_id":"pusher-user"}`
	r := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-room", "auth": app.ChannelAuth(sa, "presence-room", cd), "channel_data": cd}})
	require.Equal(t, "pusher_internal:subscription_succeeded", r["event"])
	assert.Equal(t, map[string]any{"ids": []any{"pusher-user"}, "hash": map[string]any{"pusher-user": nil}, "count": float64(1)}, data(t, r)["presence"],
		"the Pusher member list has no v1 member")
	members, err := e.h.Members(t.Context(), "presence-room")
	require.NoError(t, err)
	require.Len(t, members, 1)
	assert.Equal(t, "pusher-user", members[0].UserID)

	v1Users, err = shared.PresenceUsers(t.Context(), "presence-room")
	require.NoError(t, err)
	require.Len(t, v1Users, 1)
	assert.Equal(t, "v1-user", v1Users[0].UserID, "the v1 member list has no Pusher member")
	for _, f := range e.frames("v") {
		assert.NotEqual(t, "member_joined", f["type"], "no v1 member_joined for a Pusher member: %v", f)
	}
}

// failingPresence fails every leave.
type failingPresence struct{ store.Presence }

func (failingPresence) LeavePresence(context.Context, string, string) (store.PresenceMember, bool, error) {
	return store.PresenceMember{}, false, errors.New("table unavailable")
}

// TestLeavePresenceWithoutLoggerLogsToDefault: a nil logger is
// slog.Default(), so a failing leave is logged instead of panicking.
func TestLeavePresenceWithoutLoggerLogsToDefault(t *testing.T) {
	leave := pusher.LeavePresence(failingPresence{}, nil, nil)
	assert.NotPanics(t, func() {
		leave(t.Context(), store.Removed{ID: "c1", Channels: []string{pusher.StoreChannel("presence-r"), pusher.StoreChannel("public")}})
	})
}

// racingPresence runs before once, inside the first JoinPresence, ahead of
// the write: where a $disconnect can slip in between a subscribe's
// membership and its presence member.
type racingPresence struct {
	*store.MemoryPresence
	before func()
}

func (r *racingPresence) JoinPresence(ctx context.Context, channel string, m store.PresenceMember, max int) (bool, error) {
	if f := r.before; f != nil {
		r.before = nil
		f()
	}
	return r.MemoryPresence.JoinPresence(ctx, channel, m, max)
}

// TestSubscribeRacingDisconnectLeavesNoGhost: a connection's $disconnect
// runs to its end between its presence subscribe's membership and its
// member. The subscribe finds the membership gone and leaves, so the user is
// not listed until the member expires, and the others see member_added,
// then member_removed.
func TestSubscribeRacingDisconnectLeavesNoGhost(t *testing.T) {
	var race *racingPresence
	e := newEnv(t, func(c *pusher.Config) {
		race = &racingPresence{MemoryPresence: c.Presence.(*store.MemoryPresence)}
		c.Presence = race
	})
	join := func(id, sid, user string) map[string]any {
		cd := `{"user_id":"` + user + `"}`
		return e.send(id, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-r", "auth": app.ChannelAuth(sid, "presence-r", cd), "channel_data": cd}})
	}
	race.before = func() {} // spent by b's join
	join("b", e.connect("b"), "bob")
	sa := e.connect("a")
	race.before = func() {
		_, err := e.h.Handle(t.Context(), e.event("$disconnect", "a", "", nil))
		require.NoError(t, err)
	}
	join("a", sa, "alice")
	users, err := e.presence.PresenceUsers(t.Context(), pusher.StoreChannel("presence-r"))
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, "bob", users[0].UserID, "alice is not left behind")
	var events []string
	for _, f := range e.frames("b") {
		events = append(events, fmt.Sprint(f["event"]))
	}
	assert.Equal(t, []string{"pusher:connection_established", "pusher_internal:member_added", "pusher_internal:member_removed"}, events)
}
