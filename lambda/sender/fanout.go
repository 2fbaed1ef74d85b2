package sender

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

// Status is the outcome of one recipient of a fan-out.
type Status string

// Recipient outcomes.
const (
	StatusDelivered Status = "delivered"
	StatusGone      Status = "gone"
	StatusTooLarge  Status = "too_large"
	StatusForbidden Status = "forbidden"
	StatusFailed    Status = "failed"
)

// Result is the outcome for one connection.
type Result struct {
	// ConnectionID is the recipient.
	ConnectionID string `json:"connectionId"`
	// Status says what happened.
	Status Status `json:"status"`
	// Attempts is how many posts were made (0 when the local guard refused).
	Attempts int `json:"attempts,omitempty"`
	// Err is the last error, nil when delivered.
	Err error `json:"-"`
}

// Report sums up a fan-out.
type Report struct {
	// Delivered, Gone, TooLarge, Forbidden and Failed count recipients by status.
	Delivered, Gone, TooLarge, Forbidden, Failed int
	// Retries counts extra attempts after throttling or server errors.
	Retries int
	// Throttled counts 429 answers met along the way.
	Throttled int
	// Batches counts the batches handed to fan-out workers (package
	// lambda/fanout) instead of being sent here; their recipients are not
	// counted in this report.
	Batches int
	// Results has one entry per recipient, in completion order (without the
	// delivered ones when Options.OmitDelivered is set).
	Results       []Result
	omitDelivered bool
}

// Total is the number of recipients.
func (r Report) Total() int { return r.Delivered + r.Gone + r.TooLarge + r.Forbidden + r.Failed }

func (r *Report) add(res Result) {
	switch res.Status {
	case StatusDelivered:
		r.Delivered++
	case StatusGone:
		r.Gone++
	case StatusTooLarge:
		r.TooLarge++
	case StatusForbidden:
		r.Forbidden++
	default:
		r.Failed++
	}
	if r.omitDelivered && res.Status == StatusDelivered {
		return
	}
	r.Results = append(r.Results, res)
}

// Merge adds other's counts and results to r.
func (r *Report) Merge(other Report) {
	r.Retries += other.Retries
	r.Throttled += other.Throttled
	r.Batches += other.Batches
	r.Delivered += other.Delivered
	r.Gone += other.Gone
	r.TooLarge += other.TooLarge
	r.Forbidden += other.Forbidden
	r.Failed += other.Failed
	r.Results = append(r.Results, other.Results...)
}

