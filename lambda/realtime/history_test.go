package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// newHistoryEnv is newEnv with history on chat-* (size) and presence.
func newHistoryEnv(t testing.TB, size int) *env {
	e, _ := newHistoryEnvWithMetrics(t, size)
	return e
}

func newHistoryEnvWithMetrics(t testing.TB, size int) (*env, *metricstest.Recorder) {
	t.Helper()
	e := newEnv(t, Hooks{})
	poster, err := sender.NewManagementAPI(testAWSConfig(), e.api.URL(), nil)
	require.NoError(t, err)
	rec := metricstest.New()
	e.m, err = New(Config{
		Store: e.store, Poster: poster, Metrics: rec,
		History:      store.NewMemoryHistory(func() time.Time { return e.now }),
		HistoryRules: HistoryRules{{Pattern: "chat-*", Size: size, TTL: time.Hour}},
		Presence:     store.NewMemoryPresence(func() time.Time { return e.now }),
		Sender:       sender.Options{Concurrency: 4, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		Logger:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now:          func() time.Time { return e.now },
	})
	require.NoError(t, err)
	return e, rec
}

type streamFrame struct {
	Type         string `json:"type"`
	Channel      string `json:"channel"`
	Recovered    *bool  `json:"recovered"`
	Epoch        string `json:"epoch"`
	Offset       *uint64
	Publications []struct {
		Offset uint64          `json:"offset"`
		Data   json.RawMessage `json:"data"`
	} `json:"publications"`
	Members []struct {
		UserID string `json:"userId"`
	} `json:"members"`
	UserID string `json:"userId"`
}

func decodeFrame(t *testing.T, body string) streamFrame {
	t.Helper()
	var f streamFrame
	require.NoError(t, json.Unmarshal([]byte(body), &f), body)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &raw))
	if o, ok := raw["offset"]; ok {
		var n uint64
		require.NoError(t, json.Unmarshal(o, &n))
		f.Offset = &n
	}
	return f
}

func pubOffsets(f streamFrame) []uint64 {
	out := []uint64{}
	for _, p := range f.Publications {
		out = append(out, p.Offset)
	}
	return out
}

func TestHistoryChannelEnvelopeAndOffsets(t *testing.T) {
	e := newHistoryEnv(t, 100)
	e.connect("a", "", "", "")
	e.connect("b", "", "", "")
	sub := decodeFrame(t, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"chat-1"}`))
	require.NotNil(t, sub.Offset, "a subscribed reply on a history channel carries the position")
	assert.Equal(t, uint64(0), *sub.Offset)
	require.NotEmpty(t, sub.Epoch)
	assert.Nil(t, sub.Recovered, "no since, no recovered")
	e.send("b", "", "", "$default", `{"action":"subscribe","channel":"chat-1"}`)

	for i := 1; i <= 3; i++ {
		assert.JSONEq(t, fmt.Sprintf(`{"type":"published","channel":"chat-1","offset":%d,"epoch":%q}`, i, sub.Epoch),
			e.send("a", "", "", "$default", fmt.Sprintf(`{"action":"publish","channel":"chat-1","data":{"n": %d}}`, i)))
	}
	_, err := e.m.SendToChannel(context.Background(), "chat-1", []byte("plain text"))
	require.NoError(t, err)
	_, err = e.m.SendToChannel(context.Background(), "chat-1", []byte(`{"from":"server"}`))
	require.NoError(t, err)
	want := []string{
		fmt.Sprintf(`{"type":"message","channel":"chat-1","data":{"n":1},"offset":1,"epoch":%q}`, sub.Epoch),
		fmt.Sprintf(`{"type":"message","channel":"chat-1","data":{"n":2},"offset":2,"epoch":%q}`, sub.Epoch),
		fmt.Sprintf(`{"type":"message","channel":"chat-1","data":{"n":3},"offset":3,"epoch":%q}`, sub.Epoch),
		fmt.Sprintf(`{"type":"message","channel":"chat-1","data":"plain text","offset":4,"epoch":%q}`, sub.Epoch),
		fmt.Sprintf(`{"type":"message","channel":"chat-1","data":{"from":"server"},"offset":5,"epoch":%q}`, sub.Epoch),
	}
	assert.Equal(t, want, e.messages("b"), "every delivery on a history channel is the v1 envelope, server sends included")
	assert.Equal(t, want[3:], e.messages("a"), "the publisher gets server sends, not its own publishes")

	// A channel without history is unchanged.
	e.send("b", "", "", "$default", `{"action":"subscribe","channel":"news"}`)
	assert.JSONEq(t, `{"type":"subscribed","channel":"news"}`, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"news"}`))
	_, err = e.m.SendToChannel(context.Background(), "news", []byte("raw"))
	require.NoError(t, err)
	assert.Equal(t, "raw", e.messages("b")[len(e.messages("b"))-1])
}

