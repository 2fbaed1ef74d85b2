package realtime

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// memberLeft counts the member_left frames id received about user.
func (e *env) memberLeft(id, user string) int {
	n := 0
	for _, m := range e.messages(id) {
		if strings.Contains(m, `"type":"member_left"`) && strings.Contains(m, `"userId":"`+user+`"`) {
			n++
		}
	}
	return n
}

func (e *env) presenceUsers(channel string) []string {
	e.t.Helper()
	users, err := e.m.cfg.Presence.PresenceUsers(context.Background(), channel)
	require.NoError(e.t, err)
	out := []string{}
	for _, u := range users {
		out = append(out, u.UserID)
	}
	return out
}

// TestGoneConnectionsLeavePresence: connections whose sockets died without a
// $disconnect answer 410 to the next post; their removal leaves their
// presence channels, announcing member_left once per user (alice's two
// connections go in one fan-out) and dropping them from the members.
func TestGoneConnectionsLeavePresence(t *testing.T) {
	e := newHistoryEnv(t, 100)
	for _, c := range [][2]string{{"a1", "alice"}, {"a2", "alice"}, {"b", "bob"}, {"c", "carol"}} {
		e.connect(c[0], c[1], "", "")
		e.send(c[0], c[1], "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	}
	require.Equal(t, []string{"alice", "bob", "carol"}, e.presenceUsers("presence-room"))
	e.api.Kill("a1", "a2") // gone, and API Gateway's $disconnect never came
	e.now = e.now.Add(GoneGrace)

	e.send("b", "bob", "", "$default", `{"action":"publish","channel":"presence-room","data":"hi"}`)
	assert.Equal(t, 1, e.memberLeft("c", "alice"), "member_left once for alice's two gone connections")
	assert.Equal(t, 1, e.memberLeft("b", "alice"))
	assert.Equal(t, []string{"bob", "carol"}, e.presenceUsers("presence-room"))
	for _, id := range []string{"a1", "a2"} {
		chans, err := e.store.ConnectionChannels(context.Background(), id)
		require.NoError(t, err)
		assert.Empty(t, chans, "%s is removed with its memberships", id)
	}
}

// TestCleanupLeavesPresence: Cleanup's removal of an expired connection
// leaves its presence channels: member_left to the others, and the user is
// no longer counted.
func TestCleanupLeavesPresence(t *testing.T) {
	e := newHistoryEnv(t, 100)
	old := loadEvent(t, "apigw-websocket-request-connect.json")
	old.RequestContext.ConnectionID = "old"
	old.RequestContext.Authorizer = authorizer("olga", "")
	old.RequestContext.ConnectedAt = e.now.Add(-2 * time.Hour).UnixMilli() // expires 10 minutes from now
	old.QueryStringParameters, old.MultiValueQueryStringParameters = nil, nil
	_, err := e.m.Handle(context.Background(), old)
	require.NoError(t, err)
	e.api.Connect("old")
	e.send("old", "olga", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	e.connect("b", "bob", "", "")
	e.send("b", "bob", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	require.Equal(t, []string{"bob", "olga"}, e.presenceUsers("presence-room"))

	e.now = e.now.Add(15 * time.Minute)
	n, err := e.m.Cleanup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, e.memberLeft("b", "olga"))
	assert.Equal(t, []string{"bob"}, e.presenceUsers("presence-room"))
	n, err = e.m.Cleanup(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, 1, e.memberLeft("b", "olga"), "announced once")
}

// TestDisconnectLeavesPresence: a connection the server closes (Disconnect)
// is removed at once, so its $disconnect finds nothing: the removal itself
// leaves its presence channels.
func TestDisconnectLeavesPresence(t *testing.T) {
	e := newHistoryEnv(t, 100)
	for _, c := range [][2]string{{"a", "alice"}, {"b", "bob"}} {
		e.connect(c[0], c[1], "", "")
		e.send(c[0], c[1], "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	}
	require.NoError(t, e.m.Disconnect(context.Background(), "a"))
	e.disconnect("a") // API Gateway's $disconnect after the DELETE
	assert.Equal(t, 1, e.memberLeft("b", "alice"))
	assert.Equal(t, []string{"bob"}, e.presenceUsers("presence-room"))
}

// TestOverlongUserIDsAreRefused: a custom authorizer's userId over
// store.MaxUserIDLength bytes is refused at $connect with 403 (as the
// built-in authorizer refuses such a claim), before DynamoDB would refuse
// the key with its raw error; the Go library's user sends and lookups
// answer store.ErrInvalidUserID.
func TestOverlongUserIDsAreRefused(t *testing.T) {
	e := newEnv(t, Hooks{})
	long := strings.Repeat("u", store.MaxUserIDLength+1)
	assert.Equal(t, http.StatusForbidden, e.connect("c1", long, "", "").StatusCode)
	_, err := e.store.GetConnection(context.Background(), "c1")
	assert.ErrorIs(t, err, store.ErrNotFound, "nothing recorded")
	longest := strings.Repeat("u", store.MaxUserIDLength)
	assert.Equal(t, http.StatusOK, e.connect("c2", longest, "", "").StatusCode)

	_, err = e.m.SendToUser(context.Background(), long, []byte(`"hi"`))
	assert.ErrorIs(t, err, store.ErrInvalidUserID)
	reps, err := e.m.SendToUsers(context.Background(), []string{longest, long}, []byte(`"hi"`))
	assert.ErrorIs(t, err, store.ErrInvalidUserID)
	assert.Empty(t, reps, "checked before any send")
	assert.Empty(t, e.messages("c2"), "the valid user's send did not start either")
	_, err = e.m.ConnectionsOfUser(context.Background(), long)
	assert.ErrorIs(t, err, store.ErrInvalidUserID)
	ids, err := e.m.ConnectionsOfUser(context.Background(), longest)
	require.NoError(t, err)
	assert.Equal(t, []string{"c2"}, ids)
}

// racingPresence runs before once, inside the first JoinPresence, ahead of
// the write: the moment a $disconnect can slip in between a subscribe's
// membership and its presence member.
type racingPresence struct {
	store.Presence
	before func()
}

func (r *racingPresence) JoinPresence(ctx context.Context, channel string, m store.PresenceMember, max int) (bool, error) {
	if f := r.before; f != nil {
		r.before = nil
		f()
	}
	return r.Presence.JoinPresence(ctx, channel, m, max)
}

// TestSubscribeRacingDisconnectLeavesNoGhost: the $disconnect of a
// connection runs to its end between its subscribe's membership and its
// presence member. The disconnect found no presence member to remove; the
// subscribe finds its membership gone and leaves, so the user is not listed
// (for hours, until the member expires) and the others get member_left
// after member_joined.
func TestSubscribeRacingDisconnectLeavesNoGhost(t *testing.T) {
	e := newHistoryEnv(t, 100)
	e.connect("b", "bob", "", "")
	e.send("b", "bob", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	e.connect("a", "alice", "", "")
	e.m.cfg.Presence = &racingPresence{Presence: e.m.cfg.Presence, before: func() {
		ev := loadEvent(t, "apigw-websocket-request-disconnect.json")
		ev.RequestContext.ConnectionID = "a"
		ev.RequestContext.Authorizer = authorizer("alice", "")
		resp, err := e.m.Handle(context.Background(), ev)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}}
	reply := e.send("a", "alice", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	assert.Contains(t, reply, `"type":"error"`, "the subscribe of a connection gone meanwhile fails")
	assert.Equal(t, []string{"bob"}, e.presenceUsers("presence-room"), "alice is not left behind")
	assert.Equal(t, 1, e.memberLeft("b", "alice"), "bob saw alice come and go")
	exists, err := e.m.Exists(context.Background(), "a")
	require.NoError(t, err)
	assert.False(t, exists)
}

// TestPresenceReplyOver128KBIsRefused: the subscribed reply lists every
// member in one frame; when that passes 128 KB (about 480 users of 255-byte
// ids) the subscribe answers too_large and is taken back, instead of a reply
// API Gateway cannot deliver.
func TestPresenceReplyOver128KBIsRefused(t *testing.T) {
	e := newHistoryEnv(t, 100)
	ctx := context.Background()
	user := func(i int) string { return fmt.Sprintf("%03d", i) + strings.Repeat("u", store.MaxUserIDLength-3) }
	fill := func(from, to int) {
		for i := from; i < to; i++ {
			_, err := e.m.cfg.Presence.JoinPresence(ctx, "presence-big", store.PresenceMember{ConnectionID: fmt.Sprintf("m%03d", i), UserID: user(i), ExpiresAt: e.now.Add(time.Hour)}, 0)
			require.NoError(t, err)
		}
	}
	fill(0, 400)
	e.connect("fits", "alice", "", "")
	reply := e.send("fits", "alice", "", "$default", `{"action":"subscribe","channel":"presence-big"}`)
	assert.Contains(t, reply, `"type":"subscribed"`, "401 members fit")
	assert.Less(t, len(reply), 131072)
	e.connect("watch", "carol", "", "")
	assert.Contains(t, e.send("watch", "carol", "", "$default", `{"action":"subscribe","channel":"presence-big"}`), `"type":"subscribed"`)

	fill(400, 500)
	e.connect("late", "bob", "", "")
	reply = e.send("late", "bob", "", "$default", `{"action":"subscribe","channel":"presence-big"}`)
	assert.Contains(t, reply, `"code":"too_large"`)
	assert.Contains(t, reply, "presence channel presence-big has 503 members")
	assert.NotContains(t, e.presenceUsers("presence-big"), "bob", "the refused subscriber is not a member")
	chans, err := e.store.ConnectionChannels(ctx, "late")
	require.NoError(t, err)
	assert.Empty(t, chans, "and not subscribed")
	assert.Equal(t, 1, e.memberLeft("fits", "bob"), "the others saw it leave again")

	// A member that subscribes again (to get the list) is refused the same
	// way, but stays a member: its membership was not made by this subscribe.
	reply = e.send("fits", "alice", "", "$default", `{"action":"subscribe","channel":"presence-big"}`)
	assert.Contains(t, reply, `"code":"too_large"`)
	assert.Contains(t, reply, "you stay a member")
	assert.Contains(t, e.presenceUsers("presence-big"), "alice")
	chans, err = e.store.ConnectionChannels(ctx, "fits")
	require.NoError(t, err)
	assert.Equal(t, []string{"presence-big"}, chans)
	assert.Equal(t, 0, e.memberLeft("watch", "alice"), "nobody saw it leave")
	assert.Equal(t, 1, e.memberLeft("watch", "bob"), "as they saw the refused newcomer leave")
}
