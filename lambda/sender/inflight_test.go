package sender

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInflightFor: a capped sender keeps its share of Concurrency in flight
// (sized for 10,000/s), at least minInflight and at most Concurrency.
func TestInflightFor(t *testing.T) {
	const ms = time.Millisecond
	for _, c := range []struct {
		concurrency int
		limit       float64
		floor       time.Duration
		want        int
	}{
		{256, 0, 0, 256},              // no cap
		{256, 0, time.Second, 256},    // no cap, whatever the latency
		{256, 10000, 0, 256},          // at the rate Concurrency is sized for
		{256, 20000, 0, 256},          // above it: never more than Concurrency
		{256, 5000, 0, 128},           // half the limit, half the posts in flight
		{256, 2500, 0, 64},            // a worker's share at k = 4
		{256, 1250, 0, 32},            // at k = 8
		{256, 1250, 17 * ms, 32},      // a floor under 25.6 ms / 1.5 changes nothing
		{256, 1250, 20 * ms, 38},      // 1.5 x 1,250/s x 20 ms = 37.5, rounded up
		{256, 1000, 80 * ms, 120},     // another region: 1.5 x 1,000/s x 80 ms
		{256, 25, time.Second, 38},    // long calls: 1.5 x 25/s x 1 s = 37.5
		{256, 1000, 0, 26},            // the module's default hint (10,000 / 10): 25.6 rounded up
		{256, 1000, time.Second, 256}, // never more than Concurrency
		{256, 100, 0, minInflight},    // never fewer than one grid tick's posts
		{8, 100, 0, 8},                // nor more than Concurrency
		{512, 1000, 0, 52},            // a larger Concurrency keeps its latency allowance: 51.2 rounded up
	} {
		assert.Equal(t, c.want, inflightFor(c.concurrency, c.limit, c.floor), "Concurrency %d, cap %v/s, floor %v", c.concurrency, c.limit, c.floor)
	}
}

// TestLatencyFloor: the floor is the lowest latency of the last complete
// window, none before the first one is complete or after a window without
// posts.
func TestLatencyFloor(t *testing.T) {
	var f latencyFloor
	t0 := time.Unix(1000, 0)
	w := latencyWindow
	assert.Equal(t, time.Duration(0), f.get(t0), "none before the first post")
	assert.Equal(t, time.Duration(0), f.observe(t0, 90*time.Millisecond), "a first post, with its connection to open, is no floor")
	assert.Equal(t, time.Duration(0), f.observe(t0.Add(w/5), 20*time.Millisecond))
	assert.Equal(t, time.Duration(0), f.observe(t0.Add(2*w/5), 40*time.Millisecond))
	// The first window complete: its lowest latency is the floor.
	assert.Equal(t, 20*time.Millisecond, f.observe(t0.Add(w+w/5), 50*time.Millisecond))
	assert.Equal(t, 20*time.Millisecond, f.observe(t0.Add(w+2*w/5), 60*time.Millisecond))
	// The next: the latency has risen, and the floor follows.
	assert.Equal(t, 50*time.Millisecond, f.observe(t0.Add(2*w+w/5), 70*time.Millisecond))
	assert.Equal(t, 50*time.Millisecond, f.get(t0.Add(2*w+w/2)))
	// A window without posts: no floor until a new window is complete, and
	// none for a cap set before the next post either.
	assert.Equal(t, time.Duration(0), f.get(t0.Add(4*w+w/2)))
	assert.Equal(t, time.Duration(0), f.observe(t0.Add(5*w), 90*time.Millisecond))
	assert.Equal(t, 90*time.Millisecond, f.observe(t0.Add(6*w), 95*time.Millisecond))
}

// gatePoster holds every post until open is closed, counting the posts in
// flight and the most seen at once.
type gatePoster struct {
	postOnly
	open         chan struct{}
	mu           sync.Mutex
	now, highest int
}

func newGatePoster() *gatePoster { return &gatePoster{open: make(chan struct{})} }

func (p *gatePoster) Post(ctx context.Context, _ string, _ []byte) error {
	p.mu.Lock()
	p.now++
	p.highest = max(p.highest, p.now)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.now--
		p.mu.Unlock()
	}()
	select {
	case <-p.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// counts returns the posts in flight and the most seen at once.
func (p *gatePoster) counts() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now, p.highest
}

// waitInFlight waits until at least n posts are in flight.
func (p *gatePoster) waitInFlight(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { now, _ := p.counts(); return now >= n }, 10*time.Second, time.Millisecond,
		"want %d posts in flight", n)
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%d", i)
	}
	return out
}