// Options configure a Sender. The zero value is usable.
type Options struct {
	// Concurrency bounds the posts in flight, of all the sender's sends
	// together (a fan-out worker delivers the batches of one invocation at
	// once, and Lambda allows 1,024 open files). Default 256: API Gateway calls
	// take tens of milliseconds, so 200 in flight are needed for 10,000/s
	// (64 cap a fan-out at 3,200/s at 20 ms; see docs/benchmarks.md). Once
	// API Gateway throttles, the adaptive limiter sets the pace, not this.
	//
	// Concurrency is sized for API Gateway's default account limit
	// (10,000/s). A sender capped below it (MaxRate, SetRateHint: a
	// distributed fan-out worker's share of the budget) keeps in flight its
	// share of Concurrency, at least minInflight (16): Concurrency x cap /
	// 10,000, the same latency allowance (25.6 ms by default) at its own
	// rate. Paced at its cap, it needs no more; when the latency grows past
	// the allowance (a server or a machine short of CPU) more posts in flight
	// would only queue, each on a connection of its own: eight workers at
	// 1,250/s on two cores, 256 in flight each, spent 126 µs per post, met
	// 429s on 4% of them and reached 69% of the limit; with 32 each, 82 to
	// 99 µs, 0.1% and 88 to 91% (docs/benchmarks.md, "Many workers"). Where
	// the latency has a higher floor (the lowest of a sender's successful
	// posts over the last complete second: a management API in another
	// region), the bound is at least 1.5 x cap x that floor, so the cap
	// stays reachable.
	Concurrency int
	// FullConcurrency keeps Concurrency posts in flight even while the
	// sender is capped, as before the share above: for comparison runs
	// (wsbench workers -modes hint-full).
	FullConcurrency bool
	// StepCutsOnly makes every 429 after the first cut the adaptive limit
	// by its step (10%, 5% when re-probing), also when most posts meet
	// 429s, as before the cut to the accepted rate: for comparison runs
	// (wsbench fanout -step-cuts-only).
	StepCutsOnly bool
	// MaxAttempts bounds the posts per recipient. Default 12 (DefaultMaxAttempts).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the full-jitter exponential backoff
	// between attempts. Defaults 25 ms and 2 s.
	BaseBackoff, MaxBackoff time.Duration
	// MaxRate caps the requests per second this sender makes (its share of the
	// account's 10,000/s). 0 means no cap other than the adaptive limit.
	MaxRate float64
	// StartRate is the rate the adaptive limiter starts at, in requests per
	// second. Default DefaultStartRate, API Gateway's default account limit:
	// a cold sender paces its first posts at the limit instead of putting
	// Concurrency posts on the wire at once, whose 429s (the account's bucket
	// holds a few milliseconds' worth) and their backoff would stretch a
	// 1,000-recipient fan-out several times over. From there the limiter
	// probes upwards (an account with a raised limit is found within seconds)
	// and cuts on 429s as usual. Negative starts unlimited: only the
	// concurrency bounds the rate until the first 429. MaxRate, when lower,
	// wins; ignored when DisableAdaptive is set.
	StartRate float64
	// DisableAdaptive turns off the AIMD rate limiter, which is on by default:
	// the rate is cut by 10% (at most once per 100 ms) when API Gateway
	// throttles, straight to the rate it accepted when most posts meet 429s,
	// and grows back after successes, so one fan-out neither wastes
	// the account's budget on 429s nor starves other traffic. With it off,
	// MaxRate (if set) is a fixed rate.
	DisableAdaptive bool
	// PaceWindow groups the posts the rate limiter holds back. A post whose
	// token is not due yet waits for the next tick of a grid whose period is
	// PaceWindow or the time paceGroup (16) tokens take at the current rate,
	// whichever is shorter, so the posts whose tokens fall due within one
	// period leave together: one wake-up (and answers arriving together) per
	// group instead of per post. The rate is unchanged, a group is never
	// larger than the limiter's burst (10 ms of tokens), and a post leaves at
	// most one period later than its token. It is for a sender held to a
	// few thousand posts per second (a fan-out worker's share of the budget,
	// MaxRate, a low account limit): at 1,250/s it halves the CPU per post
	// (docs/benchmarks.md, "CPU per post at a capped rate"). Above 3,200/s
	// there is no grid (see paceMinPeriod), so a sender at the account's
	// limit paces as before. Default DefaultPaceWindow; negative wakes every
	// post at its own token.
	PaceWindow time.Duration
	// OmitDelivered leaves delivered recipients out of Report.Results (they
	// are still counted), so a fan-out to 100,000 connections keeps only the
	// failures in memory.
	OmitDelivered bool
	// OnGone is called once for each connection that answered 410, so the
	// caller can remove it and its memberships. Errors are the caller's to log.
	// It runs after the post has given back its Concurrency slot, so it may
	// send through the same Sender.
	OnGone func(ctx context.Context, id string)
	// Sleep waits between attempts; nil means a timer honouring ctx. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Metrics receives the delivery counters of every send (see package
	// metrics); nil records nothing.
	Metrics metrics.Recorder
}

// DefaultConcurrency is Options.Concurrency when unset.
const DefaultConcurrency = 256

// minInflight is the least in-flight bound of a capped sender: one tick of
// the pacing grid (paceGroup posts) leaves at once.
const minInflight = paceGroup

// inflightLatencyGain is how many times its rate times its latency floor
// (the lowest latency of its recent posts) a capped sender keeps in flight at
// least: room for latency that varies around a floor above the 25.6 ms
// Concurrency is sized for (a management API in another region, a stand-in
// with long calls).
const inflightLatencyGain = 1.5

// inflightFor is the posts a sender with the given Concurrency keeps in
// flight while capped at limit posts per second (0 = no cap): its share of
// Concurrency, which is sized for DefaultStartRate (see Options.Concurrency),
// or inflightLatencyGain x limit x floor when that is more, at least
// minInflight and at most Concurrency. floor is the latency floor (0 = none
// measured yet).
func inflightFor(concurrency int, limit float64, floor time.Duration) int {
	if limit <= 0 || limit >= DefaultStartRate {
		return concurrency
	}
	n := math.Ceil(float64(concurrency) * limit / DefaultStartRate)
	n = max(n, math.Ceil(inflightLatencyGain*limit*floor.Seconds()))
	return min(concurrency, max(int(n), minInflight))
}

// latencyWindow is the span of posts the latency floor is taken over.
const latencyWindow = time.Second

// latencyFloor is the lowest latency of the successful posts of the last
// complete window (latencyWindow, or window when set): 0 until one window of
// posts is complete, and again after a window without posts. Only whole
// windows count: the first posts of a sender open their connections, and on
// a busy machine a few samples are no floor at all.
type latencyFloor struct {
	mu       sync.Mutex
	window   time.Duration // 0 = latencyWindow; tests shorten it
	cur      time.Duration // lowest of the current window
	floor    time.Duration // lowest of the last complete one, 0 = none
	curStart time.Time
}

// span is the window in use.
func (f *latencyFloor) span() time.Duration {
	if f.window <= 0 {
		return latencyWindow
	}
	return f.window
}

// observe notes a post's latency d at now and returns the floor.
func (f *latencyFloor) observe(now time.Time, d time.Duration) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.span()
	switch {
	case f.curStart.IsZero() || now.Sub(f.curStart) >= 2*w:
		f.floor, f.cur, f.curStart = 0, d, now
	case now.Sub(f.curStart) >= w:
		f.floor, f.cur, f.curStart = f.cur, d, now
	case d < f.cur:
		f.cur = d
	}
	return f.floor
}

