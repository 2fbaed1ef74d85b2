package pusher_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

var app = pusher.App{ID: pusher.DefaultAppID, Key: pusher.DefaultAppKey, Secret: pusher.DefaultAppSecret}

type env struct {
	t        testing.TB
	h        *pusher.Handler
	api      *mgmtapitest.Server
	mu       sync.Mutex
	welcomes map[string]pusher.Welcome
	ahead    time.Duration // how far the Manager's and store's clock runs ahead of time.Now
	presence store.Presence
	metrics  *metricstest.Recorder
}

func (e *env) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Now().Add(e.ahead)
}

func newEnv(t testing.TB, mutate func(*pusher.Config)) *env {
	t.Helper()
	return newEnvWith(t, nil, mutate)
}

// newEnvWith is newEnv whose runtime also gets rc's settings (history).
func newEnvWith(t testing.TB, rc func(*realtime.Config), mutate func(*pusher.Config)) *env {
	t.Helper()
	e := &env{t: t, welcomes: map[string]pusher.Welcome{}, metrics: metricstest.New()}
	e.api = mgmtapitest.New(mgmtapitest.Options{Stage: "prod", KeepMessages: true})
	t.Cleanup(e.api.Close)
	poster, err := sender.NewManagementAPI(aws.Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}}, e.api.URL(), nil)
	require.NoError(t, err)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	mcfg := realtime.Config{
		Store: store.NewMemory(store.MemoryOptions{Now: e.now}), Poster: poster, Logger: log, Now: e.now, Metrics: e.metrics,
		Sender: sender.Options{Concurrency: 4, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
	}
	if rc != nil {
		rc(&mcfg)
	}
	m, err := realtime.New(mcfg)
	require.NoError(t, err)
	pv := store.NewMemoryPresence(nil)
	e.presence = pv
	cfg := pusher.Config{
		App: app, Manager: m, Presence: pv, Values: pv, Logger: log,
		Welcomer: pusher.WelcomerFunc(func(_ context.Context, w pusher.Welcome) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.welcomes[w.ConnectionID] = w
			return nil
		}),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	e.h, err = pusher.NewHandler(cfg)
	require.NoError(t, err)
	return e
}

func (e *env) event(route, id, body string, query map[string]string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{
		Body: body, QueryStringParameters: query,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: route, ConnectionID: id, ConnectedAt: time.Now().UnixMilli()},
	}
}

// connect runs $connect and the welcome step, and returns the socket id.
func (e *env) connect(id string) string {
	e.t.Helper()
	return e.connectAt(id, e.now())
}

// connectAt is connect for a connection API Gateway accepted at connectedAt.
func (e *env) connectAt(id string, connectedAt time.Time) string {
	e.t.Helper()
	ev := e.event("$connect", id, "", map[string]string{pusher.QueryAppKey: app.Key, "protocol": "7"})
	ev.RequestContext.ConnectedAt = connectedAt.UnixMilli()
	resp, err := e.h.Handle(e.t.Context(), ev)
	require.NoError(e.t, err)
	require.Equal(e.t, 200, resp.StatusCode)
	e.api.Connect(id)
	e.mu.Lock()
	w := e.welcomes[id]
	e.mu.Unlock()
	require.NoError(e.t, e.h.RunWelcome(e.t.Context(), w))
	return w.SocketID
}

func (e *env) send(id string, frame any) map[string]any {
	e.t.Helper()
	b, _ := json.Marshal(frame)
	resp, err := e.h.Handle(e.t.Context(), e.event("$default", id, string(b), nil))
	require.NoError(e.t, err)
	if resp.Body == "" {
		return nil
	}
	var out map[string]any
	require.NoError(e.t, json.Unmarshal([]byte(resp.Body), &out))
	return out
}

func data(t testing.TB, f map[string]any) map[string]any {
	t.Helper()
	s, ok := f["data"].(string)
	require.True(t, ok, "server data is a JSON-encoded string: %v", f)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &out))
	return out
}

func (e *env) frames(id string) []map[string]any {
	var out []map[string]any
	for _, m := range e.api.Messages(id) {
		var f map[string]any
		require.NoError(e.t, json.Unmarshal(m, &f))
		out = append(out, f)
	}
	return out
}

func TestWelcomeRetriesUntilConnectReturned(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.h.Handle(t.Context(), e.event("$connect", "c1", "", map[string]string{pusher.QueryAppKey: app.Key, "protocol": "7"}))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	w := e.welcomes["c1"]
	require.True(t, pusher.ValidSocketID(w.SocketID))
	done := make(chan error, 1)
	go func() { done <- e.h.RunWelcome(context.Background(), w) }()
	// Until the gateway has the connection, posts answer 410 and the step retries.
	require.Eventually(t, func() bool { return e.api.Counts().Gone >= 2 }, 10*time.Second, time.Millisecond)
	e.api.Connect("c1")
	require.NoError(t, <-done)
	f := e.frames("c1")
	require.Len(t, f, 1)
	assert.Equal(t, "pusher:connection_established", f[0]["event"])
	assert.Equal(t, w.SocketID, data(t, f[0])["socket_id"])
	assert.EqualValues(t, 120, data(t, f[0])["activity_timeout"])
	// One send to one recipient for the metrics: the 410s before $connect
	// returned are retries, not gone recipients.
	assert.Zero(t, e.metrics.Count(metrics.DeliveriesGone))
	assert.Equal(t, 1.0, e.metrics.Count(metrics.DeliveriesSucceeded))
	assert.Equal(t, []float64{1}, e.metrics.Samples(metrics.Recipients))
	posts := float64(e.api.Counts().Gone + 1)
	assert.Equal(t, posts, e.metrics.Count(metrics.DeliveriesAttempted))
	assert.Equal(t, posts-1, e.metrics.Count(metrics.Retries))
}

