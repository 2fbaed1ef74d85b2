// Package fanout spreads a large fan-out over many Lambda invocations: the
// publisher splits the recipients into batches and enqueues them on SQS
// ([Enqueuer]), and the fan-out worker Lambda delivers each batch ([Worker]).
//
// Delivery is at-least-once (SQS) with per-batch idempotency: before
// delivering, the worker claims the batch in a [Ledger] (a conditional
// UpdateItem of pk=batch#<id> with a TTL in the connections table), so a
// redelivered batch that was already delivered is acknowledged without
// sending again, within the ledger's window. A batch given back after some
// of its recipients failed or were not reached in time keeps those in the
// ledger ([ProgressLedger]), and its redelivery sends only to them (a post
// in flight when the deadline cut the delivery counts as not reached, so it
// may arrive twice).
package fanout

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// Batch is one SQS message: a slice of one fan-out's recipients and the payload.
type Batch struct {
	// ID is unique per batch: <fan-out id>-<sequence>. It keys the idempotency ledger.
	ID string `json:"id"`
	// Endpoint is the management API the connections belong to
	// (https://{api}.execute-api.{region}.amazonaws.com/{stage}); empty means
	// the worker's WS_MANAGEMENT_ENDPOINT.
	Endpoint string `json:"endpoint,omitempty"`
	// ConnectionIDs are the recipients.
	ConnectionIDs []string `json:"connectionIds"`
	// Data is the message, unchanged (base64 in JSON).
	Data []byte `json:"data"`
	// MaxRate is the batch's share of the send budget in posts per second,
	// set by the publisher (Settings.RateHint): the worker caps its sender at
	// it (and at its own WS_MAX_SEND_RATE; at the lowest hint among the
	// batches of one invocation, which post together) while delivering the
	// batch, so that the workers running at once together stay within the
	// budget instead of each probing API Gateway's account limit on its own.
	// 0 means no hint.
	MaxRate float64 `json:"maxRate,omitempty"`
}

// decodeBatch parses and checks a message body.
func decodeBatch(body string) (Batch, error) {
	var b Batch
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return b, fmt.Errorf("decode batch: %w", err)
	}
	if b.ID == "" {
		return b, errors.New("decode batch: empty id")
	}
	return b, nil
}

// Settings are the fan-out environment variables.
type Settings struct {
	// QueueURL is WS_FANOUT_QUEUE_URL; empty turns distribution off.
	QueueURL string
	// Threshold is WS_FANOUT_THRESHOLD: audiences above it are distributed. Default 2000.
	Threshold int
	// BatchSize is WS_FANOUT_BATCH_SIZE: recipients per batch. Default 500.
	BatchSize int
	// RateBudget is WS_FANOUT_RATE_BUDGET: the @connections posts per second
	// all fan-out workers together may use. Default 10,000 (API Gateway's
	// account limit); 0 sends no hint and leaves each worker to adapt alone.
	RateBudget float64
	// MaxConcurrency is WS_FANOUT_MAX_CONCURRENCY: the most worker
	// invocations at once (the event source mapping's maximum concurrency).
	// Default 10.
	MaxConcurrency int
}

// RateHint is the Batch.MaxRate the publisher puts in every batch: the
// budget split evenly among the workers that may run at once. The event
// source mapping caps the workers of all distributed sends together, so the
// hint holds even when several sends overlap; a send with fewer batches than
// workers uses less than the budget. 0 when RateBudget is 0.
func (s Settings) RateHint() float64 {
	if s.RateBudget <= 0 {
		return 0
	}
	return s.RateBudget / float64(max(s.MaxConcurrency, 1))
}

// MessagesPerInvocation is the module's default for
// distributed_fanout.messages_per_invocation (the event source mapping's
// batch size) when it is not set: enough queue messages per worker
// invocation for about InvocationPosting of posting at the worker's share
// of the budget (RateHint; API Gateway's default account limit split among
// the workers when RateBudget is 0), from 1 to 10. An invocation ends on the
// latency of its last posts (tens of milliseconds) before the next one
// starts; with half a second of posting that tail costs a few percent of the
// share. With the defaults (10,000/s among 10 workers, batches of 500) it is
// 1; with 2 workers, 5. A send with fewer batches than workers then runs on
// fewer workers, each at its own share. Terraform computes the same in
// fanout.tf (local.fanout_messages_per_invocation); TestMessagesPerInvocation and
// the module's plan test pin both.
func (s Settings) MessagesPerInvocation() int {
	budget := s.RateBudget
	if budget <= 0 {
		budget = DefaultRateBudget
	}
	batch := s.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	// One division, so a whole number of messages comes out exactly.
	n := math.Ceil(budget * InvocationPosting.Seconds() / float64(max(s.MaxConcurrency, 1)*batch))
	return int(min(max(n, 1), MaxMessagesPerInvocation))
}

// InvocationPosting is the posting time per worker invocation that
// MessagesPerInvocation aims at, and MaxMessagesPerInvocation the most
// messages an SQS event source mapping hands one invocation without a
// batching window.
const (
	InvocationPosting        = 500 * time.Millisecond
	MaxMessagesPerInvocation = 10
)

// Defaults of the fan-out settings.
const (
	DefaultThreshold = 2000
	DefaultBatchSize = 500
	// DefaultRateBudget is API Gateway's default account-wide request rate.
	DefaultRateBudget = 10000
	// DefaultMaxConcurrency is the module's distributed_fanout.max_concurrency default.
	DefaultMaxConcurrency = 10
)

// ParseSettings reads Settings with getenv (os.Getenv in mains).
func ParseSettings(getenv func(string) string) (Settings, error) {
	s := Settings{QueueURL: getenv("WS_FANOUT_QUEUE_URL"), Threshold: DefaultThreshold, BatchSize: DefaultBatchSize,
		RateBudget: DefaultRateBudget, MaxConcurrency: DefaultMaxConcurrency}
	if v := getenv("WS_FANOUT_THRESHOLD"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s, fmt.Errorf("WS_FANOUT_THRESHOLD=%q: want a number of recipients (0 = always distribute)", v)
		}
		s.Threshold = n
	}
	if v := getenv("WS_FANOUT_BATCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxBatchSize {
			return s, fmt.Errorf("WS_FANOUT_BATCH_SIZE=%q: want an integer from 1 to %d", v, MaxBatchSize)
		}
		s.BatchSize = n
	}
	if v := getenv("WS_FANOUT_RATE_BUDGET"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return s, fmt.Errorf("WS_FANOUT_RATE_BUDGET=%q: want posts per second >= 0 (0 = no rate hint)", v)
		}
		s.RateBudget = f
	}
	if v := getenv("WS_FANOUT_MAX_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return s, fmt.Errorf("WS_FANOUT_MAX_CONCURRENCY=%q: want the event source mapping's maximum concurrency (a whole number >= 1)", v)
		}
		s.MaxConcurrency = n
	}
	return s, nil
}

// SettingsFromEnv is ParseSettings(os.Getenv).
func SettingsFromEnv() (Settings, error) { return ParseSettings(os.Getenv) }