// get returns the floor at now: 0 once a window has passed without posts,
// as the next post would find.
func (f *latencyFloor) get(now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.curStart.IsZero() || now.Sub(f.curStart) >= 2*f.span() {
		return 0
	}
	return f.floor
}

// DefaultPaceWindow is Options.PaceWindow when unset.
const DefaultPaceWindow = 10 * time.Millisecond

// DefaultMaxAttempts is Options.MaxAttempts when unset. A sender starting at
// DefaultStartRate against an account that accepts less (3,000/s, or the
// share other traffic leaves) meets 429s until its limiter has cut its way
// down: 10% per 100 ms while fewer than half of its posts meet 429s (from
// 10,000/s to 5,000/s in 0.7 s), by up to half per 100 ms towards the
// accepted rate below that.
// The attempts' backoffs (on average half of 25 ms, 50 ms, ... up to
// MaxBackoff each) must outlast that descent, or recipients are lost to
// throttling alone (8 attempts, about 1.6 s of backoff on average, lost 2 of
// 10,000 at 3,000/s when every cut was a step; 12 give about 5.6 s).
const DefaultMaxAttempts = 12

// DefaultStartRate is Options.StartRate when unset: API Gateway's default
// account-wide request rate.
const DefaultStartRate = 10000

// Sender delivers one payload to many connections with bounded concurrency,
// retries on throttling and server errors with jittered backoff, and adapts
// its rate to the throttling it meets. It is safe for concurrent use and meant
// to be reused (it keeps its learnt rate). Build it with NewSender; the zero
// value is not usable.
type Sender struct {
	poster  Poster
	opts    Options
	limiter *aimd
	slots   chan struct{} // posts in flight, Options.Concurrency at most, some held by the sender (see hold)
	// The in-flight bound of a capped sender (inflightFor) is the slots it
	// does not hold itself: hold is how many it should hold (Concurrency
	// minus the bound), held how many it does. held changes under holdMu
	// only; release reads both without it on its fast path.
	hold, held atomic.Int64
	holdMu     sync.Mutex
	limit      atomic.Uint64 // math.Float64bits of the cap the bound follows, 0 = none
	capped     atomic.Bool   // the bound is below Concurrency for the cap: post latencies are measured
	floor      latencyFloor
	lastFloor  atomic.Int64 // the floor the bound was last set from, in nanoseconds
}

// NewSender returns a fan-out sender over poster.
func NewSender(poster Poster, opts Options) *Sender {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 25 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 2 * time.Second
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.StartRate == 0 {
		opts.StartRate = DefaultStartRate
	}
	start := max(opts.StartRate, 0)
	if opts.DisableAdaptive {
		start = 0
	}
	if opts.PaceWindow == 0 {
		opts.PaceWindow = DefaultPaceWindow
	}
	opts.Metrics = metrics.Or(opts.Metrics)
	// The limiter exists even when it has nothing to do (adaptive off, no
	// cap), so that SetRateHint can cap a send later; an unlimited
	// rate.Limiter lets every post through without waiting.
	s := &Sender{poster: poster, opts: opts, limiter: newAIMD(opts.MaxRate, start, !opts.DisableAdaptive, opts.PaceWindow, nil),
		slots: make(chan struct{}, opts.Concurrency)}
	s.limiter.stepOnly = opts.StepCutsOnly
	s.bound(opts.MaxRate)
	return s
}

// bound sets the in-flight bound for a cap of limit posts per second (0 =
// none), see rebound.
func (s *Sender) bound(limit float64) {
	if s.opts.FullConcurrency {
		limit = 0
	}
	s.limit.Store(math.Float64bits(limit))
	s.capped.Store(limit > 0 && limit < DefaultStartRate)
	s.rebound()
}

// observeLatency notes the latency of a post that started at start and, when
// the latency floor has changed, sets the in-flight bound from it.
func (s *Sender) observeLatency(start time.Time) {
	now := time.Now()
	if f := s.floor.observe(now, now.Sub(start)); int64(f) != s.lastFloor.Load() {
		s.rebound()
	}
}

// rebound sets the in-flight bound from the cap and the latency floor: held
// slots beyond the new number to hold are given back at once, free slots are
// taken while there are any, and release holds the rest as posts in flight
// end.
func (s *Sender) rebound() {
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	floor := s.floor.get(time.Now())
	s.lastFloor.Store(int64(floor))
	want := int64(s.opts.Concurrency - inflightFor(s.opts.Concurrency, math.Float64frombits(s.limit.Load()), floor))
	s.hold.Store(want)
	for h := s.held.Load(); h > want; h-- {
		<-s.slots // never blocks: the held slots are in the channel
		s.held.Store(h - 1)
	}
	for h := s.held.Load(); h < want; h++ {
		select {
		case s.slots <- struct{}{}:
			s.held.Store(h + 1)
		default:
			return
		}
	}
}