func TestWelcomeAnnouncesConfiguredActivityTimeout(t *testing.T) {
	e := newEnv(t, func(c *pusher.Config) { c.ActivityTimeout = 30 })
	e.connect("c1")
	f := e.frames("c1")
	require.Len(t, f, 1)
	assert.EqualValues(t, 30, data(t, f[0])["activity_timeout"])
}

func TestConnectRefusals(t *testing.T) {
	for name, q := range map[string]map[string]string{
		"unknown key": {pusher.QueryAppKey: "nope", "protocol": "7"},
		"protocol 6":  {pusher.QueryAppKey: app.Key, "protocol": "6"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			_, err := e.h.Handle(t.Context(), e.event("$connect", "c1", "", q))
			require.NoError(t, err)
			e.api.Connect("c1")
			require.NoError(t, e.h.RunWelcome(t.Context(), e.welcomes["c1"]))
			f := e.frames("c1")
			require.Len(t, f, 1)
			assert.Equal(t, "pusher:error", f[0]["event"])
			want := map[string]float64{"unknown key": 4001, "protocol 6": 4007}[name]
			assert.EqualValues(t, want, data(t, f[0])["code"])
			assert.True(t, e.api.Deleted("c1"), "the connection is closed")
		})
	}
}

func TestSubscribeAndPresence(t *testing.T) {
	e := newEnv(t, nil)
	sa, sb, sc := e.connect("a"), e.connect("b"), e.connect("c")
	assert.Equal(t, map[string]any{"event": "pusher:pong", "data": "{}"}, e.send("a", map[string]any{"event": "pusher:ping", "data": map[string]any{}}))

	ok := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": app.ChannelAuth(sa, "private-x", "")}})
	assert.Equal(t, "pusher_internal:subscription_succeeded", ok["event"])
	bad := e.send("b", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": app.ChannelAuth(sa, "private-x", "")}})
	assert.Equal(t, "pusher:subscription_error", bad["event"])
	assert.EqualValues(t, 401, data(t, bad)["status"])
	assert.Equal(t, "AuthError", data(t, bad)["type"])

	join := func(id, sid, user string) map[string]any {
		cd := `{"user_id":"` + user + `","user_info":{"n":"` + user + `"}}`
		return e.send(id, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-r", "auth": app.ChannelAuth(sid, "presence-r", cd), "channel_data": cd}})
	}
	r := join("a", sa, "u1")
	assert.EqualValues(t, 1, data(t, r)["presence"].(map[string]any)["count"])
	count := func(id, event string) int {
		n := 0
		for _, f := range e.frames(id) {
			if f["event"] == event {
				n++
			}
		}
		return n
	}
	r = join("b", sb, "u1") // a second connection of u1
	assert.EqualValues(t, 1, data(t, r)["presence"].(map[string]any)["count"])
	assert.Equal(t, 0, count("a", "pusher_internal:member_added"), "u1's second connection is not announced")
	r = join("c", sc, "u2")
	assert.EqualValues(t, 2, data(t, r)["presence"].(map[string]any)["count"])
	assert.Equal(t, 1, count("a", "pusher_internal:member_added"), "u2 is announced to a")

	// Client events: relayed with user_id to the others, not echoed.
	assert.Nil(t, e.send("c", map[string]any{"event": "client-typing", "channel": "presence-r", "data": map[string]any{"t": 1}}))
	relayed := e.frames("a")[len(e.frames("a"))-1]
	assert.Equal(t, "client-typing", relayed["event"])
	assert.Equal(t, "u2", relayed["user_id"])
	assert.Equal(t, `{"t":1}`, relayed["data"], "data reaches the others as a JSON-encoded string")
	assert.Equal(t, 0, count("c", "client-typing"))

	// Leaving: u1 is removed only with its last connection.
	_, err := e.h.Handle(t.Context(), e.event("$disconnect", "a", "", nil))
	require.NoError(t, err)
	assert.Equal(t, 0, count("c", "pusher_internal:member_removed"))
	_, err = e.h.Handle(t.Context(), e.event("$disconnect", "b", "", nil))
	require.NoError(t, err)
	assert.Equal(t, 1, count("c", "pusher_internal:member_removed"))
}

func TestClientEventLimits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	e := newEnv(t, func(c *pusher.Config) { c.Now = func() time.Time { return now } })
	sid := e.connect("a")
	e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": app.ChannelAuth(sid, "private-x", "")}})
	for i := range 10 {
		assert.Nil(t, e.send("a", map[string]any{"event": "client-x", "channel": "private-x", "data": map[string]any{"i": i}}), "event %d", i)
	}
	over := e.send("a", map[string]any{"event": "client-x", "channel": "private-x", "data": map[string]any{}})
	assert.EqualValues(t, 4301, data(t, over)["code"])
	now = now.Add(time.Second)
	assert.Nil(t, e.send("a", map[string]any{"event": "client-x", "channel": "private-x", "data": map[string]any{}}), "a new second, a new budget")
	public := e.send("a", map[string]any{"event": "client-x", "channel": "public", "data": map[string]any{}})
	assert.EqualValues(t, 4301, data(t, public)["code"])

	// Pusher does not relay client events on encrypted channels.
	now = now.Add(time.Second)
	enc := "private-encrypted-x"
	require.Equal(t, "pusher_internal:subscription_succeeded",
		e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": enc, "auth": app.ChannelAuth(sid, enc, "")}})["event"])
	r := e.send("a", map[string]any{"event": "client-x", "channel": enc, "data": map[string]any{}})
	assert.EqualValues(t, 4301, data(t, r)["code"])
	assert.Contains(t, data(t, r)["message"], "encrypted")

	off := newEnv(t, func(c *pusher.Config) { c.DisableClientEvents = true })
	off.connect("a")
	r = off.send("a", map[string]any{"event": "client-x", "channel": "private-x", "data": map[string]any{}})
	assert.EqualValues(t, 4301, data(t, r)["code"])
}

// TestClientEventRateCountsWhenAPIGatewayReceived: the rate is counted per
// second of requestTimeEpoch, so events a client sent within one second are
// limited together even when their invocations run seconds later, and a late
// event of a new second gets a new budget.
func TestClientEventRateCountsWhenAPIGatewayReceived(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	e := newEnv(t, func(c *pusher.Config) { c.Now = func() time.Time { return now } })
	sid := e.connect("a")
	e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": app.ChannelAuth(sid, "private-x", "")}})
	sentAt := func(at time.Time) map[string]any {
		t.Helper()
		ev := e.event("$default", "a", `{"event":"client-x","channel":"private-x","data":{}}`, nil)
		ev.RequestContext.RequestTimeEpoch = at.UnixMilli()
		resp, err := e.h.Handle(t.Context(), ev)
		require.NoError(t, err)
		if resp.Body == "" {
			return nil
		}
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(resp.Body), &out))
		return out
	}
	received := now.Add(-5 * time.Second) // the invocations run 5 s late
	for i := range 10 {
		now = now.Add(300 * time.Millisecond) // ... and slower than 10 per second
		assert.Nil(t, sentAt(received.Add(time.Duration(i)*time.Millisecond)), "event %d", i)
	}
	over := sentAt(received.Add(900 * time.Millisecond))
	require.NotNil(t, over, "the 11th event received within one second")
	assert.EqualValues(t, 4301, data(t, over)["code"])
	assert.Nil(t, sentAt(received.Add(time.Second)), "received in the next second: a new budget")
}

