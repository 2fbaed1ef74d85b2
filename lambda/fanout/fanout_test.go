package fanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// fakeSQS records SendMessageBatch requests, enforcing SQS's limits, and can
// fail entries.
type fakeSQS struct {
	mu       sync.Mutex
	calls    int
	messages []types.SendMessageBatchRequestEntry
	failOnce map[int]bool // entry index within a call -> fail its first try
	fault    map[int]bool // entry index within the first call -> fail for the sender's fault
	downFrom int          // calls from this one on fail whole (0: never)
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if aws.ToString(in.QueueUrl) == "" {
		return nil, errors.New("no queue url")
	}
	if f.downFrom > 0 && f.calls >= f.downFrom {
		return nil, errors.New("network down")
	}
	if len(in.Entries) == 0 || len(in.Entries) > 10 {
		return nil, fmt.Errorf("AWS.SimpleQueueService.TooManyEntriesInBatchRequest: %d entries", len(in.Entries))
	}
	size := 0
	for _, e := range in.Entries {
		size += len(aws.ToString(e.MessageBody))
	}
	if size > 256*1024 {
		return nil, fmt.Errorf("AWS.SimpleQueueService.BatchRequestTooLong: %d bytes", size)
	}
	out := &sqs.SendMessageBatchOutput{}
	for i, e := range in.Entries {
		if f.calls == 1 && f.fault[i] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, SenderFault: true, Code: aws.String("InvalidParameterValue"), Message: aws.String("bad entry")})
			continue
		}
		if f.failOnce[i] {
			delete(f.failOnce, i)
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		f.messages = append(f.messages, e)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String(fmt.Sprintf("msg-%d", len(f.messages)))})
	}
	return out, nil
}

// event turns the enqueued messages into the SQS event the worker receives.
func (f *fakeSQS) event() events.SQSEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ev events.SQSEvent
	for i, m := range f.messages {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("msg-%d", i+1), Body: aws.ToString(m.MessageBody), EventSource: "aws:sqs"})
	}
	return ev
}

func (f *fakeSQS) batches(t *testing.T) []fanout.Batch {
	t.Helper()
	var out []fanout.Batch
	for _, r := range f.event().Records {
		var b fanout.Batch
		require.NoError(t, json.Unmarshal([]byte(r.Body), &b))
		out = append(out, b)
	}
	return out
}

func recipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%05d=", i)
	}
	return out
}

