package sender_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// deliveryCounters are the counters a send moves.
var deliveryCounters = []string{metrics.DeliveriesAttempted, metrics.DeliveriesSucceeded, metrics.DeliveriesGone,
	metrics.DeliveriesRefused, metrics.DeliveriesFailed, metrics.Throttled, metrics.Retries}

// TestSendMetrics checks that each delivery counter moves when its event
// happens at the management API stand-in.
func TestSendMetrics(t *testing.T) {
	tests := []struct {
		name   string
		opts   mgmtapitest.Options
		dead   bool
		data   []byte
		attmpt int
		want   map[string]float64
	}{
		{"delivered", mgmtapitest.Options{AutoRegister: true}, false, []byte("x"), 0,
			map[string]float64{metrics.DeliveriesAttempted: 2, metrics.DeliveriesSucceeded: 2}},
		{"410 gone", mgmtapitest.Options{}, true, []byte("x"), 0,
			map[string]float64{metrics.DeliveriesAttempted: 2, metrics.DeliveriesGone: 2}},
		{"429 met and retried", mgmtapitest.Options{AutoRegister: true, Inject: firstCalls(429)}, false, []byte("x"), 0,
			map[string]float64{metrics.DeliveriesAttempted: 4, metrics.DeliveriesSucceeded: 2, metrics.Throttled: 2, metrics.Retries: 2}},
		{"5xx until attempts run out", mgmtapitest.Options{AutoRegister: true, Inject: func(string, string, int) int { return 502 }}, false, []byte("x"), 2,
			map[string]float64{metrics.DeliveriesAttempted: 4, metrics.DeliveriesFailed: 2, metrics.Retries: 2}},
		{"403 forbidden", mgmtapitest.Options{AutoRegister: true, Inject: func(string, string, int) int { return 403 }}, false, []byte("x"), 0,
			map[string]float64{metrics.DeliveriesAttempted: 2, metrics.DeliveriesRefused: 2}},
		{"too large, refused without a call", mgmtapitest.Options{AutoRegister: true}, false, make([]byte, sender.MaxPayload+1), 0,
			map[string]float64{metrics.DeliveriesRefused: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opts)
			if tt.dead {
				srv.Connect("a", "b")
				srv.Kill("a", "b")
			}
			rec := metricstest.New()
			s := sender.NewSender(newAPI(t, srv), sender.Options{
				Concurrency: 2, MaxAttempts: tt.attmpt, Metrics: rec, Sleep: (&sleeps{}).sleep,
			})

			s.Send(context.Background(), []string{"a", "b"}, tt.data)

			for _, name := range deliveryCounters {
				assert.Equal(t, tt.want[name], rec.Count(name), name)
			}
			assert.Equal(t, []float64{2}, rec.Samples(metrics.Recipients))
			assert.Len(t, rec.Samples(metrics.FanoutDuration), 1)
			assert.Len(t, rec.Samples(metrics.FanoutRate), 1)
			for _, r := range rec.Samples(metrics.FanoutRate) {
				assert.Greater(t, r, 0.0)
			}
		})
	}
}

// firstCalls answers the first call of every id with status, then normally.
func firstCalls(status int) func(string, string, int) int {
	return func(_, _ string, call int) int {
		if call == 1 {
			return status
		}
		return 0
	}
}

func TestSendMetricsSingleRecipientHasNoFanoutTiming(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true})
	rec := metricstest.New()
	s := sender.NewSender(newAPI(t, srv), sender.Options{Metrics: rec, BaseBackoff: time.Millisecond})

	s.Send(context.Background(), []string{"only"}, []byte("x"))
	s.Send(context.Background(), nil, []byte("x"))

	assert.Equal(t, 1.0, rec.Count(metrics.DeliveriesSucceeded))
	assert.Equal(t, []float64{1}, rec.Samples(metrics.Recipients), "an empty send records nothing")
	assert.Empty(t, rec.Samples(metrics.FanoutDuration))
	assert.Empty(t, rec.Samples(metrics.FanoutRate))
}