func apiRequest(method, path string, body string, secret string, at time.Time) events.APIGatewayV2HTTPRequest {
	q := url.Values{"auth_key": {app.Key}, "auth_timestamp": {strconv.FormatInt(at.Unix(), 10)}, "auth_version": {"1.0"}}
	if body != "" {
		q.Set("body_md5", pusher.BodyMD5([]byte(body)))
	}
	q.Set("auth_signature", pusher.RequestSignature(secret, method, path, q))
	req := events.APIGatewayV2HTTPRequest{RawPath: path, RawQueryString: q.Encode(), Body: body}
	req.RequestContext.HTTP.Method = method
	return req
}

// TestHTTPAPIQueryWithSemicolon: pusher-http-go puts filter_by_prefix in the
// query unescaped, and a channel name may hold ';'. The query is read with
// '&' alone between pairs (url.ParseQuery refuses ';').
func TestHTTPAPIQueryWithSemicolon(t *testing.T) {
	e := newEnv(t, nil)
	e.connect("a")
	e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "pub-a;b"}})
	q := url.Values{"auth_key": {app.Key}, "auth_timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "auth_version": {"1.0"}, "filter_by_prefix": {"pub-a;"}}
	sig := pusher.RequestSignature(app.Secret, "GET", "/apps/app-id/channels", q)
	raw := "auth_key=" + app.Key + "&auth_timestamp=" + q.Get("auth_timestamp") + "&auth_version=1.0&filter_by_prefix=pub-a;&auth_signature=" + sig
	req := events.APIGatewayV2HTTPRequest{RawPath: "/apps/app-id/channels", RawQueryString: raw}
	req.RequestContext.HTTP.Method = "GET"
	resp := e.h.ServeAPI(t.Context(), req)
	assert.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.JSONEq(t, `{"channels":{"pub-a;b":{}}}`, resp.Body)
}

