package sender

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPacePeriod: the grid's period is the time paceGroup tokens take, at
// most the window, none under paceMinPeriod or without a window, and one
// period never releases more than the limiter's burst.
func TestPacePeriod(t *testing.T) {
	assert.Equal(t, 10*time.Millisecond, pacePeriod(10*time.Millisecond, 1250), "16 tokens take 12.8 ms: the window caps it")
	assert.Equal(t, 6400*time.Microsecond, pacePeriod(10*time.Millisecond, 2500))
	assert.Equal(t, 5*time.Millisecond, pacePeriod(10*time.Millisecond, 3200))
	assert.Equal(t, time.Duration(0), pacePeriod(10*time.Millisecond, 4000), "above 3,200/s: no grid")
	assert.Equal(t, time.Duration(0), pacePeriod(10*time.Millisecond, 10000), "at the account's limit: no grid")
	assert.Equal(t, time.Duration(0), pacePeriod(0, 1250), "no window")
	assert.Equal(t, time.Duration(0), pacePeriod(-time.Nanosecond, 1250), "negative window")
	assert.Equal(t, time.Duration(0), pacePeriod(10*time.Millisecond, 0), "unlimited")
	for r := 10.0; r < 50000; r *= 1.1 {
		p := pacePeriod(DefaultPaceWindow, r)
		perPeriod := p.Seconds() * r
		assert.LessOrEqual(t, perPeriod, float64(paceGroup)+1e-9, "rate %.0f", r)
		assert.LessOrEqual(t, perPeriod, float64(burstFor(r))+1, "rate %.0f: a group within the burst", r)
	}
}

// TestPaceWakeIsTheFirstTickAtOrAfterTheToken: a post leaves on the grid, never
// before its token and less than one period after it.
func TestPaceWakeIsTheFirstTickAtOrAfterTheToken(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for range 10000 {
		p := time.Duration(1+rng.Int64N(int64(10*time.Millisecond))) * time.Nanosecond
		phase := rng.Int64N(int64(p))
		due := base.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		wake := paceWake(due, p, phase)
		require.False(t, wake.Before(due), "never before the token")
		require.Less(t, wake.Sub(due), p, "within one period")
		require.Zero(t, (wake.UnixNano()-phase)%int64(p), "on the grid")
	}
	onTick := time.Unix(0, 7*int64(time.Millisecond)+3)
	assert.Equal(t, onTick, paceWake(onTick, time.Millisecond, 3), "a token due on a tick leaves on it")
	assert.Equal(t, base, paceWake(base, 0, 0), "no grid: at the token")
}

// TestPacedPostsLeaveTogether: a sender held to 200/s with a 50 ms window
// sends the posts whose tokens fall due within one period together (one
// wake-up per group of about ten), where without the grid each post leaves on
// its own 5 ms apart. Both deliver every post at the same rate. The scale
// leaves room for a loaded machine: a group splits only where one post of it
// is held up by 2 ms, and two unpaced posts merge only where one is held up
// by 3 ms.
func TestPacedPostsLeaveTogether(t *testing.T) {
	const n = 60
	groups := func(window time.Duration) (int, time.Duration) {
		p := &stampingPoster{}
		s := NewSender(p, Options{MaxRate: 200, PaceWindow: window})
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("c%d", i)
		}
		start := time.Now()
		rep := s.Send(context.Background(), ids, []byte("x"))
		took := time.Since(start)
		require.Equal(t, n, rep.Delivered)
		slices.SortFunc(p.at, func(a, b time.Time) int { return a.Compare(b) })
		g := 1
		for i := 1; i < len(p.at); i++ {
			if p.at[i].Sub(p.at[i-1]) > 2*time.Millisecond {
				g++
			}
		}
		return g, took
	}
	paced, pacedTook := groups(50 * time.Millisecond)
	unpaced, unpacedTook := groups(-1)
	t.Logf("%d posts at 200/s: %d groups paced (%v), %d without the grid (%v)", n, paced, pacedTook, unpaced, unpacedTook)
	assert.LessOrEqual(t, paced, n/4, "paced posts leave in groups of about ten")
	assert.Greater(t, unpaced, n/2, "without the grid each post leaves at its own token")
}

// postOnly gives a test poster that only posts no-op Delete and Get.
type postOnly struct{}

func (postOnly) Delete(context.Context, string) error { return nil }

func (postOnly) Get(context.Context, string) (ConnectionInfo, error) { return ConnectionInfo{}, nil }

// stampingPoster notes when each post was made.
type stampingPoster struct {
	postOnly
	mu sync.Mutex
	at []time.Time
}

func (p *stampingPoster) Post(context.Context, string, []byte) error {
	p.mu.Lock()
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	return nil
}

// TestPacedWaitHonoursTheContext: a turn that comes after the context's
// deadline fails at once and gives its token back; a cancelled wait returns
// the context's error; a tick after the deadline for a token before it does
// not fail the post. At 1 token/s, so that a stall of the machine of up to
// a few hundred milliseconds changes nothing.
func TestPacedWaitHonoursTheContext(t *testing.T) {
	a := newAIMD(1, 0, false, DefaultPaceWindow, nil)
	require.NoError(t, a.wait(context.Background()), "the burst's token")

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	before := a.lim.Tokens()
	err := a.wait(ctx)
	require.ErrorIs(t, err, errPaceDeadline, "the next token is 1 s away")
	assert.NoError(t, ctx.Err(), "failed before the deadline, without waiting for it")
	assert.InDelta(t, before, a.lim.Tokens(), 0.3, "the token was given back")

	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel2)
	assert.ErrorIs(t, a.wait(ctx2), context.Canceled)

	// A token due before the deadline whose grid tick comes after it leaves
	// at its token: a grid of 10 s whose next tick is about 6 s away, the
	// token about 1 s away, the deadline at 3 s.
	b := newAIMD(1, 0, false, DefaultPaceWindow, nil)
	require.NoError(t, b.wait(context.Background()), "the burst's token")
	b.period.Store(int64(10 * time.Second))
	b.phase = time.Now().Add(6*time.Second).UnixNano() % int64(10*time.Second)
	ctx3, cancel3 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel3()
	require.NoError(t, b.wait(ctx3), "the token is due before the deadline")
	assert.NoError(t, ctx3.Err(), "left before the deadline")
}
