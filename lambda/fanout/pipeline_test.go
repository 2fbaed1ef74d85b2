package fanout_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/publisher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// TestPublisherToWorkerPipeline runs the whole distributed path: a publisher
// sendToChannel above the threshold enqueues batches through the Manager's
// Distributor, the worker delivers them (a dead one is removed from the
// store), and a redelivered batch does not send twice.
func TestPublisherToWorkerPipeline(t *testing.T) {
	ctx := context.Background()
	api := mgmtapitest.New(mgmtapitest.Options{Stage: "prod", KeepMessages: true})
	defer api.Close()
	st := store.NewMemory(store.MemoryOptions{PageSize: 4})
	members := recipients(11)
	for _, id := range members {
		require.NoError(t, st.AddConnection(ctx, store.Connection{ID: id}))
		_, err := st.Join(ctx, id, "news")
		require.NoError(t, err)
	}
	api.Connect(members[1:]...)
	api.Kill(members[0])

	cfg := aws.Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}}
	poster, err := sender.NewManagementAPI(cfg, api.URL(), nil)
	require.NoError(t, err)
	q := &fakeSQS{}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m, err := realtime.New(realtime.Config{Store: st, Poster: poster, Distributor: newEnqueuer(t, q, 5, 3), Logger: quiet})
	require.NoError(t, err)

	resp, err := publisher.New(m).Handle(ctx, json.RawMessage(`{"action":"sendToChannel","channel":"news","data":{"n":1}}`))
	require.NoError(t, err)
	require.NotNil(t, resp.Batches)
	assert.Equal(t, 4, *resp.Batches, "11 recipients in batches of 3")
	assert.Zero(t, api.Counts().Posts, "the publisher itself posts nothing above the threshold")

	worker, err := fanout.NewWorker(fanout.WorkerConfig{
		Endpoint: api.URL(),
		Ledger:   fanout.NewMemoryLedger(time.Hour, time.Now),
		Logger:   quiet,
		NewSender: func(endpoint string) (*sender.Sender, error) {
			p, err := sender.NewManagementAPI(cfg, api.URL(), nil)
			if err != nil {
				return nil, err
			}
			return sender.NewSender(p, sender.Options{OnGone: func(ctx context.Context, id string) {
				_, _ = st.RemoveConnection(ctx, id)
			}}), nil
		},
	})
	require.NoError(t, err)
	ev := q.event()
	out, err := worker.Handle(ctx, ev)
	require.NoError(t, err)
	assert.Empty(t, out.BatchItemFailures)
	for _, id := range members[1:] {
		assert.Equal(t, [][]byte{[]byte(`{"n":1}`)}, api.Messages(id), id)
	}
	ok, err := m.Exists(ctx, members[0])
	require.NoError(t, err)
	assert.False(t, ok, "the worker removes a gone connection")

	// SQS delivers at least once: the same batches again send nothing more.
	out, err = worker.Handle(ctx, ev)
	require.NoError(t, err)
	assert.Empty(t, out.BatchItemFailures)
	for _, id := range members[1:] {
		assert.Len(t, api.Messages(id), 1, id)
	}
}