func TestHTTPAPI(t *testing.T) {
	e := newEnv(t, nil)
	sa := e.connect("a")
	e.connect("b")
	e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
	e.send("b", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
	body := `{"name":"flash","channel":"news","data":"{\"x\":1}","socket_id":"` + sa + `"}`
	resp := e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", body, app.Secret, time.Now()))
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{}`, resp.Body)
	last := e.frames("b")[len(e.frames("b"))-1]
	assert.Equal(t, map[string]any{"event": "flash", "channel": "news", "data": `{"x":1}`}, last)
	for _, f := range e.frames("a") {
		assert.NotEqual(t, "flash", f["event"], "socket_id is excluded")
	}

	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", body, "wrong", time.Now()))
	assert.Equal(t, 401, resp.StatusCode)
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", body, app.Secret, time.Now().Add(-11*time.Minute)))
	assert.Equal(t, 401, resp.StatusCode)
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/other/events", body, app.Secret, time.Now()))
	assert.Equal(t, 404, resp.StatusCode)
	resp = e.h.ServeAPI(t.Context(), apiRequest("GET", "/apps/app-id/channels/news", "", app.Secret, time.Now()))
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"occupied":true}`, resp.Body)

	// Data over 10 KB is Pusher's 413, for an event and for a batched one;
	// other bad input stays 400.
	big := strings.Repeat("x", 10*1024+1)
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", `{"name":"e","channel":"news","data":"`+big+`"}`, app.Secret, time.Now()))
	assert.Equal(t, 413, resp.StatusCode)
	assert.Contains(t, resp.Body, "exceeds 10240 bytes")
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/batch_events", `{"batch":[{"name":"e","channel":"news","data":"ok"},{"name":"e","channel":"news","data":"`+big+`"}]}`, app.Secret, time.Now()))
	assert.Equal(t, 413, resp.StatusCode)
	assert.Contains(t, resp.Body, "batch[1]")
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", `{"name":"e","channel":"news","data":"`+big[:10*1024]+`"}`, app.Secret, time.Now()))
	assert.Equal(t, 200, resp.StatusCode, "exactly 10 KB is allowed")
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", `{"name":"","channel":"news","data":"x"}`, app.Secret, time.Now()))
	assert.Equal(t, 400, resp.StatusCode)
	for _, body := range []string{`{}`, `{"batch":[]}`, `{"batch":null}`, `[]`} {
		resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/batch_events", body, app.Secret, time.Now()))
		assert.Equal(t, 400, resp.StatusCode, "a batch of nothing is an error, not a silent 200: %s", body)
		assert.JSONEq(t, `{"error":"Body must be {\"batch\": [...]} with 1 to 10 events","code":400}`, resp.Body)
	}
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", `{"name":"e","channel":"news","data":null}`, app.Secret, time.Now()))
	assert.Equal(t, 400, resp.StatusCode, "null data is missing data")

	// A channel named twice is delivered once.
	before := len(e.events("b", "twice"))
	resp = e.h.ServeAPI(t.Context(), apiRequest("POST", "/apps/app-id/events", `{"name":"twice","channel":"news","channels":["news","news"],"data":"1"}`, app.Secret, time.Now()))
	assert.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.Len(t, e.events("b", "twice"), before+1)
}

// TestHTTPAPIQueryNamesAreCaseInsensitive: the signature covers the
// parameters by their lower-cased names, so they are read that way too: a
// signed FILTER_BY_PREFIX filters.
func TestHTTPAPIQueryNamesAreCaseInsensitive(t *testing.T) {
	e := newEnv(t, nil)
	e.connect("a")
	for _, ch := range []string{"news", "presence-x-other"} {
		e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch}})
	}
	q := url.Values{"auth_key": {app.Key}, "auth_timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "auth_version": {"1.0"}, "FILTER_BY_PREFIX": {"new"}}
	q.Set("auth_signature", pusher.RequestSignature(app.Secret, "GET", "/apps/app-id/channels", q))
	req := events.APIGatewayV2HTTPRequest{RawPath: "/apps/app-id/channels", RawQueryString: q.Encode()}
	req.RequestContext.HTTP.Method = "GET"
	resp := e.h.ServeAPI(t.Context(), req)
	assert.Equal(t, 200, resp.StatusCode, resp.Body)
	assert.JSONEq(t, `{"channels":{"news":{}}}`, resp.Body)
}

