package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// PresenceBackend is what the presence suites test: both interfaces of one implementation.
type PresenceBackend interface {
	store.Presence
	store.Values
}

// PresenceFactory returns a fresh, empty backend; now is its clock.
type PresenceFactory func(t *testing.T, now func() time.Time) PresenceBackend

// RunPresence runs the Presence and Values contract suite.
func RunPresence(t *testing.T, f PresenceFactory) {
	t.Run("FirstAndLast", func(t *testing.T) {
		ctx := t.Context()
		p := f(t, time.Now)
		exp := time.Now().Add(time.Hour)
		join := func(conn, user string) bool {
			first, err := p.JoinPresence(ctx, "presence-room", store.PresenceMember{ConnectionID: conn, UserID: user, UserInfo: []byte(`{"name":"` + user + `"}`), ExpiresAt: exp}, 0)
			require.NoError(t, err)
			return first
		}
		assert.True(t, join("c1", "u1"))
		assert.False(t, join("c2", "u1"))
		assert.False(t, join("c2", "u1"), "joining twice is idempotent")
		assert.True(t, join("c3", "u2"))
		n, err := p.PresenceUserCount(ctx, "presence-room")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		users, err := p.PresenceUsers(ctx, "presence-room")
		require.NoError(t, err)
		require.Len(t, users, 2)
		assert.Equal(t, "u1", users[0].UserID)
		assert.JSONEq(t, `{"name":"u1"}`, string(users[0].UserInfo))
		assert.Empty(t, users[0].ConnectionID, "a user, not one of its connections")
		m, err := p.PresenceMember(ctx, "presence-room", "c2")
		require.NoError(t, err)
		assert.Equal(t, "u1", m.UserID)

		m, last, err := p.LeavePresence(ctx, "presence-room", "c1")
		require.NoError(t, err)
		assert.False(t, last)
		assert.Equal(t, "u1", m.UserID)
		_, last, err = p.LeavePresence(ctx, "presence-room", "c2")
		require.NoError(t, err)
		assert.True(t, last)
		_, _, err = p.LeavePresence(ctx, "presence-room", "c2")
		assert.ErrorIs(t, err, store.ErrNotFound)
		_, err = p.PresenceMember(ctx, "presence-room", "c2")
		assert.ErrorIs(t, err, store.ErrNotFound)
		n, err = p.PresenceUserCount(ctx, "presence-room")
		require.NoError(t, err)
		assert.Equal(t, 1, n)
	})
	t.Run("MaxUsers", func(t *testing.T) {
		ctx := t.Context()
		p := f(t, time.Now)
		exp := time.Now().Add(time.Hour)
		for i, u := range []string{"a", "b"} {
			_, err := p.JoinPresence(ctx, "presence-small", store.PresenceMember{ConnectionID: fmt.Sprint("c", i), UserID: u, ExpiresAt: exp}, 2)
			require.NoError(t, err)
		}
		_, err := p.JoinPresence(ctx, "presence-small", store.PresenceMember{ConnectionID: "c9", UserID: "z", ExpiresAt: exp}, 2)
		assert.ErrorIs(t, err, store.ErrPresenceFull)
		first, err := p.JoinPresence(ctx, "presence-small", store.PresenceMember{ConnectionID: "c8", UserID: "a", ExpiresAt: exp}, 2)
		require.NoError(t, err, "a second connection of a member is not a new user")
		assert.False(t, first)
		n, err := p.PresenceUserCount(ctx, "presence-small")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
	})
	t.Run("Values", func(t *testing.T) {
		ctx := t.Context()
		var now atomic.Int64
		now.Store(time.Unix(1_800_000_000, 0).UnixNano())
		clock := func() time.Time { return time.Unix(0, now.Load()) }
		p := f(t, clock)
		exp := clock().Add(time.Minute)
		ok, err := p.PutValue(ctx, "alias#1.2", []byte("conn-a"), exp, true)
		require.NoError(t, err)
		assert.True(t, ok)
		ok, err = p.PutValue(ctx, "alias#1.2", []byte("conn-b"), exp, true)
		require.NoError(t, err)
		assert.False(t, ok, "a live value is not replaced with ifAbsent")
		v, err := p.GetValue(ctx, "alias#1.2")
		require.NoError(t, err)
		assert.Equal(t, "conn-a", string(v))
		ok, err = p.PutValue(ctx, "cache#c", []byte("one"), exp, false)
		require.NoError(t, err)
		assert.True(t, ok)
		_, err = p.PutValue(ctx, "cache#c", []byte("two"), exp, false)
		require.NoError(t, err)
		v, err = p.GetValue(ctx, "cache#c")
		require.NoError(t, err)
		assert.Equal(t, "two", string(v))
		for want := int64(1); want <= 3; want++ {
			n, err := p.Increment(ctx, "rate#x#1", exp)
			require.NoError(t, err)
			assert.Equal(t, want, n)
		}
		_, err = p.GetValue(ctx, "missing")
		assert.ErrorIs(t, err, store.ErrNotFound)
		now.Store(exp.Add(time.Second).UnixNano())
		_, err = p.GetValue(ctx, "cache#c")
		assert.ErrorIs(t, err, store.ErrNotFound, "an expired value is gone")
		ok, err = p.PutValue(ctx, "alias#1.2", []byte("conn-b"), clock().Add(time.Minute), true)
		require.NoError(t, err)
		assert.True(t, ok, "an expired value may be claimed again")
		// An empty value is stored (and read back empty); one written
		// already expired releases a claim.
		for _, empty := range [][]byte{nil, {}} {
			ok, err = p.PutValue(ctx, "alias#1.2", empty, clock().Add(time.Minute), false)
			require.NoError(t, err, "an empty value")
			assert.True(t, ok)
			v, err = p.GetValue(ctx, "alias#1.2")
			require.NoError(t, err)
			assert.Empty(t, v)
		}
		_, err = p.PutValue(ctx, "alias#1.2", nil, clock().Add(-time.Minute), false)
		require.NoError(t, err, "an empty value written expired")
		_, err = p.GetValue(ctx, "alias#1.2")
		assert.ErrorIs(t, err, store.ErrNotFound, "a value written expired is absent")
		ok, err = p.PutValue(ctx, "alias#1.2", []byte("conn-c"), clock().Add(time.Minute), true)
		require.NoError(t, err)
		assert.True(t, ok, "and may be claimed again")
	})
}

