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
