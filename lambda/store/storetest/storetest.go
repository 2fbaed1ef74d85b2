// Package storetest is the contract suite every store.Store implementation
// must pass: the in-memory store in plain `go test`, the DynamoDB store
// against DynamoDB Local. The suite drives expiry through an injected clock,
// so no test waits for time to pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Config is what the suite asks of a fresh store.
type Config struct {
	// Now is the clock the store must read (for ConnectedAt defaults and expiry).
	Now func() time.Time
	// TTL is the store's connection TTL.
	TTL time.Duration
	// PageSize is the most ids one PageFunc call may receive (0 = the store's default).
	PageSize int
}

// Instance is one fresh, empty store under test.
type Instance struct {
	// Store is the store under test.
	Store store.Store
	// Residue, when set, lists every record the backend still holds other than
	// counters at zero, read behind the store's back (DynamoDB: a test-only
	// Scan). The concurrency tests require it to be empty once every
	// connection is removed. Nil means the backend cannot be inspected.
	Residue func(ctx context.Context) ([]string, error)
	// CutShort, when set, returns a context derived from ctx that is
	// cancelled as soon as the backend has completed writes write requests
	// made under it: a Lambda timeout in the middle of an operation. Nil
	// means operations cannot be cut short (Memory changes everything under
	// one lock).
	CutShort func(ctx context.Context, writes int) context.Context
}

// Factory builds a fresh, empty store for one test.
type Factory func(t *testing.T, cfg Config) Instance

// Clock is a settable clock for expiry tests, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ttl is the TTL every suite store gets; whole seconds, as the DynamoDB store
// keeps expiry in whole epoch seconds.
const ttl = time.Hour

type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	inst  Instance
	s     store.Store
	page  int
}

func newEnv(t *testing.T, f Factory, pageSize int) *env {
	t.Helper()
	// A whole second near the real time: DynamoDB keeps expiry in epoch seconds.
	clock := NewClock(time.Now().Truncate(time.Second))
	inst := f(t, Config{Now: clock.Now, TTL: ttl, PageSize: pageSize})
	require.NotNil(t, inst.Store)
	return &env{t: t, ctx: t.Context(), clock: clock, inst: inst, s: inst.Store, page: pageSize}
}

func (e *env) add(id, user string) store.Connection {
	e.t.Helper()
	c := store.Connection{ID: id, UserID: user, ConnectedAt: e.clock.Now(), RouteKey: "$connect", SourceIP: "192.0.2.1", UserAgent: "storetest"}
	require.NoError(e.t, e.s.AddConnection(e.ctx, c))
	return c
}

func (e *env) join(id string, channels ...string) {
	e.t.Helper()
	for _, ch := range channels {
		added, err := e.s.Join(e.ctx, id, ch)
		require.NoError(e.t, err, "join %s %s", id, ch)
		require.True(e.t, added, "join %s %s should be new", id, ch)
	}
}

// collect gathers a streamed listing, checking every page is non-empty and at
// most the configured page size.
func (e *env) collect(list func(ctx context.Context, fn store.PageFunc) error) (ids []string, pages int) {
	e.t.Helper()
	ids = []string{}
	require.NoError(e.t, list(e.ctx, func(page []string) error {
		pages++
		assert.NotEmpty(e.t, page, "empty page")
		if e.page > 0 {
			assert.LessOrEqual(e.t, len(page), e.page, "page larger than PageSize")
		}
		ids = append(ids, page...)
		return nil
	}))
	slices.Sort(ids)
	return ids, pages
}

func (e *env) members(channel string) []string {
	e.t.Helper()
	ids, _ := e.collect(func(ctx context.Context, fn store.PageFunc) error { return e.s.ChannelMembers(ctx, channel, fn) })
	return ids
}

func (e *env) all() []string {
	e.t.Helper()
	ids, _ := e.collect(e.s.AllConnections)
	return ids
}

func (e *env) stats() store.Stats {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx)
	require.NoError(e.t, err)
	return st
}

func (e *env) channels() []string {
	e.t.Helper()
	chs, err := e.s.Channels(e.ctx)
	require.NoError(e.t, err)
	return chs
}

func (e *env) requireStats(conns int64, channels map[string]int64) {
	e.t.Helper()
	st := e.stats()
	assert.Equal(e.t, conns, st.TotalConnections, "total connections")
	if channels == nil {
		channels = map[string]int64{}
	}
	if st.Channels == nil {
		st.Channels = map[string]int64{}
	}
	assert.Equal(e.t, channels, st.Channels, "channel counts")
	assert.Equal(e.t, int64(len(channels)), st.TotalChannels, "total channels")
	want := make([]string, 0, len(channels))
	for ch := range channels {
		want = append(want, ch)
	}
	slices.Sort(want)
	assert.Equal(e.t, want, e.channels(), "Channels()")
}

