package sender_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// A connection whose $connect has not returned answers 410: those posts are
// made again, and the whole counts as one send to one recipient, with no
// gone outcome and no OnGone.
func TestSendToNewConnection(t *testing.T) {
	upAfter := func(n int) func(string, string, int) int {
		return func(_, _ string, call int) int {
			if call <= n {
				return 410
			}
			return 0
		}
	}
	tests := []struct {
		name    string
		opts    mgmtapitest.Options
		timeout time.Duration
		data    []byte
		status  sender.Status
		err     error
		want    map[string]float64
	}{
		{"up at once", mgmtapitest.Options{AutoRegister: true}, 0, []byte("x"), sender.StatusDelivered, nil,
			map[string]float64{metrics.DeliveriesAttempted: 1, metrics.DeliveriesSucceeded: 1}},
		{"up after two 410s", mgmtapitest.Options{AutoRegister: true, Inject: upAfter(2)}, 0, []byte("x"), sender.StatusDelivered, nil,
			map[string]float64{metrics.DeliveriesAttempted: 3, metrics.DeliveriesSucceeded: 1, metrics.Retries: 2}},
		{"a 429 on the way", mgmtapitest.Options{AutoRegister: true, Inject: func(_, _ string, call int) int {
			return map[int]int{1: 410, 2: 429}[call]
		}}, 0, []byte("x"), sender.StatusDelivered, nil,
			map[string]float64{metrics.DeliveriesAttempted: 3, metrics.DeliveriesSucceeded: 1, metrics.Retries: 2, metrics.Throttled: 1}},
		{"refused for good", mgmtapitest.Options{AutoRegister: true, Inject: func(_, _ string, call int) int {
			return map[int]int{1: 410, 2: 403}[call]
		}}, 0, []byte("x"), sender.StatusForbidden, sender.ErrForbidden,
			map[string]float64{metrics.DeliveriesAttempted: 2, metrics.DeliveriesRefused: 1, metrics.Retries: 1}},
		{"too large, no post", mgmtapitest.Options{AutoRegister: true}, 0, make([]byte, sender.MaxPayload+1), sender.StatusTooLarge, sender.ErrTooLarge,
			map[string]float64{metrics.DeliveriesRefused: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opts)
			rec := metricstest.New()
			var gone atomic.Int32
			s := sender.NewSender(newAPI(t, srv), sender.Options{
				Metrics: rec, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
				OnGone: func(context.Context, string) { gone.Add(1) },
			})

			res := s.SendToNewConnection(t.Context(), "c1", tt.data)

			assert.Equal(t, tt.status, res.Status)
			if tt.err == nil {
				assert.NoError(t, res.Err)
			} else {
				assert.ErrorIs(t, res.Err, tt.err)
			}
			assert.Equal(t, int(tt.want[metrics.DeliveriesAttempted]), res.Attempts)
			for _, name := range deliveryCounters {
				assert.Equal(t, tt.want[name], rec.Count(name), name)
			}
			assert.Equal(t, []float64{1}, rec.Samples(metrics.Recipients), "one send to one recipient")
			assert.Zero(t, gone.Load(), "OnGone never runs for a connection not up yet")
		})
	}
}

// A connection that never comes up ends as gone when ctx ends: one gone
// outcome for the whole, every post counted as attempted.
func TestSendToNewConnectionGivesUpWithTheContext(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{})
	rec := metricstest.New()
	var gone atomic.Int32
	s := sender.NewSender(newAPI(t, srv), sender.Options{Metrics: rec, OnGone: func(context.Context, string) { gone.Add(1) }})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()

	res := s.SendToNewConnection(ctx, "never", []byte("x"))

	require.Equal(t, sender.StatusGone, res.Status)
	assert.True(t, errors.Is(res.Err, sender.ErrGone), res.Err)
	assert.GreaterOrEqual(t, res.Attempts, 2, "410s are posted again while ctx lasts")
	assert.Equal(t, float64(res.Attempts), rec.Count(metrics.DeliveriesAttempted))
	assert.Equal(t, float64(res.Attempts-1), rec.Count(metrics.Retries))
	assert.Equal(t, 1.0, rec.Count(metrics.DeliveriesGone))
	assert.Equal(t, []float64{1}, rec.Samples(metrics.Recipients))
	assert.Equal(t, int(srv.Counts().Gone), res.Attempts)
	assert.Zero(t, gone.Load())
}

// A ctx that ends during a post, after 410s, ends as gone too: the
// connection never came up (a post in flight is cut short, not failed).
func TestSendToNewConnectionCutDuringAPostIsGone(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{Latency: 200 * time.Millisecond})
	s := sender.NewSender(newAPI(t, srv), sender.Options{})
	// The first 410 comes at 200 ms, the second post starts about 5 ms
	// later and is cut at 350 ms, half-way through.
	ctx, cancel := context.WithTimeout(t.Context(), 350*time.Millisecond)
	defer cancel()

	res := s.SendToNewConnection(ctx, "never", []byte("x"))

	require.Equal(t, sender.StatusGone, res.Status, "%v", res.Err)
	assert.True(t, errors.Is(res.Err, sender.ErrGone), res.Err)
	assert.Equal(t, 2, res.Attempts)
}
