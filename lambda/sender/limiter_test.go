package sender

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// clock is a manual clock for the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestAIMD(maxRate float64) (*aimd, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newAIMD(maxRate, 0, true, 0, c.now), c
}

// succeed feeds successes at perSecond for d.
func succeed(a *aimd, c *clock, perSecond float64, d time.Duration) {
	step := time.Duration(float64(time.Second) / perSecond)
	for end := c.t.Add(d); c.t.Before(end); c.advance(step) {
		a.success()
	}
}

func TestAIMDFirstThrottleSetsRateFromMeasurement(t *testing.T) {
	a, c := newTestAIMD(0)
	require.Equal(t, 0.0, a.current, "starts unlimited")
	require.Equal(t, rate.Inf, a.lim.Limit())

	succeed(a, c, 1000, 50*time.Millisecond)
	a.throttled()
	assert.Equal(t, 0.0, a.current, "no cut in the first cooldown of a busy period")

	succeed(a, c, 1000, 400*time.Millisecond)
	a.throttled()
	assert.InDelta(t, 900, a.current, 10, "cut to 90% of the measured 1,000/s")
	assert.InDelta(t, 900, float64(a.lim.Limit()), 10, "the token bucket follows")
}

// A cold sender opens its connections in its first few hundred milliseconds,
// so its success rate ramps up; the first 429 comes at the top of the ramp,
// and the rate the server accepts is the recent one, not the busy period's
// average (which would start the limit near half the server's rate).
func TestAIMDFirstThrottleMeasuresPastTheRamp(t *testing.T) {
	a, c := newTestAIMD(0)
	succeed(a, c, 1000, 100*time.Millisecond)
	succeed(a, c, 4000, 100*time.Millisecond)
	succeed(a, c, 10000, 150*time.Millisecond)
	a.throttled()
	assert.InDelta(t, 10000, a.ceiling, 200, "the rate of the last 100 ms is what the server accepts")
	assert.InDelta(t, 9000, a.current, 180, "cut to 90% of it")
	assert.Less(t, a.meter.rate(c.now()), 7000.0, "where the whole busy period's average would have been")
}

func TestAIMDCutsOncePerCooldown(t *testing.T) {
	a, c := newTestAIMD(0)
	succeed(a, c, 2000, 500*time.Millisecond)
	a.throttled()
	first := a.current
	require.InDelta(t, 1800, first, 20)

	c.advance(50 * time.Millisecond)
	a.throttled()
	assert.Equal(t, first, a.current, "a second 429 within the cooldown does not cut again")

	c.advance(60 * time.Millisecond)
	a.throttled()
	assert.InDelta(t, first*aimdDecrease, a.current, 1e-9, "after the cooldown it cuts by 10% again")
	assert.Equal(t, first, a.ceiling, "and remembers the limit it cut from")
}

// TestAIMDCutsLessWhenReprobingTheLastCeiling: a 429 met after getting back
// to the last ceiling (probing a limit that has not moved) cuts 5%; one met
// before getting back there (the limit came down) cuts the full 10%.
func TestAIMDCutsLessWhenReprobingTheLastCeiling(t *testing.T) {
	a, c := newTestAIMD(0)
	succeed(a, c, 2000, 500*time.Millisecond)
	a.throttled()
	require.InDelta(t, 1800, a.current, 20, "the first cut is the full 10%")
	ceiling := a.ceiling

	// Recover to the ceiling and just past it, then the 429 of the probe.
	for a.current < ceiling*1.01 {
		succeed(a, c, a.current, 10*time.Millisecond)
	}
	probe := a.current
	c.advance(aimdCooldown)
	a.throttled()
	assert.InDelta(t, probe*aimdReprobe, a.current, 1e-9, "a 429 at the old limit cuts 5%")
	assert.Equal(t, probe, a.ceiling)

	// Throttled again before it is back: the limit came down.
	below := a.current
	c.advance(aimdCooldown)
	a.throttled()
	assert.InDelta(t, below*aimdDecrease, a.current, 1e-9, "a 429 below the last ceiling cuts 10%")
}