func TestGoLibraryAndAuthorizerUser(t *testing.T) {
	e := newEnv(t, nil)
	// A connection the JWT authorizer accepted as jwt-1 counts as signed in.
	ev := e.event("$connect", "j", "", map[string]string{pusher.QueryAppKey: app.Key, "protocol": "7", "channels": "news"})
	ev.RequestContext.Authorizer = map[string]any{"userId": "jwt-1"}
	resp, err := e.h.Handle(t.Context(), ev)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	e.api.Connect("j")
	require.NoError(t, e.h.RunWelcome(t.Context(), e.welcomes["j"]))

	chans, err := e.h.Manager().Store().ConnectionChannels(t.Context(), "j")
	require.NoError(t, err)
	assert.Equal(t, []string{"pusher/#server-to-user-jwt-1"}, chans, "protocol v1's ?channels= is ignored")

	require.NoError(t, e.h.SendToUser(t.Context(), "jwt-1", "note", `{"n":1}`))
	f := e.frames("j")
	assert.Equal(t, map[string]any{"event": "note", "channel": "#server-to-user-jwt-1", "data": `{"n":1}`}, f[len(f)-1])

	sid := e.connect("p")
	cd := `{"user_id":"u9"}`
	e.send("p", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-g", "auth": app.ChannelAuth(sid, "presence-g", cd), "channel_data": cd}})
	members, err := e.h.Members(t.Context(), "presence-g")
	require.NoError(t, err)
	require.Len(t, members, 1)
	assert.Equal(t, "u9", members[0].UserID)
	require.NoError(t, e.h.Trigger(t.Context(), []string{"presence-g"}, "ev", "x", ""))
	f = e.frames("p")
	assert.Equal(t, map[string]any{"event": "ev", "channel": "presence-g", "data": "x"}, f[len(f)-1])
	// Trigger applies the HTTP API's checks before sending anything.
	before := len(e.frames("p"))
	for _, tc := range []struct {
		channels    []string
		event, data string
	}{
		{[]string{"presence-g", "bad channel!"}, "ev", "x"},
		{[]string{"presence-g"}, "", "x"},
		{[]string{"presence-g"}, "ev", strings.Repeat("x", pusher.DefaultMaxEventBytes+1)},
	} {
		err := e.h.Trigger(t.Context(), tc.channels, tc.event, tc.data, "")
		assert.ErrorIs(t, err, pusher.ErrInvalidEvent, "%v %q", tc.channels, tc.event)
	}
	assert.Len(t, e.frames("p"), before, "nothing sent for a refused event")

	n, err := e.h.TerminateUser(t.Context(), "jwt-1")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.True(t, e.api.Deleted("j"))
	f = e.frames("j")
	assert.Equal(t, "pusher:error", f[len(f)-1]["event"])
	assert.EqualValues(t, 4009, data(t, f[len(f)-1])["code"])
}

// membershipReads counts the store's reads of a connection's channels: the
// whole list (a Query of its partition on DynamoDB) and one membership (a
// GetItem).
type membershipReads struct {
	store.Store
	whole, one atomic.Int64
}

func (m *membershipReads) ConnectionChannels(ctx context.Context, id string) ([]string, error) {
	m.whole.Add(1)
	return m.Store.ConnectionChannels(ctx, id)
}

func (m *membershipReads) IsMember(ctx context.Context, id, ch string) (bool, error) {
	m.one.Add(1)
	return m.Store.IsMember(ctx, id, ch)
}

// TestMembershipChecksReadOneMembership: a client event and a subscribe to
// the user's #server-to-user channel check the one membership they need, not
// the connection's whole channel list.
func TestMembershipChecksReadOneMembership(t *testing.T) {
	var reads *membershipReads
	e := newEnvWith(t, func(rc *realtime.Config) {
		reads = &membershipReads{Store: rc.Store}
		rc.Store = reads
	}, nil)
	sids := map[string]string{"a": e.connect("a"), "b": e.connect("b")}
	sa := sids["a"]
	for _, c := range []string{"a", "b"} {
		r := e.send(c, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-room", "auth": app.ChannelAuth(sids[c], "private-room", "")}})
		require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	}
	ud := `{"id":"u1"}`
	r := e.send("a", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}})
	require.Equal(t, "pusher:signin_success", r["event"], "%v", r)
	whole, one := reads.whole.Load(), reads.one.Load()

	assert.Nil(t, e.send("a", map[string]any{"event": "client-typing", "channel": "private-room", "data": map[string]any{}}))
	r = e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "#server-to-user-u1"}})
	assert.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	r = e.send("b", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "#server-to-user-u1"}})
	assert.Equal(t, "pusher:subscription_error", r["event"], "not signed in as u1: %v", r)
	assert.Equal(t, whole, reads.whole.Load(), "no read of a whole channel list")
	assert.GreaterOrEqual(t, reads.one.Load()-one, int64(3), "one membership read each")
}

// TestSigninCountsAgainstTheChannelCap: the #server-to-user channel signin
// joins counts against max channels per connection, as a subscription does;
// signing in again as the same user adds nothing.
func TestSigninCountsAgainstTheChannelCap(t *testing.T) {
	e := newEnvWith(t, func(rc *realtime.Config) { rc.MaxChannelsPerConnection = 3 }, nil)
	sa := e.connect("a")
	signin := func(user string) map[string]any {
		ud := `{"id":"` + user + `"}`
		return e.send("a", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}})
	}
	for _, ch := range []string{"c0", "c1"} {
		r := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch}})
		require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	}
	assert.Equal(t, "pusher:signin_success", signin("u1")["event"], "the third channel")
	assert.Equal(t, "pusher:signin_success", signin("u1")["event"], "the same user again: no new channel")
	chans, err := e.h.Manager().Store().ConnectionChannels(context.Background(), "a")
	require.NoError(t, err)
	assert.Len(t, chans, 3)

	sb := e.connect("b")
	for _, ch := range []string{"c0", "c1", "c2"} {
		r := e.send("b", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch}})
		require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	}
	ud := `{"id":"u2"}`
	over := e.send("b", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sb, ud), "user_data": ud}})
	assert.Equal(t, "pusher:error", over["event"], "%v", over)
	assert.EqualValues(t, pusher.CodeOverCapacity, data(t, over)["code"])
	chans, err = e.h.Manager().Store().ConnectionChannels(context.Background(), "b")
	require.NoError(t, err)
	assert.Len(t, chans, 3)
	_, err = e.presence.(store.Values).GetValue(context.Background(), "pusher-user#b")
	assert.ErrorIs(t, err, store.ErrNotFound, "and it stays signed out")
}

