package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/lambdaenv"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/publisher"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// pipelineParts are what the publisher side of a pipeline test needs: an AWS
// configuration, a poster to api, a fake queue and a quiet logger.
func pipelineParts(t *testing.T, api *mgmtapitest.Server) (aws.Config, sender.Poster, *fakeSQS, *slog.Logger) {
	t.Helper()
	cfg := aws.Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}}
	poster, err := sender.NewManagementAPI(cfg, api.URL(), nil)
	require.NoError(t, err)
	return cfg, poster, &fakeSQS{}, slog.New(slog.NewJSONHandler(io.Discard, nil))
}

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

	cfg, poster, q, quiet := pipelineParts(t, api)
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

// TestWorkerGoneMemberLeavesPresence: a presence member that answers 410 to
// a distributed send is removed by the worker (OnGone: Manager.RemoveGone,
// as lambda/cmd/fanout wires it) and leaves the presence channel, so the
// other members get member_left and the member list drops it.
func TestWorkerGoneMemberLeavesPresence(t *testing.T) {
	ctx := context.Background()
	api := mgmtapitest.New(mgmtapitest.Options{Stage: "prod", KeepMessages: true})
	defer api.Close()
	st := store.NewMemory(store.MemoryOptions{PageSize: 4})
	pv := store.NewMemoryPresence(nil)
	members := recipients(6)
	for i, id := range members {
		require.NoError(t, st.AddConnection(ctx, store.Connection{ID: id, UserID: fmt.Sprintf("u%d", i), ConnectedAt: time.Now().Add(-time.Minute)}))
		_, err := st.Join(ctx, id, "presence-room")
		require.NoError(t, err)
		_, err = pv.JoinPresence(ctx, "presence-room", store.PresenceMember{ConnectionID: id, UserID: fmt.Sprintf("u%d", i), ExpiresAt: time.Now().Add(time.Hour)}, 0)
		require.NoError(t, err)
	}
	api.Connect(members[1:]...)
	api.Kill(members[0])

	_, poster, q, quiet := pipelineParts(t, api)
	m, err := realtime.New(realtime.Config{Store: st, Poster: poster, Presence: pv, Distributor: newEnqueuer(t, q, 5, 3), Logger: quiet})
	require.NoError(t, err)
	_, err = publisher.New(m).Handle(ctx, json.RawMessage(`{"action":"sendToChannel","channel":"presence-room","data":{"n":1}}`))
	require.NoError(t, err)
	require.Zero(t, api.Counts().Posts, "the batches go to the worker")

	gone, err := realtime.New(realtime.Config{Store: st, Poster: poster, Presence: pv, Logger: quiet})
	require.NoError(t, err)
	worker, err := fanout.NewWorker(fanout.WorkerConfig{
		Endpoint: api.URL(),
		Ledger:   fanout.NewMemoryLedger(time.Hour, time.Now),
		Logger:   quiet,
		NewSender: func(string) (*sender.Sender, error) {
			return sender.NewSender(poster, sender.Options{OnGone: gone.RemoveGone}), nil
		},
	})
	require.NoError(t, err)
	out, err := worker.Handle(ctx, q.event())
	require.NoError(t, err)
	assert.Empty(t, out.BatchItemFailures)

	left := `{"type":"member_left","channel":"presence-room","userId":"u0"}`
	for _, id := range members[1:] {
		assert.Contains(t, api.Messages(id), []byte(left), id)
	}
	users, err := pv.PresenceUsers(ctx, "presence-room")
	require.NoError(t, err)
	assert.Len(t, users, 5, "u0 is no longer a member")
	ok, err := m.Exists(ctx, members[0])
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestPusherTriggerThroughTheWorker: in Pusher mode too, an event to a
// channel above the threshold is enqueued (the batches name the Pusher
// stage's endpoint), and the worker, whose own endpoint is protocol v1's,
// delivers the Pusher frames there. A presence member found gone leaves with
// member_removed through the Pusher stage (lambdaenv.LeavePusherPresence on
// the worker's runtime, as lambda/cmd/fanout wires it).
func TestPusherTriggerThroughTheWorker(t *testing.T) {
	ctx := context.Background()
	v1 := mgmtapitest.New(mgmtapitest.Options{Stage: "prod", KeepMessages: true})
	defer v1.Close()
	ps := mgmtapitest.New(mgmtapitest.Options{Stage: "prod", KeepMessages: true})
	defer ps.Close()
	st := store.NewMemory(store.MemoryOptions{PageSize: 4})
	pv := store.NewMemoryPresence(nil)
	room := "presence-room"
	members := recipients(11)
	for i, id := range members {
		require.NoError(t, st.AddConnection(ctx, store.Connection{ID: id, ConnectedAt: time.Now().Add(-time.Minute)}))
		_, err := st.Join(ctx, id, pusher.StoreChannel(room))
		require.NoError(t, err)
		_, err = pv.JoinPresence(ctx, pusher.StoreChannel(room), store.PresenceMember{ConnectionID: id, UserID: fmt.Sprintf("u%d", i), ExpiresAt: time.Now().Add(time.Hour)}, 0)
		require.NoError(t, err)
	}
	ps.Connect(members[1:]...)
	ps.Kill(members[0])

	cfg, _, q, quiet := pipelineParts(t, ps)
	newPoster := func(endpoint string) (sender.Poster, error) { return sender.NewManagementAPI(cfg, endpoint, nil) }
	m, err := realtime.New(realtime.Config{Store: st, NewPoster: newPoster, ManagementEndpoint: ps.URL(), Presence: pv,
		Distributor: newEnqueuer(t, q, 5, 3), Logger: quiet})
	require.NoError(t, err)
	h, err := pusher.NewHandler(pusher.Config{
		App:     pusher.App{ID: pusher.DefaultAppID, Key: pusher.DefaultAppKey, Secret: pusher.DefaultAppSecret},
		Manager: m, Presence: pv, Values: pv, Logger: quiet,
		Welcomer: pusher.WelcomerFunc(func(context.Context, pusher.Welcome) error { return nil }),
	})
	require.NoError(t, err)
	require.NoError(t, h.Trigger(ctx, []string{room}, "ev", `{"n":1}`, ""))
	require.Zero(t, ps.Counts().Posts, "the Pusher function itself posts nothing above the threshold")
	ev := q.event()
	require.Len(t, ev.Records, 4, "11 recipients in batches of 3")
	var b fanout.Batch
	require.NoError(t, json.Unmarshal([]byte(ev.Records[0].Body), &b))
	assert.Equal(t, ps.URL(), b.Endpoint, "the batches name the Pusher stage")

	gone, err := realtime.New(realtime.Config{Store: st, NewPoster: newPoster, ManagementEndpoint: v1.URL(), Presence: pv, Logger: quiet})
	require.NoError(t, err)
	announce, err := realtime.New(realtime.Config{Store: st, NewPoster: newPoster, ManagementEndpoint: ps.URL(), Logger: quiet})
	require.NoError(t, err)
	lambdaenv.LeavePusherPresence(gone, announce, quiet)
	worker, err := fanout.NewWorker(fanout.WorkerConfig{
		Endpoint: v1.URL(),
		Ledger:   fanout.NewMemoryLedger(time.Hour, time.Now),
		Logger:   quiet,
		NewSender: func(endpoint string) (*sender.Sender, error) {
			p, err := newPoster(endpoint)
			if err != nil {
				return nil, err
			}
			return sender.NewSender(p, sender.Options{OnGone: gone.RemoveGone}), nil
		},
	})
	require.NoError(t, err)
	out, err := worker.Handle(ctx, ev)
	require.NoError(t, err)
	assert.Empty(t, out.BatchItemFailures)

	frame := []byte(`{"event":"ev","channel":"presence-room","data":"{\"n\":1}"}`)
	removed := []byte(`{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"u0\"}"}`)
	for _, id := range members[1:] {
		assert.Contains(t, ps.Messages(id), frame, id)
		assert.Contains(t, ps.Messages(id), removed, id)
	}
	assert.Zero(t, v1.Counts().Posts, "nothing goes to protocol v1's stage")
	users, err := pv.PresenceUsers(ctx, pusher.StoreChannel(room))
	require.NoError(t, err)
	assert.Len(t, users, 10, "u0 left the channel")
}
