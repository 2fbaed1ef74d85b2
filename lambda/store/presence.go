package store

import (
	"context"
	"errors"
	"time"
)

// ErrPresenceFull means a presence channel already has its maximum number of
// users and the joining user is not one of them.
var ErrPresenceFull = errors.New("presence channel is full")

// PresenceMember is one connection's membership of a presence channel.
type PresenceMember struct {
	// ConnectionID is the member connection.
	ConnectionID string
	// UserID is the user the connection joined as.
	UserID string
	// UserInfo is the user's info, raw JSON (may be empty).
	UserInfo []byte
	// ExpiresAt is when the membership becomes stale (the connection's expiry).
	ExpiresAt time.Time
}

// Presence keeps the users of presence channels beside the Store, in the same
// table: one item per member connection, one per (channel, user) holding the
// user's connection count, and one user counter per channel. Joins and leaves
// are conditional writes of a constant number of items, so concurrent joins
// and leaves of one user's connections decide exactly one first join and one
// last leave. Implementations: MemoryPresence and DynamoPresence.
type Presence interface {
	// JoinPresence records that the connection joined the channel as
	// m.UserID. first is true when it is the user's first connection in the
	// channel (announce member_added). Joining again is not an error and
	// reports first=false. maxUsers > 0 caps the channel's users: a new user
	// beyond it gets ErrPresenceFull.
	JoinPresence(ctx context.Context, channel string, m PresenceMember, maxUsers int) (first bool, err error)
	// LeavePresence removes the connection from the channel and returns its
	// membership; last is true when it was the user's last connection there
	// (announce member_removed). It returns ErrNotFound when the connection
	// is not a member.
	LeavePresence(ctx context.Context, channel, connectionID string) (m PresenceMember, last bool, err error)
	// PresenceMember returns one connection's membership, or ErrNotFound.
	PresenceMember(ctx context.Context, channel, connectionID string) (PresenceMember, error)
	// PresenceUsers returns one member per live user of the channel (the
	// UserInfo of its first connection), sorted by user id. ConnectionID is
	// empty: a member here is a user, who may have several connections.
	PresenceUsers(ctx context.Context, channel string) ([]PresenceMember, error)
	// PresenceUserCount returns the number of users in the channel, from a
	// counter maintained on write.
	PresenceUserCount(ctx context.Context, channel string) (int, error)
}

// Values are small expiring values beside the Store: alias claims (a
// protocol's public id for a connection), a channel's last event, and
// per-window counters for rate limits.
type Values interface {
	// PutValue stores value under key until expires. With ifAbsent it stores
	// only when no live value exists and reports whether it stored.
	PutValue(ctx context.Context, key string, value []byte, expires time.Time, ifAbsent bool) (bool, error)
	// GetValue returns the live value of key, or ErrNotFound.
	GetValue(ctx context.Context, key string) ([]byte, error)
	// Increment adds one to the counter under key (created live until
	// expires) and returns the new count.
	Increment(ctx context.Context, key string, expires time.Time) (int64, error)
}
