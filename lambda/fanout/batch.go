// Package fanout spreads a large fan-out over many Lambda invocations: the
// publisher splits the recipients into batches and enqueues them on SQS
// ([Enqueuer]), and the fan-out worker Lambda delivers each batch ([Worker]).
//
// Delivery is at-least-once (SQS) with per-batch idempotency: before
// delivering, the worker claims the batch in a [Ledger] (a conditional
// PutItem of pk=batch#<id> with a TTL in the connections table), so a
// redelivered batch that was already delivered is acknowledged without
// sending again, within the ledger's window.
package fanout

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
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
}

// Defaults of the fan-out settings.
const (
	DefaultThreshold = 2000
	DefaultBatchSize = 500
)

// ParseSettings reads Settings with getenv (os.Getenv in mains).
func ParseSettings(getenv func(string) string) (Settings, error) {
	s := Settings{QueueURL: getenv("WS_FANOUT_QUEUE_URL"), Threshold: DefaultThreshold, BatchSize: DefaultBatchSize}
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
	return s, nil
}

// SettingsFromEnv is ParseSettings(os.Getenv).
func SettingsFromEnv() (Settings, error) { return ParseSettings(os.Getenv) }
