// Package metrics counts what the runtime does (connections, deliveries,
// throttling, fan-out batches, authorizer decisions) through one small
// interface, [Recorder], with three implementations: [EMF] writes CloudWatch
// Embedded Metric Format log lines from the Lambda functions (no API call, no
// added latency), package prom serves the same metrics on the local gateway's
// GET /metrics, and [Nop] drops them.
//
// Cardinality is bounded by construction: metric names are the fixed list in
// [Catalog]; the only dimensions are Function (one of the module's five
// functions that emit metrics: websocket, publisher, fanout, authorizer and
// the Pusher-mode pusher) and, for AuthorizerDenied alone, Reason (one of
// [DenyReasons]). No channel, connection, user or endpoint ever becomes a
// dimension, so a deployment has at most (len(Catalog) - 1) x 5 +
// len(DenyReasons) x 5 series whatever its traffic (AuthorizerDenied exists
// only with a Reason; only the authorizer records it, so 3 reasons in
// practice). Recorders drop names and reasons outside those lists.
package metrics

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode"
)

// Recorder receives metric events. Implementations are safe for concurrent use.
type Recorder interface {
	// Add adds v to the counter name (one of the Kind Counter names).
	Add(name string, v float64)
	// Observe records one sample of name (one of the Kind Observation names):
	// a duration, a rate, a size.
	Observe(name string, v float64)
	// AddReason adds v to the counter name under the dimension Reason (the
	// names with HasReason: AuthorizerDenied, reason one of DenyReasons).
	AddReason(name, reason string, v float64)
}

// Metric names. docs/operations.md ("What to watch") lists them with their units.
const (
	// ConnectionsOpened counts $connect events the websocket function accepted.
	ConnectionsOpened = "ConnectionsOpened"
	// ConnectionsClosed counts $disconnect events.
	ConnectionsClosed = "ConnectionsClosed"
	// MessagesReceived counts client frames ($default and custom routes).
	MessagesReceived = "MessagesReceived"
	// DeliveriesAttempted counts posts to the management API, retries included.
	DeliveriesAttempted = "DeliveriesAttempted"
	// DeliveriesSucceeded counts recipients a message was delivered to.
	DeliveriesSucceeded = "DeliveriesSucceeded"
	// DeliveriesGone counts recipients that answered 410 GoneException; each
	// is removed from the store (after the 30 s grace of realtime.GoneGrace).
	DeliveriesGone = "DeliveriesGone"
	// DeliveriesRefused counts recipients refused: payload too large (413) or
	// forbidden (403). (A message over 128 KB is refused before any post and
	// is not counted here; a fan-out worker's batch with 403s goes back to SQS,
	// and each delivery of it counts them again.)
	DeliveriesRefused = "DeliveriesRefused"
	// DeliveriesFailed counts recipients still failing after every retry
	// (throttled, 5xx, network, deadline).
	DeliveriesFailed = "DeliveriesFailed"
	// DeliveriesLost counts failed recipients that nothing will retry: sends
	// made in-process by the websocket and publisher functions, and the
	// recipients of a distributed send that could not be put on the queue.
	// (A fan-out worker's failed batch goes back to SQS and counts in
	// BatchesFailed.)
	DeliveriesLost = "DeliveriesLost"
	// Throttled counts 429 LimitExceededException answers met.
	Throttled = "Throttled"
	// Retries counts extra posts after a 429, a 5xx or a network error, and
	// a welcome posted again while $connect had not returned (410).
	Retries = "Retries"
	// Recipients is the audience of one send (an observation per send).
	Recipients = "Recipients"
	// FanoutDuration is how long one send to two or more recipients took.
	FanoutDuration = "FanoutDuration"
	// FanoutRate is the recipients per second one send to two or more
	// recipients achieved.
	FanoutRate = "FanoutRate"
	// BatchesEnqueued counts fan-out batches put on the SQS queue.
	BatchesEnqueued = "BatchesEnqueued"
	// BatchesCompleted counts fan-out batches a worker delivered (or found
	// already delivered).
	BatchesCompleted = "BatchesCompleted"
	// BatchesFailed counts fan-out batches a worker handed back to SQS for
	// another try (after max_receive_count tries a batch goes to the DLQ).
	BatchesFailed = "BatchesFailed"
	// AuthorizerAllowed counts $connect requests the JWT authorizer allowed.
	AuthorizerAllowed = "AuthorizerAllowed"
	// AuthorizerDenied counts $connect requests the JWT authorizer refused, by Reason.
	AuthorizerDenied = "AuthorizerDenied"
	// HistoryRecovered counts subscribes with `since` answered recovered:true
	// (the missed messages were in the reply).
	HistoryRecovered = "HistoryRecovered"
	// HistoryNotRecovered counts subscribes with `since` answered
	// recovered:false (gap beyond the history, another epoch, or a reply over
	// 128 KB, which a client can still read with history): the client lost
	// messages, or must page them.
	HistoryNotRecovered = "HistoryNotRecovered"
)