// PresenceConcurrencyOptions sizes RunPresenceConcurrency.
type PresenceConcurrencyOptions struct {
	// Connections joining at once (default 200), spread over Users (default 20).
	Connections, Users int
}

// RunPresenceConcurrency has Connections connections of Users users join and
// leave one presence channel at once: every user gets exactly one first
// join and one last leave, and the counts are exact.
func RunPresenceConcurrency(t *testing.T, f PresenceFactory, opts PresenceConcurrencyOptions) {
	if opts.Connections == 0 {
		opts.Connections = 200
	}
	if opts.Users == 0 {
		opts.Users = 20
	}
	const ch = "presence-crowd"
	user := func(i int) string { return fmt.Sprintf("user-%02d", i%opts.Users) }
	conn := func(i int) string { return fmt.Sprintf("conn-%03d", i) }
	count := func(t *testing.T, p PresenceBackend) (int, int) {
		n, err := p.PresenceUserCount(t.Context(), ch)
		require.NoError(t, err)
		users, err := p.PresenceUsers(t.Context(), ch)
		require.NoError(t, err)
		return n, len(users)
	}
	all := func(fn func(i int) error) error {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, opts.Connections)
		for i := range opts.Connections {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = fn(i)
			}()
		}
		close(start)
		wg.Wait()
		return errors.Join(errs...)
	}
	exp := time.Now().Add(time.Hour)
	member := func(i int) store.PresenceMember {
		return store.PresenceMember{ConnectionID: conn(i), UserID: user(i), UserInfo: []byte(`{"i":1}`), ExpiresAt: exp}
	}

	t.Run("JoinThenLeaveAtOnce", func(t *testing.T) {
		p := f(t, time.Now)
		ctx := context.WithoutCancel(t.Context())
		var mu sync.Mutex
		firsts, lasts := map[string]int{}, map[string]int{}
		require.NoError(t, all(func(i int) error {
			first, err := p.JoinPresence(ctx, ch, member(i), 0)
			if first {
				mu.Lock()
				firsts[user(i)]++
				mu.Unlock()
			}
			return err
		}))
		assert.Len(t, firsts, opts.Users)
		for u, n := range firsts {
			assert.Equal(t, 1, n, "member_added for %s", u)
		}
		n, listed := count(t, p)
		assert.Equal(t, opts.Users, n)
		assert.Equal(t, opts.Users, listed)

		require.NoError(t, all(func(i int) error {
			_, last, err := p.LeavePresence(ctx, ch, conn(i))
			if last {
				mu.Lock()
				lasts[user(i)]++
				mu.Unlock()
			}
			return err
		}))
		assert.Len(t, lasts, opts.Users)
		for u, n := range lasts {
			assert.Equal(t, 1, n, "member_removed for %s", u)
		}
		n, listed = count(t, p)
		assert.Equal(t, 0, n)
		assert.Equal(t, 0, listed)
	})
	t.Run("JoinAndLeaveInterleaved", func(t *testing.T) {
		// Each connection joins and leaves at once with all the others: a
		// user may come and go several times, but its added and removed
		// events alternate, so they pair up, and nothing is left.
		p := f(t, time.Now)
		ctx := context.WithoutCancel(t.Context())
		var adds, removes [64]atomic.Int64
		require.NoError(t, all(func(i int) error {
			first, err := p.JoinPresence(ctx, ch, member(i), 0)
			if err != nil {
				return err
			}
			if first {
				adds[i%opts.Users].Add(1)
			}
			_, last, err := p.LeavePresence(ctx, ch, conn(i))
			if last {
				removes[i%opts.Users].Add(1)
			}
			return err
		}))
		for u := range opts.Users {
			assert.Positive(t, adds[u].Load(), "user %d was added", u)
			assert.Equal(t, adds[u].Load(), removes[u].Load(), "added and removed events of user %d", u)
		}
		n, listed := count(t, p)
		assert.Equal(t, 0, n)
		assert.Equal(t, 0, listed)
	})
}
