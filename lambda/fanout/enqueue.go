package fanout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// SQSAPI is the part of the SQS client the Enqueuer uses.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// SQS limits: 10 entries and 256 KiB of bodies per SendMessageBatch, 256 KiB per message.
const (
	maxEntries      = 10
	maxRequestBytes = 256 * 1024
	// MaxBatchSize bounds WS_FANOUT_BATCH_SIZE so that a batch with a 128 KB
	// payload (171 KB in base64) and ids of up to 64 bytes fits one SQS message.
	MaxBatchSize = 1000
	// sendAttempts bounds the tries of entries SQS reports as failed, after
	// a jittered backoff from sendBackoff doubling each time (about 50, 100,
	// 200 and 400 ms): a transient SQS failure passes before the send fails.
	sendAttempts = 5
)

// Pages yields recipient ids a page at a time (a store's paged Query).
type Pages = func(fn func(ids []string) error) error

// Enqueuer splits recipients into batches and puts them on the fan-out queue.
type Enqueuer struct {
	client    SQSAPI
	queueURL  string
	threshold int
	batchSize int
	rateHint  float64
	newID     func() string
}

// sendBackoff is the first wait before entries SQS failed are sent again.
const sendBackoff = 50 * time.Millisecond

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewEnqueuer returns an Enqueuer for the queue in s (s.QueueURL must be set).
func NewEnqueuer(client SQSAPI, s Settings) (*Enqueuer, error) {
	if client == nil || s.QueueURL == "" {
		return nil, errors.New("fanout: an SQS client and WS_FANOUT_QUEUE_URL are required")
	}
	if s.BatchSize <= 0 {
		s.BatchSize = DefaultBatchSize
	}
	if s.BatchSize > MaxBatchSize {
		return nil, fmt.Errorf("fanout: batch size %d above %d", s.BatchSize, MaxBatchSize)
	}
	return &Enqueuer{client: client, queueURL: s.QueueURL, threshold: s.Threshold, batchSize: s.BatchSize, rateHint: s.RateHint(), newID: randomID}, nil
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Threshold is the audience size above which SendOrDistribute enqueues.
func (e *Enqueuer) Threshold() int { return e.threshold }

// Distribute enqueues every id that pages yields, in batches, for the
// management API at endpoint. It returns the batches enqueued; on error some
// batches may already be on the queue (they will be delivered).
func (e *Enqueuer) Distribute(ctx context.Context, endpoint string, data []byte, pages Pages) (int, error) {
	d := e.start(endpoint, data)
	if err := pages(d.add(ctx)); err != nil {
		return d.batches, err
	}
	if d.err != nil {
		return d.batches, d.err
	}
	return d.batches, d.flush(ctx, true)
}

// SendOrDistribute is the integration point for a channel send or a
// broadcast (it implements realtime.Distributor): it reads up to Threshold
// ids from pages; if the audience ends there it sends directly with s,
// otherwise it enqueues the ids read so far and every later page in batches
// and reports the batch count in Report.Batches (the workers deliver; the
// rest of the Report stays empty but for Failed, which counts, when
// enqueuing fails, the recipients that are not on the queue: the pages
// after the failure are still read to count theirs). A
// payload over 128 KB is never enqueued: s reports it as too large without
// a call. Direct sends keep only the failures in Report.Results.
func (e *Enqueuer) SendOrDistribute(ctx context.Context, s *sender.Sender, endpoint string, data []byte, pages Pages) (sender.Report, error) {
	if len(data) > sender.MaxPayload {
		return s.SendPagesOmitDelivered(ctx, data, pages)
	}
	var (
		buffered []string
		d        *distribution
		add      func([]string) error
	)
	err := pages(func(ids []string) error {
		if d != nil {
			return add(ids)
		}
		buffered = append(buffered, ids...)
		if len(buffered) <= e.threshold {
			return nil
		}
		d = e.start(endpoint, data)
		add = d.add(ctx)
		first := buffered
		buffered = nil
		return add(first)
	})
	if d == nil {
		if err != nil {
			return sender.Report{}, err
		}
		return s.SendPagesOmitDelivered(ctx, data, func(fn func([]string) error) error { return fn(buffered) })
	}
	if err == nil {
		err = d.err
	}
	if err == nil {
		err = d.flush(ctx, true)
	}
	if err != nil {
		// The recipients read but not on the queue reach no one: counted
		// as failed (recorded as DeliveriesLost). After an enqueue failure
		// the rest of the pages are still read, to count them; only a page
		// that cannot be read leaves the rest uncounted.
		return sender.Report{Batches: d.batches, Failed: len(d.seen) - d.enqueued}, err
	}
	return sender.Report{Batches: d.batches}, nil
}

// distribution is one fan-out being enqueued.
type distribution struct {
	e        *Enqueuer
	id       string
	endpoint string
	data     []byte
	seen     map[string]struct{}
	current  []string
	pending  []types.SendMessageBatchRequestEntry
	bytes    int
	seq      int
	batches  int
	// sizes is each pending entry's recipient count; enqueued sums those
	// of the entries SQS took.
	sizes    map[string]int
	enqueued int
	// err is the first enqueue failure: later ids are only counted in seen.
	err error
}

func (e *Enqueuer) start(endpoint string, data []byte) *distribution {
	return &distribution{e: e, id: e.newID(), endpoint: endpoint, data: data, seen: map[string]struct{}{}, sizes: map[string]int{}}
}

func (d *distribution) add(ctx context.Context) func([]string) error {
	return func(ids []string) error {
		for _, id := range ids {
			if _, dup := d.seen[id]; dup {
				continue
			}
			d.seen[id] = struct{}{}
			if d.err != nil {
				continue
			}
			d.current = append(d.current, id)
			if len(d.current) == d.e.batchSize {
				if err := d.seal(ctx); err != nil {
					// The rest reach no one either: read on to count them.
					d.err, d.current, d.pending = err, nil, nil
				}
			}
		}
		return nil
	}
}

// seal turns the current ids into a message and sends a request when full.
func (d *distribution) seal(ctx context.Context) error {
	if len(d.current) == 0 {
		return nil
	}
	b := Batch{ID: d.id + "-" + strconv.Itoa(d.seq), Endpoint: d.endpoint, ConnectionIDs: d.current, Data: d.data, MaxRate: d.e.rateHint}
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode batch %s: %w", b.ID, err)
	}
	if len(body) > maxRequestBytes {
		return fmt.Errorf("batch %s: %d bytes exceed the SQS message limit; lower WS_FANOUT_BATCH_SIZE", b.ID, len(body))
	}
	if len(d.pending) == maxEntries || d.bytes+len(body) > maxRequestBytes {
		if err := d.flush(ctx, false); err != nil {
			return err
		}
	}
	entryID := "b" + strconv.Itoa(d.seq)
	d.pending = append(d.pending, types.SendMessageBatchRequestEntry{Id: aws.String(entryID), MessageBody: aws.String(string(body))})
	d.sizes[entryID] = len(d.current)
	d.bytes += len(body)
	d.seq++
	d.current = d.current[:0:0]
	return nil
}

