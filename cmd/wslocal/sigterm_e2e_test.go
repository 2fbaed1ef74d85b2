//go:build e2e

package main

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// TestBinaryGracefulShutdown starts the real binary, connects two clients
// and sends SIGTERM: both see 1001, $disconnect runs for each (the store is
// empty, which only the publisher can tell from outside) and the process exits 0.
func TestBinaryGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startBinary(t, "-log-level", "warn")
	a := localgwtest.MustDial(ctx, t, p.wsURL, "")
	b := localgwtest.MustDial(ctx, t, p.wsURL, "")
	a.Subscribe(ctx, "lobby")
	b.Subscribe(ctx, "lobby")
	resp, ferr := localgwtest.Invoke(ctx, t, localgwtest.LambdaClient(p.base), "publisher", map[string]any{"action": "stats"})
	require.Empty(t, ferr)
	require.NotNil(t, resp.Stats)
	assert.Equal(t, int64(2), resp.Stats.TotalConnections)

	require.NoError(t, p.terminate(t, ctx), "exit status after SIGTERM")
	assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(a.Closed(ctx)))
	assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(b.Closed(ctx)))
	assert.Contains(t, p.stdout.String(), "wslocal: stopped")
}
