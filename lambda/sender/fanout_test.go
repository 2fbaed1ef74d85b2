package sender_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// newAPI returns a management API client (the real SDK) for the fake.
func newAPI(t *testing.T, srv *mgmtapitest.Server) *sender.ManagementAPI {
	t.Helper()
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	api, err := sender.NewManagementAPI(cfg, srv.URL(), nil)
	require.NoError(t, err)
	return api
}

func newServer(t *testing.T, opts mgmtapitest.Options) *mgmtapitest.Server {
	t.Helper()
	srv := mgmtapitest.New(opts)
	t.Cleanup(srv.Close)
	return srv
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("conn-%03d=", i)
	}
	return out
}

// sleeps records the backoffs a sender asked for without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

func byID(rep sender.Report) map[string]sender.Result {
	out := map[string]sender.Result{}
	for _, r := range rep.Results {
		out[r.ConnectionID] = r
	}
	return out
}

func TestManagementAPIWireFormat(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, mgmtapitest.Options{KeepMessages: true})
	api := newAPI(t, srv)
	srv.Connect("live/id=")
	srv.Kill("dead")

	tests := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"POST 200 delivers the raw body", func() error { return api.Post(ctx, "live/id=", []byte(`{"x":1}`)) }, nil},
		{"POST to a dead connection is 410 GoneException", func() error { return api.Post(ctx, "dead", []byte("x")) }, sender.ErrGone},
		{"GET 200 describes the connection", func() error {
			info, err := api.Get(ctx, "live/id=")
			if err == nil && (info.SourceIP == "" || info.ConnectedAt.IsZero()) {
				return errors.New("empty connection info")
			}
			return err
		}, nil},
		{"GET of a dead connection is 410", func() error { _, err := api.Get(ctx, "dead"); return err }, sender.ErrGone},
		{"DELETE 204 closes the connection", func() error { return api.Delete(ctx, "live/id=") }, nil},
		{"POST after DELETE is 410", func() error { return api.Post(ctx, "live/id=", []byte("x")) }, sender.ErrGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.False(t, sender.Retryable(err))
		})
	}
	assert.Equal(t, [][]byte{[]byte(`{"x":1}`)}, srv.Messages("live/id="))
	assert.True(t, srv.Deleted("live/id="))
	c := srv.Counts()
	assert.Equal(t, int64(1), c.Deletes)
	assert.Equal(t, int64(2), c.Gets)
}

func TestManagementAPIErrorClassification(t *testing.T) {
	tests := []struct {
		status    int
		want      error
		retryable bool
	}{
		{http.StatusForbidden, sender.ErrForbidden, false},
		{http.StatusGone, sender.ErrGone, false},
		{http.StatusRequestEntityTooLarge, sender.ErrTooLarge, false},
		{http.StatusTooManyRequests, sender.ErrThrottled, true},
		{http.StatusInternalServerError, nil, true},
		{http.StatusServiceUnavailable, nil, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := newServer(t, mgmtapitest.Options{AutoRegister: true, Inject: func(string, string, int) int { return tt.status }})
			err := newAPI(t, srv).Post(context.Background(), "a", []byte("x"))
			require.Error(t, err)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			assert.Contains(t, err.Error(), "post to connection a")
			assert.Equal(t, tt.retryable, sender.Retryable(err))
		})
	}
}

func TestSendDeliversToEveryRecipient(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{KeepMessages: true})
	recipients := ids(40)
	srv.Connect(recipients...)
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 8})

	rep := s.Send(context.Background(), append(recipients, recipients[:5]...), []byte("hi"))

	assert.Equal(t, 40, rep.Delivered)
	assert.Equal(t, 40, rep.Total())
	require.Len(t, rep.Results, 40, "one result per recipient, duplicates sent once")
	got := byID(rep)
	for _, id := range recipients {
		assert.Equal(t, sender.StatusDelivered, got[id].Status, id)
		assert.Equal(t, 1, got[id].Attempts, id)
		assert.Equal(t, [][]byte{[]byte("hi")}, srv.Messages(id), id)
	}
	assert.Equal(t, int64(40), srv.Counts().Posts)
}

func TestSendReportsGoneExactly(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{})
	recipients := ids(30)
	srv.Connect(recipients...)
	dead := []string{recipients[2], recipients[11], recipients[29]}
	srv.Kill(dead...)
	var (
		mu   sync.Mutex
		gone []string
	)
	s := sender.NewSender(newAPI(t, srv), sender.Options{
		Concurrency: 4,
		OnGone: func(_ context.Context, id string) {
			mu.Lock()
			defer mu.Unlock()
			gone = append(gone, id)
		},
	})

	rep := s.Send(context.Background(), recipients, []byte("x"))

	slices.Sort(gone)
	assert.Equal(t, dead, gone, "OnGone is called once for each dead id and no other")
	assert.Equal(t, 27, rep.Delivered)
	assert.Equal(t, 3, rep.Gone)
	assert.Equal(t, 0, rep.Retries, "410 is not retried")
	for _, id := range dead {
		r := byID(rep)[id]
		assert.Equal(t, sender.StatusGone, r.Status)
		assert.ErrorIs(t, r.Err, sender.ErrGone)
	}
}

