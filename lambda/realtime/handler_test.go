package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// fixtureNow is a moment shortly after the fixtures' connectedAt.
var fixtureNow = time.UnixMilli(1705751700000).UTC()

type env struct {
	t     testing.TB
	m     *Manager
	store *store.Memory
	api   *mgmtapitest.Server
	now   time.Time
}

func testAWSConfig() aws.Config {
	return aws.Config{
		Region:      "eu-west-1",
		Credentials: aws.AnonymousCredentials{},
	}
}

func newEnv(t testing.TB, hooks Hooks) *env {
	t.Helper()
	e := &env{t: t, now: fixtureNow}
	e.store = store.NewMemory(store.MemoryOptions{Now: func() time.Time { return e.now }, PageSize: 3})
	e.api = mgmtapitest.New(mgmtapitest.Options{Stage: "prod", KeepMessages: true})
	t.Cleanup(e.api.Close)
	poster, err := sender.NewManagementAPI(testAWSConfig(), e.api.URL(), nil)
	require.NoError(t, err)
	e.m, err = New(Config{
		Store:  e.store,
		Poster: poster,
		Hooks:  hooks,
		Sender: sender.Options{Concurrency: 4, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now:    func() time.Time { return e.now },
	})
	require.NoError(t, err)
	return e
}

func loadEvent(t testing.TB, name string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var ev events.APIGatewayWebsocketProxyRequest
	require.NoError(t, json.Unmarshal(raw, &ev))
	return ev
}

// connect runs $connect for id with user (empty = anonymous), channel patterns and query channels.
func (e *env) connect(id, user, patterns, queryChannels string) events.APIGatewayProxyResponse {
	e.t.Helper()
	ev := loadEvent(e.t, "apigw-websocket-request-connect.json")
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.Authorizer = authorizer(user, patterns)
	ev.QueryStringParameters, ev.MultiValueQueryStringParameters = nil, nil
	if queryChannels != "" {
		ev.QueryStringParameters = map[string]string{"channels": queryChannels}
	}
	resp, err := e.m.Handle(context.Background(), ev)
	require.NoError(e.t, err)
	if resp.StatusCode == http.StatusOK {
		e.api.Connect(id)
	}
	return resp
}

func authorizer(user, patterns string) any {
	if user == "" && patterns == "" {
		return nil
	}
	return map[string]any{"principalId": user, "userId": user, "channels": patterns}
}

// send runs a $default (or routeKey) frame and returns the route response body.
func (e *env) send(id, user, patterns, routeKey, body string) string {
	e.t.Helper()
	ev := loadEvent(e.t, "apigw-websocket-request-message.json")
	ev.RequestContext.ConnectionID = id
	ev.RequestContext.Authorizer = authorizer(user, patterns)
	ev.RequestContext.RouteKey = routeKey
	ev.Body = body
	resp, err := e.m.Handle(context.Background(), ev)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	return resp.Body
}

func (e *env) disconnect(id string) {
	e.t.Helper()
	ev := loadEvent(e.t, "apigw-websocket-request-disconnect.json")
	ev.RequestContext.ConnectionID = id
	resp, err := e.m.Handle(context.Background(), ev)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	e.api.Kill(id)
}

func (e *env) messages(id string) []string {
	var out []string
	for _, m := range e.api.Messages(id) {
		out = append(out, string(m))
	}
	return out
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var r protocol.Reply
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	require.Equal(t, "error", r.Type, body)
	assert.NotEmpty(t, r.Message)
	return r.Code
}

func TestConnectRecordsConnection(t *testing.T) {
	e := newEnv(t, Hooks{})
	resp := e.connect("conn-A=", "42", "private-user-42", "news,private-user-42")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	c, err := e.m.Connection(context.Background(), "conn-A=")
	require.NoError(t, err)
	assert.Equal(t, "42", c.UserID)
	assert.Equal(t, "$connect", c.RouteKey)
	assert.Equal(t, "203.0.113.7", c.SourceIP)
	assert.Equal(t, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", c.UserAgent)
	assert.Equal(t, time.UnixMilli(1705751697419).UTC(), c.ConnectedAt)
	assert.Equal(t, []string{"news", "private-user-42"}, c.Channels)
	assert.Equal(t, c.ConnectedAt.Add(store.DefaultTTL), c.ExpiresAt)

	ids, err := e.m.ConnectionsOfUser(context.Background(), "42")
	require.NoError(t, err)
	assert.Equal(t, []string{"conn-A="}, ids)
}

func TestConnectEchoesSubprotocol(t *testing.T) {
	e := newEnv(t, Hooks{})
	ev := loadEvent(t, "apigw-websocket-request-connect.json")
	ev.QueryStringParameters = nil
	ev.Headers["Sec-WebSocket-Protocol"] = "chat.v1, eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
	resp, err := e.m.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "chat.v1", resp.Headers["Sec-WebSocket-Protocol"])
}

func TestConnectRefusesBadQueryChannels(t *testing.T) {
	e := newEnv(t, Hooks{})
	assert.Equal(t, http.StatusBadRequest, e.connect("c1", "", "", "news,a b").StatusCode)
	assert.Equal(t, http.StatusForbidden, e.connect("c2", "7", "private-user-7", "private-user-8").StatusCode)
	st, err := e.m.Stats(context.Background())
	require.NoError(t, err)
	assert.Zero(t, st.TotalConnections, "a refused connect leaves nothing behind")
}

func TestProtocolFlow(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.connect("a", "alice", "", "")
	e.connect("b", "", "", "")
	e.connect("c", "carol", "", "")

	assert.JSONEq(t, `{"type":"pong"}`, e.send("a", "alice", "", "$default", `{"action":"ping"}`))
	assert.JSONEq(t, `{"type":"whoami","connectionId":"a","userId":"alice"}`, e.send("a", "alice", "", "$default", `{"action":"whoami"}`))
	assert.JSONEq(t, `{"type":"whoami","connectionId":"b","userId":null}`, e.send("b", "", "", "$default", `{"action":"whoami"}`))

	for _, id := range []string{"a", "b"} {
		assert.JSONEq(t, `{"type":"subscribed","channel":"news"}`, e.send(id, "", "", "$default", `{"action":"subscribe","channel":"news"}`))
	}
	// Subscribing twice is idempotent.
	assert.JSONEq(t, `{"type":"subscribed","channel":"news"}`, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"news"}`))

	assert.JSONEq(t, `{"type":"published","channel":"news"}`,
		e.send("a", "alice", "", "$default", `{"action":"publish","channel":"news","data":{"text":"hi"}}`))
	assert.Equal(t, []string{`{"type":"message","channel":"news","data":{"text":"hi"}}`}, e.messages("b"))
	assert.Empty(t, e.messages("a"), "nothing is echoed to the publisher")
	assert.Empty(t, e.messages("c"), "non-subscribers receive nothing")

	assert.JSONEq(t, `{"type":"unsubscribed","channel":"news"}`, e.send("b", "", "", "$default", `{"action":"unsubscribe","channel":"news"}`))
	e.send("a", "alice", "", "$default", `{"action":"publish","channel":"news","data":2}`)
	assert.Len(t, e.messages("b"), 1, "unsubscribed connections receive nothing more")
}

// TestEveryErrorCode reaches each protocol error code through the handler.
func TestEveryErrorCode(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.connect("a", "7", "private-user-7", "")
	big := `{"action":"publish","channel":"news","data":"` + strings.Repeat("x", protocol.MaxFrame) + `"}`
	tests := []struct {
		name, patterns, body, code string
	}{
		{"not json", "", `hello`, protocol.CodeBadRequest},
		{"missing channel", "", `{"action":"subscribe"}`, protocol.CodeBadRequest},
		{"invalid channel", "", `{"action":"subscribe","channel":"no spaces"}`, protocol.CodeBadRequest},
		{"unknown action", "", `{"action":"dance"}`, protocol.CodeUnknownAction},
		{"private without claim", "", `{"action":"subscribe","channel":"private-user-8"}`, protocol.CodeForbidden},
		{"private with other claim", "private-user-7", `{"action":"subscribe","channel":"private-user-8"}`, protocol.CodeForbidden},
		{"publish unsubscribed", "", `{"action":"publish","channel":"news","data":1}`, protocol.CodeNotSubscribed},
		{"too large", "", big, protocol.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.code, errorCode(t, e.send("a", "7", tt.patterns, "$default", tt.body)))
		})
	}
	// The connection stays usable after errors, and the right claim allows the private channel.
	assert.JSONEq(t, `{"type":"subscribed","channel":"private-user-7"}`,
		e.send("a", "7", "private-user-7", "$default", `{"action":"subscribe","channel":"private-user-7"}`))
}

func TestGoneDuringChannelSendRemovesOnlyDeadConnections(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	for _, id := range []string{"sender", "live1", "dead1", "live2", "dead2"} {
		e.connect(id, "", "", "room,lobby")
	}
	e.api.Kill("dead1", "dead2")   // closed without a $disconnect
	e.now = e.now.Add(time.Minute) // past GoneGrace

	assert.JSONEq(t, `{"type":"published","channel":"room"}`,
		e.send("sender", "", "", "$default", `{"action":"publish","channel":"room","data":"x"}`))

	for _, id := range []string{"sender", "live1", "live2"} {
		ok, err := e.m.Exists(ctx, id)
		require.NoError(t, err)
		assert.True(t, ok, "%s must survive", id)
	}
	for _, id := range []string{"dead1", "dead2"} {
		ok, err := e.m.Exists(ctx, id)
		require.NoError(t, err)
		assert.False(t, ok, "%s must be removed", id)
	}
	for _, ch := range []string{"room", "lobby"} {
		members, err := e.m.ConnectionsOfChannel(ctx, ch)
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"sender", "live1", "live2"}, members, "memberships of %s", ch)
	}
	st, err := e.m.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), st.TotalConnections)
	assert.Equal(t, map[string]int64{"room": 3, "lobby": 3}, st.Channels)
}

// TestGoneDuringHandshakeKeepsConnection: API Gateway answers 410 to posts
// made while a connection is still in $connect, so a 410 from a connection
// younger than GoneGrace must not unregister it.
func TestGoneDuringHandshakeKeepsConnection(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	e.connect("old", "", "", "room")
	e.now = e.now.Add(time.Minute)
	ev := loadEvent(t, "apigw-websocket-request-connect.json")
	ev.RequestContext.ConnectionID = "new"
	ev.RequestContext.ConnectedAt = e.now.UnixMilli()
	ev.QueryStringParameters = map[string]string{"channels": "room"}
	ev.MultiValueQueryStringParameters = map[string][]string{"channels": {"room"}}
	resp, err := e.m.Handle(ctx, ev)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// "new" is not live at the management API yet (its handshake is not done).
	rep, err := e.m.SendToChannel(ctx, "room", []byte(`1`))
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Gone)
	ok, err := e.m.Exists(ctx, "new")
	require.NoError(t, err)
	assert.True(t, ok, "a connection in its handshake survives a 410")

	removed, err := RemoveGone(ctx, e.store, "new", e.now.Add(GoneGrace))
	require.NoError(t, err)
	assert.True(t, removed, "past the grace a 410 removes it")
}

// TestGoneRemovesLiveConnectionsAtOnce is issue 2's "a GoneException
// during a channel send removes exactly the dead connections and their
// memberships, not the sender", with connections seconds old: a connection
// that has subscribed itself is up (API Gateway delivered its frame), so its
// 410 means gone, whatever its age; and a connection recorded by other code
// (the store directly) is never pending.
func TestGoneRemovesLiveConnectionsAtOnce(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		ev := loadEvent(t, "apigw-websocket-request-connect.json")
		ev.RequestContext.ConnectionID = id
		ev.RequestContext.ConnectedAt = e.now.UnixMilli() // just now
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = nil, nil
		resp, err := e.m.Handle(ctx, ev)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		e.api.Connect(id)
		assert.Contains(t, e.send(id, "", "", "$default", `{"action":"subscribe","channel":"room"}`), `"subscribed"`)
	}
	require.NoError(t, e.store.AddConnection(ctx, store.Connection{ID: "d", ConnectedAt: e.now}))
	_, err := e.store.Join(ctx, "d", "room")
	require.NoError(t, err)
	e.api.Connect("d")
	e.api.Kill("b", "d")

	assert.Contains(t, e.send("a", "", "", "$default", `{"action":"publish","channel":"room","data":1}`), `"published"`)

	for id, want := range map[string]bool{"a": true, "b": false, "c": true, "d": false} {
		ok, err := e.m.Exists(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, ok, "connection %s", id)
	}
	var members []string
	require.NoError(t, e.store.ChannelMembers(ctx, "room", func(ids []string) error { members = append(members, ids...); return nil }))
	assert.ElementsMatch(t, []string{"a", "c"}, members, "the dead connections' memberships went with them")
}

func TestOversizeAudienceSendIsRefusedUpFront(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.connect("a", "", "", "room")
	_, err := e.m.SendToChannel(context.Background(), "room", make([]byte, sender.MaxPayload+1))
	assert.ErrorIs(t, err, sender.ErrTooLarge)
	_, err = e.m.Broadcast(context.Background(), make([]byte, sender.MaxPayload+1))
	assert.ErrorIs(t, err, sender.ErrTooLarge)
	assert.Zero(t, e.api.Counts().Posts)
}

func TestDisconnectRemovesEverything(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	e.connect("a", "u1", "", "x,y,z")
	e.disconnect("a")
	ok, err := e.m.Exists(ctx, "a")
	require.NoError(t, err)
	assert.False(t, ok)
	chans, err := e.m.Channels(ctx)
	require.NoError(t, err)
	assert.Empty(t, chans)
	ids, err := e.m.ConnectionsOfUser(ctx, "u1")
	require.NoError(t, err)
	assert.Empty(t, ids)
	// A late subscribe from the removed connection cannot resurrect it.
	assert.Equal(t, protocol.CodeBadRequest, errorCode(t, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"x"}`)))
	chans, err = e.m.Channels(ctx)
	require.NoError(t, err)
	assert.Empty(t, chans)
}