// pagesOf yields ids in pages of size, like a store's paged Query.
func pagesOf(ids []string, size int) fanout.Pages {
	return func(fn func([]string) error) error {
		for len(ids) > 0 {
			n := min(size, len(ids))
			if err := fn(ids[:n]); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	}
}

func newEnqueuer(t *testing.T, q fanout.SQSAPI, threshold, batch int) *fanout.Enqueuer {
	t.Helper()
	e, err := fanout.NewEnqueuer(q, fanout.Settings{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/ws-fanout", Threshold: threshold, BatchSize: batch})
	require.NoError(t, err)
	return e
}

func TestDistributeSplitsIntoBatches(t *testing.T) {
	tests := []struct {
		name                   string
		n, batchSize, dataSize int
		wantBatches, wantCalls int
	}{
		{"one request holds up to 10 batches", 2345, 500, 200, 5, 1},
		{"25 batches take 3 requests", 2500, 100, 200, 25, 3},
		{"large payloads: one batch per request (256 KiB per request)", 1500, 500, sender.MaxPayload, 3, 3},
		{"exact multiple", 1000, 500, 10, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeSQS{}
			ids := recipients(tt.n)
			data := []byte(strings.Repeat("d", tt.dataSize))
			got, err := newEnqueuer(t, q, 0, tt.batchSize).Distribute(context.Background(), "https://api/stage", data, pagesOf(append(ids, ids[:7]...), 333))
			require.NoError(t, err)
			assert.Equal(t, tt.wantBatches, got)
			assert.Equal(t, tt.wantCalls, q.calls)

			var all []string
			seen := map[string]bool{}
			for _, b := range q.batches(t) {
				assert.LessOrEqual(t, len(b.ConnectionIDs), tt.batchSize)
				assert.Equal(t, data, b.Data)
				assert.Equal(t, "https://api/stage", b.Endpoint)
				assert.False(t, seen[b.ID], "batch ids are unique")
				seen[b.ID] = true
				all = append(all, b.ConnectionIDs...)
			}
			assert.Equal(t, ids, all, "every recipient exactly once, duplicates dropped, in order")
		})
	}
}

func TestDistributeRetriesFailedEntries(t *testing.T) {
	q := &fakeSQS{failOnce: map[int]bool{1: true, 3: true}}
	got, err := newEnqueuer(t, q, 0, 100).Distribute(context.Background(), "", []byte("x"), pagesOf(recipients(500), 1000))
	require.NoError(t, err)
	assert.Equal(t, 5, got)
	assert.Equal(t, 2, q.calls, "the two failed entries are sent again")
	assert.Len(t, q.batches(t), 5)
}

// TestDistributeRetriesOthersBeforeASenderFault: an entry SQS refuses for
// the sender's fault is reported, but only after the entries that failed
// for SQS's own reasons in the same answer were sent again.
func TestDistributeRetriesOthersBeforeASenderFault(t *testing.T) {
	q := &fakeSQS{failOnce: map[int]bool{1: true}, fault: map[int]bool{2: true}}
	got, err := newEnqueuer(t, q, 0, 100).Distribute(context.Background(), "", []byte("x"), pagesOf(recipients(500), 1000))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "InvalidParameterValue")
	assert.Equal(t, 4, got, "every batch but the refused one")
	assert.Equal(t, 2, q.calls, "the retryable entry was sent again")
}

func TestDistributeStopsOnPageError(t *testing.T) {
	boom := errors.New("query failed")
	q := &fakeSQS{}
	_, err := newEnqueuer(t, q, 0, 10).Distribute(context.Background(), "", []byte("x"), func(fn func([]string) error) error {
		if err := fn(recipients(25)); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
}

func TestParseSettings(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := fanout.ParseSettings(env(nil))
	require.NoError(t, err)
	assert.Equal(t, fanout.Settings{Threshold: 2000, BatchSize: 500, RateBudget: 10000, MaxConcurrency: 10}, s)

	s, err = fanout.ParseSettings(env(map[string]string{"WS_FANOUT_QUEUE_URL": "https://q", "WS_FANOUT_THRESHOLD": "0", "WS_FANOUT_BATCH_SIZE": "250",
		"WS_FANOUT_RATE_BUDGET": "8000.5", "WS_FANOUT_MAX_CONCURRENCY": "4"}))
	require.NoError(t, err)
	assert.Equal(t, fanout.Settings{QueueURL: "https://q", Threshold: 0, BatchSize: 250, RateBudget: 8000.5, MaxConcurrency: 4}, s)

	s, err = fanout.ParseSettings(env(map[string]string{"WS_FANOUT_RATE_BUDGET": "0"}))
	require.NoError(t, err)
	assert.Equal(t, 0.0, s.RateBudget, "0 turns the rate hint off")

	for _, bad := range []map[string]string{{"WS_FANOUT_THRESHOLD": "-1"}, {"WS_FANOUT_BATCH_SIZE": "0"}, {"WS_FANOUT_BATCH_SIZE": "5000"}, {"WS_FANOUT_THRESHOLD": "x"},
		{"WS_FANOUT_RATE_BUDGET": "-1"}, {"WS_FANOUT_RATE_BUDGET": "fast"}, {"WS_FANOUT_RATE_BUDGET": "+Inf"}, {"WS_FANOUT_MAX_CONCURRENCY": "0"}, {"WS_FANOUT_MAX_CONCURRENCY": "2.5"}} {
		_, err := fanout.ParseSettings(env(bad))
		assert.Error(t, err, "%v", bad)
	}
}

func TestRateHint(t *testing.T) {
	assert.Equal(t, 1250.0, fanout.Settings{RateBudget: 10000, MaxConcurrency: 8}.RateHint(), "the budget split among the workers that may run at once")
	assert.Equal(t, 10000.0, fanout.Settings{RateBudget: 10000}.RateHint(), "no concurrency given: one worker")
	assert.Equal(t, 0.0, fanout.Settings{MaxConcurrency: 8}.RateHint(), "no budget: no hint")
}

func TestMessagesPerInvocation(t *testing.T) {
	for _, c := range []struct {
		s    fanout.Settings
		want int
		why  string
	}{
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 10, BatchSize: 500}, 1, "the module's defaults: 500 posts at 1,000/s are half a second"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 2, BatchSize: 500}, 5, "5,000/s per worker"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 3, BatchSize: 500}, 4, "3,333/s: rounded up"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 4, BatchSize: 500}, 3, "2,500/s"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 8, BatchSize: 500}, 2, "1,250/s"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 1, BatchSize: 500}, 10, "one worker at the whole budget"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 1, BatchSize: 100}, 10, "at most 10"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 100, BatchSize: 500}, 1, "at least 1"},
		{fanout.Settings{RateBudget: 0, MaxConcurrency: 2, BatchSize: 500}, 5, "no budget: 10,000/s split the same way"},
		{fanout.Settings{RateBudget: 4000, MaxConcurrency: 2, BatchSize: 1000}, 1, "exactly half a second: no rounding up"},
		{fanout.Settings{RateBudget: 10000, MaxConcurrency: 2, BatchSize: 250}, 10, "smaller batches, more of them"},
		{fanout.Settings{}, 10, "zero settings: 10,000/s, one worker, batches of 500"},
	} {
		assert.Equal(t, c.want, c.s.MessagesPerInvocation(), "%+v: %s", c.s, c.why)
	}
}