func TestSendRetries(t *testing.T) {
	tests := []struct {
		name          string
		answers       []int // per call of each id; 0 = normal
		maxAttempts   int
		wantStatus    sender.Status
		wantAttempts  int
		wantThrottled int
	}{
		{"429 twice then delivered", []int{429, 429}, 0, sender.StatusDelivered, 3, 2},
		{"500 then 503 then delivered", []int{500, 503}, 0, sender.StatusDelivered, 3, 0},
		{"502 until attempts run out", []int{502, 502, 502}, 3, sender.StatusFailed, 3, 0},
		{"429 until attempts run out", []int{429, 429}, 2, sender.StatusFailed, 2, 2},
		{"403 is not retried", []int{403}, 0, sender.StatusForbidden, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, mgmtapitest.Options{AutoRegister: true, Inject: func(_, _ string, call int) int {
				if call <= len(tt.answers) {
					return tt.answers[call-1]
				}
				return 0
			}})
			sl := &sleeps{}
			s := sender.NewSender(newAPI(t, srv), sender.Options{
				Concurrency: 2, MaxAttempts: tt.maxAttempts, Sleep: sl.sleep,
				BaseBackoff: 10 * time.Millisecond, MaxBackoff: 15 * time.Millisecond,
			})

			rep := s.Send(context.Background(), []string{"a", "b"}, []byte("x"))

			for _, id := range []string{"a", "b"} {
				r := byID(rep)[id]
				assert.Equal(t, tt.wantStatus, r.Status, id)
				assert.Equal(t, tt.wantAttempts, r.Attempts, id)
			}
			assert.Equal(t, 2*(tt.wantAttempts-1), rep.Retries)
			assert.Equal(t, 2*tt.wantThrottled, rep.Throttled)
			assert.Equal(t, 2*(tt.wantAttempts-1), sl.count(), "one backoff before each retry")
			for _, d := range sl.d {
				assert.LessOrEqual(t, d, 15*time.Millisecond, "backoff is capped by MaxBackoff")
			}
			if tt.wantStatus == sender.StatusFailed {
				require.Error(t, byID(rep)["a"].Err)
			}
		})
	}
}

func TestSendTooLarge(t *testing.T) {
	t.Run("local guard refuses without a call", func(t *testing.T) {
		srv := newServer(t, mgmtapitest.Options{AutoRegister: true})
		s := sender.NewSender(newAPI(t, srv), sender.Options{})
		rep := s.Send(context.Background(), []string{"a", "b"}, make([]byte, sender.MaxPayload+1))
		assert.Equal(t, 2, rep.TooLarge)
		for _, r := range rep.Results {
			assert.Equal(t, sender.StatusTooLarge, r.Status)
			assert.Equal(t, 0, r.Attempts)
			assert.ErrorIs(t, r.Err, sender.ErrTooLarge)
		}
		assert.Equal(t, int64(0), srv.Counts().Posts, "the guard makes no call")
	})
	t.Run("exactly 128 KB is sent", func(t *testing.T) {
		srv := newServer(t, mgmtapitest.Options{AutoRegister: true})
		rep := sender.NewSender(newAPI(t, srv), sender.Options{}).Send(context.Background(), []string{"a"}, make([]byte, sender.MaxPayload))
		assert.Equal(t, 1, rep.Delivered)
	})
	t.Run("413 from API Gateway is final", func(t *testing.T) {
		srv := newServer(t, mgmtapitest.Options{AutoRegister: true, PayloadLimit: 10})
		rep := sender.NewSender(newAPI(t, srv), sender.Options{}).Send(context.Background(), []string{"a"}, []byte("eleven byte"))
		require.Len(t, rep.Results, 1)
		assert.Equal(t, sender.StatusTooLarge, rep.Results[0].Status)
		assert.Equal(t, 1, rep.Results[0].Attempts)
		assert.Equal(t, int64(1), srv.Counts().TooLarge)
		assert.Equal(t, 0, rep.Retries)
	})
}

func TestSendRespectsConcurrency(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true, Latency: 10 * time.Millisecond})
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 4})

	rep := s.Send(context.Background(), ids(60), []byte("x"))

	require.Equal(t, 60, rep.Delivered)
	c := srv.Counts()
	assert.LessOrEqual(t, c.MaxInFlight, int64(4), "never more posts in flight than Concurrency")
	assert.Greater(t, c.MaxInFlight, int64(1), "posts do run concurrently")
}

func TestConcurrentSendsShareTheConcurrency(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true, Latency: 10 * time.Millisecond})
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 4})

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			batch := make([]string, 20)
			for j := range batch {
				batch[j] = fmt.Sprintf("b%d-%d", i, j)
			}
			assert.Equal(t, 20, s.Send(context.Background(), batch, []byte("x")).Delivered)
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, srv.Counts().MaxInFlight, int64(4), "three sends at once stay within one Concurrency")
}

