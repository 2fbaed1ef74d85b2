package storetest

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// HistoryFactory returns two handles on one fresh, empty history (as two
// processes sharing a table would hold); now is their clock.
type HistoryFactory func(t *testing.T, now func() time.Time) (a, b store.History)

// testClock is a settable clock for expiry tests.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func offsets(pubs []store.Publication) []uint64 {
	out := []uint64{}
	for _, p := range pubs {
		out = append(out, p.Offset)
	}
	return out
}

// RunHistory runs the History contract suite.
func RunHistory(t *testing.T, f HistoryFactory) {
	lim := store.HistoryLimits{Size: 100, TTL: time.Hour}
	t.Run("EmptyStreamHasAnEpoch", func(t *testing.T) {
		ctx := t.Context()
		h, other := f(t, time.Now)
		pos, pubs, err := h.ReadHistory(ctx, "chat-empty", 0, 10, 0, lim)
		require.NoError(t, err)
		assert.Empty(t, pubs)
		assert.Equal(t, uint64(0), pos.Offset)
		require.NotEmpty(t, pos.Epoch)
		again, _, err := other.ReadHistory(ctx, "chat-empty", 0, 10, 0, lim)
		require.NoError(t, err)
		assert.Equal(t, pos, again, "reading does not change the stream")
		appended, err := other.Append(ctx, "chat-empty", []byte(`"first"`), lim)
		require.NoError(t, err)
		assert.Equal(t, store.StreamPosition{Offset: 1, Epoch: pos.Epoch}, appended, "the first append continues the epoch a reader saw")
	})
	t.Run("AppendAndReadSince", func(t *testing.T) {
		ctx := t.Context()
		h, _ := f(t, time.Now)
		var epoch string
		for i := 1; i <= 5; i++ {
			pos, err := h.Append(ctx, "chat-1", []byte(fmt.Sprintf(`{"n":%d}`, i)), lim)
			require.NoError(t, err)
			assert.Equal(t, uint64(i), pos.Offset)
			if i == 1 {
				epoch = pos.Epoch
			}
			assert.Equal(t, epoch, pos.Epoch)
		}
		pos, pubs, err := h.ReadHistory(ctx, "chat-1", 2, 0, 0, lim)
		require.NoError(t, err)
		assert.Equal(t, store.StreamPosition{Offset: 5, Epoch: epoch}, pos)
		assert.Equal(t, []uint64{3, 4, 5}, offsets(pubs))
		assert.JSONEq(t, `{"n":3}`, string(pubs[0].Data))
		_, pubs, err = h.ReadHistory(ctx, "chat-1", 0, 2, 0, lim)
		require.NoError(t, err)
		assert.Equal(t, []uint64{1, 2}, offsets(pubs), "limit keeps the oldest")
		_, pubs, err = h.ReadHistory(ctx, "chat-1", 5, 0, 0, lim)
		require.NoError(t, err)
		assert.Empty(t, pubs)
		_, pubs, err = h.ReadHistory(ctx, "chat-1", math.MaxUint64, 0, 0, lim)
		require.NoError(t, err)
		assert.Empty(t, pubs, "nothing comes after the largest offset (since+1 must not wrap to 0)")
		other, _, err := h.ReadHistory(ctx, "chat-2", 0, 0, 0, lim)
		require.NoError(t, err)
		assert.Equal(t, uint64(0), other.Offset, "streams are per channel")
		assert.NotEqual(t, epoch, other.Epoch)
	})
	t.Run("SizeBoundsWhatIsRead", func(t *testing.T) {
		ctx := t.Context()
		h, _ := f(t, time.Now)
		small := store.HistoryLimits{Size: 3, TTL: time.Hour}
		for i := 1; i <= 5; i++ {
			_, err := h.Append(ctx, "chat-s", []byte(fmt.Sprint(i)), small)
			require.NoError(t, err)
		}
		_, pubs, err := h.ReadHistory(ctx, "chat-s", 0, 0, 0, small)
		require.NoError(t, err)
		assert.Equal(t, []uint64{3, 4, 5}, offsets(pubs))
	})
	t.Run("MaxBytesStopsTheRead", func(t *testing.T) {
		// 60 publications of 10 KB (more than one Query page of the bounded
		// read): a 25 KB budget stops at the third, the one that passes it.
		ctx := t.Context()
		h, _ := f(t, time.Now)
		for i := 1; i <= 60; i++ {
			_, err := h.Append(ctx, "chat-b", []byte(fmt.Sprintf("%010d", i)+strings.Repeat("x", 10_000-10)), lim)
			require.NoError(t, err)
		}
		_, pubs, err := h.ReadHistory(ctx, "chat-b", 0, 0, 25_000, lim)
		require.NoError(t, err)
		assert.Equal(t, []uint64{1, 2, 3}, offsets(pubs))
		_, pubs, err = h.ReadHistory(ctx, "chat-b", 40, 0, 30_000, lim)
		require.NoError(t, err)
		assert.Equal(t, []uint64{41, 42, 43, 44}, offsets(pubs), "exactly at the budget is not past it")
		_, pubs, err = h.ReadHistory(ctx, "chat-b", 0, 2, 25_000, lim)
		require.NoError(t, err)
		assert.Equal(t, []uint64{1, 2}, offsets(pubs), "limit still holds")
		_, pubs, err = h.ReadHistory(ctx, "chat-b", 0, 0, 0, lim)
		require.NoError(t, err)
		assert.Len(t, pubs, 60, "no budget: everything")
	})
	t.Run("ExpiredStreamGetsANewEpoch", func(t *testing.T) {
		ctx := t.Context()
		clock := newTestClock()
		h, other := f(t, clock.now)
		for i := 1; i <= 3; i++ {
			_, err := h.Append(ctx, "chat-x", []byte(fmt.Sprint(i)), lim)
			require.NoError(t, err)
		}
		old, _, err := h.ReadHistory(ctx, "chat-x", 0, 0, 0, lim)
		require.NoError(t, err)
		clock.advance(2 * time.Hour)
		pos, err := h.Append(ctx, "chat-x", []byte(`"new"`), lim)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), pos.Offset)
		assert.NotEqual(t, old.Epoch, pos.Epoch)
		got, pubs, err := other.ReadHistory(ctx, "chat-x", 0, 0, 0, lim)
		require.NoError(t, err)
		assert.Equal(t, pos, got)
		require.Len(t, pubs, 1, "nothing of the old epoch is read")
		assert.Equal(t, `"new"`, string(pubs[0].Data))

		clock.advance(2 * time.Hour)
		fresh, pubs, err := h.ReadHistory(ctx, "chat-x", 0, 0, 0, lim)
		require.NoError(t, err)
		assert.Equal(t, uint64(0), fresh.Offset)
		assert.NotEqual(t, pos.Epoch, fresh.Epoch)
		assert.Empty(t, pubs)
	})
	t.Run("PublicationsExpire", func(t *testing.T) {
		ctx := t.Context()
		clock := newTestClock()
		h, _ := f(t, clock.now)
		_, err := h.Append(ctx, "chat-e", []byte(`1`), lim)
		require.NoError(t, err)
		clock.advance(40 * time.Minute)
		_, err = h.Append(ctx, "chat-e", []byte(`2`), lim)
		require.NoError(t, err)
		clock.advance(40 * time.Minute)
		pos, pubs, err := h.ReadHistory(ctx, "chat-e", 0, 0, 0, lim)
		require.NoError(t, err)
		assert.Equal(t, uint64(2), pos.Offset, "the stream lives on after its last append")
		assert.Equal(t, []uint64{2}, offsets(pubs))
	})
	t.Run("ShortTTLKeepsTheStreamForItsWholeTTL", func(t *testing.T) {
		// A 2 s ttl with appends 1.5 s apart, at a fraction of a second:
		// the stream (and its epoch) must live on, however the store
		// rounds its expiry.
		ctx := t.Context()
		clock := newTestClock()
		clock.ns.Store(time.Unix(1_000_000, 900_000_000).UnixNano())
		h, _ := f(t, clock.now)
		short := store.HistoryLimits{Size: 100, TTL: 2 * time.Second}
		first, err := h.Append(ctx, "chat-s", []byte(`1`), short)
		require.NoError(t, err)
		for i := 2; i <= 4; i++ {
			clock.advance(1500 * time.Millisecond)
			pos, err := h.Append(ctx, "chat-s", []byte(fmt.Sprint(i)), short)
			require.NoError(t, err)
			assert.Equal(t, first.Epoch, pos.Epoch, "append %d, 1.5 s after the last: the same epoch", i)
			assert.Equal(t, uint64(i), pos.Offset)
		}
		clock.advance(1900 * time.Millisecond)
		_, pubs, err := h.ReadHistory(ctx, "chat-s", 0, 0, 0, short)
		require.NoError(t, err)
		assert.Equal(t, []uint64{4}, offsets(pubs), "the last publication is kept its 2 s, the others expired")
	})
}