func (e *env) requireResidue(want int) {
	e.t.Helper()
	if e.inst.Residue == nil {
		return
	}
	left, err := e.inst.Residue(e.ctx)
	require.NoError(e.t, err)
	assert.Len(e.t, left, want, "records left in the backend: %v", left)
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// Run runs the contract suite. Each subtest gets a fresh store from f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		page int
		run  func(e *env)
	}{
		{"AddAndGet", 0, testAddAndGet},
		{"AddDefaults", 0, testAddDefaults},
		{"AddDuplicate", 0, testAddDuplicate},
		{"GetUnknown", 0, testGetUnknown},
		{"JoinAndLeave", 0, testJoinAndLeave},
		{"JoinUnknownOrRemoved", 0, testJoinUnknownOrRemoved},
		{"RemoveConnection", 0, testRemoveConnection},
		{"UserConnections", 0, testUserConnections},
		{"PagingChannelMembers", 3, testPagingChannelMembers},
		{"PagingAllConnections", 4, testPagingAllConnections},
		{"PageFuncErrorStops", 2, testPageFuncErrorStops},
		{"Stats", 0, testStats},
		{"ExpiryFiltersReads", 2, testExpiryFiltersReads},
		{"ExpiredIDCanReconnect", 0, testExpiredIDCanReconnect},
		{"ExplicitExpiresAt", 0, testExplicitExpiresAt},
		{"Cleanup", 0, testCleanup},
		{"JoinAtMost", 0, testJoinAtMost},
		{"IsMember", 0, testIsMember},
		{"InvalidIDs", 0, testInvalidIDs},
		{"InvalidUserIDs", 0, testInvalidUserIDs},
		{"InvalidChannels", 0, testInvalidChannels},
		{"InterruptedRemoval", 0, testInterruptedRemoval},
		{"RemovalReportsChannels", 0, testRemovalReportsChannels},
		{"PendingUntilALiveJoin", 0, testPendingUntilALiveJoin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(newEnv(t, f, tc.page))
		})
	}
}

func testAddAndGet(e *env) {
	t := e.t
	c := store.Connection{
		ID: "conn-A=", UserID: "user-1", ConnectedAt: e.clock.Now().Add(-time.Minute),
		RouteKey: "$connect", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0",
		Channels: []string{"ignored"},
	}
	require.NoError(t, e.s.AddConnection(e.ctx, c))
	got, err := e.s.GetConnection(e.ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, c.ID, got.ID)
	assert.Equal(t, c.UserID, got.UserID)
	assert.Equal(t, c.RouteKey, got.RouteKey)
	assert.Equal(t, c.SourceIP, got.SourceIP)
	assert.Equal(t, c.UserAgent, got.UserAgent)
	assert.True(t, c.ConnectedAt.Equal(got.ConnectedAt), "connectedAt %s != %s", got.ConnectedAt, c.ConnectedAt)
	assert.True(t, c.ConnectedAt.Add(ttl).Equal(got.ExpiresAt), "expiresAt %s", got.ExpiresAt)
	assert.Empty(t, got.Channels, "AddConnection must ignore Channels")

	e.join(c.ID, "b", "a")
	got, err = e.s.GetConnection(e.ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, got.Channels)

	require.Error(t, e.s.AddConnection(e.ctx, store.Connection{}), "empty id")
}

func testAddDefaults(e *env) {
	now := e.clock.Now()
	require.NoError(e.t, e.s.AddConnection(e.ctx, store.Connection{ID: "anon"}))
	got, err := e.s.GetConnection(e.ctx, "anon")
	require.NoError(e.t, err)
	assert.True(e.t, now.Equal(got.ConnectedAt), "ConnectedAt defaults to the clock")
	assert.True(e.t, now.Add(ttl).Equal(got.ExpiresAt), "ExpiresAt defaults to ConnectedAt+TTL")
	assert.Empty(e.t, got.UserID)
	e.requireStats(1, nil)
}

func testAddDuplicate(e *env) {
	e.add("dup", "u1")
	err := e.s.AddConnection(e.ctx, store.Connection{ID: "dup", UserID: "u2"})
	require.ErrorIs(e.t, err, store.ErrExists)
	got, err := e.s.GetConnection(e.ctx, "dup")
	require.NoError(e.t, err)
	assert.Equal(e.t, "u1", got.UserID, "the first record stays")
	e.requireStats(1, nil)
}