func TestSendPages(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true, DeadShare: 0})
	srv.Kill("p1-1")
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 3, OmitDelivered: true})
	pages := [][]string{{"p0-0", "p0-1"}, {"p1-0", "p1-1", "p1-2"}, {}, {"p3-0"}}

	rep, err := s.SendPages(context.Background(), []byte("x"), func(fn func([]string) error) error {
		for _, p := range pages {
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	})

	require.NoError(t, err)
	assert.Equal(t, 5, rep.Delivered)
	assert.Equal(t, 1, rep.Gone)
	require.Len(t, rep.Results, 1, "OmitDelivered keeps only the failures")
	assert.Equal(t, "p1-1", rep.Results[0].ConnectionID)

	all := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 3})
	rep, err = all.SendPagesOmitDelivered(context.Background(), []byte("x"), func(fn func([]string) error) error { return fn([]string{"q0", "p1-1"}) })
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Delivered)
	require.Len(t, rep.Results, 1, "SendPagesOmitDelivered keeps only failures without the option")
	rep, err = all.SendPages(context.Background(), []byte("x"), func(fn func([]string) error) error { return fn([]string{"q1", "p1-1"}) })
	require.NoError(t, err)
	assert.Len(t, rep.Results, 2, "the sender's own SendPages still keeps every result")

	boom := errors.New("store failed")
	rep, err = s.SendPages(context.Background(), []byte("x"), func(fn func([]string) error) error {
		if err := fn([]string{"a"}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 1, rep.Delivered, "pages before the failure are still sent")
}

func TestSendCancelled(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true, Inject: func(string, string, int) int { return 429 }})
	ctx, cancel := context.WithCancel(context.Background())
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 2, Sleep: func(context.Context, time.Duration) error {
		cancel()
		return context.Canceled
	}})
	rep := s.Send(ctx, []string{"a"}, []byte("x"))
	require.Len(t, rep.Results, 1)
	assert.Equal(t, sender.StatusFailed, rep.Results[0].Status)
	assert.ErrorIs(t, rep.Results[0].Err, context.Canceled)
}

func TestReportMerge(t *testing.T) {
	var total sender.Report
	total.Merge(sender.Report{Delivered: 2, Retries: 1, Results: []sender.Result{{ConnectionID: "a", Status: sender.StatusDelivered}, {ConnectionID: "b", Status: sender.StatusDelivered}}})
	total.Merge(sender.Report{Gone: 1, Throttled: 3, Batches: 2, Results: []sender.Result{{ConnectionID: "c", Status: sender.StatusGone}}})
	assert.Equal(t, 2, total.Delivered)
	assert.Equal(t, 1, total.Gone)
	assert.Equal(t, 3, total.Total())
	assert.Equal(t, 1, total.Retries)
	assert.Equal(t, 3, total.Throttled)
	assert.Equal(t, 2, total.Batches)
	assert.Len(t, total.Results, 3)
	assert.True(t, strings.HasPrefix(string(sender.StatusDelivered), "deliv"))
}

func TestSendDeliversEverythingUnderARealRateLimit(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true, RateLimit: 400, Burst: 4, Latency: 2 * time.Millisecond})
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 32, OmitDelivered: true})

	rep := s.Send(context.Background(), ids(300), []byte("x"))

	assert.Equal(t, 300, rep.Delivered, "every 429 is retried until delivered")
	assert.Empty(t, rep.Results)
	c := srv.Counts()
	assert.Equal(t, int64(300), c.Delivered)
	assert.Equal(t, c.Throttled, int64(rep.Throttled), "the sender saw every 429 the server sent")
	assert.Equal(t, c.Posts-c.Delivered, int64(rep.Retries))
	assert.Greater(t, rep.Throttled, 0, "32 in flight against a 400/s bucket of 4 must meet 429s")
	assert.Greater(t, s.Rate(), 0.0, "the 429s turned the adaptive limit on")
}

// An OnGone that sends through the same sender (as presence leaves do, to
// announce member_left) must not wait for a slot its own post still holds:
// with Concurrency 1 every gone recipient would deadlock the send.
func TestOnGoneMaySendThroughTheSameSender(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{})
	recipients := ids(6)
	srv.Connect(recipients...)
	srv.Kill(recipients[1], recipients[4])
	var (
		s         *sender.Sender
		mu        sync.Mutex
		announced []string
	)
	s = sender.NewSender(newAPI(t, srv), sender.Options{
		Concurrency: 1,
		OnGone: func(ctx context.Context, id string) {
			rep := s.Send(ctx, []string{recipients[0]}, []byte("left "+id))
			mu.Lock()
			defer mu.Unlock()
			if rep.Delivered == 1 {
				announced = append(announced, id)
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rep := s.Send(ctx, recipients, []byte("x"))

	require.NoError(t, ctx.Err(), "the send finished before its deadline (no slot deadlock)")
	assert.Equal(t, 4, rep.Delivered)
	assert.Equal(t, 2, rep.Gone)
	slices.Sort(announced)
	assert.Equal(t, []string{recipients[1], recipients[4]}, announced, "each OnGone's own send was delivered")
}
