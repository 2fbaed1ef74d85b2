package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// TestParseIsStrict: field names are case-sensitive, a known field the
// action does not take is an error naming it, not a silent no-op, and
// malformed connection ids never reach the store. The refusals are in
// TestParseErrors (strictCases); these are the limits that still pass.
func TestParseIsStrict(t *testing.T) {
	c, err := Parse([]byte(`{"action":"sendToUsers","userIds":[` + strings.Join(userList(MaxUsers), ",") + `],"data":1}`))
	require.NoError(t, err, "1,000 users are fine")
	assert.Len(t, c.UserIDs, MaxUsers)
	_, err = Parse([]byte(`{"action":"sendToUsers","userIds":[` + strings.Join(append(userList(MaxUsers), `"u0"`), ",") + `],"data":1}`))
	require.NoError(t, err, "a repeated id counts once")
	_, err = Parse([]byte(`{"action":"connection","connectionId":"` + strings.Repeat("x", store.MaxConnectionIDLength) + `"}`))
	require.NoError(t, err, "128 characters are fine")
	c, err = Parse([]byte(`{"action":"send","connectionId":"c0","connectionIds":[` + strings.Join(append(connList(MaxConnectionIDs), `"c1"`), ",") + `],"data":1}`))
	require.NoError(t, err, "10,000 distinct connection ids are fine, a repeated one counts once")
	assert.Len(t, c.ConnectionIDs, MaxConnectionIDs+2)
}

// connList is n distinct connection ids, JSON-quoted.
func connList(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprint("c", i))
	}
	return ids
}

// userList is n distinct user ids, JSON-quoted.
func userList(n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("%q", fmt.Sprint("u", i))
	}
	return users
}

// strictCases are the commands the strict parser refuses, with the reason.
func strictCases() []struct{ name, cmd, want string } {
	long := strings.Repeat("x", store.MaxConnectionIDLength+1)
	return []struct{ name, cmd, want string }{
		{"broadcast with a channel", `{"action":"broadcast","channel":"news","data":1}`, "broadcast does not take field channel"},
		{"capitalised field", `{"action":"sendToChannel","Channel":"news","data":1}`, `unknown field "Channel"`},
		{"capitalised action field", `{"Action":"stats"}`, `unknown field "Action"`},
		{"upper-case data", `{"action":"send","connectionId":"a","DATA":1}`, `unknown field "DATA"`},
		{"stats with data", `{"action":"stats","data":1}`, "stats does not take field data"},
		{"sendToUser with userIds", `{"action":"sendToUser","userId":"u","userIds":["v"],"data":1}`, "sendToUser does not take field userIds"},
		{"disconnect with a channel", `{"action":"disconnect","connectionId":"a","channel":"news"}`, "disconnect does not take field channel"},
		{"user with connectionId", `{"action":"user","userId":"u","connectionId":"a"}`, "user does not take field connectionId"},
		{"null in a foreign field", `{"action":"broadcast","data":1,"userId":null}`, "broadcast does not take field userId"},
		{"over-long connectionId", `{"action":"connection","connectionId":"` + long + `"}`, "invalid connection id"},
		{"over-long id in connectionIds", `{"action":"send","connectionIds":["a","` + long + `"],"data":1}`, "invalid connection id"},
		{"over-long id to send", `{"action":"send","connectionId":"` + strings.Repeat("y", 3000) + `","data":1}`, "invalid connection id"},
		{"space in an id", `{"action":"disconnect","connectionId":"a b"}`, "invalid connection id"},
		{"control character", `{"action":"join","connectionId":"a\u0000","channel":"news"}`, "invalid connection id"},
		{"over-long exclude", `{"action":"broadcast","data":1,"exclude":["` + long + `"]}`, "invalid connection id"},
		{"too many users", `{"action":"sendToUsers","userIds":[` + strings.Join(userList(MaxUsers+1), ",") + `],"data":1}`, "at most 1000 distinct userIds"},
		{"too many connection ids", `{"action":"send","connectionIds":[` + strings.Join(connList(MaxConnectionIDs+1), ",") + `],"data":1}`, "send takes at most 10000 distinct connection ids, got 10001"},
	}
}

// TestJoinPastTheCapIsABadCommand: the publisher's join honours the
// channels-per-connection cap and says so.
func TestJoinPastTheCapIsABadCommand(t *testing.T) {
	f := newFixture(t)
	for i := range realtime.DefaultMaxChannelsPerConnection - 1 {
		f.run(t, fmt.Sprintf(`{"action":"join","connectionId":"a","channel":"c%03d"}`, i))
	}
	_, err := f.h.Handle(context.Background(), json.RawMessage(`{"action":"join","connectionId":"a","channel":"one-too-many"}`))
	var bc *BadCommandError
	require.ErrorAs(t, err, &bc)
	assert.Contains(t, bc.Reason, "already holds 100 channels")
}
