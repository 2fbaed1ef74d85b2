package realtime

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
)

// FuzzHandleMessage sends any message body from a connected client that is
// in a history channel, a presence channel and a private one (so publish,
// recovery, members and the private check have something to act on): the
// handler never fails or panics, always answers 200 with one JSON frame
// that has a type, posts only JSON, and every channel a connection ends up
// in is a valid channel name.
func FuzzHandleMessage(f *testing.F) {
	e := newHistoryEnv(f, 10)
	e.connect("a", "alice", "private-*", "")
	e.connect("b", "bob", "private-*", "")
	for _, id := range []string{"a", "b"} {
		user := map[string]string{"a": "alice", "b": "bob"}[id]
		for _, ch := range []string{"chat-1", "presence-room", "private-x"} {
			reply := e.send(id, user, "private-*", "$default", `{"action":"subscribe","channel":"`+ch+`"}`)
			require.Contains(f, reply, `"subscribed"`, reply)
		}
	}
	for _, seed := range []string{
		`{"action":"publish","channel":"chat-1","data":{"x":1}}`,
		`{"action":"publish","channel":"private-x","data":"hi"}`,
		`{"action":"subscribe","channel":"chat-1","since":{"offset":1,"epoch":"x"}}`,
		`{"action":"history","channel":"chat-1","since":{"offset":0,"epoch":""},"limit":5}`,
		`{"action":"unsubscribe","channel":"presence-room"}`,
		`{"action":"subscribe","channel":"presence-room"}`,
		`{"action":"subscribe","channel":"secret-x"}`,
		`{"action":"whoami"}`, `{"action":"ping"}`, `{}`, `null`, `not json`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		seen := map[string]int{"a": len(e.api.Messages("a")), "b": len(e.api.Messages("b"))}
		ev := loadEvent(t, "apigw-websocket-request-message.json")
		ev.RequestContext.ConnectionID = "a"
		ev.RequestContext.Authorizer = authorizer("alice", "private-*")
		ev.RequestContext.RouteKey = "$default"
		ev.Body = string(body)
		resp, err := e.m.Handle(ctx, ev)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var reply struct {
			Type string `json:"type"`
		}
		require.NoError(t, json.Unmarshal([]byte(resp.Body), &reply), "answer %q", resp.Body)
		require.NotEmpty(t, reply.Type, "answer %q", resp.Body)
		for id, n := range seen {
			msgs := e.api.Messages(id)
			for _, m := range msgs[min(n, len(msgs)):] {
				require.True(t, json.Valid(m), "posted %q", m)
			}
			chans, err := e.store.ConnectionChannels(ctx, id)
			require.NoError(t, err)
			for _, ch := range chans {
				require.True(t, protocol.ValidChannel(ch), "stored channel %q", ch)
			}
		}
	})
}