func TestDistributePutsTheRateHintInEveryBatch(t *testing.T) {
	q := &fakeSQS{}
	e, err := fanout.NewEnqueuer(q, fanout.Settings{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/ws-fanout", BatchSize: 100, RateBudget: 10000, MaxConcurrency: 4})
	require.NoError(t, err)
	_, err = e.Distribute(context.Background(), "", []byte("x"), pagesOf(recipients(250), 100))
	require.NoError(t, err)
	bs := q.batches(t)
	require.Len(t, bs, 3)
	for _, b := range bs {
		assert.Equal(t, 2500.0, b.MaxRate, b.ID)
	}

	q = &fakeSQS{}
	_, err = newEnqueuer(t, q, 0, 100).Distribute(context.Background(), "", []byte("x"), pagesOf(recipients(10), 100))
	require.NoError(t, err)
	assert.NotContains(t, *q.messages[0].MessageBody, "maxRate", "no budget: the field is left out")
}

func TestWorkerCapsItsSenderAtTheBatchHint(t *testing.T) {
	srv := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true})
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	var made []*sender.Sender
	w, err := fanout.NewWorker(fanout.WorkerConfig{Endpoint: srv.URL(), Ledger: fanout.NewMemoryLedger(time.Minute, nil),
		NewSender: func(endpoint string) (*sender.Sender, error) {
			api, err := sender.NewManagementAPI(cfg, endpoint, nil)
			if err != nil {
				return nil, err
			}
			s := sender.NewSender(api, sender.Options{MaxRate: 5000, OmitDelivered: true})
			made = append(made, s)
			return s, nil
		}})
	require.NoError(t, err)
	handle := func(b fanout.Batch) {
		t.Helper()
		body, err := json.Marshal(b)
		require.NoError(t, err)
		resp, err := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: b.ID, Body: string(body)}}})
		require.NoError(t, err)
		require.Empty(t, resp.BatchItemFailures)
	}

	handle(fanout.Batch{ID: "f-0", ConnectionIDs: recipients(20), Data: []byte("m"), MaxRate: 1250})
	require.Len(t, made, 1)
	assert.Equal(t, 1250.0, made[0].Rate(), "the batch's hint caps the sender")
	handle(fanout.Batch{ID: "f-1", ConnectionIDs: recipients(5), Data: []byte("m")})
	assert.Equal(t, 5000.0, made[0].Rate(), "a batch without a hint: WS_MAX_SEND_RATE alone")
	handle(fanout.Batch{ID: "f-2", ConnectionIDs: recipients(5), Data: []byte("m"), MaxRate: 9000})
	assert.Equal(t, 5000.0, made[0].Rate(), "a hint above WS_MAX_SEND_RATE does not raise it")
	assert.Equal(t, int64(30), srv.Counts().Delivered)
}

// rateSeen records the highest rate of the sender that any post ran under.
type rateSeen struct {
	sender.Poster
	sender func() *sender.Sender
	mu     sync.Mutex
	max    float64
}

func (r *rateSeen) Post(ctx context.Context, id string, data []byte) error {
	rate := r.sender().Rate()
	r.mu.Lock()
	r.max = max(r.max, rate)
	r.mu.Unlock()
	return r.Poster.Post(ctx, id, data)
}

func TestWorkerTakesTheLowestHintOfAnInvocation(t *testing.T) {
	srv := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true})
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	for _, tc := range []struct {
		hints []float64
		want  float64
	}{
		{[]float64{2000, 500}, 500},
		{[]float64{500, 2000}, 500},
		{[]float64{0, 800}, 800},
		{[]float64{800, 0, 1200}, 800},
		{[]float64{0, 0}, 5000}, // no hint: WS_MAX_SEND_RATE alone
	} {
		t.Run(fmt.Sprint(tc.hints), func(t *testing.T) {
			var s *sender.Sender
			poster := &rateSeen{sender: func() *sender.Sender { return s }}
			w, err := fanout.NewWorker(fanout.WorkerConfig{Endpoint: srv.URL(), Ledger: fanout.NewMemoryLedger(time.Minute, nil),
				NewSender: func(endpoint string) (*sender.Sender, error) {
					api, err := sender.NewManagementAPI(cfg, endpoint, nil)
					if err != nil {
						return nil, err
					}
					poster.Poster = api
					s = sender.NewSender(poster, sender.Options{MaxRate: 5000, OmitDelivered: true})
					return s, nil
				}})
			require.NoError(t, err)
			var ev events.SQSEvent
			for i, h := range tc.hints {
				body, err := json.Marshal(fanout.Batch{ID: fmt.Sprintf("f-%d", i), ConnectionIDs: recipients(30), Data: []byte("m"), MaxRate: h})
				require.NoError(t, err)
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i), Body: string(body)})
			}
			resp, err := w.Handle(context.Background(), ev)
			require.NoError(t, err)
			require.Empty(t, resp.BatchItemFailures)
			assert.Equal(t, tc.want, poster.max, "every post of the invocation runs under its lowest hint")
			assert.Equal(t, tc.want, s.Rate())
		})
	}
}