// release gives back a post's slot; while the sender holds fewer slots than
// its bound asks it keeps the slot instead, and while it holds more it gives
// back one of those too.
func (s *Sender) release() {
	if s.held.Load() == s.hold.Load() {
		<-s.slots
		return
	}
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	switch h, want := s.held.Load(), s.hold.Load(); {
	case h < want:
		s.held.Store(h + 1)
		return
	case h > want:
		<-s.slots
		s.held.Store(h - 1)
	}
	<-s.slots
}

// inflight is the sender's current in-flight bound.
func (s *Sender) inflight() int { return s.opts.Concurrency - int(s.hold.Load()) }

// Poster returns the management API the sender posts through.
func (s *Sender) Poster() Poster { return s.poster }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Send delivers data to every id. Duplicated ids are sent once.
func (s *Sender) Send(ctx context.Context, ids []string, data []byte) Report {
	rep, _ := s.SendPages(ctx, data, func(fn func([]string) error) error { return fn(ids) })
	return rep
}

// SendPages delivers data to the ids that pages yields, page by page, so a
// channel of 100,000 members is streamed from the store without holding every
// page first. The error is the pages iterator's or ctx's.
func (s *Sender) SendPages(ctx context.Context, data []byte, pages func(fn func(ids []string) error) error) (Report, error) {
	return s.sendPages(ctx, data, pages, s.opts.OmitDelivered)
}

// SendPagesOmitDelivered is SendPages with Report.Results holding only the
// recipients that were not delivered, whatever Options.OmitDelivered says:
// for channel sends and broadcasts, where a result per delivered recipient
// would grow with the audience, from a Sender shared with per-recipient sends
// (so that both share the learnt rate).
func (s *Sender) SendPagesOmitDelivered(ctx context.Context, data []byte, pages func(fn func(ids []string) error) error) (Report, error) {
	return s.sendPages(ctx, data, pages, true)
}

