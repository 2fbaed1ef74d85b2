package pusher_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
)

// FuzzHandleFrame sends any message body from a connected client (after a
// few subscriptions, so client events and presence have something to act
// on): the handler never fails or panics, answers nothing or one JSON frame
// with an event name, posts only JSON frames, and every channel the
// connection ends up in is a valid Pusher channel name.
func FuzzHandleFrame(f *testing.F) {
	e := newEnv(f, nil)
	sa := e.connect("a")
	e.connect("b")
	ud := `{"id":"u1","user_info":{"n":1}}`
	cd := `{"user_id":"u1"}`
	for _, fr := range []map[string]any{
		{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": app.ChannelAuth(sa, "private-x", "")}},
		{"event": "pusher:subscribe", "data": map[string]any{"channel": "presence-x", "auth": app.ChannelAuth(sa, "presence-x", cd), "channel_data": cd}},
	} {
		require.NotEqual(f, "pusher:subscription_error", e.send("a", fr)["event"])
	}
	e.send("b", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-x", "auth": app.ChannelAuth(pusher.SocketID("b", 0), "private-x", "")}})
	for _, seed := range []any{
		map[string]any{"event": "pusher:ping", "data": map[string]any{}},
		map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}},
		map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "cache-news"}},
		map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}},
		map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": app.UserAuth(sa, ud), "user_data": ud}},
		map[string]any{"event": "client-typing", "channel": "private-x", "data": map[string]any{"x": 1}},
		map[string]any{"event": "client-typing", "channel": "presence-x", "data": "text"},
		map[string]any{"event": "pusher:subscribe", "data": `{"channel":"news"}`},
		map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "#server-to-user-u1"}},
	} {
		b, err := json.Marshal(seed)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, raw := range []string{``, `{}`, `[]`, `null`, `{"event":null}`, `{"event":"pusher:subscribe","data":null}`, "\xff", `{"event":"client-x","channel":"private-x","data":"` + strings.Repeat("z", 11000) + `"}`} {
		f.Add([]byte(raw))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(e.api.Messages("a")) + len(e.api.Messages("b"))
		resp, err := e.h.Handle(ctx, e.event("$default", "a", string(body), nil))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		if resp.Body != "" {
			var out struct {
				Event string `json:"event"`
			}
			require.NoError(t, json.Unmarshal([]byte(resp.Body), &out), "answer %q", resp.Body)
			require.NotEmpty(t, out.Event, "answer %q", resp.Body)
		}
		for _, id := range []string{"a", "b"} {
			msgs := e.api.Messages(id)
			for _, m := range msgs[min(before, len(msgs)):] {
				require.True(t, json.Valid(m), "posted %q", m)
			}
			chans, err := e.h.Manager().Store().ConnectionChannels(ctx, id)
			require.NoError(t, err)
			for _, ch := range chans {
				name, ok := strings.CutPrefix(ch, pusher.StoreChannel(""))
				require.True(t, ok && pusher.ValidChannel(name), "stored channel %q", ch)
			}
		}
	})
}

// FuzzServeAPI sends correctly signed HTTP API requests with any method,
// path and body: the answer is never a 5xx (the stores here cannot fail) and
// always a JSON body.
func FuzzServeAPI(f *testing.F) {
	e := newEnv(f, nil)
	e.connect("a")
	e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/apps/app-id/events", `{"name":"e","channel":"news","data":"x"}`},
		{"POST", "/apps/app-id/events", `{"name":"e","channels":["news","a"],"data":"{\"x\":1}","socket_id":"1.2"}`},
		{"POST", "/apps/app-id/batch_events", `{"batch":[{"name":"e","channel":"news","data":"x"}]}`},
		{"GET", "/apps/app-id/channels", ""},
		{"GET", "/apps/app-id/channels/news", ""},
		{"GET", "/apps/app-id/channels/presence-x/users", ""},
		{"POST", "/apps/app-id/users/u1/terminate_connections", "{}"},
		{"DELETE", "/apps/app-id/events", ""},
	} {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		resp := e.h.ServeAPI(context.Background(), apiRequest(method, path, body, app.Secret, time.Now()))
		require.Less(t, resp.StatusCode, 500, "%s %q %q: %d %s", method, path, body, resp.StatusCode, resp.Body)
		require.GreaterOrEqual(t, resp.StatusCode, 200)
		assert.True(t, json.Valid([]byte(resp.Body)), "%s %q %q: body %q", method, path, body, resp.Body)
	})
}