// TestSigninAsAnotherUserIsRefused: a connection signed in as one user that
// signs in as another gets 4009 and stays the first user: it is not left in
// the first user's channel (where sends to that user would still reach it)
// nor added to the second's.
func TestSigninAsAnotherUserIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	sa := e.connect("a")
	signin := func(ud string) map[string]any {
		return e.send("a", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}})
	}
	require.Equal(t, "pusher:signin_success", signin(`{"id":"alice"}`)["event"])
	r := signin(`{"id":"bob"}`)
	require.Equal(t, "pusher:error", r["event"], "%v", r)
	assert.EqualValues(t, pusher.CodeUnauthorized, data(t, r)["code"])
	assert.Contains(t, data(t, r)["message"], "Already signed in as another user")
	chans, err := e.h.Manager().Store().ConnectionChannels(context.Background(), "a")
	require.NoError(t, err)
	assert.Equal(t, []string{pusher.StoreChannel("#server-to-user-alice")}, chans)
	cd, err := e.presence.(store.Values).GetValue(context.Background(), "pusher-user#a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"user_id":"alice"}`, string(cd))
	assert.Equal(t, "pusher:signin_success", signin(`{"id":"alice","user_info":{"n":1}}`)["event"], "the same user again")
}

// readHook is a Values that runs hook after each GetValue has read.
type readHook struct {
	store.Values
	hook func(key string)
}

func (r readHook) GetValue(ctx context.Context, key string) ([]byte, error) {
	v, err := r.Values.GetValue(ctx, key)
	r.hook(key)
	return v, err
}

// TestConcurrentSigninsAsTwoUsers: two signins as different users on one
// connection, the second running entirely between the first's read of the
// signed-in user and its own writes (API Gateway may run a connection's
// messages at once), cannot both succeed: one is refused with 4009, and the
// connection is in the channel of the user it is signed in as, only.
func TestConcurrentSigninsAsTwoUsers(t *testing.T) {
	var (
		e             *env
		sa            string
		inFirst, done bool
		second        map[string]any
	)
	signin := func(ud string) map[string]any {
		return e.send("a", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}})
	}
	e = newEnv(t, func(c *pusher.Config) {
		c.Values = readHook{c.Values, func(key string) {
			if key == "pusher-user#a" && inFirst && !done {
				done = true
				second = signin(`{"id":"bob"}`)
			}
		}}
	})
	sa = e.connect("a")
	inFirst = true
	first := signin(`{"id":"alice"}`)
	inFirst = false
	if !done {
		second = signin(`{"id":"bob"}`)
	}
	events := []any{first["event"], second["event"]}
	require.ElementsMatch(t, []any{"pusher:signin_success", "pusher:error"}, events, "one signin succeeds, one is refused")
	winner, loser := "alice", second
	if second["event"] == "pusher:signin_success" {
		winner, loser = "bob", first
	}
	assert.EqualValues(t, pusher.CodeUnauthorized, data(t, loser)["code"])
	chans, err := e.h.Manager().Store().ConnectionChannels(context.Background(), "a")
	require.NoError(t, err)
	assert.Equal(t, []string{pusher.StoreChannel("#server-to-user-" + winner)}, chans)
	cd, err := e.presence.(store.Values).GetValue(context.Background(), "pusher-user#a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"user_id":"`+winner+`"}`, string(cd))
}

// TestFailedSigninLeavesTheConnectionFree: a signin refused for the channel
// cap does not bind the connection to its user: after leaving a channel it
// may sign in as someone else.
func TestFailedSigninLeavesTheConnectionFree(t *testing.T) {
	e := newEnvWith(t, func(c *realtime.Config) { c.MaxChannelsPerConnection = 1 }, nil)
	sa := e.connect("a")
	signin := func(ud string) map[string]any {
		return e.send("a", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}})
	}
	r := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
	require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	r = signin(`{"id":"alice"}`)
	require.Equal(t, "pusher:error", r["event"], "%v", r)
	assert.EqualValues(t, pusher.CodeOverCapacity, data(t, r)["code"])
	_, err := e.presence.(store.Values).GetValue(context.Background(), "pusher-user#a")
	require.ErrorIs(t, err, store.ErrNotFound, "the failed signin is not kept")
	e.send("a", map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	r = signin(`{"id":"bob"}`)
	assert.Equal(t, "pusher:signin_success", r["event"], "%v", r)
}

// failingIncrement is a Values whose counters fail (a store error).
type failingIncrement struct{ store.Values }

func (failingIncrement) Increment(context.Context, string, time.Time) (int64, error) {
	return 0, errors.New("ProvisionedThroughputExceededException")
}

