package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// ConcurrencyOptions sizes the concurrency tests.
type ConcurrencyOptions struct {
	// Connections is how many connections connect at once (default 200).
	Connections int
	// ChannelsPerConnection is how many distinct channels each joins (default 5, at most 12).
	ChannelsPerConnection int
	// RaceConnections is how many connections the join-versus-disconnect race uses (default 60).
	RaceConnections int
}

// channelPool is how many channels the connections share, so that many of
// them write to the same channel at once. Connection i joins channels
// i + k*step (mod 12) for k < ChannelsPerConnection, with step 1, 5 or 7:
// coprime with 12, so the channels are distinct.
const channelPool = 12

func (o *ConcurrencyOptions) defaults() {
	if o.Connections == 0 {
		o.Connections = 200
	}
	if o.ChannelsPerConnection == 0 {
		o.ChannelsPerConnection = 5
	}
	o.ChannelsPerConnection = min(o.ChannelsPerConnection, channelPool)
	if o.RaceConnections == 0 {
		o.RaceConnections = 60
	}
}

// RunConcurrency runs the concurrency tests: many connections connecting,
// joining and disconnecting at once must leave exact memberships and
// counters, and a join racing a disconnect must leave no orphan membership.
func RunConcurrency(t *testing.T, f Factory, opts ConcurrencyOptions) {
	opts.defaults()
	t.Run("ConnectJoinDisconnect", func(t *testing.T) {
		testConnectJoinDisconnect(newEnv(t, f, 0), opts)
	})
	t.Run("JoinRacesDisconnect", func(t *testing.T) {
		testJoinRacesDisconnect(newEnv(t, f, 0), opts)
	})
	t.Run("ConcurrentJoinsAtCap", func(t *testing.T) {
		testConcurrentJoinsAtCap(newEnv(t, f, 0))
	})
}

// testConcurrentJoinsAtCap starts many joins of one connection at once, more
// than its cap allows: exactly the cap's worth land, the others are refused
// with ErrTooManyChannels, and the counters agree.
func testConcurrentJoinsAtCap(e *env) {
	t := e.t
	const (
		limit = 10
		tries = 40
	)
	e.add("greedy", "")
	e.join("greedy", "first")
	var (
		mu      sync.Mutex
		joined  []string
		refused int
	)
	err := parallel(tries, func(i int) error {
		ch := fmt.Sprintf("cap-%02d", i)
		added, err := e.s.JoinAtMost(e.ctx, "greedy", ch, limit)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, store.ErrTooManyChannels):
			refused++
			return nil
		case err != nil:
			return err
		case !added:
			return fmt.Errorf("join %s: not new", ch)
		}
		joined = append(joined, ch)
		return nil
	})
	require.NoError(t, err)
	assert.Len(t, joined, limit-1, "joins that landed (one channel was held before)")
	assert.Equal(t, tries-limit+1, refused, "joins refused")
	want := append([]string{"first"}, joined...)
	slices.Sort(want)
	got, err := e.s.ConnectionChannels(e.ctx, "greedy")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	counts := map[string]int64{}
	for _, ch := range want {
		counts[ch] = 1
	}
	e.requireStats(1, counts)
	removed, err := e.s.RemoveConnection(e.ctx, "greedy")
	require.NoError(t, err)
	assert.True(t, removed)
	e.requireStats(0, nil)
	e.requireResidue(0)
}

// parallel runs fn(i) for i in [0,n) in n goroutines that start together and
// returns the errors, joined.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errors.Join(errs...)
}

