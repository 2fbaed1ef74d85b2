// Package store holds the connection registry behind the WebSocket API: who is
// connected, which user each connection belongs to and which channels it has
// joined. Two implementations satisfy [Store]: [Memory] (embedded, for local
// development and unit tests) and [DynamoDB] (for AWS). Both pass the same
// contract suite in package storetest.
//
// Every connect, join and leave writes a constant number of items, a removal
// one per membership, and nothing rewrites a shared list, so concurrent
// connects, joins and disconnects cannot lose each other.
package store

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"
)

// DefaultTTL is how long a connection record lives before it counts as stale:
// API Gateway closes every connection after 2 hours, and the extra grace covers
// clock skew and a late $disconnect.
const DefaultTTL = 2*time.Hour + 10*time.Minute

// Sentinel errors returned by every Store implementation. Match them with errors.Is.
var (
	// ErrNotFound means the connection does not exist, was removed or has expired.
	ErrNotFound = errors.New("connection not found")
	// ErrExists means a connection with the same id is already recorded.
	ErrExists = errors.New("connection already exists")
	// ErrTooManyChannels means a join was refused because the connection
	// already holds as many channels as the cap passed to JoinAtMost.
	ErrTooManyChannels = errors.New("too many channels for one connection")
	// ErrInvalidID means a connection id is not 1 to MaxConnectionIDLength
	// printable ASCII characters (see ValidConnectionID).
	ErrInvalidID = errors.New("invalid connection id")
	// ErrInvalidUserID means a connection's user id is longer than
	// MaxUserIDLength bytes or not valid UTF-8 (see ValidUserID).
	ErrInvalidUserID = errors.New("invalid user id")
	// ErrInvalidChannel means a channel name is empty, longer than
	// MaxChannelLength bytes or not valid UTF-8 (see ValidChannel).
	ErrInvalidChannel = errors.New("invalid channel name")
)

// MaxChannelLength bounds a channel name in the store, in bytes of UTF-8:
// DynamoDB's sort keys ("ch#"+name) hold at most 1,024 bytes. The protocols
// allow far less (164 characters); the bound keeps a name given to the
// store directly a key both stores can hold.
const MaxChannelLength = 1000

// ValidChannel reports whether name can be a channel in the store: 1 to
// MaxChannelLength bytes of valid UTF-8 (DynamoDB would turn invalid bytes
// into U+FFFD, making two names one). Both stores refuse to join another
// (ErrInvalidChannel), and find no member of one without a request.
func ValidChannel(name string) bool {
	return name != "" && len(name) <= MaxChannelLength && utf8.ValidString(name)
}

// MaxUserIDLength bounds a user id, in bytes of UTF-8. It is the built-in
// JWT authorizer's bound (auth.MaxUserIDLength; OpenID Connect's 255-character
// "sub"), and keeps the user index key ("u#"+id, at most 2,048 bytes in
// DynamoDB) and the presence keys (sort keys, at most 1,024 bytes) valid, so an
// id from a custom authorizer or a sendToUser never reaches DynamoDB as a
// key it refuses.
const MaxUserIDLength = 255

// ValidUserID reports whether id can be a user id: valid UTF-8 of at most
// MaxUserIDLength bytes. The empty id (an anonymous connection) is valid.
// Both stores refuse to record a connection with another, and user lookups
// of one find nothing without a request.
func ValidUserID(id string) bool {
	return len(id) <= MaxUserIDLength && utf8.ValidString(id)
}

// MaxConnectionIDLength bounds a connection id. API Gateway's ids are 16
// characters ("L0SM9cOFvHcCIhw="); the bound leaves room for other gateways
// while keeping every key far below DynamoDB's 1 KB sort-key limit.
const MaxConnectionIDLength = 128