// Batches for two APIs (protocol v1 and Pusher mode) in one invocation share
// the worker's one share of the budget: each sender runs at half the hint.
func TestWorkerSplitsTheHintAcrossEndpoints(t *testing.T) {
	v1 := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true, Stage: "prod"})
	t.Cleanup(v1.Close)
	ps := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true, Stage: "prod"})
	t.Cleanup(ps.Close)
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	var mu sync.Mutex
	senders := map[string]*sender.Sender{}
	w, err := fanout.NewWorker(fanout.WorkerConfig{Endpoint: v1.URL(), Ledger: fanout.NewMemoryLedger(time.Minute, nil),
		NewSender: func(endpoint string) (*sender.Sender, error) {
			api, err := sender.NewManagementAPI(cfg, endpoint, nil)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			senders[endpoint] = sender.NewSender(api, sender.Options{MaxRate: 5000, OmitDelivered: true})
			return senders[endpoint], nil
		}})
	require.NoError(t, err)
	batches := 0
	handle := func(endpoints ...string) {
		t.Helper()
		var ev events.SQSEvent
		for i, ep := range endpoints {
			batches++
			body, err := json.Marshal(fanout.Batch{ID: fmt.Sprintf("split-%d", batches), Endpoint: ep, ConnectionIDs: recipients(10), Data: []byte("m"), MaxRate: 1000})
			require.NoError(t, err)
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i), Body: string(body)})
		}
		resp, err := w.Handle(context.Background(), ev)
		require.NoError(t, err)
		require.Empty(t, resp.BatchItemFailures)
	}
	handle("", ps.URL()) // "" is the worker's own endpoint (v1)
	assert.Equal(t, 500.0, senders[v1.URL()].Rate())
	assert.Equal(t, 500.0, senders[ps.URL()].Rate())
	assert.EqualValues(t, 10, v1.Counts().Posts)
	assert.EqualValues(t, 10, ps.Counts().Posts)
	handle(ps.URL()) // alone again: the whole share
	assert.Equal(t, 1000.0, senders[ps.URL()].Rate())
}

// barrierPoster holds every post until posts to want distinct connections
// are in flight together (or ctx ends).
type barrierPoster struct {
	sender.Poster
	mu   sync.Mutex
	seen map[string]bool
	want int
	all  chan struct{}
}