// TestAIMDRestartsBelowTheLastCeilingAfterIdle: a limit probing above the
// last ceiling when the sender goes idle starts the next busy period just
// below that ceiling; waits within a busy period leave it alone.
func TestAIMDRestartsBelowTheLastCeilingAfterIdle(t *testing.T) {
	ctx := context.Background()
	a, c := newTestAIMD(0)
	succeed(a, c, 2000, 500*time.Millisecond)
	a.throttled()
	ceiling := a.ceiling
	for a.current < ceiling*1.05 {
		require.NoError(t, a.wait(ctx))
		succeed(a, c, a.current, 10*time.Millisecond)
	}
	probing := a.current
	c.advance(10 * time.Millisecond)
	require.NoError(t, a.wait(ctx))
	assert.Equal(t, probing, a.current, "no restart within a busy period")

	c.advance(time.Second)
	require.NoError(t, a.wait(ctx))
	assert.InDelta(t, ceiling*aimdReprobe, a.current, 1e-9, "after an idle second: just below the last ceiling")
	assert.InDelta(t, ceiling*aimdReprobe, float64(a.lim.Limit()), 1e-9, "the token bucket follows")

	// Below the ceiling already (still recovering): an idle pause keeps it.
	a.setLocked(ceiling * 0.5)
	c.advance(time.Second)
	require.NoError(t, a.wait(ctx))
	assert.Equal(t, ceiling*0.5, a.current)
}

func TestAIMDCutIgnoresAStall(t *testing.T) {
	a, c := newTestAIMD(0)
	succeed(a, c, 2000, 500*time.Millisecond)
	a.throttled()
	before := a.current
	// A stall: no successes for most of the window, then the burst's 429.
	c.advance(450 * time.Millisecond)
	a.success()
	c.advance(10 * time.Millisecond)
	a.throttled()
	assert.InDelta(t, before*aimdDecrease, a.current, 1, "a depressed measurement does not deepen the cut")
}

func TestAIMDPersistentThrottlingBringsItDownFast(t *testing.T) {
	a, c := newTestAIMD(1000)
	a.throttled()
	require.Equal(t, 1000.0, a.current, "the 429 that opens a busy period does not cut")
	for range 10 {
		c.advance(100 * time.Millisecond)
		a.throttled()
	}
	assert.InDelta(t, 1000*0.3487, a.current, 1, "ten cuts in a second: 0.9^10 of the limit")
}

func TestAIMDNeverExceedsCap(t *testing.T) {
	a, c := newTestAIMD(500)
	require.Equal(t, 500.0, a.current, "starts at the cap")
	require.Equal(t, rate.Limit(500), a.lim.Limit())

	succeed(a, c, 500, 5*time.Second)
	assert.Equal(t, 500.0, a.current, "successes do not raise it past the cap")

	succeed(a, c, 500, 200*time.Millisecond)
	a.throttled()
	assert.InDelta(t, 450, a.current, 5, "a 429 cuts below the cap")
	succeed(a, c, a.current, 10*time.Second)
	assert.Equal(t, 500.0, a.current, "it recovers to the cap and stops there")
	assert.Equal(t, rate.Limit(500), a.lim.Limit())
}

func TestAIMDRecoversQuicklyToTheLastCeiling(t *testing.T) {
	a, c := newTestAIMD(0)
	succeed(a, c, 4000, 500*time.Millisecond)
	a.throttled()
	require.InDelta(t, 3600, a.current, 40)
	// Throttled hard for half a second (other traffic took the budget).
	for range 5 {
		c.advance(100 * time.Millisecond)
		a.throttled()
	}
	require.InDelta(t, 3600*0.59, a.current, 30)

	// Successes at the current limit: fast recovery (50%/s) below the last
	// ceiling, then slower.
	for range 15 {
		succeed(a, c, a.current, 100*time.Millisecond)
	}
	assert.Greater(t, a.current, 2800.0, "back near the last limit within 1.5 s")
	assert.Less(t, a.current, 4500.0)
}

func TestAIMDDoesNotInflateAnUnusedLimit(t *testing.T) {
	a, c := newTestAIMD(0)
	succeed(a, c, 1000, 500*time.Millisecond)
	a.throttled()
	require.InDelta(t, 900, a.current, 10)
	// Held back by concurrency at 300/s, far below the limit: once the meter
	// has forgotten the faster past, it does not grow.
	succeed(a, c, 300, time.Second)
	held := a.current
	succeed(a, c, 300, 20*time.Second)
	assert.Equal(t, held, a.current)
	// At 700/s the limit may grow to 1.5x that, no further.
	succeed(a, c, 700, 20*time.Second)
	assert.Greater(t, a.current, held)
	assert.LessOrEqual(t, a.current, aimdHeadroom*700+aimdMinRate+aimdRecover+1)
}

