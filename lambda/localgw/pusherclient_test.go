package localgw_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
)

// pusherClient is a Pusher protocol 7 client on a real WebSocket.
type pusherClient struct {
	t        *testing.T
	c        *websocket.Conn
	socketID string
}

// dialPusherKey connects to the Pusher stage as app key and waits for its
// socket id.
func dialPusherKey(ctx context.Context, t *testing.T, srv *localgw.Server, key string) *pusherClient {
	t.Helper()
	c, _, err := websocket.Dial(ctx, srv.PusherURL(key)+"?protocol=7&client=go&version=1", nil)
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