func testGetUnknown(e *env) {
	_, err := e.s.GetConnection(e.ctx, "nope")
	require.ErrorIs(e.t, err, store.ErrNotFound)
	chs, err := e.s.ConnectionChannels(e.ctx, "nope")
	require.NoError(e.t, err)
	assert.Empty(e.t, chs)
	assert.Empty(e.t, e.members("nobody-here"))
	users, err := e.s.UserConnections(e.ctx, "nobody")
	require.NoError(e.t, err)
	assert.Empty(e.t, users)
	assert.Empty(e.t, e.all())
	e.requireStats(0, nil)
	removed, err := e.s.RemoveConnection(e.ctx, "nope")
	require.NoError(e.t, err)
	assert.False(e.t, removed)
}

func testJoinAndLeave(e *env) {
	t := e.t
	e.add("c1", "")
	e.add("c2", "")
	added, err := e.s.Join(e.ctx, "c1", "news")
	require.NoError(t, err)
	assert.True(t, added)
	added, err = e.s.Join(e.ctx, "c1", "news")
	require.NoError(t, err)
	assert.False(t, added, "re-join is not new")
	e.join("c2", "news", "sport")
	e.join("c1", "private-x")

	assert.Equal(t, []string{"c1", "c2"}, e.members("news"))
	chs, err := e.s.ConnectionChannels(e.ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, []string{"news", "private-x"}, chs)
	e.requireStats(2, map[string]int64{"news": 2, "sport": 1, "private-x": 1})

	left, err := e.s.Leave(e.ctx, "c1", "news")
	require.NoError(t, err)
	assert.True(t, left)
	left, err = e.s.Leave(e.ctx, "c1", "news")
	require.NoError(t, err)
	assert.False(t, left, "second leave")
	left, err = e.s.Leave(e.ctx, "ghost", "news")
	require.NoError(t, err)
	assert.False(t, left, "leave of an unknown connection")
	assert.Equal(t, []string{"c2"}, e.members("news"))
	e.requireStats(2, map[string]int64{"news": 1, "sport": 1, "private-x": 1})

	left, err = e.s.Leave(e.ctx, "c1", "private-x")
	require.NoError(t, err)
	assert.True(t, left)
	e.requireStats(2, map[string]int64{"news": 1, "sport": 1})

	// Leave then join again counts once.
	e.join("c1", "news")
	e.requireStats(2, map[string]int64{"news": 2, "sport": 1})
}

func testJoinUnknownOrRemoved(e *env) {
	t := e.t
	_, err := e.s.Join(e.ctx, "ghost", "news")
	require.ErrorIs(t, err, store.ErrNotFound)

	e.add("c1", "u")
	e.join("c1", "news")
	removed, err := e.s.RemoveConnection(e.ctx, "c1")
	require.NoError(t, err)
	assert.True(t, removed)
	_, err = e.s.Join(e.ctx, "c1", "news")
	require.ErrorIs(t, err, store.ErrNotFound, "a late join must not resurrect a removed connection")
	_, err = e.s.Join(e.ctx, "c1", "other")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.GetConnection(e.ctx, "c1")
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Empty(t, e.members("news"))
	assert.Empty(t, e.members("other"))
	e.requireStats(0, nil)
	e.requireResidue(0)
}

func testRemoveConnection(e *env) {
	t := e.t
	chans := []string{"a", "b", "c", "d", "e"}
	e.add("gone", "u1")
	e.add("stay", "u1")
	e.join("gone", chans...)
	e.join("stay", "a", "e")
	e.requireStats(2, map[string]int64{"a": 2, "b": 1, "c": 1, "d": 1, "e": 2})

	removed, err := e.s.RemoveConnection(e.ctx, "gone")
	require.NoError(t, err)
	assert.True(t, removed)
	for _, ch := range chans {
		assert.NotContains(t, e.members(ch), "gone", ch)
	}
	chs, err := e.s.ConnectionChannels(e.ctx, "gone")
	require.NoError(t, err)
	assert.Empty(t, chs)
	users, err := e.s.UserConnections(e.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, []string{"stay"}, users)
	assert.Equal(t, []string{"stay"}, e.all())
	e.requireStats(1, map[string]int64{"a": 1, "e": 1})

	removed, err = e.s.RemoveConnection(e.ctx, "gone")
	require.NoError(t, err)
	assert.False(t, removed, "second removal")
	e.requireStats(1, map[string]int64{"a": 1, "e": 1})

	// Remove with no memberships.
	e.add("bare", "")
	removed, err = e.s.RemoveConnection(e.ctx, "bare")
	require.NoError(t, err)
	assert.True(t, removed)
	e.requireStats(1, map[string]int64{"a": 1, "e": 1})
}

