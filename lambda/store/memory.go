package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryOptions configures a Memory store.
type MemoryOptions struct {
	// TTL is added to ConnectedAt when a connection has no ExpiresAt. Zero means DefaultTTL.
	TTL time.Duration
	// Now returns the current time; nil means time.Now. Tests use it to expire records.
	Now func() time.Time
	// PageSize is how many ids each PageFunc call receives. Zero means 1000.
	PageSize int
}

// Memory is an in-process Store: the embedded default of the local gateway and
// the store of unit tests. It keeps the same semantics as DynamoDB, including
// ignoring expired records on every read. Build it with NewMemory; the zero
// value is not usable.
type Memory struct {
	opts  MemoryOptions
	mu    sync.RWMutex
	conns map[string]*memConn
	chans map[string]map[string]struct{}
	users map[string]map[string]struct{}
}

type memConn struct {
	c        Connection
	channels map[string]struct{}
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	return &Memory{
		opts:  opts,
		conns: map[string]*memConn{},
		chans: map[string]map[string]struct{}{},
		users: map[string]map[string]struct{}{},
	}
}

func (m *Memory) live(mc *memConn) bool {
	return mc != nil && m.opts.Now().Before(mc.c.ExpiresAt)
}

// AddConnection implements Store.
func (m *Memory) AddConnection(_ context.Context, c Connection) error {
	if !ValidConnectionID(c.ID) {
		return fmt.Errorf("add connection %.*q: %w", MaxConnectionIDLength, c.ID, ErrInvalidID)
	}
	if !ValidUserID(c.UserID) {
		return fmt.Errorf("add connection %s: user id of %d bytes: %w", c.ID, len(c.UserID), ErrInvalidUserID)
	}
	if c.ConnectedAt.IsZero() {
		c.ConnectedAt = m.opts.Now()
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.ConnectedAt.Add(m.opts.TTL)
	}
	c.Channels = nil
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.conns[c.ID]; ok {
		if m.live(old) {
			return fmt.Errorf("add connection %s: %w", c.ID, ErrExists)
		}
		m.removeLocked(c.ID)
	}
	m.conns[c.ID] = &memConn{c: c, channels: map[string]struct{}{}}
	if c.UserID != "" {
		addTo(m.users, c.UserID, c.ID)
	}
	return nil
}

func addTo(idx map[string]map[string]struct{}, key, id string) {
	set := idx[key]
	if set == nil {
		set = map[string]struct{}{}
		idx[key] = set
	}
	set[id] = struct{}{}
}

func removeFrom(idx map[string]map[string]struct{}, key, id string) {
	if set := idx[key]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(idx, key)
		}
	}
}

func (m *Memory) removeLocked(id string) (Removed, bool) {
	mc, ok := m.conns[id]
	if !ok {
		return Removed{}, false
	}
	r := Removed{ID: id, Channels: sortedKeys(mc.channels)}
	for ch := range mc.channels {
		removeFrom(m.chans, ch, id)
	}
	if mc.c.UserID != "" {
		removeFrom(m.users, mc.c.UserID, id)
	}
	delete(m.conns, id)
	return r, true
}

// RemoveConnection implements Store.
func (m *Memory) RemoveConnection(ctx context.Context, id string) (bool, error) {
	return m.RemoveConnectionFunc(ctx, id, nil)
}

// RemoveConnectionFunc implements Store.
func (m *Memory) RemoveConnectionFunc(ctx context.Context, id string, fn RemovedFunc) (bool, error) {
	m.mu.Lock()
	r, ok := m.removeLocked(id)
	m.mu.Unlock()
	if ok && fn != nil {
		fn(ctx, r)
	}
	return ok, nil
}