func (b *barrierPoster) Post(ctx context.Context, id string, _ []byte) error {
	b.mu.Lock()
	b.seen[id] = true
	if len(b.seen) == b.want {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestWorkerDeliversTheRecordsOfAnInvocationTogether(t *testing.T) {
	// Each batch's post is held until the other batch's post has arrived:
	// only a worker that delivers both at once completes them.
	p := &barrierPoster{seen: map[string]bool{}, want: 2, all: make(chan struct{})}
	w, err := fanout.NewWorker(fanout.WorkerConfig{Endpoint: "https://api/stage", Ledger: fanout.NewMemoryLedger(time.Minute, nil),
		NewSender: func(string) (*sender.Sender, error) {
			return sender.NewSender(p, sender.Options{MaxAttempts: 1, OmitDelivered: true}), nil
		}})
	require.NoError(t, err)
	var ev events.SQSEvent
	for i, id := range []string{"a=", "b="} {
		body, err := json.Marshal(fanout.Batch{ID: fmt.Sprintf("f-%d", i), ConnectionIDs: []string{id}, Data: []byte("m")})
		require.NoError(t, err)
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("m%d", i), Body: string(body)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a guard against a hang, not a timing
	defer cancel()
	resp, err := w.Handle(ctx, ev)
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures, "both batches delivered")
}

// harness is the management API stand-in, a sender over the real SDK client
// and a worker with a memory ledger.
type harness struct {
	srv    *mgmtapitest.Server
	worker *fanout.Worker
	ledger *fanout.MemoryLedger
	gone   *sync.Map
	s      *sender.Sender
}

func newHarness(t *testing.T, opts mgmtapitest.Options) *harness {
	t.Helper()
	opts.KeepMessages = true
	h := &harness{srv: mgmtapitest.New(opts), ledger: fanout.NewMemoryLedger(time.Minute, nil), gone: &sync.Map{}}
	t.Cleanup(h.srv.Close)
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	newSender := func(endpoint string) (*sender.Sender, error) {
		api, err := sender.NewManagementAPI(cfg, endpoint, nil)
		if err != nil {
			return nil, err
		}
		return sender.NewSender(api, sender.Options{
			Concurrency: 8, MaxAttempts: 2, OmitDelivered: true,
			Sleep:  func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
			OnGone: func(_ context.Context, id string) { h.gone.Store(id, true) },
		}), nil
	}
	var err error
	h.s, err = newSender(h.srv.URL())
	require.NoError(t, err)
	h.worker, err = fanout.NewWorker(fanout.WorkerConfig{NewSender: newSender, Endpoint: h.srv.URL(), Ledger: h.ledger})
	require.NoError(t, err)
	return h
}

func TestSendOrDistribute(t *testing.T) {
	t.Run("small audience is sent directly", func(t *testing.T) {
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
		q := &fakeSQS{}
		rep, err := newEnqueuer(t, q, 100, 30).SendOrDistribute(context.Background(), h.s, h.srv.URL(), []byte("hi"), pagesOf(recipients(100), 40))
		require.NoError(t, err)
		assert.Equal(t, 0, rep.Batches)
		assert.Equal(t, 100, rep.Delivered)
		assert.Equal(t, 0, q.calls)
	})
	t.Run("large audience is enqueued, then the worker delivers every batch once", func(t *testing.T) {
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
		h.srv.Kill("c00007=")
		q := &fakeSQS{}
		ids := recipients(101)
		rep, err := newEnqueuer(t, q, 100, 30).SendOrDistribute(context.Background(), h.s, "", []byte("hi"), pagesOf(ids, 40))
		require.NoError(t, err)
		assert.Equal(t, 4, rep.Batches)
		assert.Equal(t, 0, rep.Total(), "nothing is sent by the publisher")
		assert.Equal(t, int64(0), h.srv.Counts().Posts)

		resp, err := h.worker.Handle(context.Background(), q.event())
		require.NoError(t, err)
		assert.Empty(t, resp.BatchItemFailures)
		for _, id := range ids {
			want := [][]byte{[]byte("hi")}
			if id == "c00007=" {
				want = nil
			}
			assert.Equal(t, want, h.srv.Messages(id), id)
		}
		_, gone := h.gone.Load("c00007=")
		assert.True(t, gone, "the dead connection is reported for removal")

		// SQS delivers at least once: the same event again sends nothing.
		resp, err = h.worker.Handle(context.Background(), q.event())
		require.NoError(t, err)
		assert.Empty(t, resp.BatchItemFailures)
		assert.Equal(t, int64(101), h.srv.Counts().Posts, "a redelivered batch is not sent again")
	})
	t.Run("recipients that could not be enqueued are reported failed", func(t *testing.T) {
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
		q := &fakeSQS{fault: map[int]bool{2: true}} // SQS refuses the third batch for good
		rep, err := newEnqueuer(t, q, 100, 30).SendOrDistribute(context.Background(), h.s, "", []byte("hi"), pagesOf(recipients(101), 40))
		require.Error(t, err)
		assert.Equal(t, 3, rep.Batches)
		assert.Equal(t, 30, rep.Failed, "the refused batch's 30 recipients reach no one")
		assert.Empty(t, rep.Results)
	})
	t.Run("after SQS fails, the recipients of the pages not yet read are counted too", func(t *testing.T) {
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
		q := &fakeSQS{downFrom: 2} // the first request of ten batches goes through, then SQS is gone
		ids := recipients(25)
		ids = append(ids, ids[3]) // a repeat is counted once
		rep, err := newEnqueuer(t, q, 0, 1).SendOrDistribute(context.Background(), h.s, "", []byte("hi"), pagesOf(ids, 7))
		require.ErrorContains(t, err, "network down")
		assert.Equal(t, 10, rep.Batches)
		assert.Equal(t, 15, rep.Failed, "every recipient not on the queue, read before the failure or after")
		assert.Equal(t, 2, q.calls, "nothing more is sent after the failure")
	})
	t.Run("a page that cannot be read fails the recipients read but not enqueued", func(t *testing.T) {
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
		q := &fakeSQS{}
		boom := errors.New("query failed")
		rep, err := newEnqueuer(t, q, 100, 30).SendOrDistribute(context.Background(), h.s, "", []byte("hi"), func(fn func([]string) error) error {
			if err := fn(recipients(130)); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		assert.Equal(t, 0, rep.Batches, "four full batches wait for a request of ten")
		assert.Equal(t, 130, rep.Failed)
	})
	t.Run("payload over 128 KB is refused locally, never enqueued", func(t *testing.T) {
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
		q := &fakeSQS{}
		rep, err := newEnqueuer(t, q, 1, 30).SendOrDistribute(context.Background(), h.s, "", make([]byte, sender.MaxPayload+1), pagesOf(recipients(10), 4))
		require.NoError(t, err)
		assert.Equal(t, 0, rep.Batches)
		assert.Equal(t, 10, rep.TooLarge)
		assert.Equal(t, 0, q.calls)
	})
}

// TestWorkerRetriesABatchWhosePostsAreAllRefused: a batch every post of
// which is answered 403 (IAM not yet in effect, a policy without the
// batch's API) is failed and redelivered, not acknowledged as done.
func TestWorkerRetriesABatchWhosePostsAreAllRefused(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Inject: func(_, _ string, _ int) int {
		if refuse.Load() {
			return 403
		}
		return 0
	}})
	q := &fakeSQS{}
	_, err := newEnqueuer(t, q, 0, 5).Distribute(context.Background(), "", []byte("m"), pagesOf(recipients(5), 10))
	require.NoError(t, err)
	ev := q.event()
	resp, err := h.worker.Handle(context.Background(), ev)
	require.NoError(t, err)
	require.Len(t, resp.BatchItemFailures, 1, "failed, so SQS redelivers it (and keeps it in the DLQ if it lasts)")
	refuse.Store(false)
	resp, err = h.worker.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	for _, id := range recipients(5) {
		assert.Len(t, h.srv.Messages(id), 1, id)
	}
}

// TestWorkerRetriesTheRefusedAmongDelivered: one post refused (403) among
// delivered ones, none failed: the batch is not acknowledged as done (IAM
// can refuse some posts while it comes into effect), and the redelivery
// sends to that one recipient only.
func TestWorkerRetriesTheRefusedAmongDelivered(t *testing.T) {
	ids := recipients(5)
	var phase, posts atomic.Int32
	phase.Store(1)
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Inject: func(method, id string, _ int) int {
		if phase.Load() == 2 && method == http.MethodPost {
			posts.Add(1)
		}
		if phase.Load() == 1 && id == ids[2] {
			return 403
		}
		return 0
	}})
	q := &fakeSQS{}
	_, err := newEnqueuer(t, q, 0, 5).Distribute(context.Background(), "", []byte("m"), pagesOf(ids, 10))
	require.NoError(t, err)
	failThenDeliver(t, h, q.event(), &phase, ids) // not done at first: one recipient was refused
	assert.Equal(t, int32(1), posts.Load(), "the redelivery posts to the refused recipient alone")
}