func TestAIMDStaysAboveMinimum(t *testing.T) {
	a, c := newTestAIMD(0)
	c.advance(time.Second)
	a.throttled() // opens a busy period with no successes
	c.advance(200 * time.Millisecond)
	a.throttled()
	assert.Equal(t, aimdMinRate, a.current)
	for range 10 {
		c.advance(200 * time.Millisecond)
		a.throttled()
	}
	assert.Equal(t, aimdMinRate, a.current)
}

// TestAIMDHoldsACapBelowTheMinimum: a cap below aimdMinRate (a rate hint of
// 5/s: a budget of 50 over 10 workers) holds, after cuts and when set later.
func TestAIMDHoldsACapBelowTheMinimum(t *testing.T) {
	a, c := newTestAIMD(5)
	assert.Equal(t, 5.0, a.current)
	c.advance(time.Second)
	a.throttled()
	c.advance(200 * time.Millisecond)
	a.throttled()
	assert.LessOrEqual(t, a.current, 5.0, "a cut never lifts the rate above the cap")
	b, _ := newTestAIMD(0)
	b.setCap(2)
	assert.Equal(t, 2.0, b.current)
	assert.Equal(t, rate.Limit(2), b.lim.Limit())
}

func TestAIMDFixedCapWithoutAdaptation(t *testing.T) {
	c := &clock{t: time.Now()}
	a := newAIMD(200, 0, false, 0, c.now)
	for range 100 {
		a.success()
		a.throttled()
		c.advance(200 * time.Millisecond)
	}
	assert.Equal(t, 200.0, a.current, "DisableAdaptive keeps the cap as a fixed rate")
}

func TestNewSenderLimiter(t *testing.T) {
	fixed := NewSender(nil, Options{DisableAdaptive: true})
	assert.Equal(t, rate.Inf, fixed.limiter.lim.Limit(), "neither cap nor adaptation: the limiter lets everything through")
	s := NewSender(nil, Options{MaxRate: 300})
	require.NotNil(t, s.limiter)
	assert.Equal(t, 300.0, s.Rate())
	assert.Equal(t, float64(DefaultStartRate), NewSender(nil, Options{}).Rate(), "adaptive starts at API Gateway's default limit")
	assert.Equal(t, 0.0, NewSender(nil, Options{StartRate: -1}).Rate(), "negative StartRate starts unlimited")
	assert.Equal(t, 300.0, NewSender(nil, Options{MaxRate: 300, StartRate: 500}).Rate(), "a lower cap wins")
	assert.Equal(t, 500.0, NewSender(nil, Options{MaxRate: 30000, StartRate: 500}).Rate(), "a lower start wins")
	assert.Equal(t, 0.0, NewSender(nil, Options{DisableAdaptive: true, StartRate: 500}).Rate(), "no start rate without adaptation")
}

func TestAIMDProbesFasterWhileNotThrottled(t *testing.T) {
	a, c := newTestAIMD(0)
	succeed(a, c, 1000, 500*time.Millisecond)
	a.throttled()
	require.InDelta(t, 900, a.current, 10)
	for range 30 {
		succeed(a, c, a.current, 100*time.Millisecond)
	}
	assert.Greater(t, a.current, 1500.0, "3 s without a 429 grows the limit faster than 10%/s (1,000 × 1.1³ ≈ 1,331)")

}

func TestAIMDStep(t *testing.T) {
	a, c := newTestAIMD(0)
	a.lastCut, a.ceiling, a.current = c.now(), 1000, 1000
	assert.Equal(t, aimdIncrease, a.stepLocked(c.now()), "at the ceiling right after a cut: 10% per second")
	assert.InDelta(t, 3*aimdIncrease, a.stepLocked(c.now().Add(time.Second)), 1e-9, "one quiet second later: 30%")
	assert.Equal(t, aimdRecover, a.stepLocked(c.now().Add(5*time.Second)), "capped at 50%")
	a.current = 800
	assert.Equal(t, aimdRecover, a.stepLocked(c.now()), "below the ceiling: fast recovery")
}