func TestSubscribeRecovers(t *testing.T) {
	e, rec := newHistoryEnvWithMetrics(t, 4)
	e.connect("pub", "", "", "chat-1")
	e.connect("c", "", "", "")
	epoch := decodeFrame(t, e.send("pub", "", "", "$default", `{"action":"subscribe","channel":"chat-1"}`)).Epoch
	for i := 1; i <= 5; i++ {
		e.send("pub", "", "", "$default", fmt.Sprintf(`{"action":"publish","channel":"chat-1","data":%d}`, i))
	}
	subscribe := func(since string) streamFrame {
		return decodeFrame(t, e.send("c", "", "", "$default", `{"action":"subscribe","channel":"chat-1","since":`+since+`}`))
	}

	got := subscribe(fmt.Sprintf(`{"offset":2,"epoch":%q}`, epoch))
	require.NotNil(t, got.Recovered)
	assert.True(t, *got.Recovered)
	assert.Equal(t, epoch, got.Epoch)
	assert.Equal(t, uint64(5), *got.Offset)
	assert.Equal(t, []uint64{3, 4, 5}, pubOffsets(got))
	assert.JSONEq(t, `3`, string(got.Publications[0].Data))

	body := e.send("c", "", "", "$default", fmt.Sprintf(`{"action":"subscribe","channel":"chat-1","since":{"offset":5,"epoch":%q}}`, epoch))
	assert.JSONEq(t, fmt.Sprintf(`{"type":"subscribed","channel":"chat-1","recovered":true,"epoch":%q,"offset":5,"publications":[]}`, epoch), body,
		"nothing missed is still a recovery")
	assert.Equal(t, 2.0, rec.Count(metrics.HistoryRecovered))
	assert.Equal(t, 0.0, rec.Count(metrics.HistoryNotRecovered))

	tests := map[string]string{
		"epoch differs":            `{"offset":2,"epoch":"another"}`,
		"gap larger than history":  fmt.Sprintf(`{"offset":0,"epoch":%q}`, epoch),
		"offset beyond the stream": fmt.Sprintf(`{"offset":9,"epoch":%q}`, epoch),
	}
	for name, since := range tests {
		t.Run(name, func(t *testing.T) {
			got := subscribe(since)
			require.NotNil(t, got.Recovered)
			assert.False(t, *got.Recovered)
			assert.Equal(t, epoch, got.Epoch, "the reply says where the stream stands")
			assert.Equal(t, uint64(5), *got.Offset)
			assert.Empty(t, got.Publications)
		})
	}
	assert.Equal(t, float64(len(tests)), rec.Count(metrics.HistoryNotRecovered))

	// since on a channel without history cannot recover.
	assert.JSONEq(t, `{"type":"subscribed","channel":"news","recovered":false}`,
		e.send("c", "", "", "$default", `{"action":"subscribe","channel":"news","since":{"offset":1,"epoch":"x"}}`))
	assert.Equal(t, "bad_request", errorCode(t, e.send("c", "", "", "$default", `{"action":"subscribe","channel":"chat-1","since":{"offset":-1,"epoch":"x"}}`)))
	assert.Equal(t, "bad_request", errorCode(t, e.send("c", "", "", "$default", `{"action":"subscribe","channel":"chat-1","since":{"offset":1}}`)))
}

