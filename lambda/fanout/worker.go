package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// WorkerConfig builds a Worker.
type WorkerConfig struct {
	// NewSender returns the fan-out sender for a management API endpoint
	// (required). The worker calls it once per endpoint and keeps the sender,
	// so its learnt rate carries across batches. Its OnGone should remove the
	// connection from the store.
	NewSender func(endpoint string) (*sender.Sender, error)
	// Endpoint is used for batches that carry none (WS_MANAGEMENT_ENDPOINT).
	Endpoint string
	// Ledger makes redeliveries idempotent (required).
	Ledger Ledger
	// Lease is how long a claim holds before another worker may take the
	// batch over, when the context has no deadline. An invocation with a
	// deadline (every Lambda invocation) claims until it (plus a few
	// seconds), however long: a worker still sending is never overtaken by
	// a duplicate of its message, and a timed-out worker's batch is free by
	// the time SQS redelivers it. Default 5 minutes.
	Lease time.Duration
	// Logger logs one line per batch; nil means slog.Default().
	Logger *slog.Logger
	// Metrics counts BatchesCompleted and BatchesFailed; nil records
	// nothing. (The delivery counters come from the senders' own
	// sender.Options.Metrics.)
	Metrics metrics.Recorder
}

// Worker is the fan-out worker Lambda's handler.
type Worker struct {
	cfg     WorkerConfig
	mu      sync.Mutex
	senders map[string]*sender.Sender
}

// NewWorker checks cfg and returns a Worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.NewSender == nil || cfg.Ledger == nil {
		return nil, errors.New("fanout: worker needs NewSender and a Ledger")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Metrics = metrics.Or(cfg.Metrics)
	return &Worker{cfg: cfg, senders: map[string]*sender.Sender{}}, nil
}

func (w *Worker) sender(endpoint string) (*sender.Sender, error) {
	if endpoint == "" {
		endpoint = w.cfg.Endpoint
	}
	if endpoint == "" {
		return nil, errors.New("batch has no endpoint and WS_MANAGEMENT_ENDPOINT is not set")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.senders[endpoint]; ok {
		return s, nil
	}
	s, err := w.cfg.NewSender(endpoint)
	if err != nil {
		return nil, fmt.Errorf("sender for %s: %w", endpoint, err)
	}
	w.senders[endpoint] = s
	return s, nil
}

// Handle delivers each record's batch and reports the records to retry
// (the event source mapping needs ReportBatchItemFailures). A batch is
// retried when it could not be read, is held by another worker, or has
// recipients that failed for a transient reason (throttled past the retries,
// 5xx, network) or were refused with 403 (IAM not yet in effect: one API and
// stage, so no recipient is refused for its own sake); gone and too large
// recipients are final.
//
// The records of one invocation (messages_per_invocation) are delivered at
// once through the same sender, so its limiter paces them together and the
// end of one batch, when only its last posts are in flight, overlaps the
// other batches' posting instead of leaving the worker's share of the budget
// idle. The sender's rate hint is set once, before any of them posts: the
// lowest hint of the invocation's batches for that endpoint (batches
// without one count only when none has one), so batches enqueued with
// different budgets or worker counts never raise each other's share. When the
// invocation holds batches for several endpoints (the protocol v1 and the
// Pusher stage), each sender's hint is divided by their number, so the
// worker's posts together stay within its share: API Gateway's budget is the
// account's, not one API's.
// Lambda runs one invocation at a time per instance; concurrent Handle calls
// on one Worker share its senders, and the hint set last holds for all.
func (w *Worker) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var (
		resp    events.SQSEventResponse
		wg      sync.WaitGroup
		errs    = make([]error, len(ev.Records))
		batches = make([]Batch, len(ev.Records))
		senders = make([]*sender.Sender, len(ev.Records))
		hints   = map[*sender.Sender]float64{}
	)
	for i, rec := range ev.Records {
		b, err := decodeBatch(rec.Body)
		if err != nil {
			errs[i] = err
			continue
		}
		s, err := w.sender(b.Endpoint)
		if err != nil {
			errs[i] = fmt.Errorf("batch %s: %w", b.ID, err)
			continue
		}
		batches[i], senders[i] = b, s
		if h, seen := hints[s]; !seen || (b.MaxRate > 0 && (h <= 0 || b.MaxRate < h)) {
			hints[s] = b.MaxRate
		}
	}
	for s, h := range hints {
		if len(hints) > 1 && h > 0 {
			// Batches for several APIs (protocol v1 and Pusher mode) share
			// the worker's one share of the account's budget.
			h /= float64(len(hints))
		}
		s.SetRateHint(h)
	}
	for i, rec := range ev.Records {
		if senders[i] != nil {
			wg.Go(func() { errs[i] = w.deliver(ctx, rec, batches[i], senders[i]) })
		}
	}
	wg.Wait()
	for i, rec := range ev.Records {
		if err := errs[i]; err != nil {
			w.cfg.Logger.ErrorContext(ctx, "fan-out batch", "messageId", rec.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			w.cfg.Metrics.Add(metrics.BatchesFailed, 1)
			continue
		}
		w.cfg.Metrics.Add(metrics.BatchesCompleted, 1)
	}
	return resp, nil
}

// lease is how long a claim holds: until this invocation's deadline (plus a
// margin for the ledger write), so a batch whose worker timed out is free
// again by the time SQS redelivers it and one still being sent is not taken
// over (a 15-minute function sends for longer than the 5-minute default);
// Lease when there is no deadline.
func (w *Worker) lease(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d) + 5*time.Second; left > 0 {
			return left
		}
	}
	return w.cfg.Lease
}

