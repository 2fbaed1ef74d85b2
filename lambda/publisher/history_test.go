package publisher

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// TestSendToChannelOnHistoryChannel: a sendToChannel to a history channel is
// numbered and stored, and reaches clients in the v1 envelope.
func TestSendToChannelOnHistoryChannel(t *testing.T) {
	api := mgmtapitest.New(mgmtapitest.Options{Stage: "dev", KeepMessages: true})
	t.Cleanup(api.Close)
	poster, err := sender.NewManagementAPI(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}, api.URL(), nil)
	require.NoError(t, err)
	st := store.NewMemory(store.MemoryOptions{})
	hist := store.NewMemoryHistory(nil)
	m, err := realtime.New(realtime.Config{Store: st, Poster: poster, History: hist,
		HistoryRules: realtime.HistoryRules{{Pattern: "chat-*", Size: 10, TTL: time.Hour}},
		Logger:       slog.New(slog.NewJSONHandler(io.Discard, nil))})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, st.AddConnection(ctx, store.Connection{ID: "a", ConnectedAt: time.Now()}))
	api.Connect("a")
	_, err = st.Join(ctx, "a", "chat-1")
	require.NoError(t, err)

	resp, err := New(m).Handle(ctx, json.RawMessage(`{"action":"sendToChannel","channel":"chat-1","data":{"text":"hi"}}`))
	require.NoError(t, err)
	assert.True(t, resp.OK)
	pos, pubs, err := hist.ReadHistory(ctx, "chat-1", 0, 0, 0, store.HistoryLimits{Size: 10, TTL: time.Hour})
	require.NoError(t, err)
	require.Len(t, pubs, 1)
	assert.JSONEq(t, `{"text":"hi"}`, string(pubs[0].Data))
	require.Len(t, api.Messages("a"), 1)
	assert.JSONEq(t, `{"type":"message","channel":"chat-1","data":{"text":"hi"},"offset":1,"epoch":"`+pos.Epoch+`"}`, string(api.Messages("a")[0]))

	// Data that fits raw but not in the escaped envelope is the caller's
	// error, as over-sized data on any channel is, and takes no offset.
	_, err = New(m).Handle(ctx, json.RawMessage(`{"action":"sendToChannel","channel":"chat-1","data":"`+strings.Repeat("<", 30_000)+`"}`))
	var bc *BadCommandError
	require.ErrorAs(t, err, &bc)
	assert.Contains(t, bc.Reason, "too large")
	pos2, _, err := hist.ReadHistory(ctx, "chat-1", 0, 0, 0, store.HistoryLimits{Size: 10, TTL: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, pos.Offset, pos2.Offset)
}
