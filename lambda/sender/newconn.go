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
	for {
		var t int
		res, t = s.postOnce(ctx, id, data)
		attempts += res.Attempts
		throttled += t
		if res.Status != StatusGone || sleepCtx(ctx, wait) != nil {
			break
		}
		wait = min(2*wait, newConnMaxWait)
	}
	res.Attempts = attempts
	rep.add(res)
	rep.Retries = max(attempts-1, 0)
	rep.Throttled = throttled
	s.record(rep, attempts, time.Since(start))
	return res
}

// postOnce is one of Send's deliveries to id, with its slot, recording
// nothing: the result (Attempts the posts made) and the 429s met.
func (s *Sender) postOnce(ctx context.Context, id string, data []byte) (Result, int) {
	if len(data) > MaxPayload {
		return Result{ConnectionID: id, Status: StatusTooLarge, Err: fmt.Errorf("post to connection %s: %d bytes: %w", id, len(data), ErrTooLarge)}, 0
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return Result{ConnectionID: id, Status: StatusFailed, Err: fmt.Errorf("post to connection %s: %w", id, ctx.Err())}, 0
	}
	defer s.release()
	res, _, throttled := s.deliver(ctx, id, data)
	return res, throttled
}