// TestStoreFailureReconnects: a failure of the server's own answers
// pusher:error 4200 and closes the connection, as Pusher's "reconnect
// immediately" does; pusher-js reconnects on the close (it acts on no error
// code sent over an open connection).
func TestStoreFailureReconnects(t *testing.T) {
	e := newEnv(t, func(c *pusher.Config) { c.Values = failingIncrement{c.Values} })
	sa := e.connect("a")
	r := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": app.ChannelAuth(sa, "private-x", "")}})
	require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	r = e.send("a", map[string]any{"event": "client-typing", "channel": "private-x", "data": "{}"})
	assert.Nil(t, r, "no route response: the notice was posted")
	var codes []any
	for _, f := range e.frames("a") {
		if f["event"] == "pusher:error" {
			codes = append(codes, data(t, f)["code"])
		}
	}
	assert.Equal(t, []any{float64(pusher.CodeGenericReconnect)}, codes)
	assert.True(t, e.api.Deleted("a"), "and the connection closed")
}

// TestPresenceAsTheSignedInUser: a presence subscribe whose authorization
// carries no channel_data (pusher-js after signin(), with an auth of
// socket_id:channel) joins as the user the connection signed in as, with
// that user's user_info; channel_data, when given, overrides it; without
// either, the subscribe is refused saying what is missing.
func TestPresenceAsTheSignedInUser(t *testing.T) {
	e := newEnv(t, nil)
	so := e.connect("o")
	ocd := `{"user_id":"observer"}`
	r := e.send("o", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-s", "auth": app.ChannelAuth(so, "presence-s", ocd), "channel_data": ocd}})
	require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)

	sa := e.connect("a")
	noData := map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-s", "auth": app.ChannelAuth(sa, "presence-s", "")}}
	r = e.send("a", noData)
	assert.Equal(t, "pusher:subscription_error", r["event"], "not signed in, no channel_data")
	assert.Contains(t, data(t, r)["error"], "channel_data missing")

	ud := `{"id":"signed-a","user_info":{"name":"Alice"}}`
	require.Equal(t, "pusher:signin_success", e.send("a", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}})["event"])
	r = e.send("a", noData)
	require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	presence := data(t, r)["presence"].(map[string]any)
	assert.ElementsMatch(t, []any{"observer", "signed-a"}, presence["ids"])
	assert.Equal(t, map[string]any{"name": "Alice"}, presence["hash"].(map[string]any)["signed-a"])
	var added []map[string]any
	for _, f := range e.frames("o") {
		if f["event"] == "pusher_internal:member_added" {
			added = append(added, data(t, f))
		}
	}
	require.Len(t, added, 1)
	assert.Equal(t, "signed-a", added[0]["user_id"])
	assert.Equal(t, map[string]any{"name": "Alice"}, added[0]["user_info"])

	// Subscribed as one user, a connection cannot become another by
	// subscribing again.
	other := `{"user_id":"someone-else"}`
	r = e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-s", "auth": app.ChannelAuth(sa, "presence-s", other), "channel_data": other}})
	assert.Equal(t, "pusher:subscription_error", r["event"], "%v", r)
	assert.EqualValues(t, 400, data(t, r)["status"])
	assert.Contains(t, data(t, r)["error"], "Already subscribed to presence-s as another user")
	r = e.send("a", noData)
	assert.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "the same user again is fine")

	// channel_data given overrides the signed-in user.
	cd := `{"user_id":"override","user_info":{"name":"Other"}}`
	r = e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-t", "auth": app.ChannelAuth(sa, "presence-t", cd), "channel_data": cd}})
	require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "%v", r)
	members, err := e.h.Members(t.Context(), "presence-t")
	require.NoError(t, err)
	require.Len(t, members, 1)
	assert.Equal(t, "override", members[0].UserID)
}

// The per-connection channel cap of protocol v1 holds for Pusher clients too:
// a subscribe past it is a 403 subscription_error and the connection stays.
func TestSubscribeBeyondChannelCap(t *testing.T) {
	e := newEnv(t, nil)
	e.connect("a")
	max := e.h.Manager().MaxChannelsPerConnection()
	require.Positive(t, max)
	for i := range max {
		r := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "c" + strconv.Itoa(i)}})
		require.Equal(t, "pusher_internal:subscription_succeeded", r["event"], "channel %d", i)
	}
	over := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "one-too-many"}})
	assert.Equal(t, "pusher:subscription_error", over["event"])
	assert.EqualValues(t, 403, data(t, over)["status"])
	again := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "c0"}})
	assert.Equal(t, "pusher_internal:subscription_succeeded", again["event"], "a channel already held is fine at the cap")
}

