package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
)

func TestHistoryFlag(t *testing.T) {
	noEnv := func(string) string { return "" }
	o, err := parseFlags([]string{"-history", "chat-*:100:1h", "-history", "room:a*:5:30s"}, noEnv, io.Discard)
	require.NoError(t, err)
	cfg, err := o.serverConfig(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, realtime.HistoryRules{{Pattern: "chat-*", Size: 100, TTL: time.Hour}, {Pattern: "room:a*", Size: 5, TTL: 30 * time.Second}}, cfg.History)

	o, err = parseFlags(nil, func(k string) string {
		if k == "WSLOCAL_HISTORY" {
			return "news-*:10:1m"
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	cfg, err = o.serverConfig(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, realtime.HistoryRules{{Pattern: "news-*", Size: 10, TTL: time.Minute}}, cfg.History)

	for _, bad := range []string{"chat-*", "chat-*:0:1h", "chat-*:10:later"} {
		o, err := parseFlags([]string{"-history", bad}, noEnv, io.Discard)
		require.NoError(t, err)
		_, err = o.serverConfig(nil, io.Discard)
		assert.ErrorContains(t, err, "-history", bad)
	}
}

// TestHistoryRecoveryOverWebSocket runs the gateway with -history and real
// WebSocket clients: a subscriber that was away resubscribes with since and
// gets what it missed in the subscribed reply. With WS_DYNAMODB_ENDPOINT set
// it runs on DynamoDB Local too.
func TestHistoryRecoveryOverWebSocket(t *testing.T) {
	stores := map[string]string{"embedded": ""}
	if ep := os.Getenv("WS_DYNAMODB_ENDPOINT"); ep != "" {
		stores["dynamodb"] = ep
	}
	for name, endpoint := range stores {
		t.Run(name, func(t *testing.T) {
			o, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-history", "chat-*:100:1h", "-pusher=false",
				"-dynamodb-endpoint", endpoint, "-table", fmt.Sprintf("history-%d", time.Now().UnixNano())}, func(string) string { return "" }, io.Discard)
			require.NoError(t, err)
			cfg, err := o.serverConfig(nil, io.Discard)
			require.NoError(t, err)
			srv, err := localgw.Start(t.Context(), cfg)
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Close(ctx)
			})
			dial := func() *websocket.Conn {
				c, _, err := websocket.Dial(t.Context(), srv.URL(), nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.CloseNow() })
				return c
			}
			call := func(c *websocket.Conn, frame string) map[string]any {
				require.NoError(t, c.Write(t.Context(), websocket.MessageText, []byte(frame)))
				_, b, err := c.Read(t.Context())
				require.NoError(t, err)
				var m map[string]any
				require.NoError(t, json.Unmarshal(b, &m), string(b))
				return m
			}
			pub, sub := dial(), dial()
			call(pub, `{"action":"subscribe","channel":"chat-room"}`)
			first := call(sub, `{"action":"subscribe","channel":"chat-room"}`)
			epoch := first["epoch"].(string)
			require.NotEmpty(t, epoch)
			assert.Equal(t, float64(0), first["offset"])

			call(pub, `{"action":"publish","channel":"chat-room","data":"one"}`)
			_, b, err := sub.Read(t.Context())
			require.NoError(t, err)
			assert.JSONEq(t, fmt.Sprintf(`{"type":"message","channel":"chat-room","data":"one","offset":1,"epoch":%q}`, epoch), string(b))
			require.NoError(t, sub.Close(websocket.StatusNormalClosure, "away"))

			for _, d := range []string{"two", "three"} {
				call(pub, fmt.Sprintf(`{"action":"publish","channel":"chat-room","data":%q}`, d))
			}
			back := dial()
			got := call(back, fmt.Sprintf(`{"action":"subscribe","channel":"chat-room","since":{"offset":1,"epoch":%q}}`, epoch))
			assert.Equal(t, true, got["recovered"])
			assert.Equal(t, float64(3), got["offset"])
			assert.Equal(t, []any{
				map[string]any{"offset": float64(2), "data": "two"},
				map[string]any{"offset": float64(3), "data": "three"},
			}, got["publications"])
		})
	}
}