// Values of the Function dimension: the module's functions.
const (
	FunctionWebSocket  = "websocket"
	FunctionPublisher  = "publisher"
	FunctionFanout     = "fanout"
	FunctionAuthorizer = "authorizer"
	// FunctionPusher is the websocket binary in Pusher mode (WS_PUSHER_APP_KEY
	// set): the module's Pusher-mode function.
	FunctionPusher = "pusher"
)

// Reasons of AuthorizerDenied: a closed set.
const (
	// ReasonNoToken: the request carried no token (401).
	ReasonNoToken = "no_token"
	// ReasonInvalidToken: the token failed verification (403).
	ReasonInvalidToken = "invalid_token"
	// ReasonError: the authorizer failed (500), for example a key fetch.
	ReasonError = "error"
)

// DenyReasons is every value of the Reason dimension.
var DenyReasons = []string{ReasonNoToken, ReasonInvalidToken, ReasonError}

// Units, as CloudWatch names them.
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
	UnitCountPerSec  = "Count/Second"
)

// Kind says how a metric is recorded.
type Kind string

// Kinds.
const (
	// Counter metrics are summed (Recorder.Add, AddReason).
	Counter Kind = "counter"
	// Observation metrics keep every sample (Recorder.Observe): CloudWatch
	// gets the values, Prometheus a histogram.
	Observation Kind = "observation"
)

// Definition describes one metric.
type Definition struct {
	// Name is the CloudWatch metric name.
	Name string `json:"name"`
	// Unit is the CloudWatch unit.
	Unit string `json:"unit"`
	// Kind is counter or observation.
	Kind Kind `json:"kind"`
	// HasReason is true for the metric with the Reason dimension.
	HasReason bool `json:"hasReason,omitempty"`
	// Prometheus is the name on the local gateway's /metrics.
	Prometheus string `json:"prometheus"`
	// Help says what it counts.
	Help string `json:"help"`
}

func def(name, unit string, kind Kind, help string) Definition {
	return Definition{Name: name, Unit: unit, Kind: kind, Help: help, Prometheus: PrometheusName(name, unit, kind)}
}

// Catalog is every metric, in the order docs/operations.md lists them.
// metrics.json beside this file is generated from it (the module's plan
// tests read that file); TestCatalogFile fails when they disagree, and
// `go test ./lambda/metrics -update` rewrites it.
var Catalog = []Definition{
	def(ConnectionsOpened, UnitCount, Counter, "$connect events accepted"),
	def(ConnectionsClosed, UnitCount, Counter, "$disconnect events"),
	def(MessagesReceived, UnitCount, Counter, "client frames received"),
	def(DeliveriesAttempted, UnitCount, Counter, "posts to the management API, retries included"),
	def(DeliveriesSucceeded, UnitCount, Counter, "recipients delivered to"),
	def(DeliveriesGone, UnitCount, Counter, "recipients that answered 410 (removed)"),
	def(DeliveriesRefused, UnitCount, Counter, "recipients refused for good (413 too large, 403 forbidden)"),
	def(DeliveriesFailed, UnitCount, Counter, "recipients failing after every retry"),
	def(DeliveriesLost, UnitCount, Counter, "failed recipients nothing will retry (in-process sends, recipients a distributed send could not enqueue)"),
	def(Throttled, UnitCount, Counter, "429 answers met"),
	def(Retries, UnitCount, Counter, "extra posts after 429, 5xx or network errors, and welcome posts repeated before $connect returned"),
	def(Recipients, UnitCount, Observation, "recipients per send"),
	def(FanoutDuration, UnitMilliseconds, Observation, "duration of a send to two or more recipients"),
	def(FanoutRate, UnitCountPerSec, Observation, "recipients per second of a send to two or more recipients"),
	def(BatchesEnqueued, UnitCount, Counter, "fan-out batches enqueued"),
	def(BatchesCompleted, UnitCount, Counter, "fan-out batches delivered"),
	def(BatchesFailed, UnitCount, Counter, "fan-out batches handed back to SQS"),
	def(AuthorizerAllowed, UnitCount, Counter, "connections the JWT authorizer allowed"),
	func() Definition {
		d := def(AuthorizerDenied, UnitCount, Counter, "connections the JWT authorizer refused, by reason")
		d.HasReason = true
		return d
	}(),
	def(HistoryRecovered, UnitCount, Counter, "resubscribes that recovered every missed message"),
	def(HistoryNotRecovered, UnitCount, Counter, "resubscribes answered recovered:false"),
}