// RunHistoryConcurrency appends from many goroutines through both handles
// at once: every append gets a unique offset, the offsets have no gaps, and
// the history reads back every payload in offset order.
func RunHistoryConcurrency(t *testing.T, f HistoryFactory, writers, each int) {
	ctx := t.Context()
	a, b := f(t, time.Now)
	total := writers * each
	lim := store.HistoryLimits{Size: total, TTL: time.Hour}
	var mu sync.Mutex
	byOffset := map[uint64]string{}
	epochs := map[string]bool{}
	var g errgroup.Group
	for w := range writers {
		h := a
		if w%2 == 1 {
			h = b
		}
		g.Go(func() error {
			for i := range each {
				payload := fmt.Sprintf(`"w%d-%d"`, w, i)
				pos, err := h.Append(ctx, "chat-race", []byte(payload), lim)
				if err != nil {
					return err
				}
				mu.Lock()
				if prev, dup := byOffset[pos.Offset]; dup {
					mu.Unlock()
					return fmt.Errorf("offset %d given to %s and %s", pos.Offset, prev, payload)
				}
				byOffset[pos.Offset] = payload
				epochs[pos.Epoch] = true
				mu.Unlock()
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	require.Len(t, epochs, 1, "one stream, one epoch")
	for off := uint64(1); off <= uint64(total); off++ {
		require.Contains(t, byOffset, off, "offsets are gap-free")
	}
	pos, pubs, err := a.ReadHistory(ctx, "chat-race", 0, 0, 0, lim)
	require.NoError(t, err)
	assert.Equal(t, uint64(total), pos.Offset)
	require.Len(t, pubs, total)
	for i, p := range pubs {
		require.Equal(t, uint64(i+1), p.Offset)
		require.Equal(t, byOffset[p.Offset], string(p.Data))
	}
}