func (s *Sender) sendPages(ctx context.Context, data []byte, pages func(fn func(ids []string) error) error, omitDelivered bool) (Report, error) {
	var (
		rep                = Report{omitDelivered: omitDelivered}
		mu                 sync.Mutex
		wg                 sync.WaitGroup
		seen               = map[string]struct{}{}
		work               = make(chan string)
		workers            int
		oversize           = len(data) > MaxPayload
		retries, throttled atomic.Int64
		attempts           atomic.Int64
		start              = time.Now()
	)
	record := func(res Result) {
		attempts.Add(int64(res.Attempts))
		mu.Lock()
		rep.add(res)
		mu.Unlock()
	}
	handle := func(id string) {
		res, r, t := s.postOnce(ctx, id, data)
		// OnGone runs without a slot: it may send through this sender
		// (presence leaves announce member_left), and a callback waiting
		// for a slot while holding one could deadlock once every slot is
		// held by such callbacks.
		if res.Status == StatusGone && s.opts.OnGone != nil {
			s.opts.OnGone(ctx, id)
		}
		retries.Add(int64(r))
		throttled.Add(int64(t))
		record(res)
	}
	// Up to Concurrency long-lived workers, started as the work needs them
	// (those beyond a capped sender's in-flight bound wait for a slot, and
	// take it when a hint is lifted mid-send):
	// a goroutine per recipient would grow a fresh stack through the HTTP
	// client's deep call chain on every post (a tenth of a post's CPU).
	dispatch := func(id string) error {
		select {
		case work <- id:
			return nil
		default:
		}
		if workers < s.opts.Concurrency {
			workers++
			wg.Go(func() {
				handle(id)
				for next := range work {
					handle(next)
				}
			})
			return nil
		}
		select {
		case work <- id:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := pages(func(ids []string) error {
		for i, id := range ids {
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			if oversize {
				record(tooLarge(id, len(data)))
				continue
			}
			if err := dispatch(id); err != nil {
				// Every recipient of this page not dispatched yet is
				// reported, so a caller never mistakes a cut-short
				// fan-out for a complete one.
				for _, rest := range ids[i:] {
					if _, dup := seen[rest]; dup && rest != id {
						continue
					}
					seen[rest] = struct{}{}
					record(Result{ConnectionID: rest, Status: StatusFailed, Err: fmt.Errorf("post to connection %s: %w", rest, err)})
				}
				return err
			}
		}
		return nil
	})
	close(work)
	wg.Wait()
	rep.Retries = int(retries.Load())
	rep.Throttled = int(throttled.Load())
	s.record(rep, int(attempts.Load()), time.Since(start))
	if err == nil && rep.Failed > 0 && ctx.Err() != nil {
		// Recipients failed because ctx ended (dispatched, then cut short
		// waiting for a slot or the limiter): say so, as the doc promises.
		err = ctx.Err()
	}
	return rep, err
}

// record reports one send's outcome to the metrics recorder. Duration and
// rate are recorded for sends to two or more recipients only: a single post
// says nothing about fan-out speed and would drown the fan-outs' samples.
func (s *Sender) record(rep Report, attempts int, took time.Duration) {
	m := s.opts.Metrics
	total := rep.Total()
	if total == 0 {
		return
	}
	m.Add(metrics.DeliveriesAttempted, float64(attempts))
	m.Add(metrics.DeliveriesSucceeded, float64(rep.Delivered))
	m.Add(metrics.DeliveriesGone, float64(rep.Gone))
	m.Add(metrics.DeliveriesRefused, float64(rep.TooLarge+rep.Forbidden))
	m.Add(metrics.DeliveriesFailed, float64(rep.Failed))
	m.Add(metrics.Throttled, float64(rep.Throttled))
	m.Add(metrics.Retries, float64(rep.Retries))
	m.Observe(metrics.Recipients, float64(total))
	if total >= 2 && took > 0 {
		m.Observe(metrics.FanoutDuration, float64(took.Microseconds())/1000)
		m.Observe(metrics.FanoutRate, float64(total)/took.Seconds())
	}
}

// deliver posts to one connection until it succeeds, fails for good or runs
// out of attempts. It returns the result, the retries and the 429s met.
func (s *Sender) deliver(ctx context.Context, id string, data []byte) (Result, int, int) {
	var (
		err       error
		throttled int
	)
	for attempt := 1; attempt <= s.opts.MaxAttempts; attempt++ {
		if s.limiter != nil {
			if werr := s.limiter.wait(ctx); werr != nil {
				return Result{ConnectionID: id, Status: StatusFailed, Attempts: attempt - 1, Err: werr}, attempt - 1, throttled
			}
		}
		var start time.Time
		capped := s.capped.Load()
		if capped {
			start = time.Now()
		}
		err = s.poster.Post(ctx, id, data)
		if err == nil {
			if capped {
				s.observeLatency(start)
			}
			if s.limiter != nil {
				s.limiter.success()
			}
			return Result{ConnectionID: id, Status: StatusDelivered, Attempts: attempt}, attempt - 1, throttled
		}
		switch {
		case errors.Is(err, ErrGone):
			return Result{ConnectionID: id, Status: StatusGone, Attempts: attempt, Err: err}, attempt - 1, throttled
		case errors.Is(err, ErrTooLarge):
			return Result{ConnectionID: id, Status: StatusTooLarge, Attempts: attempt, Err: err}, attempt - 1, throttled
		case errors.Is(err, ErrForbidden):
			return Result{ConnectionID: id, Status: StatusForbidden, Attempts: attempt, Err: err}, attempt - 1, throttled
		case errors.Is(err, ErrThrottled):
			throttled++
			if s.limiter != nil {
				s.limiter.throttled()
			}
		case !Retryable(err):
			return Result{ConnectionID: id, Status: StatusFailed, Attempts: attempt, Err: err}, attempt - 1, throttled
		}
		if attempt == s.opts.MaxAttempts {
			break
		}
		if serr := s.opts.Sleep(ctx, s.backoff(attempt)); serr != nil {
			return Result{ConnectionID: id, Status: StatusFailed, Attempts: attempt, Err: serr}, attempt - 1, throttled
		}
	}
	return Result{ConnectionID: id, Status: StatusFailed, Attempts: s.opts.MaxAttempts, Err: err}, s.opts.MaxAttempts - 1, throttled
}

// backoff is full-jitter exponential: uniform in [0, min(max, base*2^(n-1))].
func (s *Sender) backoff(attempt int) time.Duration {
	ceiling := s.opts.BaseBackoff << min(attempt-1, 20)
	if ceiling <= 0 || ceiling > s.opts.MaxBackoff {
		ceiling = s.opts.MaxBackoff
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// aimd is an additive-increase, multiplicative-decrease rate limiter.
//
//   - It starts at the start rate (Options.StartRate), at the cap when that
//     is lower, or unlimited (only the sender's concurrency bounds the rate)
//     when neither is set.
//   - The first 429 sets the limit to aimdDecrease (90%) of the success rate
//     measured over the last 100 ms (aimdFirstBuckets): until then the
//     concurrency alone set the pace, so that rate is what the server
//     accepted. A longer span would average in the ramp of a cold sender
//     still opening its connections.
//   - Every later 429 cuts the limit by aimdDecrease, at most once per
//     cooldown (100 ms), so persistent throttling takes it down by two
//     thirds within a second. The cut is taken from the limit, not from a
//     measurement: a stall (GC, a descheduled process) depresses the measured
//     rate and the 429s of the burst that follows it would otherwise cut deep.
//   - Unless 429s outnumbered the successes over the last cooldown (at least
//     aimdClampMin of them): then the server accepts far less than the limit,
//     and the limit goes to aimdReprobe (95%) of the success rate measured
//     over that cooldown, but no lower than aimdClampFloor (half) of itself,
//     and that rate becomes the ceiling: from 10,000/s to a 1,000/s server
//     in four cuts (0.4 s) instead of 22, and a moment with no success at all
//     halves the limit rather than dropping it to the minimum. A stall delays
//     the 429s as much as the successes, so it cannot trigger this.
//   - Each success adds aimdIncrease requests per second to the limit, that
//     is 10% of the rate per second of successes, growing by 10% more per
//     half second without a 429 up to aimdRecover (50%), or aimdRecover
//     straight away while the limit is below the one it was cut from (fast
//     recovery). The limit never exceeds the cap, and never grows to more
//     than aimdHeadroom times the measured success rate, so a sender held
//     back by its concurrency does not inflate a limit it is not using.
//
// No cut happens in the first cooldown after the sender goes busy: the 429s
// of the opening burst only mean the meter has too little data yet; they are
// retried like any other.
type aimd struct {
	mu       sync.Mutex
	now      func() time.Time
	lim      *rate.Limiter
	cap      float64 // hard cap, 0 = none
	start    float64 // first rate when no cap holds, 0 = unlimited
	adaptive bool
	stepOnly bool    // Options.StepCutsOnly
	current  float64 // 0 = unlimited so far
	ceiling  float64 // the limit at the last cut (or the measured rate at the first)
	lastCut  time.Time
	meter    successMeter
	lastWait atomic.Int64  // unix nanoseconds of the last wait
	window   time.Duration // Options.PaceWindow, <= 0 for none
	period   atomic.Int64  // the pacing grid's period in nanoseconds, 0 for none (see wait)
	phase    int64         // the grid's offset, random per limiter so that senders do not tick together
}

const (
	aimdCooldown = 100 * time.Millisecond
	aimdDecrease = 0.90 // multiplicative cut on a 429
	aimdReprobe  = 0.95 // the cut on a 429 met probing at or above the last ceiling
	aimdIncrease = 0.10 // additive step per success: 10% of the rate per second
	aimdRecover  = 0.50 // step per success while below the last ceiling
	aimdHeadroom = 1.5  // the limit grows to at most this multiple of the measured rate
	aimdMinRate  = 10.0
	// aimdClampMin is the fewest 429s in a cooldown that, outnumbering the
	// successes, set the limit to the measured success rate (see throttled).
	aimdClampMin = 8
	// aimdClampFloor bounds that cut: at most to this share of the limit.
	aimdClampFloor = 0.5
	// aimdFirstBuckets is the meter's span (5 buckets, 100 ms) for the first
	// 429's measurement: a cold sender is still opening connections in its
	// first few hundred milliseconds, and a longer span would average that
	// ramp into the rate the server accepts.
	aimdFirstBuckets = 5
)

func newAIMD(maxRate, start float64, adaptive bool, window time.Duration, now func() time.Time) *aimd {
	if now == nil {
		now = time.Now
	}
	a := &aimd{cap: maxRate, start: start, adaptive: adaptive, now: now, window: window}
	if window > 0 {
		a.phase = rand.Int64N(int64(window))
	}
	if first := a.firstRate(); first > 0 {
		a.current = first
		a.lim = rate.NewLimiter(rate.Limit(first), burstFor(first))
		a.period.Store(int64(pacePeriod(window, first)))
	} else {
		a.lim = rate.NewLimiter(rate.Inf, 1)
	}
	return a
}

// firstRate is the lower of the cap and the start rate that are set, 0 for none.
func (a *aimd) firstRate() float64 {
	switch {
	case a.cap > 0 && a.start > 0:
		return min(a.cap, a.start)
	case a.cap > 0:
		return a.cap
	}
	return a.start
}

// burstFor allows 10 ms of tokens at once: enough to keep the pipe full
// without bursting past a server's own small bucket.
func burstFor(r float64) int { return max(1, int(r/100)) }

// paceGroup is the most posts one tick of the pacing grid releases.
const paceGroup = 16

// paceMinPeriod is the shortest grid: above 3,200/s (paceGroup tokens in
// under 5 ms) the runtime's 1 ms timer resolution already wakes several
// posts at once, and a grid of 4 ms at 4,000/s and of 3.2 ms at 5,000/s
// cost more CPU per post than it saved (docs/benchmarks.md).
const paceMinPeriod = 5 * time.Millisecond

// pacePeriod is the pacing grid's period at rate r: the time paceGroup
// tokens take, at most window; 0 (no grid) under paceMinPeriod or without a
// window.
func pacePeriod(window time.Duration, r float64) time.Duration {
	if window <= 0 || r <= 0 {
		return 0
	}
	p := min(time.Duration(paceGroup/r*float64(time.Second)), window)
	if p < paceMinPeriod {
		return 0
	}
	return p
}

// paceWake is when a post whose token falls due at due leaves: the first
// tick of the grid (period p, offset phase) at or after due.
func paceWake(due time.Time, p time.Duration, phase int64) time.Time {
	if p <= 0 {
		return due
	}
	t := due.UnixNano() - phase
	ticks := t / int64(p)
	if ticks*int64(p) < t {
		ticks++
	}
	return time.Unix(0, ticks*int64(p)+phase)
}

// errPaceDeadline is a post whose turn comes after its context's deadline.
var errPaceDeadline = errors.New("sender: the post's turn under the rate limit comes after the context's deadline")

// wait takes one token, and when it is not due yet waits for the pacing
// grid's tick after it (Options.PaceWindow). The first wait after the sender
// was idle for a meter window starts the new busy period just below the last
// ceiling. A turn that would come after ctx's deadline gives its token back
// and fails at once, as rate.Limiter.Wait does; one whose token is due
// before the deadline but whose tick is not leaves at its token.
func (a *aimd) wait(ctx context.Context) error {
	if a.adaptive {
		now := a.now().UnixNano()
		if last := a.lastWait.Swap(now); now-last > int64(meterWindow) {
			a.restart()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	r := a.lim.ReserveN(now, 1)
	if !r.OK() {
		return a.lim.WaitN(ctx, 1) // a burst below one token: only WaitN's error
	}
	due := now.Add(r.DelayFrom(now))
	if !due.After(now) {
		return nil
	}
	wake := paceWake(due, time.Duration(a.period.Load()), a.phase)
	if dl, ok := ctx.Deadline(); ok && dl.Before(wake) {
		if dl.Before(due) {
			r.CancelAt(now)
			return errPaceDeadline
		}
		wake = due // the grid's tick is too late, the token is not
	}
	t := time.NewTimer(wake.Sub(now))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// restart brings a limit that was probing above the last ceiling back to
// just below it: the probe's overshoot met 429s before, and a new fan-out
// sent at it (its first posts go out at once, before any answer) would meet
// them again, each a retry that a small fan-out waits for.
func (a *aimd) restart() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ceiling > 0 && a.current > a.ceiling*aimdReprobe {
		a.setLocked(a.ceiling * aimdReprobe)
	}
}

func (a *aimd) setLocked(r float64) {
	if a.cap > 0 && r > a.cap {
		r = a.cap
	}
	// The cuts stop at aimdMinRate, or at the cap when that is lower: a
	// cap (MaxRate, a rate hint) below it still holds.
	floor := aimdMinRate
	if a.cap > 0 {
		floor = min(floor, a.cap)
	}
	a.current = max(r, floor)
	now := a.now()
	a.lim.SetLimitAt(now, rate.Limit(a.current))
	a.lim.SetBurstAt(now, burstFor(a.current))
	a.period.Store(int64(pacePeriod(a.window, a.current)))
}

func (a *aimd) success() {
	if !a.adaptive {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.meter.add(now)
	if a.current == 0 || (a.cap > 0 && a.current >= a.cap) {
		return
	}
	if measured := a.meter.rate(now); measured > 0 && a.current > aimdHeadroom*measured+aimdMinRate {
		return
	}
	a.setLocked(a.current + a.stepLocked(now))
}

// stepLocked is the increase per success: aimdRecover below the last
// ceiling; above it aimdIncrease, rising by aimdIncrease per half second
// without a 429 up to aimdRecover (probing: a ceiling that has moved up, or
// was measured while the sender was still warming up, is found in seconds,
// while a sender that meets 429s regularly stays near 10% per second).
func (a *aimd) stepLocked(now time.Time) float64 {
	if a.current < a.ceiling {
		return aimdRecover
	}
	quiet := now.Sub(a.lastCut).Seconds()
	return min(aimdRecover, aimdIncrease*(1+2*quiet))
}

func (a *aimd) throttled() {
	if !a.adaptive {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.meter.throttle(now)
	if now.Sub(a.lastCut) < aimdCooldown || now.Sub(a.meter.activeSince) < aimdCooldown {
		return
	}
	a.lastCut = now
	if a.current == 0 {
		// The first 429: until now only the concurrency bounded the rate, so
		// the success rate measured is what the server accepts.
		measured := a.meter.rateOver(now, aimdFirstBuckets)
		a.ceiling = measured
		a.setLocked(measured * aimdDecrease)
		return
	}
	// Most posts of the last cooldown met a 429: the server accepts far less
	// than the limit (a lower account limit, other senders sharing it), and
	// cutting by a tenth per cooldown would take seconds of 429s to get
	// there (2.2 s from 10,000/s to 1,000/s). What it accepted is its rate:
	// go to just below it, and probe up from there; but at most halve the
	// limit per cut, so that a moment in which another sender took the
	// whole budget (no success at all) does not drop it to the minimum. A
	// stall cannot trigger this: it delays successes and 429s alike.
	if successes, throttles, span := a.meter.countsOver(now, aimdFirstBuckets); !a.stepOnly && throttles >= aimdClampMin && throttles > successes {
		target := max(float64(successes)/span.Seconds(), a.current*aimdClampFloor)
		if target*aimdReprobe < a.current*aimdDecrease {
			a.ceiling = target
			a.setLocked(target * aimdReprobe)
			return
		}
	}
	// Throttled again before getting back to the last ceiling: the limit
	// has come down, so cut by the full step. Throttled while probing at or
	// above it: the limit is where it was, so a smaller cut is enough (at the
	// limit, every probe ends in a 429, and the full cut's dip costs a few
	// percent of the rate; docs/benchmarks.md).
	cut := aimdDecrease
	if a.ceiling > 0 && a.current >= a.ceiling {
		cut = aimdReprobe
	}
	a.ceiling = a.current
	a.setLocked(a.current * cut)
}

// successMeter counts successes, and 429s, in ring buckets over the last
// meterWindow.
type successMeter struct {
	counts      [meterBuckets]int // successes
	throttles   [meterBuckets]int // 429s
	epochs      [meterBuckets]int64
	activeSince time.Time // start of the current busy period
	last        time.Time // last event seen
}

const (
	meterBuckets = 25
	meterWidth   = 20 * time.Millisecond
	meterWindow  = meterBuckets * meterWidth
)

// touch notes activity; after an idle window the measurement starts afresh.
func (m *successMeter) touch(now time.Time) {
	if m.last.IsZero() || now.Sub(m.last) > meterWindow {
		m.activeSince = now
		m.counts = [meterBuckets]int{}
		m.throttles = [meterBuckets]int{}
		m.epochs = [meterBuckets]int64{}
	}
	m.last = now
}

// slot is the bucket of now, emptied when it last held an older epoch.
func (m *successMeter) slot(now time.Time) int {
	m.touch(now)
	e := now.UnixNano() / int64(meterWidth)
	i := int(e % meterBuckets)
	if m.epochs[i] != e {
		m.epochs[i], m.counts[i], m.throttles[i] = e, 0, 0
	}
	return i
}

func (m *successMeter) add(now time.Time)      { m.counts[m.slot(now)]++ }
func (m *successMeter) throttle(now time.Time) { m.throttles[m.slot(now)]++ }

// rate is successes per second over the window (or the busy period, if shorter).
func (m *successMeter) rate(now time.Time) float64 { return m.rateOver(now, meterBuckets) }

// rateOver is successes per second over the last n buckets, the current one
// included (or the busy period, if shorter).
func (m *successMeter) rateOver(now time.Time, n int) float64 {
	successes, _, span := m.countsOver(now, n)
	return float64(successes) / span.Seconds()
}

// countsOver is the successes and 429s of the last n buckets, the current
// one included, and the span they cover (the busy period, if shorter; at
// least one bucket). Both are 0 after an idle window.
func (m *successMeter) countsOver(now time.Time, n int) (successes, throttles int, span time.Duration) {
	if m.last.IsZero() || now.Sub(m.last) > meterWindow {
		return 0, 0, meterWidth
	}
	n = min(max(n, 1), meterBuckets)
	e := now.UnixNano() / int64(meterWidth)
	for i := range m.counts {
		if m.epochs[i] > e-int64(n) && m.epochs[i] <= e {
			successes += m.counts[i]
			throttles += m.throttles[i]
		}
	}
	oldest := time.Unix(0, (e-int64(n)+1)*int64(meterWidth))
	if m.activeSince.After(oldest) {
		oldest = m.activeSince
	}
	return successes, throttles, max(now.Sub(oldest), meterWidth)
}

// SetRateHint caps the sender at r posts per second from now on, on top of
// Options.MaxRate (the lower of the two holds); r = 0 removes the hint and
// leaves Options.MaxRate alone. The fan-out worker sets it from each batch's
// share of the send budget (fanout.Batch.MaxRate). The limit learnt so far is
// kept when it is below the new cap; a sender that was unlimited, above the
// cap or pinned at the previous cap starts at the new cap. Meant to be called
// between sends: a send in progress changes pace from its next post.
func (s *Sender) SetRateHint(r float64) {
	c := s.opts.MaxRate
	if r > 0 && (c <= 0 || r < c) {
		c = r
	}
	s.limiter.setCap(c)
	s.bound(c)
}

func (a *aimd) setCap(c float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c == a.cap {
		return
	}
	old := a.cap
	a.cap = c
	switch {
	case c <= 0:
		if !a.adaptive || a.current == old {
			// Nothing learnt below the old cap: back to the start.
			if a.start > 0 {
				a.setLocked(a.start)
			} else {
				a.current = 0
				a.lim.SetLimit(rate.Inf)
				a.period.Store(0)
			}
		}
	case a.current == 0 || a.current > c || a.current == old:
		a.setLocked(c)
	}
}

// Rate returns the current adaptive limit in requests per second, 0 while unlimited.
func (s *Sender) Rate() float64 {
	if s.limiter == nil {
		return 0
	}
	s.limiter.mu.Lock()
	defer s.limiter.mu.Unlock()
	return s.limiter.current
}