// TestCappedSenderKeepsItsShareInFlight: a sender capped at 1,250/s (MaxRate
// or a rate hint) never has more than 32 of its 256 posts in flight, however
// long its posts take, and removing the hint gives the slots back at once.
func TestCappedSenderKeepsItsShareInFlight(t *testing.T) {
	for _, viaHint := range []bool{false, true} {
		t.Run(fmt.Sprintf("hint=%v", viaHint), func(t *testing.T) {
			p := newGatePoster()
			opts := Options{Concurrency: 256}
			if !viaHint {
				opts.MaxRate = 1250
			}
			s := NewSender(p, opts)
			if viaHint {
				s.SetRateHint(1250)
			}
			require.Equal(t, 32, s.inflight())
			done := make(chan Report)
			go func() { done <- s.Send(context.Background(), ids(400), []byte("x")) }()
			// 1,250 tokens a second: within a few hundred milliseconds far more
			// than 32 posts have their token, and wait for a slot.
			p.waitInFlight(t, 32)
			time.Sleep(200 * time.Millisecond)
			_, highest := p.counts()
			assert.Equal(t, 32, highest, "a capped sender keeps its share of Concurrency in flight")
			if viaHint {
				// The hint removed: back to 256 in flight, without waiting for
				// the posts in flight to end.
				s.SetRateHint(0)
				assert.Equal(t, 256, s.inflight())
				p.waitInFlight(t, 100)
			}
			close(p.open)
			rep := <-done
			assert.Equal(t, 400, rep.Delivered)
		})
	}
}

// TestLoweredBoundHoldsSlotsAsPostsEnd: a hint set while more posts than its
// bound are in flight takes the free slots at once and holds the others as
// their posts end, so the next send keeps to the new bound; every slot is
// accounted for afterwards.
func TestLoweredBoundHoldsSlotsAsPostsEnd(t *testing.T) {
	p := newGatePoster()
	s := NewSender(p, Options{Concurrency: 64, StartRate: -1})
	done := make(chan Report)
	go func() { done <- s.Send(context.Background(), ids(48), []byte("x")) }()
	p.waitInFlight(t, 48)
	s.SetRateHint(1250) // bound 16: 16 free slots taken now, 32 more as posts end
	assert.Equal(t, 16, s.inflight())
	assert.Equal(t, int64(16), s.held.Load(), "the free slots are taken at once")
	close(p.open)
	require.Equal(t, 48, (<-done).Delivered)
	assert.Equal(t, int64(48), s.held.Load(), "the rest are held as the posts in flight end")
	assert.Len(t, s.slots, 48, "only held slots are left in the channel")

	gate := newGatePoster()
	s.poster = gate
	go func() { done <- s.Send(context.Background(), ids(100), []byte("x")) }()
	gate.waitInFlight(t, 16)
	time.Sleep(100 * time.Millisecond) // 125 tokens at 1,250/s
	_, highest := gate.counts()
	assert.Equal(t, 16, highest)
	close(gate.open)
	require.Equal(t, 100, (<-done).Delivered)

	s.SetRateHint(0)
	assert.Equal(t, int64(0), s.held.Load())
	assert.Empty(t, s.slots, "every slot back once the hint is gone")
}

// slowPoster answers every post after latency, counting the posts in flight.
type slowPoster struct {
	gatePoster
	latency time.Duration
}

func (p *slowPoster) Post(ctx context.Context, _ string, _ []byte) error {
	p.mu.Lock()
	p.now++
	p.highest = max(p.highest, p.now)
	p.mu.Unlock()
	time.Sleep(p.latency)
	p.mu.Lock()
	p.now--
	p.mu.Unlock()
	return nil
}

// TestCappedSenderFollowsALatencyFloor: posts that take 150 ms at a cap of
// 500/s need 75 in flight, far above the share of 16; the bound follows the
// measured latency floor (1.5 x 500/s x 150 ms = 113), so the cap stays
// reachable (held at 16, 500 posts of 150 ms would take 4.7 s instead of
// about one).
func TestCappedSenderFollowsALatencyFloor(t *testing.T) {
	p := &slowPoster{latency: 150 * time.Millisecond}
	s := NewSender(p, Options{Concurrency: 256, MaxRate: 500})
	s.floor.window = 300 * time.Millisecond // instead of 5 s of posts
	require.Equal(t, minInflight, s.inflight())
	rep := s.Send(context.Background(), ids(500), []byte("x"))
	require.Equal(t, 500, rep.Delivered)
	_, highest := p.counts()
	assert.Greater(t, highest, 2*minInflight, "the bound grew with the latency floor")
	assert.LessOrEqual(t, highest, 113)
	assert.GreaterOrEqual(t, s.inflight(), 113, "the floor is at least the poster's latency")
}