// Lookup returns the definition of name.
func Lookup(name string) (Definition, bool) {
	for _, d := range Catalog {
		if d.Name == name {
			return d, true
		}
	}
	return Definition{}, false
}

// ValidReason reports whether reason is one of DenyReasons.
func ValidReason(reason string) bool {
	for _, r := range DenyReasons {
		if r == reason {
			return true
		}
	}
	return false
}

// PrometheusName maps a CloudWatch name to the local gateway's: "websocket_",
// the name in snake_case, then "_total" for counters, or the unit for
// observations ("_milliseconds", "_per_second"; nothing for Count).
func PrometheusName(name, unit string, kind Kind) string {
	var b strings.Builder
	b.WriteString("websocket_")
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	if kind == Counter {
		b.WriteString("_total")
		return b.String()
	}
	switch unit {
	case UnitMilliseconds:
		b.WriteString("_milliseconds")
	case UnitCountPerSec:
		b.WriteString("_per_second")
	}
	return b.String()
}

// Nop is the Recorder that drops everything.
type Nop struct{}

// Add implements Recorder.
func (Nop) Add(string, float64) {}

// Observe implements Recorder.
func (Nop) Observe(string, float64) {}

// AddReason implements Recorder.
func (Nop) AddReason(string, string, float64) {}

var _ Recorder = Nop{}

// Or returns r, or Nop when r is nil: what an optional Metrics field becomes.
func Or(r Recorder) Recorder {
	if r == nil {
		return Nop{}
	}
	return r
}

// EnvNamespace is the environment variable naming the CloudWatch namespace.
const EnvNamespace = "WS_METRICS_NAMESPACE"

// DefaultNamespace is the namespace when WS_METRICS_NAMESPACE is unset; the
// module sets WebSocket/<name>.
const DefaultNamespace = "WebSocket"

// NamespaceFromEnv reads WS_METRICS_NAMESPACE with getenv.
func NamespaceFromEnv(getenv func(string) string) string {
	if ns := strings.TrimSpace(getenv(EnvNamespace)); ns != "" {
		return ns
	}
	return DefaultNamespace
}

// Flusher writes what a recorder buffered.
type Flusher interface {
	Flush() error
}

// Wrap returns a Lambda handler that runs h and then flushes f, so every
// invocation writes its metrics before Lambda freezes the process. h's
// context ends DeadlineMargin before the invocation's deadline: a handler
// cut short by it (a fan-out past its time) still returns, and the metrics
// of exactly that case (DeliveriesFailed, DeliveriesLost) are written
// instead of dying with the timed-out invocation.
func Wrap[In, Out any](f Flusher, h func(context.Context, In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		defer func() {
			if err := f.Flush(); err != nil {
				slog.Default().ErrorContext(ctx, "flush metrics", "error", err)
			}
		}()
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 2*DeadlineMargin {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-DeadlineMargin))
			defer cancel()
		}
		return h(ctx, in)
	}
}

// DeadlineMargin is how long before the invocation's deadline Wrap ends the
// handler's context (when more than twice that is left): time to return,
// answer and flush the metrics.
const DeadlineMargin = 250 * time.Millisecond
