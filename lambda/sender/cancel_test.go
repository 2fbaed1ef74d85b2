package sender_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// TestSendCutShortReportsEveryRecipient: when the context ends mid fan-out,
// recipients that were never attempted are reported as failed with the
// context's error, so a caller (the fan-out worker) never takes a partial
// send for a complete one.
func TestSendCutShortReportsEveryRecipient(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true, Latency: 20 * time.Millisecond})
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 2})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.Counts().Posts < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	all := ids(50)
	rep := s.Send(ctx, all, []byte(`1`))
	require.Equal(t, len(all), rep.Total(), "every recipient has a result")
	assert.Less(t, rep.Delivered, len(all))
	got := byID(rep)
	for _, id := range all {
		r, ok := got[id]
		require.True(t, ok, id)
		if r.Status != sender.StatusDelivered {
			assert.Equal(t, sender.StatusFailed, r.Status)
			assert.True(t, errors.Is(r.Err, context.Canceled), "%s: %v", id, r.Err)
		}
	}
}

// TestSendPagesReportsTheContextsError: a fan-out whose context has ended
// returns that error with its report (SendPages' doc), not nil beside
// failed recipients: here every recipient gets a worker of its own at once
// (5 of 16), so none waits on ctx in the dispatch.
func TestSendPagesReportsTheContextsError(t *testing.T) {
	srv := newServer(t, mgmtapitest.Options{AutoRegister: true})
	s := sender.NewSender(newAPI(t, srv), sender.Options{Concurrency: 16})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := s.SendPages(ctx, []byte(`1`), func(fn func([]string) error) error { return fn(ids(5)) })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 5, rep.Failed)
	assert.Zero(t, srv.Counts().Posts, "nothing posted")
}