func TestRecoveryOver128KBFallsBack(t *testing.T) {
	e := newHistoryEnv(t, 100)
	e.connect("pub", "", "", "chat-big")
	epoch := decodeFrame(t, e.send("pub", "", "", "$default", `{"action":"subscribe","channel":"chat-big"}`)).Epoch
	big := strings.Repeat("x", 50*1024)
	for range 3 {
		e.send("pub", "", "", "$default", `{"action":"publish","channel":"chat-big","data":"`+big+`"}`)
	}
	e.connect("c", "", "", "")
	got := decodeFrame(t, e.send("c", "", "", "$default", fmt.Sprintf(`{"action":"subscribe","channel":"chat-big","since":{"offset":1,"epoch":%q}}`, epoch)))
	assert.True(t, *got.Recovered, "two messages fit in 128 KB")
	got = decodeFrame(t, e.send("c", "", "", "$default", fmt.Sprintf(`{"action":"subscribe","channel":"chat-big","since":{"offset":0,"epoch":%q}}`, epoch)))
	assert.False(t, *got.Recovered, "three would pass 128 KB")
	assert.Equal(t, uint64(3), *got.Offset)

	page := decodeFrame(t, e.send("c", "", "", "$default", fmt.Sprintf(`{"action":"history","channel":"chat-big","since":{"offset":0,"epoch":%q}}`, epoch)))
	assert.Equal(t, []uint64{1, 2}, pubOffsets(page), "a history page keeps what fits")
}

func TestHistoryAction(t *testing.T) {
	e := newHistoryEnv(t, 100)
	e.connect("pub", "", "", "chat-1")
	epoch := decodeFrame(t, e.send("pub", "", "", "$default", `{"action":"subscribe","channel":"chat-1"}`)).Epoch
	for i := 1; i <= 5; i++ {
		e.send("pub", "", "", "$default", fmt.Sprintf(`{"action":"publish","channel":"chat-1","data":%d}`, i))
	}
	e.connect("r", "", "", "")
	page := decodeFrame(t, e.send("r", "", "", "$default", fmt.Sprintf(`{"action":"history","channel":"chat-1","since":{"offset":1,"epoch":%q},"limit":2}`, epoch)))
	assert.Equal(t, "history", page.Type)
	assert.Equal(t, epoch, page.Epoch)
	assert.Equal(t, uint64(5), *page.Offset)
	assert.Equal(t, []uint64{2, 3}, pubOffsets(page))
	page = decodeFrame(t, e.send("r", "", "", "$default", `{"action":"history","channel":"chat-1"}`))
	assert.Equal(t, []uint64{1, 2, 3, 4, 5}, pubOffsets(page), "without since, from the oldest kept")
	page = decodeFrame(t, e.send("r", "", "", "$default", `{"action":"history","channel":"chat-1","since":{"offset":3,"epoch":"old"}}`))
	assert.Equal(t, []uint64{1, 2, 3, 4, 5}, pubOffsets(page), "another epoch pages the current stream from its start")
	body := e.send("r", "", "", "$default", fmt.Sprintf(`{"action":"history","channel":"chat-1","since":{"offset":5,"epoch":%q}}`, epoch))
	assert.JSONEq(t, fmt.Sprintf(`{"type":"history","channel":"chat-1","epoch":%q,"offset":5,"publications":[]}`, epoch), body)

	assert.Equal(t, "bad_request", errorCode(t, e.send("r", "", "", "$default", `{"action":"history","channel":"news"}`)))
	assert.Equal(t, "bad_request", errorCode(t, e.send("r", "", "", "$default", `{"action":"history","channel":"chat-1","limit":-1}`)))
	assert.Equal(t, "forbidden", errorCode(t, e.send("r", "", "", "$default", `{"action":"history","channel":"private-chat-1"}`)))
}