// TestWorkerBatchWithRepeatedIDs: a queue message naming a recipient twice
// (hand-made or edited: the Enqueuer never repeats one) is delivered once
// per recipient, also across a redelivery.
func TestWorkerBatchWithRepeatedIDs(t *testing.T) {
	var phase atomic.Int32
	phase.Store(1)
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Inject: func(_, id string, _ int) int {
		if phase.Load() == 1 && id == "c=" {
			return 503
		}
		return 0
	}})
	body, err := json.Marshal(fanout.Batch{ID: "hand-0", ConnectionIDs: []string{"a=", "a=", "b=", "c=", "b="}, Data: []byte("m")})
	require.NoError(t, err)
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: string(body), EventSource: "aws:sqs"}}}
	failThenDeliver(t, h, ev, &phase, []string{"a=", "b=", "c="})
}

// failThenDeliver handles ev, which must fail (one record), moves phase to
// 2, handles it again, which must succeed, and checks that each of ids got
// the message exactly once.
func failThenDeliver(t *testing.T, h *harness, ev events.SQSEvent, phase *atomic.Int32, ids []string) {
	t.Helper()
	resp, err := h.worker.Handle(context.Background(), ev)
	require.NoError(t, err)
	require.Len(t, resp.BatchItemFailures, 1)
	phase.Store(2)
	resp, err = h.worker.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	for _, id := range ids {
		assert.Len(t, h.srv.Messages(id), 1, id)
	}
}

