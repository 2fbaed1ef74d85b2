package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Publication is one message of a channel's stream.
type Publication struct {
	// Offset numbers the message in its stream: 1, 2, 3... with no gaps.
	Offset uint64
	// Data is the message payload as published.
	Data []byte
}

// StreamPosition is where a channel's stream stands: the offset of its last
// publication (0 before the first) and the epoch that names this incarnation
// of the stream. A stream whose meta was lost or expired starts again under
// a new epoch, so a client never mistakes it for the old one.
type StreamPosition struct {
	// Offset is the offset of the stream's last publication.
	Offset uint64 `json:"offset"`
	// Epoch names the stream's incarnation (random, fixed while the stream lives).
	Epoch string `json:"epoch"`
}

// HistoryLimits are a channel's history settings.
type HistoryLimits struct {
	// Size is how many of the latest publications are kept readable.
	Size int
	// TTL is how long a publication, and the stream after its last
	// publication, is kept.
	TTL time.Duration
}

// History keeps per-channel streams of publications beside the Store, in the
// same table: one meta item per stream (its offset and epoch) and one item per
// publication, both with a TTL. Implementations: MemoryHistory and
// DynamoHistory; both pass storetest.RunHistory.
type History interface {
	// Append stores data as the next publication of the channel's stream and
	// returns the stream's position after it (the publication's offset and
	// the epoch). Concurrent appends get unique, gap-free offsets. A stream
	// whose meta is missing or expired starts at offset 1 under a new epoch.
	Append(ctx context.Context, channel string, data []byte, lim HistoryLimits) (StreamPosition, error)
	// ReadHistory returns the stream's current position and its publications
	// with an offset above since, oldest first, at most limit of them, only
	// among the latest lim.Size. With maxBytes > 0 it stops at the first
	// publication that takes their data past maxBytes (that one included, so
	// the caller sees that they did not all fit): a reply bounded in bytes
	// does not read the whole history to keep its start. A missing or expired
	// stream is created (offset 0, a new epoch), so the position it returns
	// stays valid for recovery until the stream expires.
	ReadHistory(ctx context.Context, channel string, since uint64, limit, maxBytes int, lim HistoryLimits) (StreamPosition, []Publication, error)
}

// newEpoch returns a random stream epoch: 8 random bytes, hex-encoded.
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// oldestKept is the lowest offset still readable at top under size.
func oldestKept(top uint64, size int) uint64 {
	if size <= 0 || top < uint64(size) {
		return 1
	}
	return top - uint64(size) + 1
}
