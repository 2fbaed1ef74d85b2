package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, cmd, want string }{
		{"not json", `hello`, "JSON object"},
		{"array", `[]`, "JSON object"},
		{"two objects", `{"action":"stats"}{"action":"stats"}`, "single JSON object"},
		{"a stray brace after the object", `{"action":"stats"}}`, "single JSON object"},
		// Go keeps the last of a repeated field: the exclusion would be dropped.
		{"a field given twice", `{"action":"broadcast","data":1,"exclude":["a="],"exclude":[]}`, `field "exclude" appears twice`},
		{"the action given twice", `{"action":"broadcast","action":"sendToChannel","channel":"x","data":1}`, `field "action" appears twice`},
		{"a field given twice, once escaped", `{"channel":"a","\u0063hannel":"b","action":"sendToChannel","data":1}`, `field "channel" appears twice`},
		{"an array", `[{"action":"stats"}]`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"a truncated object", `{"action":"stats"`, "must be a JSON object"},
		{"a stray bracket after the object", "{\"action\":\"stats\"} ]\n", "single JSON object"},
		{"unknown field", `{"action":"send","connection":"a","data":1}`, "unknown field"},
		{"missing action", `{}`, "missing action"},
		{"unknown action", `{"action":"explode"}`, `unknown action "explode"`},
		{"send without ids", `{"action":"send","data":1}`, "connectionId or connectionIds"},
		{"send with empty id", `{"action":"send","connectionIds":["a",""],"data":1}`, "empty connection id"},
		{"send with an empty connectionId beside connectionIds", `{"action":"send","connectionId":"","connectionIds":["a"],"data":1}`, "send: empty connectionId"},
		{"invalid UTF-8 in a user id", "{\"action\":\"sendToUser\",\"userId\":\"u\xff\",\"data\":1}", "command is not valid UTF-8"},
		{"invalid UTF-8 in data", "{\"action\":\"broadcast\",\"data\":\"\xc3\x28\"}", "command is not valid UTF-8"},
		{"send without data", `{"action":"send","connectionId":"a"}`, "needs data"},
		{"send null data", `{"action":"send","connectionId":"a","data":null}`, "needs data"},
		{"user without id", `{"action":"sendToUser","data":1}`, "needs userId"},
		{"users empty", `{"action":"sendToUsers","userIds":[],"data":1}`, "needs userIds"},
		{"user id too long", `{"action":"sendToUser","userId":"` + strings.Repeat("u", 256) + `","data":1}`, "sendToUser: userId holds an invalid user id of 256 bytes: want at most 255 bytes of UTF-8"},
		{"user ids too long", `{"action":"sendToUsers","userIds":["a","` + strings.Repeat("u", 3000) + `"],"data":1}`, "sendToUsers: userIds holds an invalid user id of 3000 bytes"},
		{"user lookup id too long", `{"action":"user","userId":"` + strings.Repeat("u", 256) + `"}`, "user: userId holds an invalid user id of 256 bytes"},
		{"channel invalid", `{"action":"sendToChannel","channel":"a b","data":1}`, "needs a channel"},
		{"broadcast without data", `{"action":"broadcast"}`, "needs data"},
		{"disconnect without id", `{"action":"disconnect"}`, "needs connectionId"},
		{"join without channel", `{"action":"join","connectionId":"a"}`, "needs a channel"},
		{"user lookup without id", `{"action":"user"}`, "needs userId"},
		{"exclude on send", `{"action":"send","connectionId":"a","data":1,"exclude":["b"]}`, "exclude applies to sendToChannel and broadcast only"},
	}
	tests = append(tests, strictCases()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.cmd))
			var bc *BadCommandError
			require.ErrorAs(t, err, &bc)
			assert.Contains(t, bc.Error(), tt.want)
		})
	}
}