func testUserConnections(e *env) {
	t := e.t
	e.add("x2", "alice")
	e.add("x1", "alice")
	e.add("y1", "bob")
	e.add("z1", "")
	alice, err := e.s.UserConnections(e.ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, []string{"x1", "x2"}, alice)
	bob, err := e.s.UserConnections(e.ctx, "bob")
	require.NoError(t, err)
	assert.Equal(t, []string{"y1"}, bob)
	none, err := e.s.UserConnections(e.ctx, "")
	require.NoError(t, err)
	assert.Empty(t, none, "anonymous connections have no user")
	_, err = e.s.RemoveConnection(e.ctx, "x2")
	require.NoError(t, err)
	alice, err = e.s.UserConnections(e.ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, []string{"x1"}, alice)
}

func testPagingChannelMembers(e *env) {
	want := ids("m", 10)
	for _, id := range want {
		e.add(id, "")
		e.join(id, "big")
	}
	e.add("outsider", "")
	got, pages := e.collect(func(ctx context.Context, fn store.PageFunc) error { return e.s.ChannelMembers(ctx, "big", fn) })
	assert.Equal(e.t, want, got)
	assert.GreaterOrEqual(e.t, pages, 4, "10 members in pages of at most 3")
	e.requireStats(11, map[string]int64{"big": 10})
}

func testPagingAllConnections(e *env) {
	want := ids("a", 17)
	for _, id := range want {
		e.add(id, "")
	}
	got, pages := e.collect(e.s.AllConnections)
	assert.Equal(e.t, want, got)
	assert.GreaterOrEqual(e.t, pages, 5, "17 connections in pages of at most 4")
}

func testPageFuncErrorStops(e *env) {
	t := e.t
	for _, id := range ids("p", 9) {
		e.add(id, "")
		e.join(id, "ch")
	}
	boom := errors.New("boom")
	for name, list := range map[string]func(context.Context, store.PageFunc) error{
		"ChannelMembers": func(ctx context.Context, fn store.PageFunc) error { return e.s.ChannelMembers(ctx, "ch", fn) },
		"AllConnections": e.s.AllConnections,
	} {
		calls := 0
		err := list(e.ctx, func([]string) error {
			calls++
			return boom
		})
		require.ErrorIs(t, err, boom, name)
		assert.Equal(t, 1, calls, "%s: no page after the error", name)
	}
}

func testStats(e *env) {
	e.requireStats(0, nil)
	for i, id := range ids("s", 12) {
		e.add(id, fmt.Sprintf("u%d", i%3))
		e.join(id, "all")
		if i%2 == 0 {
			e.join(id, "even")
		}
		if i%3 == 0 {
			e.join(id, "third")
		}
	}
	e.requireStats(12, map[string]int64{"all": 12, "even": 6, "third": 4})
	for _, id := range ids("s", 12)[:6] {
		_, err := e.s.RemoveConnection(e.ctx, id)
		require.NoError(e.t, err)
	}
	// s006..s011 remain: evens 6,8,10; thirds 6,9.
	e.requireStats(6, map[string]int64{"all": 6, "even": 3, "third": 2})
	for _, id := range []string{"s006", "s009"} {
		left, err := e.s.Leave(e.ctx, id, "third")
		require.NoError(e.t, err)
		assert.True(e.t, left)
	}
	e.requireStats(6, map[string]int64{"all": 6, "even": 3})
}

func testExpiryFiltersReads(e *env) {
	t := e.t
	e.add("old", "alice")
	e.join("old", "news", "solo")
	e.clock.Advance(30 * time.Minute)
	e.add("new", "alice")
	e.join("new", "news")

	e.clock.Advance(30 * time.Minute) // "old" reaches its expiry exactly: expired
	_, err := e.s.GetConnection(e.ctx, "old")
	require.ErrorIs(t, err, store.ErrNotFound)
	chs, err := e.s.ConnectionChannels(e.ctx, "old")
	require.NoError(t, err)
	assert.Empty(t, chs)
	assert.Equal(t, []string{"new"}, e.members("news"))
	assert.Empty(t, e.members("solo"))
	users, err := e.s.UserConnections(e.ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, []string{"new"}, users)
	assert.Equal(t, []string{"new"}, e.all())
	_, err = e.s.Join(e.ctx, "old", "late")
	require.ErrorIs(t, err, store.ErrNotFound, "joining an expired connection")
	got, err := e.s.GetConnection(e.ctx, "new")
	require.NoError(t, err)
	assert.Equal(t, []string{"news"}, got.Channels)

	e.clock.Advance(30*time.Minute - time.Second) // one second before "new" expires
	assert.Equal(t, []string{"new"}, e.all())
	e.clock.Advance(time.Second)
	assert.Empty(t, e.all())
	assert.Empty(t, e.members("news"))
}