// TestPresenceReplyOver128KBIsRefused: a presence subscribe whose
// subscription_succeeded (every member's id and user_info, encoded twice)
// would pass the 128 KB API Gateway delivers is refused with a 413
// subscription_error and taken back: the subscriber is not left listed with
// no answer, and the others see member_removed after member_added.
func TestPresenceReplyOver128KBIsRefused(t *testing.T) {
	e := newEnv(t, func(c *pusher.Config) { c.MaxUserInfoBytes = 10000 })
	info := `"` + strings.Repeat("x", 9000) + `"`
	join := func(id, sid, user string) map[string]any {
		cd := `{"user_id":"` + user + `","user_info":` + info + `}`
		return e.send(id, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-big", "auth": app.ChannelAuth(sid, "presence-big", cd), "channel_data": cd}})
	}
	var refused map[string]any
	n := 0
	sids := map[string]string{}
	for ; n < 30 && refused == nil; n++ {
		id := "c" + strconv.Itoa(n)
		sids[id] = e.connect(id)
		r := join(id, sids[id], "u"+strconv.Itoa(n))
		if r["event"] == "pusher:subscription_error" {
			refused = r
			break
		}
		require.Equal(t, "pusher_internal:subscription_succeeded", r["event"])
	}
	require.NotNil(t, refused, "a reply past 128 KB")
	d := data(t, refused)
	assert.EqualValues(t, 413, d["status"])
	assert.Equal(t, "LimitReached", d["type"])
	assert.Contains(t, d["error"], "more than the 131072 bytes a message may carry")
	last := "c" + strconv.Itoa(n)
	members, err := e.h.Members(t.Context(), "presence-big")
	require.NoError(t, err)
	assert.Len(t, members, n, "the refused subscriber is not listed")
	in, err := e.h.Manager().Store().IsMember(t.Context(), last, pusher.StoreChannel("presence-big"))
	require.NoError(t, err)
	assert.False(t, in, "nor a member of the channel")
	events := []string{}
	for _, f := range e.frames("c0") {
		if f["event"] == "pusher_internal:member_added" || f["event"] == "pusher_internal:member_removed" {
			if u := data(t, f)["user_id"]; u == "u"+strconv.Itoa(n) {
				events = append(events, f["event"].(string))
			}
		}
	}
	assert.Equal(t, []string{"pusher_internal:member_added", "pusher_internal:member_removed"}, events)

	// A member that subscribes again is refused the same way but stays
	// subscribed and listed: this subscribe did not make its membership.
	// (One more member, written directly, takes the list past 128 KB.)
	_, err = e.presence.JoinPresence(t.Context(), pusher.StoreChannel("presence-big"), store.PresenceMember{ConnectionID: "extra", UserID: "extra", UserInfo: []byte(info), ExpiresAt: e.now().Add(time.Hour)}, 0)
	require.NoError(t, err)
	again := join("c0", sids["c0"], "u0")
	assert.EqualValues(t, 413, data(t, again)["status"])
	in, err = e.h.Manager().Store().IsMember(t.Context(), "c0", pusher.StoreChannel("presence-big"))
	require.NoError(t, err)
	assert.True(t, in, "still subscribed")
	members, err = e.h.Members(t.Context(), "presence-big")
	require.NoError(t, err)
	assert.Len(t, members, n+1, "and still listed")
}

// TestGoLibraryRefusesWhatTheHTTPAPIRefuses: Members and TerminateUser meet
// a name the HTTP API answers with 400 with an error, not an empty answer.
func TestGoLibraryRefusesWhatTheHTTPAPIRefuses(t *testing.T) {
	e := newEnv(t, nil)
	for _, ch := range []string{"", "not-presence", "presence-bad channel!", "private-x"} {
		_, err := e.h.Members(t.Context(), ch)
		assert.ErrorIs(t, err, pusher.ErrNotPresence, ch)
	}
	members, err := e.h.Members(t.Context(), "presence-empty")
	require.NoError(t, err)
	assert.Empty(t, members)
	for _, u := range []string{"", "auth0|123", strings.Repeat("u", 200)} {
		_, err := e.h.TerminateUser(t.Context(), u)
		assert.ErrorIs(t, err, pusher.ErrInvalidUserID, u)
	}
	n, err := e.h.TerminateUser(t.Context(), "nobody")
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestSigninWithUserDataOver128KBIsRefused: a signin whose signin_success
// (user_data encoded twice) would pass 128 KB is refused before it joins
// the user's channel, not joined with no answer.
func TestSigninWithUserDataOver128KBIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	sa := e.connect("a")
	ud := `{"id":"u1","tags":` + `[` + strings.Repeat(`"t",`, 20000) + `"t"]}`
	r := e.send("a", map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}})
	assert.Equal(t, "pusher:error", r["event"])
	assert.EqualValues(t, pusher.CodeUnauthorized, data(t, r)["code"])
	chans, err := e.h.Manager().Store().ConnectionChannels(t.Context(), "a")
	require.NoError(t, err)
	assert.Empty(t, chans)
}

// TestEventNameLimitCountsCharacters: the 200 of an event name are
// characters, as Pusher and its SDKs count them, not bytes.
func TestEventNameLimitCountsCharacters(t *testing.T) {
	e := newEnv(t, nil)
	e.connect("a")
	assert.NoError(t, e.h.Trigger(t.Context(), []string{"c"}, strings.Repeat("é", 200), "{}", ""))
	assert.ErrorIs(t, e.h.Trigger(t.Context(), []string{"c"}, strings.Repeat("é", 201), "{}", ""), pusher.ErrInvalidEvent)
}