func testConnectJoinDisconnect(e *env, o ConcurrencyOptions) {
	t := e.t
	conn := func(i int) string { return fmt.Sprintf("conn-%04d", i) }
	user := func(i int) string { return fmt.Sprintf("user-%02d", i%(o.Connections/4+1)) }
	channelsOf := func(i int) []string {
		out := make([]string, o.ChannelsPerConnection)
		for k := range out {
			out[k] = fmt.Sprintf("chan-%02d", (i+k*[]int{1, 5, 7}[i%3])%channelPool)
		}
		slices.Sort(out)
		return out
	}

	wantMembers := map[string][]string{}
	wantUsers := map[string][]string{}
	wantCounts := map[string]int64{}
	allIDs := make([]string, o.Connections)
	for i := range o.Connections {
		allIDs[i] = conn(i)
		wantUsers[user(i)] = append(wantUsers[user(i)], conn(i))
		for _, ch := range channelsOf(i) {
			wantMembers[ch] = append(wantMembers[ch], conn(i))
			wantCounts[ch]++
		}
	}
	slices.Sort(allIDs)

	// Every connection connects and joins its channels concurrently with all the others.
	err := parallel(o.Connections, func(i int) error {
		c := store.Connection{ID: conn(i), UserID: user(i), ConnectedAt: e.clock.Now()}
		if err := e.s.AddConnection(e.ctx, c); err != nil {
			return err
		}
		for _, ch := range channelsOf(i) {
			added, err := e.s.Join(e.ctx, c.ID, ch)
			if err != nil {
				return err
			}
			if !added {
				return fmt.Errorf("join %s %s: not new", c.ID, ch)
			}
		}
		return nil
	})
	require.NoError(t, err)

	assert.Equal(t, allIDs, e.all(), "every connection recorded")
	for ch, want := range wantMembers {
		slices.Sort(want)
		assert.Equal(t, want, e.members(ch), "members of %s", ch)
	}
	for u, want := range wantUsers {
		slices.Sort(want)
		got, err := e.s.UserConnections(e.ctx, u)
		require.NoError(t, err)
		assert.Equal(t, want, got, "connections of %s", u)
	}
	for i := range o.Connections {
		got, err := e.s.ConnectionChannels(e.ctx, conn(i))
		require.NoError(t, err)
		assert.Equal(t, channelsOf(i), got, "channels of %s", conn(i))
	}
	e.requireStats(int64(o.Connections), wantCounts)

	// Everyone re-joins one channel and leaves another at once: idempotence under load.
	err = parallel(o.Connections, func(i int) error {
		chs := channelsOf(i)
		if added, err := e.s.Join(e.ctx, conn(i), chs[0]); err != nil || added {
			return fmt.Errorf("re-join %s %s: added=%v err=%v", conn(i), chs[0], added, err)
		}
		if left, err := e.s.Leave(e.ctx, conn(i), chs[len(chs)-1]); err != nil || !left {
			return fmt.Errorf("leave %s: left=%v err=%v", conn(i), left, err)
		}
		return nil
	})
	require.NoError(t, err)
	for i := range o.Connections {
		chs := channelsOf(i)
		wantCounts[chs[len(chs)-1]]--
	}
	for ch, n := range wantCounts {
		if n == 0 {
			delete(wantCounts, ch)
		}
	}
	e.requireStats(int64(o.Connections), wantCounts)

	// Everyone disconnects at once.
	err = parallel(o.Connections, func(i int) error {
		removed, err := e.s.RemoveConnection(e.ctx, conn(i))
		if err == nil && !removed {
			err = fmt.Errorf("remove %s: nothing removed", conn(i))
		}
		return err
	})
	require.NoError(t, err)
	assert.Empty(t, e.all())
	for ch := range wantMembers {
		assert.Empty(t, e.members(ch), "members of %s", ch)
	}
	for u := range wantUsers {
		got, err := e.s.UserConnections(e.ctx, u)
		require.NoError(t, err)
		assert.Empty(t, got, u)
	}
	e.requireStats(0, nil)
	e.requireResidue(0)
}

func testJoinRacesDisconnect(e *env, o ConcurrencyOptions) {
	t := e.t
	channels := []string{"r0", "r1", "r2", "r3", "r4"}
	conn := func(i int) string { return fmt.Sprintf("race-%03d", i) }
	for i := range o.RaceConnections {
		e.add(conn(i), "racer")
		e.join(conn(i), "base")
	}
	// For every connection, joins of five channels race its disconnect (and a
	// second, duplicate disconnect, as a GoneException removal would be).
	var (
		mu     sync.Mutex
		joined int
	)
	err := parallel(o.RaceConnections*(len(channels)+2), func(k int) error {
		i, op := k/(len(channels)+2), k%(len(channels)+2)
		if op >= len(channels) {
			_, err := e.s.RemoveConnection(e.ctx, conn(i))
			return err
		}
		added, err := e.s.Join(e.ctx, conn(i), channels[op])
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		case added:
			mu.Lock()
			joined++
			mu.Unlock()
		}
		return nil
	})
	require.NoError(t, err)
	t.Logf("%d of %d racing joins landed before their disconnect", joined, o.RaceConnections*len(channels))
	for i := range o.RaceConnections {
		_, err := e.s.GetConnection(e.ctx, conn(i))
		require.ErrorIs(t, err, store.ErrNotFound)
		chs, err := e.s.ConnectionChannels(e.ctx, conn(i))
		require.NoError(t, err)
		assert.Empty(t, chs)
	}
	for _, ch := range append([]string{"base"}, channels...) {
		assert.Empty(t, e.members(ch), "orphan members in %s", ch)
	}
	users, err := e.s.UserConnections(e.ctx, "racer")
	require.NoError(t, err)
	assert.Empty(t, users)
	assert.Empty(t, e.all())
	e.requireStats(0, nil)
	e.requireResidue(0)
}
