//go:build e2e

package localgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
)

var pusherApp = pusher.App{ID: pusher.DefaultAppID, Key: pusher.DefaultAppKey, Secret: pusher.DefaultAppSecret}

// lockedBuffer collects the bootstraps' output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(b.buf.String(), "\n")
}

// pusherBootstrapServer runs protocol v1 and Pusher mode on DynamoDB Local
// with the compiled websocket bootstrap (its Lambda main) for both, and
// returns the processes' output.
func pusherBootstrapServer(t *testing.T) (*localgw.Server, *lockedBuffer, string) {
	t.Helper()
	out := &lockedBuffer{}
	table := uniqueTable(t)
	srv := startServer(t, localgw.ServerConfig{
		DynamoDBEndpoint: dynamoEndpoint(t), Table: table, LambdaDir: lambdaDir(t), JWTSecret: testSecret,
		ProcessOutput: out, Pusher: &pusher.Config{App: pusherApp},
	})
	return srv, out, table
}

// pusherClient is a Pusher protocol 7 client on a real WebSocket.
type pusherClient struct {
	t        *testing.T
	c        *websocket.Conn
	socketID string
}

func dialPusher(ctx context.Context, t *testing.T, srv *localgw.Server) *pusherClient {
	t.Helper()
	c, _, err := websocket.Dial(ctx, srv.PusherURL(pusherApp.Key)+"?protocol=7&client=go&version=1", nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	p := &pusherClient{t: t, c: c}
	f := p.next(ctx, "pusher:connection_established")
	var d struct {
		SocketID string `json:"socket_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(f["data"].(string)), &d))
	p.socketID = d.SocketID
	return p
}

func (p *pusherClient) send(ctx context.Context, frame any) {
	p.t.Helper()
	b, err := json.Marshal(frame)
	require.NoError(p.t, err)
	require.NoError(p.t, p.c.Write(ctx, websocket.MessageText, b))
}

// next reads frames until one with the event arrives.
func (p *pusherClient) next(ctx context.Context, event string) map[string]any {
	p.t.Helper()
	for {
		_, b, err := p.c.Read(ctx)
		require.NoError(p.t, err, "waiting for %s", event)
		var f map[string]any
		require.NoError(p.t, json.Unmarshal(b, &f))
		if f["event"] == event {
			return f
		}
	}
}

func (p *pusherClient) joinPresence(ctx context.Context, channel, userID string) {
	p.t.Helper()
	cd := `{"user_id":"` + userID + `"}`
	p.send(ctx, map[string]any{"event": "pusher:subscribe", "data": map[string]any{
		"channel": channel, "auth": pusherApp.ChannelAuth(p.socketID, channel, cd), "channel_data": cd,
	}})
	p.next(ctx, "pusher_internal:subscription_succeeded")
}

// TestPusherModeMetricsCarryFunctionPusher runs the websocket bootstrap in
// Pusher mode (WS_PUSHER_APP_KEY set, as pusher.tf configures the Pusher-mode
// function) and checks its EMF lines: the welcome's delivery is recorded
// under Function=pusher, not websocket.
func TestPusherModeMetricsCarryFunctionPusher(t *testing.T) {
	srv, out, _ := pusherBootstrapServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dialPusher(ctx, t, srv)

	emf := func() (functions map[string]bool) {
		functions = map[string]bool{}
		for _, line := range out.lines() {
			var doc map[string]any
			if json.Unmarshal([]byte(line), &doc) != nil || doc["_aws"] == nil {
				continue
			}
			if _, delivered := doc["DeliveriesSucceeded"]; delivered {
				functions[doc["Function"].(string)] = true
			}
		}
		return functions
	}
	// The welcome is posted by an asynchronous invocation, whose metrics are
	// flushed when it returns: wait for the line.
	require.Eventually(t, func() bool { return emf()["pusher"] }, 30*time.Second, 20*time.Millisecond,
		"an EMF line with Function=pusher and DeliveriesSucceeded; output:\n%s", strings.Join(out.lines(), "\n"))
	assert.False(t, emf()["websocket"], "only the Pusher stage's function delivered: nothing is filed under websocket")
}