// retryable lists, in the order of recipients, those whose post failed in
// a way worth retrying (throttled past the retries, 5xx, no time left) or
// was refused with 403 (IAM not in effect yet: a fault of the deployment,
// not of the recipient): not the delivered, gone or too large ones.
func retryable(rep sender.Report, recipients []string) []string {
	failed := map[string]bool{}
	for _, r := range rep.Results {
		if r.Status == sender.StatusFailed || r.Status == sender.StatusForbidden {
			failed[r.ConnectionID] = true
		}
	}
	var out []string
	for _, id := range recipients {
		if failed[id] {
			out = append(out, id)
			delete(failed, id)
		}
	}
	return out
}

// withoutRepeats returns ids without their repeats, in order (ids itself
// when there are none).
func withoutRepeats(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	for i, id := range ids {
		if _, dup := seen[id]; dup {
			out := slices.Clone(ids[:i])
			for _, id := range ids[i+1:] {
				if _, dup := seen[id]; !dup {
					seen[id] = struct{}{}
					out = append(out, id)
				}
			}
			return out
		}
		seen[id] = struct{}{}
	}
	return ids
}

// errBusy means another worker holds the batch.
var errBusy = errors.New("batch is being delivered by another worker")

// deliver claims batch b (the body of rec) and sends it through s.
func (w *Worker) deliver(ctx context.Context, rec events.SQSMessage, b Batch, s *sender.Sender) error {
	progress, _ := w.cfg.Ledger.(ProgressLedger)
	var (
		claim     Claim
		remaining []string
		err       error
	)
	if progress != nil {
		claim, remaining, err = progress.ClaimRemaining(ctx, b.ID, w.lease(ctx))
	} else {
		claim, err = w.cfg.Ledger.Claim(ctx, b.ID, w.lease(ctx))
	}
	if err != nil {
		return err
	}
	switch claim {
	case AlreadyDone:
		w.cfg.Logger.InfoContext(ctx, "fan-out batch already delivered", "batchId", b.ID, "messageId", rec.MessageId)
		return nil
	case Busy:
		return fmt.Errorf("batch %s: %w", b.ID, errBusy)
	}
	recipients := b.ConnectionIDs
	if remaining != nil {
		// An earlier delivery left these: the others already have it.
		recipients = remaining
	}
	// The sender posts a repeated id once; the report then accounts for
	// the list without repeats (a hand-made or edited message may repeat).
	recipients = withoutRepeats(recipients)
	rep := s.Send(ctx, recipients, b.Data)
	w.cfg.Logger.InfoContext(ctx, "fan-out batch", "batchId", b.ID, "recipients", len(recipients),
		"delivered", rep.Delivered, "gone", rep.Gone, "failed", rep.Failed, "retries", rep.Retries)
	// Only a report that accounts for every recipient can say who is left
	// (with OmitDelivered the delivered ones are not listed).
	accounted := rep.Total() == len(recipients)
	if ctx.Err() != nil && rep.Failed == 0 {
		rep.Failed = len(recipients) - rep.Total()
	}
	failure := ""
	switch {
	case rep.Failed > 0:
		// (Cut short by the deadline, the recipients not reached count as failed.)
		failure = fmt.Sprintf("%d recipients failed", rep.Failed)
	case rep.Forbidden > 0:
		// Posts refused (IAM not yet in effect after a deploy, a policy
		// without the batch's API): a fault of the deployment, not of the
		// recipients, since every post of a batch goes to the same API and
		// stage; IAM's eventual consistency can refuse some and not others.
		// Retried for those, and kept in the DLQ if it lasts, rather than
		// acknowledged as done.
		failure = fmt.Sprintf("%d posts refused (403)", rep.Forbidden)
	}
	if failure != "" {
		// At-least-once: give the claim back so SQS's redelivery sends the
		// batch again, when the ledger keeps them, to the recipients of
		// this delivery that failed or were refused (403), never to those
		// it or an earlier one delivered. When the report does not say who
		// was reached (cut short by the deadline), that is all of this
		// delivery's recipients; a ledger without progress sends to all.
		left := recipients
		if accounted {
			left = retryable(rep, recipients)
		}
		var rerr error
		if progress != nil && len(left) > 0 && (remaining != nil || len(left) < len(b.ConnectionIDs)) {
			rerr = progress.ReleaseRemaining(context.WithoutCancel(ctx), b.ID, left)
		} else {
			// All of the batch is left, or the ledger keeps no list: release it whole.
			rerr = w.cfg.Ledger.Release(context.WithoutCancel(ctx), b.ID)
		}
		if rerr != nil {
			return errors.Join(fmt.Errorf("batch %s: %s", b.ID, failure), rerr)
		}
		return fmt.Errorf("batch %s: %s", b.ID, failure)
	}
	if err := w.cfg.Ledger.Complete(context.WithoutCancel(ctx), b.ID); err != nil {
		// Delivered: failing the message now would send it to everyone
		// again. Acknowledge it; the claim runs out with its lease, and a
		// duplicate of the message (rare) could be delivered once more.
		w.cfg.Logger.ErrorContext(ctx, "fan-out batch delivered, ledger not updated", "batchId", b.ID, "messageId", rec.MessageId, "error", err)
	}
	return nil
}
