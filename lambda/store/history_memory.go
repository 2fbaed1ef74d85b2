package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryHistory is History in process memory (the local gateway's embedded
// default and unit tests).
type MemoryHistory struct {
	now     func() time.Time
	mu      sync.Mutex
	streams map[string]*memStream
}

type memStream struct {
	pos     StreamPosition
	expires time.Time
	pubs    []memPublication // oldest first, at most the channel's size
}

type memPublication struct {
	Publication
	expires time.Time
}

var _ History = (*MemoryHistory)(nil)

// NewMemoryHistory returns an empty MemoryHistory; now nil means time.Now.
func NewMemoryHistory(now func() time.Time) *MemoryHistory {
	if now == nil {
		now = time.Now
	}
	return &MemoryHistory{now: now, streams: map[string]*memStream{}}
}

// stream returns the live stream of channel, creating it under a new epoch
// when it is missing or expired. The caller holds mu.
func (h *MemoryHistory) stream(channel string, now time.Time, ttl time.Duration) *memStream {
	s := h.streams[channel]
	if s == nil || !now.Before(s.expires) {
		s = &memStream{pos: StreamPosition{Epoch: newEpoch()}, expires: now.Add(ttl)}
		h.streams[channel] = s
	}
	return s
}

// Append implements History.
func (h *MemoryHistory) Append(_ context.Context, channel string, data []byte, lim HistoryLimits) (StreamPosition, error) {
	if lim.TTL <= 0 || lim.Size <= 0 {
		return StreamPosition{}, fmt.Errorf("append to %s: history size %d and ttl %s must be positive", channel, lim.Size, lim.TTL)
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stream(channel, now, lim.TTL)
	s.pos.Offset++
	s.expires = now.Add(lim.TTL)
	s.pubs = append(s.pubs, memPublication{Publication{Offset: s.pos.Offset, Data: append([]byte(nil), data...)}, now.Add(lim.TTL)})
	if over := len(s.pubs) - lim.Size; over > 0 {
		s.pubs = append(s.pubs[:0:0], s.pubs[over:]...)
	}
	return s.pos, nil
}

// ReadHistory implements History.
func (h *MemoryHistory) ReadHistory(_ context.Context, channel string, since uint64, limit, maxBytes int, lim HistoryLimits) (StreamPosition, []Publication, error) {
	if lim.TTL <= 0 || lim.Size <= 0 {
		return StreamPosition{}, nil, fmt.Errorf("read history of %s: history size %d and ttl %s must be positive", channel, lim.Size, lim.TTL)
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stream(channel, now, lim.TTL)
	out := []Publication{}
	if since >= s.pos.Offset {
		return s.pos, out, nil // nothing after it (and since+1 would wrap at the top)
	}
	from := max(since+1, oldestKept(s.pos.Offset, lim.Size))
	bytes := 0
	for _, p := range s.pubs {
		if (limit > 0 && len(out) >= limit) || (maxBytes > 0 && bytes > maxBytes) {
			break
		}
		if p.Offset >= from && now.Before(p.expires) {
			out = append(out, Publication{Offset: p.Offset, Data: append([]byte(nil), p.Data...)})
			bytes += len(p.Data)
		}
	}
	return s.pos, out, nil
}
