package realtime

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// newMetricsEnv is newEnv with a recording Metrics, a management API
// stand-in built from opts and an optional Distributor.
func newMetricsEnv(t *testing.T, opts mgmtapitest.Options, d Distributor) (*env, *metricstest.Recorder) {
	t.Helper()
	e := newEnv(t, Hooks{})
	opts.Stage, opts.KeepMessages = "prod", true
	e.api = mgmtapitest.New(opts)
	t.Cleanup(e.api.Close)
	poster, err := sender.NewManagementAPI(testAWSConfig(), e.api.URL(), nil)
	require.NoError(t, err)
	rec := metricstest.New()
	e.m, err = New(Config{
		Store: e.store, Poster: poster, Distributor: d, Metrics: rec,
		Sender: sender.Options{Concurrency: 4, MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now:    func() time.Time { return e.now },
	})
	require.NoError(t, err)
	return e, rec
}

func TestMetricsConnectionsAndMessages(t *testing.T) {
	e, rec := newMetricsEnv(t, mgmtapitest.Options{}, nil)

	e.connect("a", "", "", "room")
	e.connect("b", "", "", "room")
	assert.Equal(t, 2.0, rec.Count(metrics.ConnectionsOpened))
	assert.Equal(t, http.StatusForbidden, e.connect("c", "", "", "private-x").StatusCode)
	assert.Equal(t, 2.0, rec.Count(metrics.ConnectionsOpened), "a refused $connect opens nothing")

	e.send("a", "", "", "$default", `{"action":"ping"}`)
	e.send("a", "", "", "$default", `{"action":"publish","channel":"room","data":1}`)
	e.send("a", "", "", "custom", `{"action":"custom"}`)
	assert.Equal(t, 3.0, rec.Count(metrics.MessagesReceived))
	assert.Equal(t, 1.0, rec.Count(metrics.DeliveriesSucceeded), "the publish reached b, the sender's recorder is the manager's")
	assert.Equal(t, 0.0, rec.Count(metrics.DeliveriesLost))

	e.disconnect("a")
	assert.Equal(t, 1.0, rec.Count(metrics.ConnectionsClosed))
}

func TestMetricsDeliveriesLost(t *testing.T) {
	e, rec := newMetricsEnv(t, mgmtapitest.Options{AutoRegister: true, Inject: func(method, _ string, _ int) int {
		if method == http.MethodPost {
			return http.StatusBadGateway
		}
		return 0
	}}, nil)
	ctx := context.Background()
	e.connect("a", "", "", "room")
	e.connect("b", "", "", "room")

	_, err := e.m.SendToChannel(ctx, "room", []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, 2.0, rec.Count(metrics.DeliveriesLost), "a channel send")
	_, err = e.m.SendToConnections(ctx, []string{"a"}, []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, 3.0, rec.Count(metrics.DeliveriesLost), "a send to connections")
	assert.Equal(t, 3.0, rec.Count(metrics.DeliveriesFailed))
}

// countingDistributor enqueues every audience in batches of two.
type countingDistributor struct{}

func (countingDistributor) SendOrDistribute(_ context.Context, _ *sender.Sender, _ string, _ []byte, pages func(fn func(ids []string) error) error) (sender.Report, error) {
	n := 0
	err := pages(func(ids []string) error { n += len(ids); return nil })
	return sender.Report{Batches: (n + 1) / 2}, err
}

func TestMetricsBatchesEnqueued(t *testing.T) {
	e, rec := newMetricsEnv(t, mgmtapitest.Options{}, countingDistributor{})
	for _, id := range []string{"a", "b", "c"} {
		e.connect(id, "", "", "room")
	}

	_, err := e.m.SendToChannel(context.Background(), "room", []byte("x"))
	require.NoError(t, err)

	assert.Equal(t, 2.0, rec.Count(metrics.BatchesEnqueued))
}