// TestServerSideSendsRefuseBadInput: the Manager's sends check their input
// before anything is sent, as the publisher does: ids, sizes; and a send cut
// short by its context says so.
func TestServerSideSendsRefuseBadInput(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	e.connect("p1", "u1", "", "")
	big := []byte(`"` + strings.Repeat("x", sender.MaxPayload) + `"`)
	_, err := e.m.SendToUser(ctx, "u1", big)
	assert.ErrorIs(t, err, sender.ErrTooLarge)
	_, err = e.m.SendToUsers(ctx, []string{"u1"}, big)
	assert.ErrorIs(t, err, sender.ErrTooLarge)
	_, err = e.m.SendToConnections(ctx, []string{"p1"}, big)
	assert.ErrorIs(t, err, sender.ErrTooLarge)
	_, err = e.m.SendToConnections(ctx, []string{"p1", ""}, []byte(`1`))
	assert.ErrorIs(t, err, store.ErrInvalidID)
	assert.ErrorIs(t, e.m.SendToConnection(ctx, "a b", []byte(`1`)), store.ErrInvalidID)
	assert.ErrorIs(t, e.m.SendToNewConnection(ctx, "a b", []byte(`1`)), store.ErrInvalidID)
	assert.ErrorIs(t, e.m.SendToNewConnection(ctx, "p1", big), sender.ErrTooLarge)
	assert.ErrorIs(t, e.m.Disconnect(ctx, ""), store.ErrInvalidID)
	assert.ErrorIs(t, e.m.CloseConnection(ctx, ""), store.ErrInvalidID)
	assert.Empty(t, e.messages("p1"), "nothing sent")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.m.SendToUser(cancelled, "u1", []byte(`1`))
	assert.ErrorIs(t, err, context.Canceled)
	counts := metricstest.New()
	e.m.cfg.Metrics = counts
	assert.ErrorIs(t, e.m.SendToNewConnection(cancelled, "p1", []byte(`1`)), context.Canceled)
	assert.Equal(t, 1.0, counts.Count(metrics.DeliveriesLost), "the cut-short welcome reached nobody")
}

