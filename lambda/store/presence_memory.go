package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MemoryPresence is Presence and Values in process memory (the local
// gateway's embedded default and unit tests).
type MemoryPresence struct {
	now    func() time.Time
	mu     sync.Mutex
	chans  map[string]*memPresence
	values map[string]memValue
}

type memPresence struct {
	members map[string]PresenceMember // by connection id
	users   map[string]int            // connections per user
	first   map[string]PresenceMember // the member that brought each user in
}

type memValue struct {
	value   []byte
	n       int64
	expires time.Time
}

var (
	_ Presence = (*MemoryPresence)(nil)
	_ Values   = (*MemoryPresence)(nil)
)

// NewMemoryPresence returns an empty MemoryPresence; now nil means time.Now.
func NewMemoryPresence(now func() time.Time) *MemoryPresence {
	if now == nil {
		now = time.Now
	}
	return &MemoryPresence{now: now, chans: map[string]*memPresence{}, values: map[string]memValue{}}
}

// JoinPresence implements Presence.
func (p *MemoryPresence) JoinPresence(_ context.Context, channel string, m PresenceMember, maxUsers int) (bool, error) {
	if m.ConnectionID == "" || m.UserID == "" {
		return false, fmt.Errorf("join presence %s: empty connection or user id", channel)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chans[channel]
	if c == nil {
		c = &memPresence{members: map[string]PresenceMember{}, users: map[string]int{}, first: map[string]PresenceMember{}}
		p.chans[channel] = c
	}
	if _, ok := c.members[m.ConnectionID]; ok {
		return false, nil
	}
	first := c.users[m.UserID] == 0
	if first && maxUsers > 0 && len(c.users) >= maxUsers {
		return false, fmt.Errorf("join presence %s as %s: %w", channel, m.UserID, ErrPresenceFull)
	}
	c.members[m.ConnectionID] = m
	c.users[m.UserID]++
	if first {
		c.first[m.UserID] = m
	}
	return first, nil
}

// LeavePresence implements Presence.
func (p *MemoryPresence) LeavePresence(_ context.Context, channel, connectionID string) (PresenceMember, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chans[channel]
	if c == nil {
		return PresenceMember{}, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, ErrNotFound)
	}
	m, ok := c.members[connectionID]
	if !ok {
		return PresenceMember{}, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, ErrNotFound)
	}
	delete(c.members, connectionID)
	c.users[m.UserID]--
	last := c.users[m.UserID] == 0
	if last {
		delete(c.users, m.UserID)
		delete(c.first, m.UserID)
	}
	if len(c.members) == 0 {
		delete(p.chans, channel)
	}
	return m, last, nil
}

// PresenceMember implements Presence.
func (p *MemoryPresence) PresenceMember(_ context.Context, channel, connectionID string) (PresenceMember, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.chans[channel]; c != nil {
		if m, ok := c.members[connectionID]; ok && p.now().Before(m.ExpiresAt) {
			return m, nil
		}
	}
	return PresenceMember{}, fmt.Errorf("presence member %s of %s: %w", connectionID, channel, ErrNotFound)
}

// PresenceUsers implements Presence.
func (p *MemoryPresence) PresenceUsers(_ context.Context, channel string) ([]PresenceMember, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []PresenceMember{}
	c := p.chans[channel]
	if c == nil {
		return out, nil
	}
	now := p.now()
	live := map[string]PresenceMember{}
	for _, m := range c.members {
		if now.Before(m.ExpiresAt) {
			if _, ok := live[m.UserID]; !ok {
				u := c.first[m.UserID]
				u.ConnectionID = "" // a user, not a connection (as DynamoPresence)
				live[m.UserID] = u
			}
		}
	}
	for _, m := range live {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out, nil
}

// PresenceUserCount implements Presence.
func (p *MemoryPresence) PresenceUserCount(_ context.Context, channel string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.chans[channel]; c != nil {
		return len(c.users), nil
	}
	return 0, nil
}

// PutValue implements Values.
func (p *MemoryPresence) PutValue(_ context.Context, key string, value []byte, expires time.Time, ifAbsent bool) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.values[key]; ifAbsent && ok && p.now().Before(old.expires) {
		return false, nil
	}
	p.values[key] = memValue{value: append([]byte(nil), value...), expires: expires}
	return true, nil
}

// GetValue implements Values.
func (p *MemoryPresence) GetValue(_ context.Context, key string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.values[key]
	if !ok || !p.now().Before(v.expires) {
		delete(p.values, key)
		return nil, fmt.Errorf("get value %s: %w", key, ErrNotFound)
	}
	return append([]byte(nil), v.value...), nil
}

// Increment implements Values.
func (p *MemoryPresence) Increment(_ context.Context, key string, expires time.Time) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.values[key]
	if !ok || !p.now().Before(v.expires) {
		v = memValue{expires: expires}
	}
	v.n++
	p.values[key] = v
	return v.n, nil
}
