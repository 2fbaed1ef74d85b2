package realtime

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// TestRefusedConnectPairsOnJoinWithOnLeave: an OnConnect that joins a
// channel and then refuses the connection has the join taken back; OnLeave
// runs for it, as OnJoin did.
func TestRefusedConnectPairsOnJoinWithOnLeave(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	record := func(s string) { mu.Lock(); calls = append(calls, s); mu.Unlock() }
	e := newEnv(t, Hooks{
		OnConnect: func(ctx context.Context, m *Manager, r *Request) error {
			if _, err := m.Join(ctx, r.ConnectionID, "hookch"); err != nil {
				return err
			}
			return &Reject{Status: http.StatusUnauthorized}
		},
		OnJoin:  func(_ context.Context, id, ch string) error { record("join:" + id + ":" + ch); return nil },
		OnLeave: func(_ context.Context, id, ch string) error { record("leave:" + id + ":" + ch); return nil },
	})
	resp := e.connect("r1", "alice", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, []string{"join:r1:hookch", "leave:r1:hookch"}, calls)
}

// TestJoinChecksTheChannelNameFirst: an invalid presence- name is
// ErrInvalidChannel whatever the connection, as for every other method.
func TestJoinChecksTheChannelNameFirst(t *testing.T) {
	e := newHistoryEnv(t, 10)
	e.connect("anon", "", "", "")
	for _, id := range []string{"anon", "unknown"} {
		_, err := e.m.Join(context.Background(), id, "presence-a b")
		assert.ErrorIs(t, err, ErrInvalidChannel, id)
	}
}

// TestNegativeTTLIsRefused: a negative Config.TTL is an error, not the default.
func TestNegativeTTLIsRefused(t *testing.T) {
	_, err := New(Config{Store: store.NewMemory(store.MemoryOptions{}), NewPoster: func(string) (sender.Poster, error) { return nil, nil }, TTL: -time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Config.TTL -1s: want a positive duration")
}

// TestRejectOutsideTheErrorRangeIs500: a Reject is a refusal; a status that
// is not one (302, 700) answers 500.
func TestRejectOutsideTheErrorRangeIs500(t *testing.T) {
	for _, status := range []int{302, 700} {
		e := newEnv(t, Hooks{OnConnect: func(context.Context, *Manager, *Request) error { return &Reject{Status: status} }})
		assert.Equal(t, http.StatusInternalServerError, e.connect("c", "alice", "", "").StatusCode, status)
	}
}