func TestServerSideSends(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	e.connect("p1", "u1", "", "")
	e.connect("p2", "u1", "", "")
	e.connect("q1", "u2", "", "news")
	e.connect("r1", "", "", "news")

	payload := []byte(`{"type":"personal","n":1}`)
	rep, err := e.m.SendToUser(ctx, "u1", payload)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Delivered)
	assert.Equal(t, []string{string(payload)}, e.messages("p1"), "server-side data arrives unchanged")

	reps, err := e.m.SendToUsers(ctx, []string{"u1", "u2", "nobody"}, []byte(`"blast"`))
	require.NoError(t, err)
	assert.Equal(t, 2, reps["u1"].Delivered)
	assert.Equal(t, 1, reps["u2"].Delivered)
	assert.Equal(t, 0, reps["nobody"].Total())

	rep, err = e.m.SendToChannel(ctx, "news", []byte(`{"c":1}`))
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Delivered)

	rep, err = e.m.Broadcast(ctx, []byte(`{"all":true}`))
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Delivered)
	for _, id := range []string{"p1", "p2", "q1", "r1"} {
		msgs := e.messages(id)
		assert.Equal(t, `{"all":true}`, msgs[len(msgs)-1])
	}

	require.NoError(t, e.m.SendToConnection(ctx, "r1", []byte(`1`)))
	e.api.Kill("r1")
	e.now = e.now.Add(time.Minute) // past GoneGrace
	err = e.m.SendToConnection(ctx, "r1", []byte(`2`))
	assert.ErrorIs(t, err, sender.ErrGone)
	ok, err := e.m.Exists(ctx, "r1")
	require.NoError(t, err)
	assert.False(t, ok, "a 410 removes the connection")

	err = e.m.SendToConnection(ctx, "p1", make([]byte, sender.MaxPayload+1))
	assert.ErrorIs(t, err, sender.ErrTooLarge)

	_, err = e.m.SendToChannel(ctx, "bad channel", []byte(`1`))
	assert.ErrorIs(t, err, ErrInvalidChannel)
	for _, name := range []string{"bad channel", "", strings.Repeat("c", 3000)} {
		_, err = e.m.ConnectionsOfChannel(ctx, name)
		assert.ErrorIs(t, err, ErrInvalidChannel, "a lookup checks the name as a send does: %.20q", name)
	}
}

