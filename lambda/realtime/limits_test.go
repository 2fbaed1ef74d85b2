package realtime

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

func TestSubscribeBeyondCapAnswersTooManyChannels(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.m.cfg.MaxChannelsPerConnection = 3
	e.connect("a", "", "", "one")
	for _, ch := range []string{"two", "three"} {
		assert.JSONEq(t, `{"type":"subscribed","channel":"`+ch+`"}`, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"`+ch+`"}`))
	}
	assert.Equal(t, protocol.CodeTooManyChannels, errorCode(t, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"four"}`)))
	assert.JSONEq(t, `{"type":"subscribed","channel":"two"}`, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"two"}`),
		"re-subscribing to a channel it holds is no error")
	e.send("a", "", "", "$default", `{"action":"unsubscribe","channel":"one"}`)
	assert.JSONEq(t, `{"type":"subscribed","channel":"four"}`, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"four"}`),
		"an unsubscribe makes room")
	chs, err := e.m.ChannelsOfConnection(context.Background(), "a")
	require.NoError(t, err)
	assert.Equal(t, []string{"four", "three", "two"}, chs)
}

func TestDefaultChannelCap(t *testing.T) {
	e := newEnv(t, Hooks{})
	assert.Equal(t, DefaultMaxChannelsPerConnection, e.m.MaxChannelsPerConnection())
	e.connect("a", "", "", "")
	for i := range DefaultMaxChannelsPerConnection {
		_, err := e.m.Join(context.Background(), "a", fmt.Sprintf("c%03d", i))
		require.NoError(t, err)
	}
	assert.Equal(t, protocol.CodeTooManyChannels, errorCode(t, e.send("a", "", "", "$default", `{"action":"subscribe","channel":"one-more"}`)))

	_, err := New(Config{Store: e.store, Poster: e.m.cfg.Poster, MaxChannelsPerConnection: -1})
	require.ErrorContains(t, err, "MaxChannelsPerConnection")
}

func TestConnectQueryBeyondCapIsRefused(t *testing.T) {
	e := newEnv(t, Hooks{})
	e.m.cfg.MaxChannelsPerConnection = 3
	assert.Equal(t, http.StatusBadRequest, e.connect("big", "", "", "a,b,c,d").StatusCode)
	ok, err := e.m.Exists(context.Background(), "big")
	require.NoError(t, err)
	assert.False(t, ok, "a refused connect leaves nothing behind")

	// Repeated names count once.
	assert.Equal(t, http.StatusOK, e.connect("dups", "", "", "a,b,a,c,b").StatusCode)
	chs, err := e.m.ChannelsOfConnection(context.Background(), "dups")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, chs)

	// A repeated parameter: API Gateway keeps the last value in the single
	// map and every value in the multi-value one; all of them are joined.
	ev := loadEvent(t, "apigw-websocket-request-connect.json")
	ev.RequestContext.ConnectionID = "repeated"
	ev.QueryStringParameters = map[string]string{"channels": "d"}
	ev.MultiValueQueryStringParameters = map[string][]string{"channels": {"a,b", "d"}}
	resp, err := e.m.Handle(context.Background(), ev)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	chs, err = e.m.ChannelsOfConnection(context.Background(), "repeated")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "d"}, chs)

	// The query fits, but the connect hook joined channels of its own first.
	e = newEnv(t, Hooks{OnConnect: func(ctx context.Context, m *Manager, req *Request) error {
		_, err := m.Join(ctx, req.ConnectionID, "from-hook")
		return err
	}})
	e.m.cfg.MaxChannelsPerConnection = 3
	assert.Equal(t, http.StatusBadRequest, e.connect("hooked", "", "", "a,b,c").StatusCode)
	st, err := e.m.Stats(context.Background())
	require.NoError(t, err)
	assert.Zero(t, st.TotalConnections)
	assert.Empty(t, st.Channels)
}

// partitionReadCounter counts the reads of a connection's whole partition.
type partitionReadCounter struct {
	store.Store
	partitionReads atomic.Int64
}