func TestSetRateHintCapsTheSender(t *testing.T) {
	s := NewSender(nil, Options{StartRate: -1})
	s.SetRateHint(1250)
	assert.Equal(t, 1250.0, s.Rate(), "an unlimited sender starts at the hint")
	assert.InDelta(t, 1250, float64(s.limiter.lim.Limit()), 1e-9)
	assert.Equal(t, 12, s.limiter.lim.Burst(), "burst follows the rate (10 ms worth)")

	s.SetRateHint(0)
	assert.Equal(t, 0.0, s.Rate(), "no hint: unlimited again when nothing was learnt below the cap")
	assert.Equal(t, rate.Inf, s.limiter.lim.Limit())
}

func TestSetRateHintKeepsLearntRateBelowTheCap(t *testing.T) {
	s := NewSender(nil, Options{StartRate: -1})
	s.SetRateHint(2000)
	s.limiter.mu.Lock()
	s.limiter.setLocked(1500) // learnt from 429s
	s.limiter.mu.Unlock()
	s.SetRateHint(1800)
	assert.Equal(t, 1500.0, s.Rate(), "a learnt rate below the new cap is kept")
	s.SetRateHint(1000)
	assert.Equal(t, 1000.0, s.Rate(), "a cap below the learnt rate lowers it")
	s.SetRateHint(3000)
	assert.Equal(t, 3000.0, s.Rate(), "pinned at the previous cap: moves up to the new one")
	s.SetRateHint(0)
	assert.Equal(t, 0.0, s.Rate(), "pinned at the cap when it is removed: unlimited")
}

func TestSetRateHintHonoursMaxRate(t *testing.T) {
	s := NewSender(nil, Options{MaxRate: 800})
	s.SetRateHint(1250)
	assert.Equal(t, 800.0, s.Rate(), "Options.MaxRate is lower: it holds")
	s.SetRateHint(500)
	assert.Equal(t, 500.0, s.Rate(), "the hint is lower: it holds")
	s.SetRateHint(0)
	assert.Equal(t, 800.0, s.Rate(), "hint removed: back to Options.MaxRate")

	started := NewSender(nil, Options{})
	started.SetRateHint(1250)
	assert.Equal(t, 1250.0, started.Rate(), "a hint below the start rate holds")
	started.SetRateHint(0)
	assert.Equal(t, float64(DefaultStartRate), started.Rate(), "hint removed: back to the start rate")

	fixed := NewSender(nil, Options{DisableAdaptive: true})
	fixed.SetRateHint(400)
	assert.Equal(t, 400.0, fixed.Rate(), "a sender without adaptation is capped too")
	fixed.limiter.throttled()
	assert.Equal(t, 400.0, fixed.Rate(), "and stays a fixed rate")
}

func TestAIMDStartRateProbesUpwards(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAIMD(0, 1000, true, 0, c.now)
	require.Equal(t, 1000.0, a.current, "starts at the start rate, not unlimited")
	require.Equal(t, 10, a.lim.Burst())
	for range 20 {
		succeed(a, c, a.current, 100*time.Millisecond)
	}
	assert.Greater(t, a.current, 2000.0, "2 s without a 429 at the start rate: a higher limit is found")

	a.throttled()
	assert.InDelta(t, a.ceiling*aimdDecrease, a.current, 1e-9, "the first 429 cuts from the limit, as any later one")
}

// The default attempts outlast, on average twice over, the limiter's descent
// from the default start rate to a 3,000/s limit (10% per cooldown): the
// throttled recipients of that descent are retried, not lost.
func TestDefaultAttemptsOutlastTheDescentFromTheStartRate(t *testing.T) {
	s := NewSender(nil, Options{})
	require.Equal(t, DefaultMaxAttempts, s.opts.MaxAttempts)
	cuts := math.Ceil(math.Log(3000.0/DefaultStartRate) / math.Log(aimdDecrease))
	descent := time.Duration(cuts) * aimdCooldown
	var meanBackoff time.Duration
	for attempt := 1; attempt < s.opts.MaxAttempts; attempt++ {
		ceiling := min(s.opts.BaseBackoff<<(attempt-1), s.opts.MaxBackoff)
		meanBackoff += ceiling / 2 // full jitter: uniform in [0, ceiling]
	}
	assert.GreaterOrEqual(t, meanBackoff, 2*descent, "mean backoff %s, descent %s", meanBackoff, descent)
}