// ValidConnectionID reports whether id can be a connection id: 1 to
// MaxConnectionIDLength characters, each printable ASCII other than a space
// (0x21 to 0x7E). Both stores refuse to record other ids, so lookups of them
// find nothing without a request.
func ValidConnectionID(id string) bool {
	if id == "" || len(id) > MaxConnectionIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// Connection is what the registry knows about one WebSocket connection.
type Connection struct {
	// ID is the API Gateway connection id.
	ID string `json:"connectionId"`
	// UserID is the authorizer's userId, empty for anonymous connections.
	UserID string `json:"userId,omitempty"`
	// ConnectedAt is when API Gateway accepted the connection.
	ConnectedAt time.Time `json:"connectedAt"`
	// RouteKey is the route that recorded the connection ($connect).
	RouteKey string `json:"routeKey,omitempty"`
	// SourceIP is the client's address as API Gateway saw it.
	SourceIP string `json:"sourceIp,omitempty"`
	// UserAgent is the client's User-Agent header.
	UserAgent string `json:"userAgent,omitempty"`
	// Channels lists the channels the connection has joined. It is filled by
	// GetConnection and ignored by AddConnection.
	Channels []string `json:"channels"`
	// ExpiresAt is when the record becomes stale; the zero value means
	// ConnectedAt plus the store's TTL.
	ExpiresAt time.Time `json:"expiresAt"`
	// Pending marks a connection recorded by its $connect that has not
	// been heard from since: API Gateway may still be finishing the
	// handshake, and answers 410 to posts until it has, so a 410 does not
	// yet prove it gone (realtime.GoneGrace). A join the connection asks for
	// itself (JoinLive) clears it. Connections recorded by other code are
	// not pending.
	Pending bool `json:"-"`
}

// Stats are aggregate counts, maintained on write rather than computed by a scan.
type Stats struct {
	// TotalConnections is the number of live connections.
	TotalConnections int64 `json:"totalConnections"`
	// TotalChannels is the number of channels with at least one member.
	TotalChannels int64 `json:"totalChannels"`
	// Channels maps each channel with members to its member count.
	Channels map[string]int64 `json:"channels"`
}

// PageFunc receives connection ids a page at a time. Returning an error stops
// the iteration and is returned by the caller. The slice is only valid during
// the call.
type PageFunc func(ids []string) error

// Store is the connection registry. Implementations are safe for concurrent use.
type Store interface {
	// AddConnection records a new connection. It returns ErrExists if the id is
	// already recorded and ErrInvalidID if it fails ValidConnectionID.
	AddConnection(ctx context.Context, c Connection) error
	// RemoveConnection removes the connection and every channel membership it
	// holds. It reports whether anything was removed; removing an unknown
	// connection is not an error. A removal cut short (an error, a cancelled
	// context) leaves the connection unknown to GetConnection and Join; calling
	// RemoveConnection again, or Cleanup, removes what it left.
	RemoveConnection(ctx context.Context, id string) (bool, error)
	// GetConnection returns one connection with its channels, or ErrNotFound.
	GetConnection(ctx context.Context, id string) (Connection, error)
	// Join adds the connection to the channel. It reports whether the
	// membership is new (false when already a member). It returns ErrNotFound
	// when the connection does not exist, so a late join cannot resurrect a
	// removed connection, and ErrInvalidChannel for a channel that fails
	// ValidChannel.
	Join(ctx context.Context, id, channel string) (bool, error)
	// JoinAtMost is Join with a cap on the connection's channels: when the
	// connection is not yet a member and already holds max channels, it
	// returns ErrTooManyChannels and changes nothing. Concurrent joins of one
	// connection cannot go past the cap. max <= 0 means no cap (Join).
	JoinAtMost(ctx context.Context, id, channel string, max int) (bool, error)
	// IsMember reports whether the live connection holds a membership of the
	// channel: one key lookup, whatever the connection's other channels.
	IsMember(ctx context.Context, id, channel string) (bool, error)
	// Leave removes the connection from the channel and reports whether it was a member.
	Leave(ctx context.Context, id, channel string) (bool, error)
	// ChannelMembers streams the ids of the channel's live members.
	ChannelMembers(ctx context.Context, channel string, fn PageFunc) error
	// UserConnections returns the ids of the user's live connections.
	UserConnections(ctx context.Context, userID string) ([]string, error)
	// ConnectionChannels returns the channels the connection has joined.
	ConnectionChannels(ctx context.Context, id string) ([]string, error)
	// Channels returns every channel that has at least one member, sorted.
	// Like Stats, it may still count members whose connection expired but
	// was not yet removed (see Stats).
	Channels(ctx context.Context) ([]string, error)
	// AllConnections streams the ids of every live connection. Pages may
	// arrive from several goroutines in turn, never at once.
	AllConnections(ctx context.Context, fn PageFunc) error
	// Stats returns the aggregate counters. They are exact for connections
	// that were added and removed through the Store. A connection that
	// expired but was not yet removed (by RemoveConnection or Cleanup) may
	// still be counted: the DynamoDB store keeps counters maintained on write
	// and corrects them when Cleanup removes the record, while Memory drops it
	// at once. The contract suite asserts Stats only when nothing is expired.
	Stats(ctx context.Context) (Stats, error)
	// Cleanup removes connections whose record expired before now, with their
	// memberships, and returns how many connections it removed. It also
	// finishes removals that were cut short, whatever their expiry: after it,
	// no membership of a removed connection is left.
	Cleanup(ctx context.Context, now time.Time) (int, error)
	// RemoveConnectionFunc is RemoveConnection that then calls fn (when not
	// nil) with the channels whose memberships it removed, so the caller can
	// clear what it keeps beside the store, such as presence. It costs no
	// read beyond RemoveConnection's.
	RemoveConnectionFunc(ctx context.Context, id string, fn RemovedFunc) (bool, error)
	// CleanupFunc is Cleanup that calls fn (when not nil) for each connection
	// it removed or finished removing, with the channels whose memberships it
	// removed.
	CleanupFunc(ctx context.Context, now time.Time, fn RemovedFunc) (int, error)
}

// Removed is a connection a removal took out of the registry, with the
// channels whose memberships went with it.
type Removed struct {
	// ID is the connection id.
	ID string
	// Channels are the channels it was a member of (those this removal
	// deleted; a removal finished later reports the rest).
	Channels []string
}

// RemovedFunc receives a removed connection after its record and
// memberships are gone. It is called outside any store lock and may call the
// store; CleanupFunc may call it from several goroutines at once.
type RemovedFunc func(ctx context.Context, r Removed)

// LiveJoiner is a Store whose joins can also record that the connection is
// up: JoinLiveAtMost is JoinAtMost for a join the connection asked for itself
// (a subscribe frame, which API Gateway only delivers once the connection is
// live), and clears Connection.Pending in the same write. Both stores here
// implement it.
type LiveJoiner interface {
	JoinLiveAtMost(ctx context.Context, id, channel string, max int) (bool, error)
}

// JoinLive joins the connection to the channel for a request of its own:
// JoinLiveAtMost when st is a LiveJoiner, JoinAtMost otherwise.
func JoinLive(ctx context.Context, st Store, id, channel string, max int) (bool, error) {
	if lj, ok := st.(LiveJoiner); ok {
		return lj.JoinLiveAtMost(ctx, id, channel, max)
	}
	return st.JoinAtMost(ctx, id, channel, max)
}

var (
	_ LiveJoiner = (*Memory)(nil)
	_ LiveJoiner = (*DynamoDB)(nil)
)