func testExpiredIDCanReconnect(e *env) {
	t := e.t
	e.add("re", "u")
	e.join("re", "a", "b")
	e.clock.Advance(ttl)
	err := e.s.AddConnection(e.ctx, store.Connection{ID: "re", UserID: "v", ConnectedAt: e.clock.Now()})
	require.NoError(t, err, "an expired record does not block its id")
	got, err := e.s.GetConnection(e.ctx, "re")
	require.NoError(t, err)
	assert.Equal(t, "v", got.UserID)
	assert.Empty(t, got.Channels, "the stale memberships went with the stale record")
	users, err := e.s.UserConnections(e.ctx, "u")
	require.NoError(t, err)
	assert.Empty(t, users)
	e.requireStats(1, nil)
}

func testExplicitExpiresAt(e *env) {
	t := e.t
	now := e.clock.Now()
	require.NoError(t, e.s.AddConnection(e.ctx, store.Connection{ID: "short", ConnectedAt: now, ExpiresAt: now.Add(5 * time.Minute)}))
	got, err := e.s.GetConnection(e.ctx, "short")
	require.NoError(t, err)
	assert.True(t, now.Add(5*time.Minute).Equal(got.ExpiresAt))
	e.clock.Advance(5 * time.Minute)
	_, err = e.s.GetConnection(e.ctx, "short")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testCleanup(e *env) {
	t := e.t
	for _, id := range ids("e", 5) {
		e.add(id, "old-user")
		e.join(id, "shared", "old-only")
	}
	e.clock.Advance(10 * time.Minute)
	for _, id := range ids("l", 3) {
		e.add(id, "")
		e.join(id, "shared")
	}
	n, err := e.s.Cleanup(e.ctx, e.clock.Now())
	require.NoError(t, err)
	assert.Zero(t, n, "nothing expired yet")
	e.requireStats(8, map[string]int64{"shared": 8, "old-only": 5})

	e.clock.Advance(ttl - 10*time.Minute) // the "e" connections expire now
	n, err = e.s.Cleanup(e.ctx, e.clock.Now())
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	e.requireStats(3, map[string]int64{"shared": 3})
	assert.Equal(t, ids("l", 3), e.members("shared"))
	for _, id := range ids("e", 5) {
		removed, err := e.s.RemoveConnection(e.ctx, id)
		require.NoError(t, err)
		assert.False(t, removed, "cleanup removed %s already", id)
	}
	n, err = e.s.Cleanup(e.ctx, e.clock.Now())
	require.NoError(t, err)
	assert.Zero(t, n, "second cleanup")

	e.clock.Advance(10 * time.Minute)
	n, err = e.s.Cleanup(e.ctx, e.clock.Now())
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	e.requireStats(0, nil)
	e.requireResidue(0)
}

func testJoinAtMost(e *env) {
	t := e.t
	e.add("c1", "")
	e.add("c2", "")
	for _, ch := range []string{"a", "b", "c"} {
		added, err := e.s.JoinAtMost(e.ctx, "c1", ch, 3)
		require.NoError(t, err, ch)
		assert.True(t, added, ch)
	}
	_, err := e.s.JoinAtMost(e.ctx, "c1", "d", 3)
	require.ErrorIs(t, err, store.ErrTooManyChannels, "a fourth channel")
	added, err := e.s.JoinAtMost(e.ctx, "c1", "a", 3)
	require.NoError(t, err, "re-joining a channel at the cap changes nothing")
	assert.False(t, added)
	e.join("c2", "d")
	e.requireStats(2, map[string]int64{"a": 1, "b": 1, "c": 1, "d": 1})

	left, err := e.s.Leave(e.ctx, "c1", "b")
	require.NoError(t, err)
	require.True(t, left)
	added, err = e.s.JoinAtMost(e.ctx, "c1", "d", 3)
	require.NoError(t, err, "a leave makes room")
	assert.True(t, added)
	_, err = e.s.JoinAtMost(e.ctx, "c1", "e", 3)
	require.ErrorIs(t, err, store.ErrTooManyChannels)

	// Join has no cap, and its memberships count towards one.
	e.join("c1", "e")
	_, err = e.s.JoinAtMost(e.ctx, "c1", "f", 4)
	require.ErrorIs(t, err, store.ErrTooManyChannels)
	added, err = e.s.JoinAtMost(e.ctx, "c1", "f", 0)
	require.NoError(t, err, "0 means no cap")
	assert.True(t, added)
	chs, err := e.s.ConnectionChannels(e.ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c", "d", "e", "f"}, chs)

	_, err = e.s.JoinAtMost(e.ctx, "ghost", "a", 3)
	require.ErrorIs(t, err, store.ErrNotFound)
	e.requireStats(2, map[string]int64{"a": 1, "c": 1, "d": 2, "e": 1, "f": 1})

	// The count goes with the connection: removed and added again, the id starts from zero.
	_, err = e.s.RemoveConnection(e.ctx, "c1")
	require.NoError(t, err)
	e.add("c1", "")
	for _, ch := range []string{"x", "y", "z"} {
		_, err := e.s.JoinAtMost(e.ctx, "c1", ch, 3)
		require.NoError(t, err, ch)
	}
	_, err = e.s.RemoveConnection(e.ctx, "c1")
	require.NoError(t, err)
	_, err = e.s.RemoveConnection(e.ctx, "c2")
	require.NoError(t, err)
	e.requireStats(0, nil)
	e.requireResidue(0)
}

func testIsMember(e *env) {
	t := e.t
	isMember := func(id, ch string) bool {
		t.Helper()
		ok, err := e.s.IsMember(e.ctx, id, ch)
		require.NoError(t, err)
		return ok
	}
	e.add("c1", "")
	e.add("c2", "")
	e.join("c1", "news", "sport")
	e.join("c2", "other")
	assert.True(t, isMember("c1", "news"))
	assert.True(t, isMember("c1", "sport"))
	assert.False(t, isMember("c1", "other"))
	assert.False(t, isMember("c2", "news"))
	assert.False(t, isMember("ghost", "news"))
	_, err := e.s.Leave(e.ctx, "c1", "news")
	require.NoError(t, err)
	assert.False(t, isMember("c1", "news"), "after leave")
	_, err = e.s.RemoveConnection(e.ctx, "c2")
	require.NoError(t, err)
	assert.False(t, isMember("c2", "other"), "after removal")
	e.clock.Advance(ttl)
	assert.False(t, isMember("c1", "sport"), "after expiry")
}

func testInvalidIDs(e *env) {
	t := e.t
	longest := strings.Repeat("x", store.MaxConnectionIDLength)
	e.add(longest, "")
	e.join(longest, "news")
	for _, id := range []string{"", strings.Repeat("x", store.MaxConnectionIDLength+1), strings.Repeat("y", 3000), "a b", "tab\t", "nul\x00", "é"} {
		require.ErrorIs(t, e.s.AddConnection(e.ctx, store.Connection{ID: id}), store.ErrInvalidID, "add %.20q", id)
		_, err := e.s.GetConnection(e.ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "get %.20q", id)
		_, err = e.s.Join(e.ctx, id, "news")
		require.ErrorIs(t, err, store.ErrNotFound, "join %.20q", id)
		left, err := e.s.Leave(e.ctx, id, "news")
		require.NoError(t, err, "leave %.20q", id)
		assert.False(t, left)
		member, err := e.s.IsMember(e.ctx, id, "news")
		require.NoError(t, err, "is member %.20q", id)
		assert.False(t, member)
		chs, err := e.s.ConnectionChannels(e.ctx, id)
		require.NoError(t, err, "channels %.20q", id)
		assert.Empty(t, chs)
		removed, err := e.s.RemoveConnection(e.ctx, id)
		require.NoError(t, err, "remove %.20q", id)
		assert.False(t, removed)
	}
	assert.True(t, store.ValidConnectionID("L0SM9cOFvHcCIhw="), "an API Gateway id")
	assert.Equal(t, []string{longest}, e.members("news"))
	e.requireStats(1, map[string]int64{"news": 1})
}

// testInvalidUserIDs: a user id over MaxUserIDLength bytes (DynamoDB would
// refuse it as a key) or not UTF-8 is refused with ErrInvalidUserID before
// any write, and looking one up finds nothing; the longest valid one works.
func testInvalidUserIDs(e *env) {
	t := e.t
	longest := strings.Repeat("ü", store.MaxUserIDLength/2) + "x" // 255 bytes
	require.Len(t, longest, store.MaxUserIDLength)
	e.add("c-longest", longest)
	got, err := e.s.UserConnections(e.ctx, longest)
	require.NoError(t, err)
	assert.Equal(t, []string{"c-longest"}, got)
	for _, user := range []string{longest + "x", strings.Repeat("u", 3000), "bad\xff"} {
		err := e.s.AddConnection(e.ctx, store.Connection{ID: "c-bad", UserID: user})
		require.ErrorIs(t, err, store.ErrInvalidUserID, "add with user %.20q", user)
		assert.NotErrorIs(t, err, store.ErrExists)
		_, err = e.s.GetConnection(e.ctx, "c-bad")
		require.ErrorIs(t, err, store.ErrNotFound, "nothing recorded for %.20q", user)
		got, err := e.s.UserConnections(e.ctx, user)
		require.NoError(t, err, "user lookup %.20q", user)
		assert.Empty(t, got)
	}
	assert.True(t, store.ValidUserID(""), "anonymous")
	e.requireStats(1, nil)
}

// testInvalidChannels: a channel name that is empty, over MaxChannelLength
// bytes (DynamoDB would refuse it as a key) or not UTF-8 (DynamoDB would
// make two such names one) is refused with ErrInvalidChannel by every join,
// and has no members; the longest valid one works.
func testInvalidChannels(e *env) {
	t := e.t
	e.add("c1", "")
	longest := strings.Repeat("ü", store.MaxChannelLength/2) // 1,000 bytes
	require.Len(t, longest, store.MaxChannelLength)
	e.join("c1", longest)
	assert.Equal(t, []string{"c1"}, e.members(longest))
	for _, ch := range []string{"", longest + "x", "x\xff", "x\xfe"} {
		joined, err := e.s.Join(e.ctx, "c1", ch)
		require.ErrorIs(t, err, store.ErrInvalidChannel, "join %.20q", ch)
		assert.False(t, joined)
		_, err = e.s.JoinAtMost(e.ctx, "c1", ch, 10)
		require.ErrorIs(t, err, store.ErrInvalidChannel, "join at most %.20q", ch)
		member, err := e.s.IsMember(e.ctx, "c1", ch)
		require.NoError(t, err)
		assert.False(t, member)
		left, err := e.s.Leave(e.ctx, "c1", ch)
		require.NoError(t, err)
		assert.False(t, left)
		assert.Empty(t, e.members(ch), "members of %.20q", ch)
	}
	e.requireStats(1, map[string]int64{longest: 1})
}

// testInterruptedRemoval is a $disconnect cut short by the Lambda timeout:
// the connection is gone at once, and what the removal left is swept by the
// next RemoveConnection or by Cleanup, long before anything expires.
func testInterruptedRemoval(e *env) {
	t := e.t
	const n = 120 // three transactions' worth of memberships on DynamoDB
	channels := ids("ch-", n)
	e.add("other", "")
	e.join("other", channels[0], channels[n-1])
	for _, victim := range []string{"cleaned", "resumed"} {
		e.add(victim, "u")
		e.join(victim, channels...)
	}
	cutShort := func(id string) {
		t.Helper()
		ctx := e.ctx
		if e.inst.CutShort != nil {
			// The record and its first memberships go, then time runs out.
			ctx = e.inst.CutShort(e.ctx, 2)
		}
		_, err := e.s.RemoveConnection(ctx, id)
		if e.inst.CutShort != nil {
			require.ErrorIs(t, err, context.Canceled, "removal of %s cut short", id)
		}
		_, err = e.s.GetConnection(e.ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "%s is gone at once", id)
		_, err = e.s.Join(e.ctx, id, "late")
		require.ErrorIs(t, err, store.ErrNotFound, "no join after the record is gone")
	}
	listed := func(id string) (in []string) {
		t.Helper()
		for _, ch := range channels {
			if slices.Contains(e.members(ch), id) {
				in = append(in, ch)
			}
		}
		return in
	}
	cutShort("cleaned")
	cutShort("resumed")
	if e.inst.CutShort != nil {
		require.NotEmpty(t, listed("cleaned"), "the removal really was cut short")
	}

	// A later removal of the same id (a 410 from a post) finishes it.
	_, err := e.s.RemoveConnection(e.ctx, "resumed")
	require.NoError(t, err)
	assert.Empty(t, listed("resumed"), "resumed removal left memberships")

	// Cleanup finishes the other one although nothing has expired.
	removed, err := e.s.Cleanup(e.ctx, e.clock.Now())
	require.NoError(t, err)
	assert.Zero(t, removed, "no record expired")
	assert.Empty(t, listed("cleaned"), "cleanup left memberships")
	for _, id := range []string{"cleaned", "resumed"} {
		chs, err := e.s.ConnectionChannels(e.ctx, id)
		require.NoError(t, err)
		assert.Empty(t, chs)
		member, err := e.s.IsMember(e.ctx, id, channels[1])
		require.NoError(t, err)
		assert.False(t, member)
	}
	users, err := e.s.UserConnections(e.ctx, "u")
	require.NoError(t, err)
	assert.Empty(t, users)
	e.requireStats(1, map[string]int64{channels[0]: 1, channels[n-1]: 1})

	_, err = e.s.RemoveConnection(e.ctx, "other")
	require.NoError(t, err)
	e.requireStats(0, nil)
	e.requireResidue(0)
}

// removals records what RemoveConnectionFunc and CleanupFunc report.
type removals struct {
	mu  sync.Mutex
	got map[string][]string
	n   int
}

func (r *removals) fn(_ context.Context, rm store.Removed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]string{}
	}
	r.got[rm.ID] = append(r.got[rm.ID], rm.Channels...)
	slices.Sort(r.got[rm.ID])
	r.n++
}

