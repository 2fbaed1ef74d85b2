//go:build load

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// loadClient is a light client: one reader goroutine that signals the
// frames the test waits for, so thousands fit in one test process.
type loadClient struct {
	conn       *websocket.Conn
	subscribed chan struct{}
	broadcast  chan struct{}
	closed     chan struct{}
	once       sync.Once
}

func (c *loadClient) read(want string) {
	defer close(c.closed)
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			return
		}
		var f struct{ Type string }
		_ = json.Unmarshal(data, &f)
		switch {
		case f.Type == "subscribed":
			close(c.subscribed)
		case string(data) == want:
			c.once.Do(func() { close(c.broadcast) })
		}
	}
}

// TestLoadTwoThousandConnections opens 2,000 concurrent connections to the
// wslocal binary on loopback, subscribes each to a channel, broadcasts
// through the publisher's Invoke API, checks every client got the message,
// closes them all and checks the store is empty. No timed assertions: the
// context only bounds the run so it stops by itself.
func TestLoadTwoThousandConnections(t *testing.T) {
	n := 2000
	if v := os.Getenv("WSLOCAL_LOAD_CONNECTIONS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := startBinary(t, "-log-level", "error")
	lambdaClient := localgwtest.LambdaClient(p.base)
	const payload = `{"load":"broadcast"}`

	start := time.Now()
	clients := make([]*loadClient, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for i := range clients {
		g.Go(func() error {
			conn, _, err := websocket.Dial(gctx, p.wsURL, nil)
			if err != nil {
				return fmt.Errorf("dial %d: %w", i, err)
			}
			c := &loadClient{conn: conn, subscribed: make(chan struct{}), broadcast: make(chan struct{}), closed: make(chan struct{})}
			clients[i] = c
			go c.read(payload)
			frame := fmt.Sprintf(`{"action":"subscribe","channel":"room-%d"}`, i%20)
			if err := conn.Write(gctx, websocket.MessageText, []byte(frame)); err != nil {
				return fmt.Errorf("subscribe %d: %w", i, err)
			}
			select {
			case <-c.subscribed:
				return nil
			case <-c.closed:
				return fmt.Errorf("client %d closed before subscribing", i)
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	}
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.conn.CloseNow()
			}
		}
	}()
	require.NoError(t, g.Wait())
	t.Logf("%d connections open and subscribed after %s", n, time.Since(start).Round(time.Millisecond))

	resp, ferr := localgwtest.Invoke(ctx, t, lambdaClient, "publisher", map[string]any{"action": "stats"})
	require.Empty(t, ferr)
	require.NotNil(t, resp.Stats)
	assert.Equal(t, int64(n), resp.Stats.TotalConnections)
	assert.Equal(t, int64(20), resp.Stats.TotalChannels)

	sent := time.Now()
	resp, ferr = localgwtest.Invoke(ctx, t, lambdaClient, "my-app-publisher", map[string]any{"action": "broadcast", "data": json.RawMessage(payload)})
	require.Empty(t, ferr)
	require.NotNil(t, resp.Delivered)
	assert.Equal(t, n, *resp.Delivered)
	var received atomic.Int64
	for i, c := range clients {
		select {
		case <-c.broadcast:
			received.Add(1)
		case <-ctx.Done():
			t.Fatalf("client %d never received the broadcast (%d of %d did)", i, received.Load(), n)
		}
	}
	t.Logf("broadcast reached all %d clients after %s", received.Load(), time.Since(sent).Round(time.Millisecond))

	closing := time.Now()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, c := range clients {
		g.Go(func() error { return c.conn.Close(websocket.StatusNormalClosure, "done") })
	}
	require.NoError(t, g.Wait())
	localgwtest.WaitFor(ctx, t, "store empty after every $disconnect", func() bool {
		resp, ferr := localgwtest.Invoke(ctx, t, lambdaClient, "publisher", map[string]any{"action": "stats"})
		return ferr == "" && resp.Stats != nil && resp.Stats.TotalConnections == 0 && resp.Stats.TotalChannels == 0
	})
	t.Logf("all %d disconnected and cleaned up after %s", n, time.Since(closing).Round(time.Millisecond))
	require.NoError(t, p.terminate(t, ctx))
}