func TestLookupsStatsCleanupAndDisconnect(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	e.connect("a", "u", "", "n1,n2")
	e.connect("b", "", "", "n2")

	chans, err := e.m.ChannelsOfConnection(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, []string{"n1", "n2"}, chans)
	all, err := e.m.Channels(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"n1", "n2"}, all)
	ids, err := e.m.AllConnections(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a", "b"}, ids)
	st, err := e.m.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, store.Stats{TotalConnections: 2, TotalChannels: 2, Channels: map[string]int64{"n1": 1, "n2": 2}}, st)

	require.NoError(t, e.m.Disconnect(ctx, "b"))
	assert.True(t, e.api.Deleted("b"))
	ok, err := e.m.Exists(ctx, "b")
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, e.m.Disconnect(ctx, "b"), "disconnecting a gone connection is not an error")

	n, err := e.m.Cleanup(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	e.now = e.now.Add(store.DefaultTTL + time.Minute)
	n, err = e.m.Cleanup(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestHooks(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	record := func(s string) { mu.Lock(); calls = append(calls, s); mu.Unlock() }
	e := newEnv(t, Hooks{
		OnConnect: func(_ context.Context, _ *Manager, r *Request) error {
			record("connect:" + r.UserID)
			if r.UserID == "banned" {
				return &Reject{Status: http.StatusForbidden, Reason: "banned"}
			}
			if r.UserID == "broken" {
				return errors.New("database down")
			}
			return nil
		},
		OnDisconnect: func(_ context.Context, _ *Manager, r *Request) error {
			record("disconnect:" + r.ConnectionID)
			panic("hook bug")
		},
		OnMessage: func(_ context.Context, _ *Manager, r *Request) ([]byte, error) {
			record("message:" + string(r.Body))
			if string(r.Body) == "fail" {
				return nil, errors.New("secret internal detail")
			}
			return []byte(`{"echo":true}`), nil
		},
		Routes: map[string]RouteFunc{
			"sendmessage": func(_ context.Context, m *Manager, r *Request) ([]byte, error) {
				record("route:" + r.RouteKey)
				return nil, protocol.Errorf(protocol.CodeForbidden, "nope")
			},
		},
		OnRoute: func(_ context.Context, _ *Manager, r *Request) ([]byte, error) {
			record("any:" + r.RouteKey)
			panic("boom")
		},
		OnJoin: func(_ context.Context, id, ch string) error { record("join:" + id + ":" + ch); return nil },
		OnLeave: func(_ context.Context, id, ch string) error {
			record("leave:" + id + ":" + ch)
			return errors.New("ignored")
		},
	})

	assert.Equal(t, http.StatusForbidden, e.connect("x", "banned", "", "").StatusCode)
	assert.Equal(t, http.StatusInternalServerError, e.connect("y", "broken", "", "").StatusCode)
	ok, err := e.m.Exists(context.Background(), "x")
	require.NoError(t, err)
	assert.False(t, ok, "a rejected connection is rolled back")

	require.Equal(t, http.StatusOK, e.connect("a", "ann", "", "").StatusCode)
	assert.JSONEq(t, `{"echo":true}`, e.send("a", "ann", "", "$default", `plain text`))
	assert.JSONEq(t, `{"echo":true}`, e.send("a", "ann", "", "$default", `{"action":"custom"}`))
	body := e.send("a", "ann", "", "$default", `fail`)
	assert.Equal(t, protocol.CodeInternal, errorCode(t, body))
	assert.NotContains(t, body, "secret")
	assert.Equal(t, protocol.CodeForbidden, errorCode(t, e.send("a", "ann", "", "sendmessage", `{"action":"sendmessage"}`)))
	assert.Equal(t, protocol.CodeInternal, errorCode(t, e.send("a", "ann", "", "other", `{"action":"other"}`)))
	e.send("a", "ann", "", "$default", `{"action":"subscribe","channel":"c"}`)
	e.send("a", "ann", "", "$default", `{"action":"unsubscribe","channel":"c"}`)
	// Protocol actions still work with a message hook installed.
	assert.JSONEq(t, `{"type":"pong"}`, e.send("a", "ann", "", "$default", `{"action":"ping"}`))
	e.disconnect("a")

	assert.Equal(t, []string{
		"connect:banned", "connect:broken", "connect:ann",
		"message:plain text", `message:{"action":"custom"}`, "message:fail",
		"route:sendmessage", "any:other", "join:a:c", "leave:a:c", "disconnect:a",
	}, calls)
}

func TestCustomRouteWithoutHookAnswersUnknownAction(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.connect("a", "", "", "")
	assert.Equal(t, protocol.CodeUnknownAction, errorCode(t, e.send("a", "", "", "custom", `{"action":"custom"}`)))
}

// recordedEvents keeps one line per lifecycle event: the detail type with
// routeKey and body, or what line makes of it.
type recordedEvents struct {
	mu     sync.Mutex
	events []string
	line   func(detailType string, detail map[string]any) string
}

func (r *recordedEvents) Publish(_ context.Context, detailType string, detail map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.line != nil {
		r.events = append(r.events, r.line(detailType, detail))
	} else {
		r.events = append(r.events, fmt.Sprintf("%s %v %v", detailType, detail["routeKey"], detail["body"]))
	}
	return nil
}

// channelLine is a recordedEvents line of the detail type and its channel, if any.
func channelLine(detailType string, detail map[string]any) string {
	if ch, ok := detail["channel"]; ok {
		return fmt.Sprintf("%s %v", detailType, ch)
	}
	return detailType
}

// TestCustomRouteWithoutHookGoesToEvents: a custom route on the built-in
// function without a Go hook is delivered to the lifecycle event bus.
func TestCustomRouteWithoutHookGoesToEvents(t *testing.T) {
	e := newEnv(t, Hooks{})
	ev := &recordedEvents{}
	e.m.cfg.Events = ev
	e.connect("a", "", "", "")
	resp, err := e.m.Handle(context.Background(), func() events.APIGatewayWebsocketProxyRequest {
		req := loadEvent(t, "apigw-websocket-request-message.json")
		req.RequestContext.ConnectionID, req.RequestContext.RouteKey, req.Body = "a", "typing", `{"action":"typing"}`
		return req
	}())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Body)
	assert.Contains(t, ev.events, `websocket.message typing {"action":"typing"}`)
}

// failingEvents is an event publisher that fails, or panics.
type failingEvents struct{ panics bool }

func (f failingEvents) Publish(context.Context, string, map[string]any) error {
	if f.panics {
		panic("publisher bug")
	}
	return errors.New("AccessDeniedException")
}

// TestCustomRouteEventTheBusCannotTake: a custom route whose only delivery
// is the event bus tells the client when the bus cannot take its frame: an
// event past EventBridge's 256 KB (JSON escapes can make a 128 KB frame's
// event pass it) answers too_large, a failed or panicking publish
// internal_error.
func TestCustomRouteEventTheBusCannotTake(t *testing.T) {
	custom := func(e *env, body string) events.APIGatewayProxyResponse {
		req := loadEvent(t, "apigw-websocket-request-message.json")
		req.RequestContext.ConnectionID, req.RequestContext.RouteKey, req.Body = "a", "typing", body
		resp, err := e.m.Handle(context.Background(), req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp
	}
	e := newEnv(t, Hooks{})
	ev := &recordedEvents{}
	e.m.cfg.Events = ev
	e.connect("a", "", "", "")
	// Each < is 6 bytes in JSON (\u003c): 45,000 of them pass 256 KB.
	escaped := `{"action":"typing","text":"` + strings.Repeat(`<`, 45000) + `"}`
	require.Less(t, len(escaped), sender.MaxPayload)
	published := len(ev.events)
	resp := custom(e, escaped)
	assert.Contains(t, resp.Body, `"code":"too_large"`)
	assert.Equal(t, published, len(ev.events), "nothing published")
	resp = custom(e, `{"action":"typing","text":"`+strings.Repeat(`<`, 40000)+`"}`)
	assert.Empty(t, resp.Body, "an event under the bound is published")
	assert.Equal(t, published+1, len(ev.events))

	for _, f := range []failingEvents{{}, {panics: true}} {
		e.m.cfg.Events = f
		resp = custom(e, `{"action":"typing"}`)
		assert.Contains(t, resp.Body, `"code":"internal_error"`, "panics %v", f.panics)
	}
}

// TestPanickingEventPublisherLeavesNoGhost: an event publisher that panics
// on $connect is logged like one that fails: the connection is accepted and
// registered as usual, not refused with 500 after its writes.
func TestPanickingEventPublisherLeavesNoGhost(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.m.cfg.Events = failingEvents{panics: true}
	resp := e.connect("a", "alice", "", "chat")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	ids, err := e.m.ConnectionsOfChannel(context.Background(), "chat")
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, ids)
}

func TestBadEvents(t *testing.T) {
	e := newEnv(t, Hooks{})
	ev := loadEvent(t, "apigw-websocket-request-message.json")
	ev.RequestContext.ConnectionID = ""
	resp, err := e.m.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A $connect with an id API Gateway never gives (a hand-made event) is
	// a bad request, not a server error.
	assert.Equal(t, http.StatusBadRequest, e.connect("bad id with spaces", "", "", "").StatusCode)

	ev = loadEvent(t, "apigw-websocket-request-message.json")
	ev.IsBase64Encoded, ev.Body = true, "%%%"
	resp, err = e.m.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	ev = loadEvent(t, "apigw-websocket-request-message.json")
	ev.IsBase64Encoded, ev.Body = true, "eyJhY3Rpb24iOiJwaW5nIn0=" // {"action":"ping"}
	resp, err = e.m.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"pong"}`, resp.Body)
}

func TestEndpointDerivedFromEvent(t *testing.T) {
	api := mgmtapitest.New(mgmtapitest.Options{Stage: "prod", KeepMessages: true, AutoRegister: true})
	defer api.Close()
	var endpoints []string
	now := fixtureNow
	m, err := New(Config{
		Store: store.NewMemory(store.MemoryOptions{Now: func() time.Time { return now }}),
		NewPoster: func(endpoint string) (sender.Poster, error) {
			endpoints = append(endpoints, endpoint)
			return sender.NewManagementAPI(testAWSConfig(), api.URL(), nil) // stand-in for the real host
		},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now:    func() time.Time { return now },
	})
	require.NoError(t, err)
	ctx := context.Background()
	assert.ErrorIs(t, m.SendToConnection(ctx, "x", []byte("1")), ErrNoEndpoint, "no endpoint known before the first event")

	for _, id := range []string{"a", "b"} {
		ev := loadEvent(t, "apigw-websocket-request-connect.json")
		ev.RequestContext.ConnectionID = id
		ev.QueryStringParameters = map[string]string{"channels": "news"}
		ev.MultiValueQueryStringParameters = map[string][]string{"channels": {"news"}}
		_, err := m.Handle(ctx, ev)
		require.NoError(t, err)
	}
	ev := loadEvent(t, "apigw-websocket-request-message.json")
	ev.RequestContext.ConnectionID = "a"
	ev.Body = `{"action":"publish","channel":"news","data":1}`
	resp, err := m.Handle(ctx, ev)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"published","channel":"news"}`, resp.Body)
	assert.Equal(t, []string{"https://abcdef1234.execute-api.eu-west-1.amazonaws.com/prod"}, endpoints)
	// Afterwards, server-side sends reuse the learnt endpoint.
	require.NoError(t, m.SendToConnection(ctx, "b", []byte("2")))
	assert.Len(t, endpoints, 1)
}