func (r *removals) take() (map[string][]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got, n := r.got, r.n
	r.got, r.n = nil, 0
	return got, n
}

// testRemovalReportsChannels: RemoveConnectionFunc and CleanupFunc hand each
// removed connection, once, with the channels it was a member of, to the
// callback (what presence needs to leave them), and nothing for what they
// did not remove.
func testRemovalReportsChannels(e *env) {
	t := e.t
	var r removals
	e.add("c1", "u1")
	e.join("c1", "a", "presence-x", "b")
	e.add("c2", "")
	removed, err := e.s.RemoveConnectionFunc(e.ctx, "c1", r.fn)
	require.NoError(t, err)
	assert.True(t, removed)
	removed, err = e.s.RemoveConnectionFunc(e.ctx, "c2", r.fn)
	require.NoError(t, err)
	assert.True(t, removed)
	for _, id := range []string{"c1", "unknown"} {
		removed, err = e.s.RemoveConnectionFunc(e.ctx, id, r.fn)
		require.NoError(t, err)
		assert.False(t, removed, id)
	}
	got, n := r.take()
	assert.Equal(t, 2, n, "one call per removed connection")
	assert.Equal(t, []string{"a", "b", "presence-x"}, got["c1"])
	assert.Contains(t, got, "c2")
	assert.Empty(t, got["c2"])
	assert.Empty(t, e.members("presence-x"))

	// Cleanup reports the expired connections it removes, not the live ones.
	for _, id := range ids("e", 3) {
		e.add(id, "old")
		e.join(id, "presence-y", "chat-"+id)
	}
	e.clock.Advance(10 * time.Minute)
	e.add("live", "")
	e.join("live", "presence-y")
	e.clock.Advance(ttl - 10*time.Minute)
	cleaned, err := e.s.CleanupFunc(e.ctx, e.clock.Now(), r.fn)
	require.NoError(t, err)
	assert.Equal(t, 3, cleaned)
	got, n = r.take()
	assert.Equal(t, 3, n)
	for _, id := range ids("e", 3) {
		assert.Equal(t, []string{"chat-" + id, "presence-y"}, got[id], id)
	}
	assert.NotContains(t, got, "live")
	assert.Equal(t, []string{"live"}, e.members("presence-y"))
	cleaned, err = e.s.CleanupFunc(e.ctx, e.clock.Now(), r.fn)
	require.NoError(t, err)
	assert.Zero(t, cleaned)
	_, n = r.take()
	assert.Zero(t, n, "a second cleanup reports nothing")

	if e.inst.CutShort == nil {
		return
	}
	// A removal cut short reports the channels it read; Cleanup, finishing
	// it, reports the memberships that were left, so none is missed.
	channels := ids("ch-", 120)
	e.add("cut", "u")
	e.join("cut", channels...)
	_, err = e.s.RemoveConnectionFunc(e.inst.CutShort(e.ctx, 2), "cut", r.fn)
	require.ErrorIs(t, err, context.Canceled)
	got, _ = r.take()
	assert.Len(t, got["cut"], len(channels), "the channels read before the cut")
	_, err = e.s.CleanupFunc(e.ctx, e.clock.Now(), r.fn)
	require.NoError(t, err)
	got, n = r.take()
	assert.Equal(t, 1, n)
	assert.NotEmpty(t, got["cut"], "cleanup reports the memberships the cut left")
	assert.Subset(t, channels, got["cut"])
}