// GetConnection implements Store.
func (m *Memory) GetConnection(_ context.Context, id string) (Connection, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mc := m.conns[id]
	if !m.live(mc) {
		return Connection{}, fmt.Errorf("get connection %s: %w", id, ErrNotFound)
	}
	c := mc.c
	c.Channels = sortedKeys(mc.channels)
	return c, nil
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Join implements Store.
func (m *Memory) Join(ctx context.Context, id, channel string) (bool, error) {
	return m.JoinAtMost(ctx, id, channel, 0)
}

// JoinAtMost implements Store.
func (m *Memory) JoinAtMost(_ context.Context, id, channel string, max int) (bool, error) {
	return m.joinAtMost(id, channel, max, false)
}

// JoinLiveAtMost implements LiveJoiner.
func (m *Memory) JoinLiveAtMost(_ context.Context, id, channel string, max int) (bool, error) {
	return m.joinAtMost(id, channel, max, true)
}

func (m *Memory) joinAtMost(id, channel string, max int, live bool) (bool, error) {
	if !ValidChannel(channel) {
		return false, fmt.Errorf("join %s to %.64q: %w", id, channel, ErrInvalidChannel)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.conns[id]
	if !m.live(mc) {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, ErrNotFound)
	}
	if _, ok := mc.channels[channel]; ok {
		return false, nil
	}
	if max > 0 && len(mc.channels) >= max {
		return false, fmt.Errorf("join %s to %s: %d channels: %w", id, channel, len(mc.channels), ErrTooManyChannels)
	}
	mc.channels[channel] = struct{}{}
	addTo(m.chans, channel, id)
	if live {
		mc.c.Pending = false // as DynamoDB: only a new membership's write clears it
	}
	return true, nil
}

// IsMember implements Store.
func (m *Memory) IsMember(_ context.Context, id, channel string) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mc := m.conns[id]
	if !m.live(mc) {
		return false, nil
	}
	_, ok := mc.channels[channel]
	return ok, nil
}

// Leave implements Store.
func (m *Memory) Leave(_ context.Context, id, channel string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.conns[id]
	if mc == nil {
		return false, nil
	}
	if _, ok := mc.channels[channel]; !ok {
		return false, nil
	}
	delete(mc.channels, channel)
	removeFrom(m.chans, channel, id)
	return true, nil
}

// liveIDs returns the live ids of set, sorted, under the read lock.
func (m *Memory) liveIDs(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for id := range set {
		if m.live(m.conns[id]) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (m *Memory) pages(ctx context.Context, ids []string, fn PageFunc) error {
	for start := 0; start < len(ids); start += m.opts.PageSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(start+m.opts.PageSize, len(ids))
		if err := fn(ids[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// ChannelMembers implements Store.
func (m *Memory) ChannelMembers(ctx context.Context, channel string, fn PageFunc) error {
	m.mu.RLock()
	ids := m.liveIDs(m.chans[channel])
	m.mu.RUnlock()
	return m.pages(ctx, ids, fn)
}

// UserConnections implements Store.
func (m *Memory) UserConnections(_ context.Context, userID string) ([]string, error) {
	if !ValidUserID(userID) {
		return []string{}, nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.liveIDs(m.users[userID]), nil
}

// ConnectionChannels implements Store.
func (m *Memory) ConnectionChannels(_ context.Context, id string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mc := m.conns[id]
	if !m.live(mc) {
		return []string{}, nil
	}
	return sortedKeys(mc.channels), nil
}

// Channels implements Store.
func (m *Memory) Channels(_ context.Context) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.chans))
	for ch, set := range m.chans {
		if len(m.liveIDs(set)) > 0 {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out, nil
}

// AllConnections implements Store.
func (m *Memory) AllConnections(ctx context.Context, fn PageFunc) error {
	m.mu.RLock()
	ids := make([]string, 0, len(m.conns))
	for id, mc := range m.conns {
		if m.live(mc) {
			ids = append(ids, id)
		}
	}
	m.mu.RUnlock()
	slices.Sort(ids)
	return m.pages(ctx, ids, fn)
}

// Stats implements Store.
func (m *Memory) Stats(_ context.Context) (Stats, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := Stats{Channels: map[string]int64{}}
	for _, mc := range m.conns {
		if m.live(mc) {
			st.TotalConnections++
		}
	}
	for ch, set := range m.chans {
		if n := int64(len(m.liveIDs(set))); n > 0 {
			st.Channels[ch] = n
		}
	}
	st.TotalChannels = int64(len(st.Channels))
	return st, nil
}

// Cleanup implements Store.
func (m *Memory) Cleanup(ctx context.Context, now time.Time) (int, error) {
	return m.CleanupFunc(ctx, now, nil)
}

// CleanupFunc implements Store.
func (m *Memory) CleanupFunc(ctx context.Context, now time.Time, fn RemovedFunc) (int, error) {
	m.mu.Lock()
	var removed []Removed
	for id, mc := range m.conns {
		if !now.Before(mc.c.ExpiresAt) {
			r, _ := m.removeLocked(id)
			removed = append(removed, r)
		}
	}
	m.mu.Unlock()
	if fn != nil {
		for _, r := range removed {
			fn(ctx, r)
		}
	}
	return len(removed), nil
}