func TestParseNormalisesSend(t *testing.T) {
	c, err := Parse([]byte(`{"action":"send","connectionId":"a","connectionIds":["b"],"data":{"x":1}}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, c.ConnectionIDs)
	assert.JSONEq(t, `{"x":1}`, string(c.Data))
}

// TestParseTakesIntegerUserIDs: user ids may be JSON integers, as the
// original package and the authorizer's context take them; their digits are
// the id, exactly. A fraction, an exponent or another type is refused.
func TestParseTakesIntegerUserIDs(t *testing.T) {
	c, err := Parse([]byte(`{"action":"sendToUser","userId":42,"data":1}`))
	require.NoError(t, err)
	assert.Equal(t, "42", c.UserID)
	c, err = Parse([]byte(`{"action":"sendToUsers","userIds":[9007199254740993,"u2",-7],"data":1}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"9007199254740993", "u2", "-7"}, c.UserIDs, "every digit kept, past 2^53")
	c, err = Parse([]byte(`{"action":"user","userId":"42"}`))
	require.NoError(t, err)
	assert.Equal(t, "42", c.UserID)
	for _, body := range []string{
		`{"action":"sendToUser","userId":4.2,"data":1}`,
		`{"action":"sendToUser","userId":1e3,"data":1}`,
		`{"action":"sendToUser","userId":true,"data":1}`,
		`{"action":"sendToUsers","userIds":[{"id":1}],"data":1}`,
	} {
		_, err := Parse([]byte(body))
		var bad *BadCommandError
		assert.ErrorAs(t, err, &bad, body)
	}
}