// testPendingUntilALiveJoin: Connection.Pending is stored; a join made for
// the connection by other code (JoinAtMost, as $connect's query channels)
// keeps it, and a join the connection asked for (store.JoinLive) clears it.
func testPendingUntilALiveJoin(e *env) {
	t := e.t
	_, ok := e.s.(store.LiveJoiner)
	require.True(t, ok, "the store implements store.LiveJoiner")
	require.NoError(t, e.s.AddConnection(e.ctx, store.Connection{ID: "fresh", Pending: true}))
	require.NoError(t, e.s.AddConnection(e.ctx, store.Connection{ID: "other"}))
	got, err := e.s.GetConnection(e.ctx, "fresh")
	require.NoError(t, err)
	assert.True(t, got.Pending, "Pending is stored")
	got, err = e.s.GetConnection(e.ctx, "other")
	require.NoError(t, err)
	assert.False(t, got.Pending, "a connection is not pending unless recorded so")

	_, err = e.s.JoinAtMost(e.ctx, "fresh", "query", 10)
	require.NoError(t, err)
	got, err = e.s.GetConnection(e.ctx, "fresh")
	require.NoError(t, err)
	assert.True(t, got.Pending, "a join by other code keeps it pending")

	added, err := store.JoinLive(e.ctx, e.s, "fresh", "asked", 10)
	require.NoError(t, err)
	assert.True(t, added)
	got, err = e.s.GetConnection(e.ctx, "fresh")
	require.NoError(t, err)
	assert.False(t, got.Pending, "a join it asked for clears it")
	assert.Equal(t, []string{"asked", "query"}, got.Channels)
}