func TestPresenceInProtocolV1(t *testing.T) {
	e := newHistoryEnv(t, 100)
	e.connect("a1", "alice", "", "")
	e.connect("a2", "alice", "", "")
	e.connect("b", "bob", "", "")
	e.connect("anon", "", "", "")

	assert.Equal(t, "forbidden", errorCode(t, e.send("anon", "", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)),
		"a presence channel needs a user")
	assert.JSONEq(t, `{"type":"subscribed","channel":"presence-room","members":[{"userId":"alice"}]}`,
		e.send("a1", "alice", "", "$default", `{"action":"subscribe","channel":"presence-room"}`))
	assert.JSONEq(t, `{"type":"subscribed","channel":"presence-room","members":[{"userId":"alice"},{"userId":"bob"}]}`,
		e.send("b", "bob", "", "$default", `{"action":"subscribe","channel":"presence-room"}`))
	assert.Equal(t, []string{`{"type":"member_joined","channel":"presence-room","userId":"bob"}`}, e.messages("a1"))
	assert.Empty(t, e.messages("b"), "a user is not told about itself")

	e.send("a2", "alice", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	assert.Empty(t, e.messages("b"), "a second connection of alice announces nothing")

	assert.JSONEq(t, `{"type":"unsubscribed","channel":"presence-room"}`, e.send("a1", "alice", "", "$default", `{"action":"unsubscribe","channel":"presence-room"}`))
	assert.Empty(t, e.messages("b"), "alice still has a connection there")
	ev := loadEvent(t, "apigw-websocket-request-disconnect.json")
	ev.RequestContext.ConnectionID = "a2"
	ev.RequestContext.Authorizer = authorizer("alice", "") // API Gateway passes the context on every route
	_, err := e.m.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, []string{`{"type":"member_left","channel":"presence-room","userId":"alice"}`}, e.messages("b"), "the last connection out announces member_left once")
	users, err := e.m.cfg.Presence.PresenceUsers(context.Background(), "presence-room")
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, "bob", users[0].UserID)
}

func TestHistoryRules(t *testing.T) {
	rs, err := ParseHistoryRules(`[{"pattern":"chat-*","size":100,"ttl":"1h"},{"pattern":"*","size":5,"ttl":"30s"}]`)
	require.NoError(t, err)
	lim, ok := rs.Limits("chat-1")
	assert.True(t, ok)
	assert.Equal(t, store.HistoryLimits{Size: 100, TTL: time.Hour}, lim)
	lim, ok = rs.Limits("news")
	assert.True(t, ok)
	assert.Equal(t, store.HistoryLimits{Size: 5, TTL: 30 * time.Second}, lim)
	none, err := ParseHistoryRules("")
	require.NoError(t, err)
	_, ok = none.Limits("chat-1")
	assert.False(t, ok)

	r, err := ParseHistoryRule("room:a*:50:10m")
	require.NoError(t, err)
	assert.Equal(t, HistoryRule{Pattern: "room:a*", Size: 50, TTL: 10 * time.Minute}, r)
	b, err := json.Marshal(HistoryRules{r})
	require.NoError(t, err)
	back, err := ParseHistoryRules(string(b))
	require.NoError(t, err)
	assert.Equal(t, HistoryRules{r}, back, "rules survive the env var round trip")

	for _, bad := range []string{"chat-*", "chat-*:0:1h", "chat-*:x:1h", "chat-*:10:soon", "chat-*:10:0s", "[:10:1h", "chat-*:10:87601h"} {
		_, err := ParseHistoryRule(bad)
		assert.Error(t, err, bad)
	}
	for _, bad := range []string{`{}`, `[{"pattern":"a","size":1}]`, `[{"pattern":"","size":1,"ttl":"1h"}]`, `[{"pattern":"a","size":100000,"ttl":"1h"}]`} {
		_, err := ParseHistoryRules(bad)
		assert.Error(t, err, bad)
	}
	_, err = New(Config{Store: store.NewMemory(store.MemoryOptions{}), NewPoster: func(string) (sender.Poster, error) { return nil, nil }, HistoryRules: rs})
	assert.ErrorIs(t, err, ErrNoHistory)
}

func TestPresenceNeedsAPresenceStore(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.connect("a", "alice", "", "")
	assert.Equal(t, "forbidden", errorCode(t, e.send("a", "alice", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)))
	ids, err := e.m.ConnectionsOfChannel(context.Background(), "presence-room")
	require.NoError(t, err)
	assert.Empty(t, ids, "a refused presence subscribe joins nothing")
}