// TestWorkerRedeliversOnlyToTheRefusedAndFailed: a batch with one post
// refused (403) and one failed (503) among delivered ones is redelivered to
// those two only; and when every post of a redelivery is refused, the next
// one still sends only to the recipients left, never again to those an
// earlier delivery reached.
func TestWorkerRedeliversOnlyToTheRefusedAndFailed(t *testing.T) {
	ids := recipients(10)
	t.Run("one refused, one failed", func(t *testing.T) {
		var phase atomic.Int32
		phase.Store(1)
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Inject: func(_, id string, _ int) int {
			switch {
			case phase.Load() == 1 && id == ids[1]:
				return 403
			case phase.Load() == 1 && id == ids[2]:
				return 503
			}
			return 0
		}})
		q := &fakeSQS{}
		_, err := newEnqueuer(t, q, 0, 10).Distribute(context.Background(), "", []byte("m"), pagesOf(ids, 10))
		require.NoError(t, err)
		failThenDeliver(t, h, q.event(), &phase, ids)
	})
	t.Run("every post of a redelivery refused", func(t *testing.T) {
		var phase atomic.Int32
		var posts [4]atomic.Int32 // per delivery
		h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Inject: func(method, id string, _ int) int {
			if method == http.MethodPost {
				posts[phase.Load()].Add(1)
			}
			switch {
			case phase.Load() == 1 && id == ids[2]:
				return 503
			case phase.Load() == 2:
				return 403
			}
			return 0
		}})
		q := &fakeSQS{}
		_, err := newEnqueuer(t, q, 0, 10).Distribute(context.Background(), "", []byte("m"), pagesOf(ids, 10))
		require.NoError(t, err)
		ev := q.event()
		for p := int32(1); p <= 3; p++ {
			phase.Store(p)
			resp, err := h.worker.Handle(context.Background(), ev)
			require.NoError(t, err)
			if p < 3 {
				require.Len(t, resp.BatchItemFailures, 1, "delivery %d", p)
			} else {
				assert.Empty(t, resp.BatchItemFailures)
			}
		}
		for _, id := range ids {
			assert.Len(t, h.srv.Messages(id), 1, id)
		}
		assert.Equal(t, []int32{1, 1}, []int32{posts[2].Load(), posts[3].Load()}, "the second and third deliveries post to the one recipient left")
	})
}

// completeFails is a ledger whose Complete fails.
type completeFails struct{ *fanout.MemoryLedger }

func (completeFails) Complete(context.Context, string) error {
	return errors.New("ProvisionedThroughputExceededException")
}

// TestWorkerAcknowledgesADeliveredBatchWhoseLedgerWriteFails: once every
// recipient has it, a failed ledger write does not fail the message (which
// would send it to everyone again).
func TestWorkerAcknowledgesADeliveredBatchWhoseLedgerWriteFails(t *testing.T) {
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
	w, err := fanout.NewWorker(fanout.WorkerConfig{NewSender: func(endpoint string) (*sender.Sender, error) { return h.s, nil }, Endpoint: h.srv.URL(),
		Ledger: completeFails{fanout.NewMemoryLedger(time.Minute, nil)}})
	require.NoError(t, err)
	q := &fakeSQS{}
	_, err = newEnqueuer(t, q, 0, 5).Distribute(context.Background(), "", []byte("m"), pagesOf(recipients(5), 10))
	require.NoError(t, err)
	resp, err := w.Handle(context.Background(), q.event())
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	for _, id := range recipients(5) {
		assert.Len(t, h.srv.Messages(id), 1, id)
	}
}

func TestWorkerRetriesFailedBatches(t *testing.T) {
	var failing sync.Map
	failing.Store("c00003=", true)
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Inject: func(_, id string, _ int) int {
		if _, ok := failing.Load(id); ok {
			return 503
		}
		return 0
	}})
	q := &fakeSQS{}
	_, err := newEnqueuer(t, q, 0, 5).Distribute(context.Background(), "", []byte("m"), pagesOf(recipients(10), 10))
	require.NoError(t, err)
	ev := q.event()
	require.Len(t, ev.Records, 2)
	ev.Records = append(ev.Records, events.SQSMessage{MessageId: "poison", Body: "not json"})

	resp, err := h.worker.Handle(context.Background(), ev)
	require.NoError(t, err)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	assert.Equal(t, []string{ev.Records[0].MessageId, "poison"}, failed, "the batch with a 503 recipient and the unreadable one")

	// The failing connection recovers; SQS redelivers the failed batch, which
	// is sent again to the recipient that failed only (the ledger kept it),
	// while the done batch stays done.
	failing.Delete("c00003=")
	resp, err = h.worker.Handle(context.Background(), events.SQSEvent{Records: ev.Records[:2]})
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, h.srv.Messages("c00003="), 1)
	assert.Len(t, h.srv.Messages("c00000="), 1, "the recipients that had it do not get it again")
	assert.Len(t, h.srv.Messages("c00005="), 1, "the completed batch is not sent again")
}

// TestWorkerGoesOnWhereACutShortDeliveryStopped: a batch that does not get
// out within one invocation is not started over on each redelivery (which
// sent its first recipients the message again and again and never reached
// the last ones): the next invocation sends what the last one did not.
func TestWorkerGoesOnWhereACutShortDeliveryStopped(t *testing.T) {
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true, Latency: 20 * time.Millisecond})
	q := &fakeSQS{}
	members := recipients(64)
	_, err := newEnqueuer(t, q, 0, 64).Distribute(context.Background(), "", []byte("m"), pagesOf(members, 64))
	require.NoError(t, err)
	ev := q.event()
	require.Len(t, ev.Records, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Millisecond) // about 3 of the 8 rounds of 8
	defer cancel()
	resp, err := h.worker.Handle(ctx, ev)
	require.NoError(t, err)
	require.Len(t, resp.BatchItemFailures, 1, "cut short")
	first := h.srv.Counts().Posts
	require.Less(t, first, int64(64))

	resp, err = h.worker.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.LessOrEqual(t, h.srv.Counts().Posts-first, 64-first+8, "the redelivery posts to what was left (and at most the 8 in flight when the first stopped)")
	for _, id := range members {
		assert.NotEmpty(t, h.srv.Messages(id), id)
	}
}

