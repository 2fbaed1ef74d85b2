package fanout_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// leaseRecorder is a MemoryLedger that remembers the leases asked for.
type leaseRecorder struct {
	*fanout.MemoryLedger
	leases []time.Duration
}

func (l *leaseRecorder) Claim(ctx context.Context, id string, lease time.Duration) (fanout.Claim, error) {
	l.leases = append(l.leases, lease)
	return l.MemoryLedger.Claim(ctx, id, lease)
}

func (l *leaseRecorder) ClaimRemaining(ctx context.Context, id string, lease time.Duration) (fanout.Claim, []string, error) {
	l.leases = append(l.leases, lease)
	return l.MemoryLedger.ClaimRemaining(ctx, id, lease)
}

// TestWorkerCutShortRetriesBatch: a worker whose invocation ends before the
// batch is out must not mark it delivered; the redelivery sends what it did
// not reach.
// Its claim lasts until the invocation's deadline, not a fixed 5 minutes.
func TestWorkerCutShortRetriesBatch(t *testing.T) {
	api := mgmtapitest.New(mgmtapitest.Options{Stage: "prod", AutoRegister: true, KeepMessages: true})
	defer api.Close()
	q := &fakeSQS{}
	members := recipients(6)
	_, err := newEnqueuer(t, q, 0, 10).Distribute(context.Background(), api.URL(), []byte(`"hi"`), pagesOf(members, 3))
	require.NoError(t, err)

	ledger := &leaseRecorder{MemoryLedger: fanout.NewMemoryLedger(time.Hour, time.Now)}
	w := quietWorker(t, ledger)

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	out, err := w.Handle(ctx, q.event())
	require.NoError(t, err)
	assert.Len(t, out.BatchItemFailures, 1, "an invocation past its deadline reports the batch for retry")
	require.Len(t, ledger.leases, 1)
	assert.Less(t, ledger.leases[0], 10*time.Second, "the claim ends with the invocation")

	out, err = w.Handle(context.Background(), q.event())
	require.NoError(t, err)
	assert.Empty(t, out.BatchItemFailures)
	for _, id := range members {
		assert.Len(t, api.Messages(id), 1, id)
	}
}

// TestWorkerClaimsUntilALongDeadline: a worker with 15 minutes to go (the
// longest fan-out timeout) claims its batch for all of them, not for the
// 5-minute default: a duplicate of its message must not take the batch
// over while it still sends.
func TestWorkerClaimsUntilALongDeadline(t *testing.T) {
	api := mgmtapitest.New(mgmtapitest.Options{Stage: "prod", AutoRegister: true})
	defer api.Close()
	q := &fakeSQS{}
	_, err := newEnqueuer(t, q, 0, 10).Distribute(context.Background(), api.URL(), []byte(`"hi"`), pagesOf(recipients(2), 3))
	require.NoError(t, err)
	ledger := &leaseRecorder{MemoryLedger: fanout.NewMemoryLedger(time.Hour, time.Now)}
	w := quietWorker(t, ledger)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out, err := w.Handle(ctx, q.event())
	require.NoError(t, err)
	assert.Empty(t, out.BatchItemFailures)
	require.Len(t, ledger.leases, 1)
	assert.Greater(t, ledger.leases[0], 14*time.Minute, "the claim lasts until the invocation's deadline")
}

// quietWorker is a worker on ledger whose senders post with anonymous
// credentials to the endpoint each batch names, logging nothing.
func quietWorker(t *testing.T, ledger fanout.Ledger) *fanout.Worker {
	t.Helper()
	cfg := aws.Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}}
	w, err := fanout.NewWorker(fanout.WorkerConfig{
		Ledger: ledger,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		NewSender: func(endpoint string) (*sender.Sender, error) {
			p, err := sender.NewManagementAPI(cfg, endpoint, nil)
			if err != nil {
				return nil, err
			}
			return sender.NewSender(p, sender.Options{}), nil
		},
	})
	require.NoError(t, err)
	return w
}