// Sizes are those of the frames as sent: the JSON envelope escapes <, > and
// & in the data (six bytes each), so a message that fits raw can be too large
// once wrapped. It is refused before it takes an offset, and history replies
// stay within 128 KB.
func TestHistorySizesCountEscapes(t *testing.T) {
	e := newHistoryEnv(t, 100)
	e.connect("pub", "", "", "")
	epoch := decodeFrame(t, e.send("pub", "", "", "$default", `{"action":"subscribe","channel":"chat-esc"}`)).Epoch
	escaped := strings.Repeat("<", 30_000) // 30 KB raw, 180 KB in the envelope
	assert.Equal(t, "too_large", errorCode(t, e.send("pub", "", "", "$default", `{"action":"publish","channel":"chat-esc","data":"`+escaped+`"}`)))
	_, err := e.m.SendToChannel(context.Background(), "chat-esc", []byte(`"`+escaped+`"`))
	require.ErrorIs(t, err, sender.ErrTooLarge)
	assert.JSONEq(t, fmt.Sprintf(`{"type":"published","channel":"chat-esc","offset":1,"epoch":%q}`, epoch),
		e.send("pub", "", "", "$default", `{"action":"publish","channel":"chat-esc","data":1}`), "the refused messages took no offset")

	amp := strings.Repeat("&", 8_000) // 48 KB in a reply
	for range 3 {
		e.send("pub", "", "", "$default", `{"action":"publish","channel":"chat-esc","data":"`+amp+`"}`)
	}
	e.connect("r", "", "", "")
	body := e.send("r", "", "", "$default", fmt.Sprintf(`{"action":"history","channel":"chat-esc","since":{"offset":1,"epoch":%q}}`, epoch))
	assert.LessOrEqual(t, len(body), protocol.MaxFrame)
	assert.Equal(t, []uint64{2, 3}, pubOffsets(decodeFrame(t, body)), "two of the three fit in 128 KB")
	rec := decodeFrame(t, e.send("r", "", "", "$default", fmt.Sprintf(`{"action":"subscribe","channel":"chat-esc","since":{"offset":1,"epoch":%q}}`, epoch)))
	assert.False(t, *rec.Recovered, "three would pass 128 KB")
}