// flush sends the pending entries (sealing the last partial batch first when final).
func (d *distribution) flush(ctx context.Context, final bool) error {
	if final {
		if err := d.seal(ctx); err != nil {
			return err
		}
	}
	entries := d.pending
	d.pending, d.bytes = nil, 0
	// Entries failed for the sender's fault (too large, invalid) would fail
	// again: they are reported once the others are sent.
	var faults error
	for attempt := 1; len(entries) > 0; attempt++ {
		out, err := d.e.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(d.e.queueURL), Entries: entries})
		if err != nil {
			return errors.Join(faults, fmt.Errorf("enqueue fan-out %s: %w", d.id, err))
		}
		d.batches += len(out.Successful)
		for _, ok := range out.Successful {
			d.enqueued += d.sizes[aws.ToString(ok.Id)]
		}
		failed := map[string]bool{}
		for _, f := range out.Failed {
			if f.SenderFault {
				faults = errors.Join(faults, fmt.Errorf("enqueue fan-out %s: batch entry %s: %s: %s", d.id, aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
				continue
			}
			failed[aws.ToString(f.Id)] = true
		}
		if len(failed) == 0 {
			return faults
		}
		if attempt == sendAttempts {
			return errors.Join(faults, fmt.Errorf("enqueue fan-out %s: %d batches failed after %d tries", d.id, len(failed), sendAttempts))
		}
		var retry []types.SendMessageBatchRequestEntry
		for _, en := range entries {
			if failed[aws.ToString(en.Id)] {
				retry = append(retry, en)
			}
		}
		entries = retry
		backoff := sendBackoff << (attempt - 1)
		if err := sleepCtx(ctx, backoff/2+time.Duration(mrand.Int64N(int64(backoff/2)+1))); err != nil {
			return errors.Join(faults, fmt.Errorf("enqueue fan-out %s: %w", d.id, err))
		}
	}
	return faults
}