func (p *partitionReadCounter) ConnectionChannels(ctx context.Context, id string) ([]string, error) {
	p.partitionReads.Add(1)
	return p.Store.ConnectionChannels(ctx, id)
}

func (p *partitionReadCounter) GetConnection(ctx context.Context, id string) (store.Connection, error) {
	p.partitionReads.Add(1)
	return p.Store.GetConnection(ctx, id)
}

// TestPublishChecksOneMembership: publish asks the store about the one
// channel (IsMember), never for the sender's channels.
func TestPublishChecksOneMembership(t *testing.T) {
	e := newEnv(t, Hooks{})
	counter := &partitionReadCounter{Store: e.store}
	e.m.store = counter
	e.connect("a", "", "", "news,c1,c2,c3,c4")
	e.connect("b", "", "", "news")
	before := counter.partitionReads.Load()
	assert.JSONEq(t, `{"type":"published","channel":"news"}`, e.send("a", "", "", "$default", `{"action":"publish","channel":"news","data":1}`))
	assert.Equal(t, protocol.CodeNotSubscribed, errorCode(t, e.send("a", "", "", "$default", `{"action":"publish","channel":"other","data":1}`)))
	assert.Equal(t, before, counter.partitionReads.Load(), "reads of the sender's partition")
	assert.Equal(t, []string{`{"type":"message","channel":"news","data":1}`}, e.messages("b"))
}

// TestAuthorizerNumbersKeepEveryDigit: 9007199254740993 and 9007199254740992
// are one float64; as user ids they are two users.
func TestAuthorizerNumbersKeepEveryDigit(t *testing.T) {
	e := newEnv(t, Hooks{})
	raw, err := os.ReadFile(filepath.Join("testdata", "apigw-websocket-request-connect.json"))
	require.NoError(t, err)
	for i, user := range []string{"9007199254740993", "9007199254740992"} {
		ev := strings.Replace(string(raw), `"userId": "42"`, `"userId": `+user, 1)
		ev = strings.Replace(ev, `"connectionId": "R1kmxc2VNjMCFIA="`, fmt.Sprintf(`"connectionId": "conn-%d"`, i), 1)
		require.NotEqual(t, string(raw), ev)
		resp, err := e.m.HandleJSON(context.Background(), []byte(ev))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	for i, user := range []string{"9007199254740993", "9007199254740992"} {
		ids, err := e.m.ConnectionsOfUser(context.Background(), user)
		require.NoError(t, err)
		assert.Equal(t, []string{fmt.Sprintf("conn-%d", i)}, ids, "connections of %s", user)
	}
}

func TestAuthorizerContextValues(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"abc", "abc"},
		{float64(42), "42"},
		{42.5, "42.5"},
		{float64(1e21), "1000000000000000000000"},
		{0.000001, "0.000001"},
		{true, "true"},
		{nil, ""},
	}
	for _, tt := range tests {
		user, _ := AuthorizerContext(map[string]any{"userId": tt.in})
		assert.Equal(t, tt.want, user, "%v", tt.in)
	}
}

func TestSendToUsersBounded(t *testing.T) {
	e := newEnv(t, Hooks{})
	users := make([]string, MaxUsersPerSend+1)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	_, err := e.m.SendToUsers(context.Background(), users, []byte(`1`))
	require.ErrorIs(t, err, ErrTooManyUsers)

	for i := range 40 {
		e.connect(fmt.Sprintf("c%02d", i), fmt.Sprintf("u%d", i%20), "", "")
	}
	users = append(users[:MaxUsersPerSend], "u0") // 1,000 distinct users, u0 twice
	reps, err := e.m.SendToUsers(context.Background(), users, []byte(`"hi"`))
	require.NoError(t, err)
	assert.Len(t, reps, MaxUsersPerSend)
	for i := range 20 {
		assert.Equal(t, 2, reps[fmt.Sprintf("u%d", i)].Delivered, "u%d", i)
	}
	assert.Zero(t, reps["u500"].Total())
}