// feed gives the limiter successes and 429s at the given rates for d, as a
// server answers that accepts okPerSecond of what the sender offers; with
// untilCut it stops at the first cut.
func feed(a *aimd, c *clock, okPerSecond, throttledPerSecond float64, d time.Duration, untilCut bool) {
	step := time.Millisecond
	var ok, thr float64
	last := a.lastCut
	for end := c.t.Add(d); c.t.Before(end) && !(untilCut && a.lastCut != last); c.advance(step) {
		ok += okPerSecond * step.Seconds()
		thr += throttledPerSecond * step.Seconds()
		for ; ok >= 1; ok-- {
			a.success()
		}
		for ; thr >= 1 && !(untilCut && a.lastCut != last); thr-- {
			a.throttled()
		}
	}
}

// A sender that starts at 10,000/s against a server accepting 1,000/s meets
// 429s on most posts: each cut halves the limit, or goes to what the server
// accepted once that is nearer, so it gets there in four cuts (0.4 s)
// instead of twenty-two of a tenth (2.2 s).
func TestAIMDMostlyThrottledGoesToTheAcceptedRate(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAIMD(0, DefaultStartRate, true, 0, c.now)
	offered := float64(DefaultStartRate)
	var limits []float64
	for range 4 {
		feed(a, c, 1000, offered-1000, 150*time.Millisecond, true)
		limits = append(limits, a.current)
		offered = max(a.current, 1001)
	}
	assert.InDelta(t, DefaultStartRate*aimdClampFloor*aimdReprobe, limits[0], 1, "at most halved per cut: %v", limits)
	assert.InDelta(t, limits[0]*aimdClampFloor*aimdReprobe, limits[1], 1, "halved again: %v", limits)
	assert.InDelta(t, 1100, limits[2], 50, "at the accepted rate after three cuts: %v", limits)
	assert.Less(t, limits[3], 1100.0, "and near it after four: %v", limits)
}

// A moment in which another sender takes the whole budget (429s, no
// success) halves the limit: it does not drop it to the minimum.
func TestAIMDNoSuccessAtAllHalvesTheLimit(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAIMD(0, 4000, true, 0, c.now)
	feed(a, c, 4000, 0, 300*time.Millisecond, false)
	// The first 429 comes with the last 100 ms full of successes: a step.
	before := a.current
	feed(a, c, 0, 4000, 150*time.Millisecond, true)
	require.InDelta(t, before*aimdDecrease, a.current, 1)
	// A cooldown later nothing but 429s: halved, not the accepted 0/s.
	before = a.current
	feed(a, c, 0, 4000, 150*time.Millisecond, true)
	assert.InDelta(t, before*aimdClampFloor*aimdReprobe, a.current, 1)
}

// At the limit a probing sender meets a few 429s among many successes: the
// cut is the usual one, not the measured rate. (The tests below cap the
// limit at its start so that successes do not raise it before the cut.)
func TestAIMDFewThrottlesCutByTheStep(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAIMD(DefaultStartRate, DefaultStartRate, true, 0, c.now)
	feed(a, c, 6000, 500, 150*time.Millisecond, true)
	assert.InDelta(t, DefaultStartRate*aimdDecrease, a.current, 1e-9)
	assert.Equal(t, float64(DefaultStartRate), a.ceiling)
}

// Fewer than aimdClampMin 429s (a handful of posts at a low rate) are not
// enough to measure by: the usual cut.
func TestAIMDAFewThrottlesAtALowRateCutByTheStep(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAIMD(100, 100, true, 0, c.now)
	feed(a, c, 20, 40, 150*time.Millisecond, true)
	assert.InDelta(t, 100*aimdDecrease, a.current, 1e-9)
}

// After a stall, the burst that follows meets 429s, but the successes of
// the same cooldown outnumber them: the usual cut.
func TestAIMDBurstAfterAStallCutsByTheStep(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := newAIMD(5000, 5000, true, 0, c.now)
	feed(a, c, 5000, 0, 300*time.Millisecond, false)
	c.advance(60 * time.Millisecond) // stalled
	feed(a, c, 2000, 1000, 100*time.Millisecond, true)
	assert.InDelta(t, 5000*aimdDecrease, a.current, 1e-9)
}