func TestWorkerBusyBatchIsRetried(t *testing.T) {
	h := newHarness(t, mgmtapitest.Options{AutoRegister: true})
	q := &fakeSQS{}
	_, err := newEnqueuer(t, q, 0, 5).Distribute(context.Background(), "", []byte("m"), pagesOf(recipients(5), 10))
	require.NoError(t, err)
	b := q.batches(t)[0]
	claim, err := h.ledger.Claim(context.Background(), b.ID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, fanout.Claimed, claim)

	resp, err := h.worker.Handle(context.Background(), q.event())
	require.NoError(t, err)
	require.Len(t, resp.BatchItemFailures, 1, "a batch another worker holds is retried later")
	assert.Equal(t, int64(0), h.srv.Counts().Posts)
}

func TestMemoryLedger(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := fanout.NewMemoryLedger(time.Hour, func() time.Time { return now })
	runLedgerContract(t, l, func(d time.Duration) { now = now.Add(d) })
	runProgressLedgerContract(t, l, func(d time.Duration) { now = now.Add(d) })
}

// runLedgerContract checks a Ledger; advance moves its clock.
func runLedgerContract(t *testing.T, l fanout.Ledger, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	claim := func(id string) fanout.Claim {
		t.Helper()
		c, err := l.Claim(ctx, id, time.Minute)
		require.NoError(t, err)
		return c
	}
	assert.Equal(t, fanout.Claimed, claim("a"))
	assert.Equal(t, fanout.Busy, claim("a"), "a live lease blocks others")
	require.NoError(t, l.Complete(ctx, "a"))
	assert.Equal(t, fanout.AlreadyDone, claim("a"), "a done batch is not sent again")

	assert.Equal(t, fanout.Claimed, claim("b"))
	require.NoError(t, l.Release(ctx, "b"))
	assert.Equal(t, fanout.Claimed, claim("b"), "a released batch can be claimed again")

	assert.Equal(t, fanout.Claimed, claim("c"))
	advance(2 * time.Minute)
	assert.Equal(t, fanout.Claimed, claim("c"), "an expired lease (dead worker) can be taken over")

	require.NoError(t, l.Release(ctx, "a"), "release of a done batch is a no-op")
	assert.Equal(t, fanout.AlreadyDone, claim("a"))
	advance(2 * time.Hour)
	assert.Equal(t, fanout.Claimed, claim("a"), "after the window a batch id is forgotten")
}

// runProgressLedgerContract checks what a ProgressLedger adds; advance
// moves its clock.
func runProgressLedgerContract(t *testing.T, pl fanout.ProgressLedger, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	l := fanout.Ledger(pl)
	c, left, err := pl.ClaimRemaining(ctx, "p", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, fanout.Claimed, c)
	assert.Nil(t, left, "a new batch: every recipient")
	require.NoError(t, pl.ReleaseRemaining(ctx, "p", []string{"r2", "r1"}))
	c, left, err = pl.ClaimRemaining(ctx, "p", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, fanout.Claimed, c, "a batch released with recipients left is claimed again at once")
	assert.Equal(t, []string{"r2", "r1"}, left, "in their order")
	c, _, err = pl.ClaimRemaining(ctx, "p", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, fanout.Busy, c, "and held by its new claim")
	advance(2 * time.Minute)
	c, left, err = pl.ClaimRemaining(ctx, "p", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, fanout.Claimed, c, "a dead worker's claim is taken over")
	assert.Equal(t, []string{"r2", "r1"}, left, "with the recipients it had left")
	require.NoError(t, pl.ReleaseRemaining(ctx, "p", []string{"r1"}))
	_, left, err = pl.ClaimRemaining(ctx, "p", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1"}, left)
	require.NoError(t, l.Complete(ctx, "p"))
	c, _, err = pl.ClaimRemaining(ctx, "p", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, fanout.AlreadyDone, c)
	require.NoError(t, pl.ReleaseRemaining(ctx, "p", []string{"r1"}), "a done batch is not given back")
	c, _, err = pl.ClaimRemaining(ctx, "p", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, fanout.AlreadyDone, c)
}

var _ realtime.Distributor = (*fanout.Enqueuer)(nil)