// TestHistoryTakesNoOffsetWithoutAnEndpoint: a backend Manager that cannot
// send yet (no management endpoint) refuses a history channel's message
// before it is stored, so a retry does not store it twice and no recovery
// hands out what was never delivered.
func TestHistoryTakesNoOffsetWithoutAnEndpoint(t *testing.T) {
	hist := store.NewMemoryHistory(nil)
	m, err := New(Config{
		Store:        store.NewMemory(store.MemoryOptions{}),
		History:      hist,
		HistoryRules: HistoryRules{{Pattern: "chat-*", Size: 10, TTL: time.Hour}},
		NewPoster:    func(string) (sender.Poster, error) { return nil, errors.New("not called") },
		Logger:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	for range 2 {
		_, err := m.SendToChannel(context.Background(), "chat-1", []byte(`{"n":1}`))
		require.ErrorIs(t, err, ErrNoEndpoint)
	}
	pos, pubs, err := hist.ReadHistory(context.Background(), "chat-1", 0, 10, 0, store.HistoryLimits{Size: 10, TTL: time.Hour})
	require.NoError(t, err)
	assert.Zero(t, pos.Offset, "nothing stored")
	assert.Empty(t, pubs)
}

// Reading a presence channel's history needs a user, as subscribing does.
func TestPresenceHistoryNeedsAUser(t *testing.T) {
	e := newHistoryEnv(t, 10)
	e.m.cfg.HistoryRules = append(e.m.cfg.HistoryRules, HistoryRule{Pattern: "presence-*", Size: 10, TTL: time.Hour})
	e.connect("anon", "", "", "")
	assert.Equal(t, "forbidden", errorCode(t, e.send("anon", "", "", "$default", `{"action":"history","channel":"presence-room"}`)))
	e.connect("alice", "alice", "", "")
	assert.Equal(t, "history", decodeFrame(t, e.send("alice", "alice", "", "$default", `{"action":"history","channel":"presence-room"}`)).Type)
}

// A presence channel joined through ?channels= on connect, or with the
// Manager's Join and Leave (the publisher's join and leave), is a presence
// membership as a subscribe makes it: a user is needed, and the others hear
// member_joined and member_left.
func TestPresenceThroughTheQueryAndTheManager(t *testing.T) {
	e := newHistoryEnv(t, 100)
	ctx := context.Background()
	e.connect("b", "bob", "", "")
	e.send("b", "bob", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)

	assert.Equal(t, 403, e.connect("anon", "", "", "presence-room").StatusCode, "anonymous: refused, as subscribe refuses it")
	assert.Equal(t, 200, e.connect("c", "carol", "", "presence-room").StatusCode)
	assert.Equal(t, []string{`{"type":"member_joined","channel":"presence-room","userId":"carol"}`}, e.messages("b"))

	e.connect("d", "dave", "", "")
	_, err := e.m.Join(ctx, "d", "presence-room")
	require.NoError(t, err)
	e.connect("nobody", "", "", "")
	_, err = e.m.Join(ctx, "nobody", "presence-room")
	require.ErrorIs(t, err, ErrPresenceNeedsUser)
	users, err := e.m.cfg.Presence.PresenceUsers(ctx, "presence-room")
	require.NoError(t, err)
	assert.Len(t, users, 3, "bob, carol and dave")
	ok, err := e.store.IsMember(ctx, "nobody", "presence-room")
	require.NoError(t, err)
	assert.False(t, ok, "the refused join left no membership")

	_, err = e.m.Leave(ctx, "d", "presence-room")
	require.NoError(t, err)
	assert.Equal(t, []string{
		`{"type":"member_joined","channel":"presence-room","userId":"carol"}`,
		`{"type":"member_joined","channel":"presence-room","userId":"dave"}`,
		`{"type":"member_left","channel":"presence-room","userId":"dave"}`,
	}, e.messages("b"))
	users, err = e.m.cfg.Presence.PresenceUsers(ctx, "presence-room")
	require.NoError(t, err)
	assert.Len(t, users, 2)
}

// Without Config.Presence, the Manager's Join refuses a presence channel as a
// client's subscribe to it is refused, rather than make it a plain channel
// anyone joined that way could publish to.
func TestJoinWithoutPresenceRefusesPresenceChannels(t *testing.T) {
	e := newEnv(t, Hooks{})
	ctx := context.Background()
	e.connect("a", "alice", "", "")
	_, err := e.m.Join(ctx, "a", "presence-room")
	require.ErrorIs(t, err, ErrNoPresence)
	ok, err := e.store.IsMember(ctx, "a", "presence-room")
	require.NoError(t, err)
	assert.False(t, ok, "no membership")
	assert.Equal(t, "forbidden", errorCode(t, e.send("a", "alice", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)), "as the subscribe")
	added, err := e.m.Join(ctx, "a", "room")
	require.NoError(t, err)
	assert.True(t, added, "other channels as before")
}

// A $connect refused after its connect hook joined a presence channel
// takes the user out of the members again (member_left), as a disconnect
// would: no invisible, stale member.
func TestRefusedConnectLeavesItsPresenceChannels(t *testing.T) {
	e := newHistoryEnv(t, 100)
	ctx := context.Background()
	e.connect("b", "bob", "", "")
	e.send("b", "bob", "", "$default", `{"action":"subscribe","channel":"presence-room"}`)
	e.m.cfg.Hooks.OnConnect = func(ctx context.Context, m *Manager, req *Request) error {
		_, err := m.Join(ctx, req.ConnectionID, "presence-room")
		return err
	}
	e.m.cfg.MaxChannelsPerConnection = 1
	assert.Equal(t, 400, e.connect("c", "carol", "", "news").StatusCode, "the query's join passes the cap the hook filled")
	assert.Equal(t, []string{
		`{"type":"member_joined","channel":"presence-room","userId":"carol"}`,
		`{"type":"member_left","channel":"presence-room","userId":"carol"}`,
	}, e.messages("b"))
	users, err := e.m.cfg.Presence.PresenceUsers(ctx, "presence-room")
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, "bob", users[0].UserID)
}
