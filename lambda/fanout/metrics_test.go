package fanout_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

func TestWorkerMetrics(t *testing.T) {
	var failing sync.Map
	failing.Store("c00003=", true)
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Inject: func(_, id string, _ int) int {
		if _, ok := failing.Load(id); ok {
			return 503
		}
		return 0
	}})
	rec := metricstest.New()
	w, err := fanout.NewWorker(fanout.WorkerConfig{
		NewSender: func(string) (*sender.Sender, error) { return h.s, nil },
		Endpoint:  h.srv.URL(), Ledger: h.ledger, Metrics: rec,
	})
	require.NoError(t, err)
	q := &fakeSQS{}
	_, err = newEnqueuer(t, q, 0, 5).Distribute(context.Background(), "", []byte("m"), pagesOf(recipients(10), 10))
	require.NoError(t, err)
	ev := q.event()
	require.Len(t, ev.Records, 2)

	_, err = w.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, 1.0, rec.Count(metrics.BatchesCompleted))
	assert.Equal(t, 1.0, rec.Count(metrics.BatchesFailed), "the batch with a 503 recipient goes back to SQS")

	failing.Delete("c00003=")
	_, err = w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{ev.Records[0], {MessageId: "poison", Body: "not json"}}})
	require.NoError(t, err)
	assert.Equal(t, 2.0, rec.Count(metrics.BatchesCompleted), "the redelivered batch completes")
	assert.Equal(t, 2.0, rec.Count(metrics.BatchesFailed), "an unreadable message fails")
}
