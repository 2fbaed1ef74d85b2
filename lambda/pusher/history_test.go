package pusher_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// newHistoryEnv is a handler whose runtime keeps history for chat-* and
// private-chat-* (a shared memory history, as wslocal's embedded store).
func newHistoryEnv(t *testing.T) (*env, store.History) {
	t.Helper()
	hist := store.NewMemoryHistory(nil)
	e := newEnvWith(t, func(c *realtime.Config) {
		c.History = hist
		c.HistoryRules = realtime.HistoryRules{
			{Pattern: "chat-*", Size: 1000, TTL: time.Hour},
			{Pattern: "private-chat-*", Size: 1000, TTL: time.Hour},
		}
	}, nil)
	return e, hist
}

func (e *env) trigger(ch, name, payload string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"name":%q,"channel":%q,"data":%q}`, name, ch, payload)
	resp := e.h.ServeAPI(e.t.Context(), apiRequest("POST", "/apps/app-id/events", body, app.Secret, time.Now()))
	require.Equal(e.t, 200, resp.StatusCode, resp.Body)
}

// events returns the frames delivered to id with the given event name.
func (e *env) events(id, name string) []map[string]any {
	var out []map[string]any
	for _, f := range e.frames(id) {
		if f["event"] == name {
			out = append(out, f)
		}
	}
	return out
}

func TestHistoryChannelsNumberTriggersAndRecover(t *testing.T) {
	e, hist := newHistoryEnv(t)
	e.connect("a")
	sub := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "chat-1"}})
	assert.Equal(t, "pusher_internal:subscription_succeeded", sub["event"])
	assert.EqualValues(t, 0, sub["offset"], "a fresh stream stands at 0")
	epoch, _ := sub["epoch"].(string)
	require.NotEmpty(t, epoch)
	assert.NotContains(t, sub, "recovered", "no since, no recovered")

	e.trigger("chat-1", "said", `{"n":1}`)
	e.trigger("chat-1", "said", `{"n":2}`)
	got := e.events("a", "said")
	require.Len(t, got, 2)
	assert.Equal(t, map[string]any{"event": "said", "channel": "chat-1", "data": `{"n":1}`, "offset": 1.0, "epoch": epoch}, got[0])
	assert.EqualValues(t, 2, got[1]["offset"])

	// Stored in the Pusher channel's stream, pusher/chat-1, not protocol v1's chat-1.
	lim := store.HistoryLimits{Size: 1000, TTL: time.Hour}
	pos, pubs, err := hist.ReadHistory(t.Context(), pusher.StoreChannel("chat-1"), 0, 10, 0, lim)
	require.NoError(t, err)
	assert.Equal(t, store.StreamPosition{Offset: 2, Epoch: epoch}, pos)
	require.Len(t, pubs, 2)
	assert.JSONEq(t, `{"event":"said","channel":"chat-1","data":"{\"n\":2}"}`, string(pubs[1].Data))
	v1, _, err := hist.ReadHistory(t.Context(), "chat-1", 0, 10, 0, lim)
	require.NoError(t, err)
	assert.EqualValues(t, 0, v1.Offset, "protocol v1's chat-1 is another stream")

	// Channels without history are delivered as before.
	e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "orders"}})
	e.trigger("orders", "placed", `{}`)
	assert.Equal(t, []map[string]any{{"event": "placed", "channel": "orders", "data": `{}`}}, e.events("a", "placed"))

	// b comes back after offset 1: offset 2 is posted, then subscription_succeeded.
	e.connect("b")
	before := len(e.frames("b"))
	rec := e.send("b", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "chat-1", "since": map[string]any{"offset": 1, "epoch": epoch}}})
	assert.Equal(t, true, rec["recovered"])
	assert.EqualValues(t, 2, rec["offset"])
	assert.Equal(t, epoch, rec["epoch"])
	posted := e.frames("b")[before:]
	assert.Equal(t, []map[string]any{{"event": "said", "channel": "chat-1", "data": `{"n":2}`, "offset": 2.0, "epoch": epoch}}, posted)

	// Up to date: recovered with nothing to post. Data may come as a string, as pusher-js sends it.
	e.connect("c")
	before = len(e.frames("c"))
	rec = e.send("c", map[string]any{"event": "pusher:subscribe", "data": `{"channel":"chat-1","since":{"offset":2,"epoch":"` + epoch + `"}}`})
	assert.Equal(t, true, rec["recovered"])
	assert.Len(t, e.frames("c"), before)

	// Another epoch: not recovered, nothing posted, the current position.
	e.connect("d")
	before = len(e.frames("d"))
	rec = e.send("d", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "chat-1", "since": map[string]any{"offset": 1, "epoch": "another"}}})
	assert.Equal(t, false, rec["recovered"])
	assert.EqualValues(t, 2, rec["offset"])
	assert.Len(t, e.frames("d"), before)

	// since on a channel without history: recovered false, no position.
	rec = e.send("d", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "orders", "since": map[string]any{"offset": 1, "epoch": epoch}}})
	assert.Equal(t, map[string]any{"event": "pusher_internal:subscription_succeeded", "channel": "orders", "data": "{}", "recovered": false}, rec)
}

func TestHistoryRecoveryBoundedByMaxRecoveredEvents(t *testing.T) {
	e, _ := newHistoryEnv(t)
	e.connect("a")
	sub := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "chat-big"}})
	epoch := sub["epoch"]
	for i := range pusher.MaxRecoveredEvents + 1 {
		e.trigger("chat-big", "n", fmt.Sprint(i))
	}
	e.connect("b")
	before := len(e.frames("b"))
	rec := e.send("b", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "chat-big", "since": map[string]any{"offset": 0, "epoch": epoch}}})
	assert.Equal(t, false, rec["recovered"], "a gap of %d events is more than the posts a subscribe makes", pusher.MaxRecoveredEvents+1)
	assert.EqualValues(t, pusher.MaxRecoveredEvents+1, rec["offset"])
	assert.Len(t, e.frames("b"), before)

	e.connect("c")
	before = len(e.frames("c"))
	rec = e.send("c", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "chat-big", "since": map[string]any{"offset": 1, "epoch": epoch}}})
	assert.Equal(t, true, rec["recovered"])
	posted := e.frames("c")[before:]
	require.Len(t, posted, pusher.MaxRecoveredEvents)
	for i, f := range posted {
		assert.EqualValues(t, i+2, f["offset"], "in order")
	}
}

func TestHistoryClientEventsAreNumbered(t *testing.T) {
	e, _ := newHistoryEnv(t)
	sa, sb := e.connect("a"), e.connect("b")
	for id, sid := range map[string]string{"a": sa, "b": sb} {
		r := e.send(id, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-chat-x", "auth": app.ChannelAuth(sid, "private-chat-x", "")}})
		require.Equal(t, "pusher_internal:subscription_succeeded", r["event"])
	}
	assert.Nil(t, e.send("a", map[string]any{"event": "client-typing", "channel": "private-chat-x", "data": map[string]any{"who": "a"}}))
	e.trigger("private-chat-x", "said", "hi")
	got := e.frames("b")
	var offsets []any
	for _, f := range got {
		if !strings.HasPrefix(f["event"].(string), "pusher") {
			offsets = append(offsets, f["offset"])
		}
	}
	assert.Equal(t, []any{1.0, 2.0}, offsets, "the client event and the trigger share the stream")
	assert.Empty(t, e.events("a", "client-typing"), "never echoed: the sender sees a hole at its own offset")
}

// A since that is not {offset, epoch} is refused with an error that names
// the subscribe data, not the channel (which is valid).
func TestHistoryMalformedSinceIsRefusedClearly(t *testing.T) {
	e, _ := newHistoryEnv(t)
	e.connect("a")
	rep := e.send("a", map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "chat-1", "since": "yesterday"}})
	assert.Equal(t, "pusher:subscription_error", rep["event"])
	assert.Contains(t, fmt.Sprint(rep["data"]), "Invalid subscribe data")
	assert.NotContains(t, fmt.Sprint(rep["data"]), "Invalid channel name")
	// Objects that are not {offset, epoch}, read by protocol v1's rules.
	for _, since := range []string{`{}`, `{"epoch":"x"}`, `{"offset":1}`, `{"offset":null,"epoch":null}`, `{"offset":"5","epoch":"x"}`, `{"offset":-1,"epoch":"x"}`, `{"offset":1.5,"epoch":"x"}`} {
		rep := e.send("a", map[string]any{"event": "pusher:subscribe", "data": `{"channel":"chat-1","since":` + since + `}`})
		assert.Equal(t, "pusher:subscription_error", rep["event"], since)
		assert.Contains(t, fmt.Sprint(rep["data"]), "Invalid subscribe data", since)
	}
	rep = e.send("a", map[string]any{"event": "pusher:subscribe", "data": `{"channel":"chat-1","since":null}`})
	assert.Equal(t, "pusher_internal:subscription_succeeded", rep["event"], "a null since is no since")
	assert.NotContains(t, rep, "recovered")
}