type fixture struct {
	h   *Handler
	m   *realtime.Manager
	st  store.Store
	api *mgmtapitest.Server
	now time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.api = mgmtapitest.New(mgmtapitest.Options{Stage: "dev", KeepMessages: true})
	t.Cleanup(f.api.Close)
	poster, err := sender.NewManagementAPI(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}, f.api.URL(), nil)
	require.NoError(t, err)
	st := store.NewMemory(store.MemoryOptions{Now: func() time.Time { return f.now }})
	f.m, err = realtime.New(realtime.Config{Store: st, Poster: poster, Now: func() time.Time { return f.now },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(t, err)
	f.h, f.st = New(f.m), st
	ctx := context.Background()
	for _, c := range []struct{ id, user string }{{"a", "u1"}, {"b", "u1"}, {"c", "u2"}, {"d", ""}} {
		// Connected a minute ago: past realtime.GoneGrace, so a 410 removes them.
		require.NoError(t, st.AddConnection(ctx, store.Connection{ID: c.id, UserID: c.user, ConnectedAt: f.now.Add(-time.Minute)}))
		f.api.Connect(c.id)
	}
	for _, id := range []string{"a", "c", "d"} {
		_, err := st.Join(ctx, id, "news")
		require.NoError(t, err)
	}
	return f
}

func (f *fixture) run(t *testing.T, cmd string) map[string]any {
	t.Helper()
	resp, err := f.h.Handle(context.Background(), json.RawMessage(cmd))
	require.NoError(t, err)
	raw, err := json.Marshal(resp)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

// TestExecuteChecksCommandsBuiltInGo: Execute gives a Command built in Go
// the checks Parse gives a payload, so a field the action does not take
// cannot widen a send and a missing one cannot turn it into a no-op.
func TestExecuteChecksCommandsBuiltInGo(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		c    Command
		want string
	}{
		{Command{Action: "send", ConnectionID: "a", Data: json.RawMessage(`1`)}, ""},
		{Command{Action: "broadcast"}, "broadcast needs data"},
		{Command{Action: "broadcast", Channel: "news", Data: json.RawMessage(`1`)}, "broadcast does not take field channel"},
		{Command{Action: "join", ConnectionID: "a", Channel: "bad channel!"}, "join needs a channel"},
		{Command{Action: "send", Exclude: []string{"a"}, ConnectionIDs: []string{"b"}, Data: json.RawMessage(`1`)}, "exclude applies to sendToChannel and broadcast only"},
		{Command{Action: "explode"}, `unknown action "explode"`},
		{Command{Action: "join", ConnectionID: "a", Channel: "presence-room"}, "presence channels are not enabled on this server"},
	} {
		before := len(f.api.Messages("a")) + len(f.api.Messages("b"))
		resp, err := f.h.Execute(context.Background(), tc.c)
		if tc.want == "" {
			require.NoError(t, err)
			assert.Equal(t, 1, *resp.Delivered, "a send with ConnectionID alone reaches it")
			continue
		}
		var bc *BadCommandError
		require.ErrorAs(t, err, &bc, "%+v", tc.c)
		assert.Contains(t, bc.Error(), tc.want)
		assert.Equal(t, before, len(f.api.Messages("a"))+len(f.api.Messages("b")), "nothing sent for %+v", tc.c)
	}
}

// A user's connections are not bounded by the command: past MaxUserResults
// recipients, sendToUser and sendToUsers list only the recipients not
// delivered, at most MaxResults in all, so the answer stays far below
// Lambda's 6 MB.
func TestUserSendsBoundTheirResults(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var dead []string
	for i := range MaxUserResults {
		id := fmt.Sprintf("many-%05d", i)
		require.NoError(t, f.st.AddConnection(ctx, store.Connection{ID: id, UserID: "many", ConnectedAt: f.now.Add(-time.Minute)}))
		f.api.Connect(id)
		if i%4 == 0 {
			dead = append(dead, id)
		}
	}
	f.api.Kill(dead...)

	out := f.run(t, `{"action":"sendToUser","userId":"many","data":1}`)
	assert.EqualValues(t, MaxUserResults-len(dead), out["delivered"])
	assert.EqualValues(t, len(dead), out["gone"])
	assert.Len(t, out["results"], MaxUserResults, "10,000 recipients: every one listed")
	assert.NotContains(t, out, "resultsTruncated")

	// The dead are removed by now; more live ones take the user past the bound.
	for i := range len(dead) + 1 {
		id := fmt.Sprintf("more-%05d", i)
		require.NoError(t, f.st.AddConnection(ctx, store.Connection{ID: id, UserID: "many", ConnectedAt: f.now.Add(-time.Minute)}))
		f.api.Connect(id)
	}
	f.api.Kill("many-00001", "many-00002")
	out = f.run(t, `{"action":"sendToUser","userId":"many","data":2}`)
	assert.EqualValues(t, MaxUserResults-1, out["delivered"])
	assert.EqualValues(t, 2, out["gone"])
	assert.ElementsMatch(t, []any{
		map[string]any{"connectionId": "many-00001", "status": "gone", "error": "GoneException"},
		map[string]any{"connectionId": "many-00002", "status": "gone", "error": "GoneException"},
	}, out["results"], "10,001 recipients: only the ones not delivered")
	assert.NotContains(t, out, "resultsTruncated")

	// sendToUsers: the bound is on all the users' recipients together, and
	// at most MaxResults failures are listed in all.
	var more []string
	for i := range MaxResults + 10 {
		id := fmt.Sprintf("many-%05d", 4*i+3)
		more = append(more, id)
	}
	f.api.Kill(more...)
	f.api.Kill("a")
	out = f.run(t, `{"action":"sendToUsers","userIds":["many","u1"],"data":3}`)
	assert.EqualValues(t, len(more)+1, out["gone"])
	users := out["users"].(map[string]any)
	listed := len(users["many"].([]any)) + len(users["u1"].([]any))
	assert.Equal(t, MaxResults, listed, "failures listed up to the bound")
	assert.Equal(t, true, out["resultsTruncated"])
}

func TestCommands(t *testing.T) {
	f := newFixture(t)
	f.api.Kill("d")

	out := f.run(t, `{"action":"send","connectionIds":["a","d"],"data":{"hello": "world"}}`)
	assert.Equal(t, true, out["ok"])
	assert.EqualValues(t, 1, out["delivered"])
	assert.EqualValues(t, 1, out["gone"])
	assert.ElementsMatch(t, []any{
		map[string]any{"connectionId": "a", "status": "delivered"},
		map[string]any{"connectionId": "d", "status": "gone", "error": "GoneException"},
	}, out["results"])
	assert.Equal(t, [][]byte{[]byte(`{"hello": "world"}`)}, f.api.Messages("a"), "data reaches the client unchanged")

	out = f.run(t, `{"action":"sendToUser","userId":"u1","data":1}`)
	assert.EqualValues(t, 2, out["delivered"])

	out = f.run(t, `{"action":"sendToUsers","userIds":["u1","u2"],"data":2}`)
	assert.EqualValues(t, 3, out["delivered"])
	assert.Len(t, out["users"].(map[string]any)["u1"], 2)

	out = f.run(t, `{"action":"sendToChannel","channel":"news","data":3,"exclude":["c"]}`)
	assert.EqualValues(t, 1, out["delivered"])
	assert.Equal(t, []any{}, out["results"], "channel sends list only failures: none, as an empty list")

	out = f.run(t, `{"action":"broadcast","data":{"b":true}}`)
	assert.EqualValues(t, 3, out["delivered"])

	// Empty lists are sent as [], not left out.
	out = f.run(t, `{"action":"sendToUser","userId":"nobody","data":1}`)
	assert.Equal(t, []any{}, out["results"])
	out = f.run(t, `{"action":"user","userId":"nobody"}`)
	assert.Equal(t, []any{}, out["connectionIds"])
	out = f.run(t, `{"action":"channel","channel":"empty"}`)
	assert.Equal(t, []any{}, out["connectionIds"])
	out = f.run(t, `{"action":"sendToUsers","userIds":["u1"],"data":2}`)
	assert.NotContains(t, out, "results", "sendToUsers answers per user only")

	out = f.run(t, `{"action":"broadcast","data":{"b":2},"exclude":["a"]}`)
	assert.EqualValues(t, 2, out["delivered"], "broadcast honours exclude")

	for _, cmd := range []string{
		`{"action":"send","connectionId":"a","data":"` + strings.Repeat("x", sender.MaxPayload) + `"}`,
		`{"action":"sendToChannel","channel":"news","data":"` + strings.Repeat("x", sender.MaxPayload) + `"}`,
	} {
		_, err := f.h.Handle(context.Background(), json.RawMessage(cmd))
		var bc *BadCommandError
		require.ErrorAs(t, err, &bc)
		assert.Contains(t, bc.Reason, "exceeds API Gateway's 131072-byte message limit")
	}

	out = f.run(t, `{"action":"connection","connectionId":"a"}`)
	assert.Equal(t, true, out["found"])
	assert.Equal(t, "u1", out["connection"].(map[string]any)["userId"])
	assert.Equal(t, []any{"news"}, out["connection"].(map[string]any)["channels"])
	out = f.run(t, `{"action":"connection","connectionId":"zzz"}`)
	assert.Equal(t, false, out["found"])

	out = f.run(t, `{"action":"join","connectionId":"b","channel":"sports"}`)
	assert.Equal(t, true, out["changed"])
	out = f.run(t, `{"action":"leave","connectionId":"b","channel":"sports"}`)
	assert.Equal(t, true, out["changed"])
	_, err := f.h.Handle(context.Background(), json.RawMessage(`{"action":"join","connectionId":"nope","channel":"x"}`))
	var bc *BadCommandError
	assert.ErrorAs(t, err, &bc)

	out = f.run(t, `{"action":"channel","channel":"news"}`)
	assert.ElementsMatch(t, []any{"a", "c"}, out["connectionIds"])
	out = f.run(t, `{"action":"user","userId":"u1"}`)
	assert.ElementsMatch(t, []any{"a", "b"}, out["connectionIds"])
	out = f.run(t, `{"action":"connections"}`)
	assert.ElementsMatch(t, []any{"a", "b", "c"}, out["connectionIds"])
	out = f.run(t, `{"action":"channels"}`)
	assert.Equal(t, []any{"news"}, out["channels"])
	out = f.run(t, `{"action":"stats"}`)
	assert.Equal(t, map[string]any{"totalConnections": 3.0, "totalChannels": 1.0, "channels": map[string]any{"news": 2.0}}, out["stats"])

	out = f.run(t, `{"action":"disconnect","connectionId":"b"}`)
	assert.Equal(t, true, out["ok"])
	assert.True(t, f.api.Deleted("b"))

	f.now = f.now.Add(3 * time.Hour)
	out = f.run(t, `{"action":"cleanup"}`)
	assert.EqualValues(t, 2, out["removed"])
}

// FuzzParse: any payload either parses into a command that Execute accepts
// or yields a BadCommandError; never a panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"action":"send","connectionId":"a","data":{"x":1}}`, `{"action":"sendToUsers","userIds":["1","2"],"data":[]}`,
		`{"action":"sendToChannel","channel":"news","data":"s","exclude":["a"]}`, `{"action":"broadcast","data":0}`,
		`{"action":"stats"}`, `{"action":"cleanup"}`, `{"action":"join","connectionId":"a","channel":"c"}`,
		`{}`, `null`, `[]`, `{"action":"send"}`, `{"action":"x","y":1}`, `{"action":"send","connectionIds":[""],"data":1}`,
		`{"action":"broadcast","channel":"news","data":1}`, `{"action":"sendToChannel","Channel":"news","data":1}`,
		`{"action":"connection","connectionId":"a b"}`, `{"action":"broadcast","data":1,"exclude":["a","b"]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := Parse(payload)
		if err != nil {
			var bc *BadCommandError
			assert.ErrorAs(t, err, &bc)
			return
		}
		assert.NotEmpty(t, c.Action)
		ids := append(append([]string{}, c.ConnectionIDs...), c.Exclude...)
		if c.ConnectionID != "" {
			ids = append(ids, c.ConnectionID)
		}
		for _, id := range ids {
			assert.True(t, store.ValidConnectionID(id), "connection id %q reaches the store", id)
		}
		switch c.Action {
		case ActionSend, ActionSendToUser, ActionSendToUsers, ActionSendToChannel, ActionBroadcast:
			assert.True(t, json.Valid(c.Data))
		}
	})
}

// FuzzHandle runs any payload through the whole publisher against the
// fixture's connections and channel: it answers or refuses with a bad
// command (the stores here cannot fail), never panics, and an answer is
// JSON with ok set.
func FuzzHandle(f *testing.F) {
	fx := newFixture(f)
	for _, seed := range []string{
		`{"action":"send","connectionId":"a","data":{"x":1}}`, `{"action":"sendToUser","userId":"u1","data":1}`,
		`{"action":"sendToUsers","userIds":["u1","u2"],"data":[]}`, `{"action":"sendToChannel","channel":"news","data":"s","exclude":["a"]}`,
		`{"action":"broadcast","data":0}`, `{"action":"stats"}`, `{"action":"cleanup"}`, `{"action":"channels"}`,
		`{"action":"join","connectionId":"b","channel":"c"}`, `{"action":"leave","connectionId":"a","channel":"news"}`,
		`{"action":"connection","connectionId":"a"}`, `{"action":"connections"}`, `{"action":"channel","channel":"news"}`,
		`{"action":"user","userId":"u1"}`, `{"action":"disconnect","connectionId":"nope"}`, `{}`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		resp, err := fx.h.Handle(context.Background(), json.RawMessage(payload))
		if err != nil {
			var bc *BadCommandError
			require.ErrorAs(t, err, &bc, "%q", payload)
			return
		}
		raw, err := json.Marshal(resp)
		require.NoError(t, err)
		var out struct {
			OK *bool `json:"ok"`
		}
		require.NoError(t, json.Unmarshal(raw, &out))
		require.NotNil(t, out.OK, "%q answered %s", payload, raw)
	})
}