// A $connect refused after channels were joined (here the query's join
// passes the cap the connect hook filled) balances every channel.joined with
// a channel.left, and sends no connected event.
func TestRefusedConnectBalancesItsEvents(t *testing.T) {
	e := newEnv(t, Hooks{OnConnect: func(ctx context.Context, m *Manager, req *Request) error {
		for _, ch := range []string{"h1", "h2"} {
			if _, err := m.Join(ctx, req.ConnectionID, ch); err != nil {
				return err
			}
		}
		return nil
	}})
	rec := &recordedEvents{line: channelLine}
	e.m.cfg.Events = rec
	e.m.cfg.MaxChannelsPerConnection = 2
	assert.Equal(t, http.StatusBadRequest, e.connect("c", "", "", "news").StatusCode)
	assert.ElementsMatch(t, []string{"websocket.channel.joined h1", "websocket.channel.joined h2", "websocket.channel.left h1", "websocket.channel.left h2"}, rec.events)
	assert.Equal(t, []string{"websocket.channel.joined h1", "websocket.channel.joined h2"}, rec.events[:2], "the lefts come after the joins")

	// A caller that refuses a connection Handle accepted (the Pusher
	// handler) follows its connected event with disconnected.
	rec.events = nil
	e.m.cfg.MaxChannelsPerConnection = 10
	counts := metricstest.New()
	e.m.cfg.Metrics = counts
	require.Equal(t, http.StatusOK, e.connect("d", "", "", "").StatusCode)
	e.m.UndoConnect(context.Background(), "d", "")
	assert.Equal(t, 1.0, counts.Count(metrics.ConnectionsOpened))
	assert.Equal(t, 1.0, counts.Count(metrics.ConnectionsClosed), "opened and closed balance")
	assert.Equal(t, []string{"websocket.channel.joined h1", "websocket.channel.joined h2", "websocket.connected", "websocket.channel.left h1", "websocket.channel.left h2", "websocket.disconnected"}, rec.events)
	_, err := e.store.GetConnection(context.Background(), "d")
	assert.ErrorIs(t, err, store.ErrNotFound)
}
