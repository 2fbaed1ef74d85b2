package sender

import (
	"context"
	"fmt"
	"time"
)

// Waits between the posts of SendToNewConnection: short at first, since a
// handshake usually completes a few milliseconds after $connect returns.
const (
	newConnFirstWait = 5 * time.Millisecond
	newConnMaxWait   = 100 * time.Millisecond
)

// SendToNewConnection delivers data to a connection whose $connect may not
// have returned yet. Until it has, API Gateway answers 410 as for a closed
// connection, so a 410 is posted again after 5 ms, then after waits doubling
// up to 100 ms, until it is delivered, fails otherwise, or ctx ends. Each post
// goes through the sender as Send's do (a slot, the limiter, the retries of
// 429, 5xx and network errors).
//
// It is one send to one recipient for the metrics: one final outcome, every
// post in DeliveriesAttempted and every post after the first in Retries. The
// 410s met while waiting are not outcomes, and Options.OnGone runs for none
// of them: the connection is not gone, only not up yet. When ctx ends on a
// 410 the result is StatusGone, its Err wrapping ErrGone.
func (s *Sender) SendToNewConnection(ctx context.Context, id string, data []byte) Result {
	var (
		rep       Report
		res       Result
		attempts  int
		throttled int
		wait      = newConnFirstWait
		start     = time.Now()
	)
	if len(data) > MaxPayload {
		res = tooLarge(id, len(data))
	} else {
		var gone Result // the last 410
		for {
			var t int
			res, _, t = s.postOnce(ctx, id, data)
			attempts += res.Attempts
			throttled += t
			if res.Status == StatusFailed && gone.Status == StatusGone && ended(ctx) {
				// ctx ended during a post after 410s: the connection
				// never came up, as when it ends during a wait.
				res = gone
				break
			}
			if res.Status != StatusGone || sleepCtx(ctx, wait) != nil {
				break
			}
			gone = res
			wait = min(2*wait, newConnMaxWait)
		}
	}
	res.Attempts = attempts
	rep.add(res)
	rep.Retries = max(attempts-1, 0)
	rep.Throttled = throttled
	s.record(rep, attempts, time.Since(start))
	return res
}

// ended reports whether ctx is done or past its deadline: a post cut by the
// deadline (a dial's i/o timeout) can fail before ctx's own timer fires.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// tooLarge is the result for a recipient of data over API Gateway's limit,
// refused here without a post (the local 128 KB guard).
func tooLarge(id string, n int) Result {
	return Result{ConnectionID: id, Status: StatusTooLarge, Err: fmt.Errorf("post to connection %s: %d bytes: %w", id, n, ErrTooLarge)}
}

// postOnce is one delivery to id as Send makes it, recording nothing: it
// takes one of the sender's slots, which bound the posts in flight across all
// of its sends together (a fan-out worker may run several at once), or fails
// with ctx's error; then deliver. It returns the result (Attempts the posts
// made), the retries and the 429s met.
func (s *Sender) postOnce(ctx context.Context, id string, data []byte) (Result, int, int) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return Result{ConnectionID: id, Status: StatusFailed, Err: fmt.Errorf("post to connection %s: %w", id, ctx.Err())}, 0, 0
	}
	defer s.release()
	return s.deliver(ctx, id, data)
}
