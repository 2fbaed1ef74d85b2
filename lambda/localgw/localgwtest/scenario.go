package localgwtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/publisher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Target is a running gateway the scenario talks to.
type Target struct {
	// URL is the WebSocket endpoint (ws://host/stage).
	URL string
	// ManagementEndpoint is http://host/stage.
	ManagementEndpoint string
	// LambdaEndpoint is http://host, where the Invoke API is served.
	LambdaEndpoint string
	// Store is the registry behind the gateway, to check it is left empty.
	Store store.Store
	// JWTSecret is the built-in authorizer's HS256 secret (required: the
	// scenario checks the authorizer).
	JWTSecret string
	// PublisherName is the function name to invoke; default "my-app-publisher".
	PublisherName string
}

// WaitFor polls cond until it holds or ctx ends, then fails the test.
func WaitFor(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := 5 * time.Millisecond
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("condition never held: %s", what)
		case <-time.After(tick):
		}
		tick = min(2*tick, 200*time.Millisecond)
	}
}

// Invoke calls the publisher through the SDK's Lambda client and decodes the
// response; a function error is returned as FunctionError's type and message.
func Invoke(ctx context.Context, t testing.TB, client *lambda.Client, name string, cmd any) (publisher.Response, string) {
	t.Helper()
	payload, err := json.Marshal(cmd)
	require.NoError(t, err)
	out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
	require.NoError(t, err, "invoke %s", name)
	require.Equal(t, int32(http.StatusOK), out.StatusCode)
	var resp publisher.Response
	if aws.ToString(out.FunctionError) != "" {
		return resp, aws.ToString(out.FunctionError) + ":" + string(out.Payload)
	}
	require.NoError(t, json.Unmarshal(out.Payload, &resp), "publisher answer %s", out.Payload)
	return resp, ""
}

// Scenario runs the end-to-end checks every backend must pass: handshake
// authorization, whoami, subscribe, publish between two clients, private
// channels, sends through the management API (SDK client and the Go
// library) and the publisher's Lambda Invoke API, GET of live and dead
// connections, DELETE, the 128 KB limit, and a store left empty.
func Scenario(t *testing.T, tg Target) {
	require.NotEmpty(t, tg.JWTSecret, "the scenario needs the built-in authorizer")
	if tg.PublisherName == "" {
		tg.PublisherName = "my-app-publisher"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mgmt := ManagementClient(tg.ManagementEndpoint)
	lambdaClient := LambdaClient(tg.LambdaEndpoint)

	// The authorizer refuses handshakes exactly as API Gateway does.
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"bad signature", Token(t, strings.Repeat("x", 32), "mallory", ""), http.StatusForbidden},
		{"garbage", "not.a.jwt", http.StatusForbidden},
	} {
		c, resp, err := Dial(ctx, t, tg.URL, tc.token)
		if c != nil {
			c.Conn.CloseNow()
		}
		require.Error(t, err, tc.name)
		require.NotNil(t, resp, tc.name)
		assert.Equal(t, tc.status, resp.StatusCode, tc.name)
	}

	alice := MustDial(ctx, t, tg.URL, Token(t, tg.JWTSecret, "alice", "private-alice,private-team-*"))
	bob := MustDial(ctx, t, tg.URL, Token(t, tg.JWTSecret, "bob", ""))

	aw := alice.Whoami(ctx)
	require.NotNil(t, aw.UserID)
	assert.Equal(t, "alice", *aw.UserID)
	assert.Regexp(t, `^[A-Za-z0-9]{15}=$`, aw.ConnectionID)
	bw := bob.Whoami(ctx)
	require.NotNil(t, bw.UserID)
	assert.Equal(t, "bob", *bw.UserID)
	aliceID, bobID := aw.ConnectionID, bw.ConnectionID
	require.NotEqual(t, aliceID, bobID)

	// Ping is a built-in action answered as a route response.
	alice.Send(ctx, map[string]string{"action": "ping"})
	alice.ExpectType(ctx, "pong", "")

	// Publish between two clients.
	alice.Subscribe(ctx, "lobby")
	bob.Subscribe(ctx, "lobby")
	bob.Send(ctx, map[string]any{"action": "publish", "channel": "lobby", "data": map[string]string{"text": "hi alice"}})
	bob.ExpectType(ctx, "published", "lobby")
	got := alice.ExpectType(ctx, "message", "lobby")
	assert.JSONEq(t, `{"text":"hi alice"}`, string(got.Data))

	// Private channels need the authorizer's channels claim.
	bob.Send(ctx, map[string]string{"action": "subscribe", "channel": "private-alice"})
	denied := bob.ExpectType(ctx, "error", "")
	assert.Equal(t, "forbidden", denied.Code)
	alice.Subscribe(ctx, "private-alice")
	alice.Subscribe(ctx, "private-team-blue")

	// The management API through the unmodified SDK client.
	_, err := mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(aliceID), Data: []byte(`{"direct":1}`)})
	require.NoError(t, err)
	alice.ExpectRaw(ctx, `{"direct":1}`)
	info, err := mgmt.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(bobID)})
	require.NoError(t, err)
	require.NotNil(t, info.Identity)
	assert.Equal(t, "127.0.0.1", aws.ToString(info.Identity.SourceIp))
	assert.Equal(t, "localgwtest", aws.ToString(info.Identity.UserAgent))
	require.NotNil(t, info.ConnectedAt)
	require.NotNil(t, info.LastActiveAt)
	assert.False(t, info.LastActiveAt.Before(*info.ConnectedAt))
	_, err = mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(aliceID), Data: make([]byte, sender.MaxPayload+1)})
	assertAPIError(t, err, "PayloadTooLargeException")

	// Server-side sends through the Go library over the management API.
	lib, err := realtime.New(realtime.Config{
		Store: tg.Store,
		NewPoster: func(ep string) (sender.Poster, error) {
			return sender.NewManagementAPI(AWSConfig(), ep, nil)
		},
		ManagementEndpoint: tg.ManagementEndpoint,
	})
	require.NoError(t, err)
	rep, err := lib.SendToUser(ctx, "bob", []byte(`{"lib":"to bob"}`))
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Delivered)
	bob.ExpectRaw(ctx, `{"lib":"to bob"}`)
	rep, err = lib.Broadcast(ctx, []byte(`{"lib":"everyone"}`))
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Delivered)
	alice.ExpectRaw(ctx, `{"lib":"everyone"}`)
	bob.ExpectRaw(ctx, `{"lib":"everyone"}`)
	rep, err = lib.SendToChannel(ctx, "private-team-blue", []byte(`{"lib":"team"}`))
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Delivered)
	alice.ExpectRaw(ctx, `{"lib":"team"}`)

	// The publisher through the SDK's Lambda client.
	resp, ferr := Invoke(ctx, t, lambdaClient, tg.PublisherName, map[string]any{"action": "sendToUser", "userId": "alice", "data": map[string]string{"pub": "to alice"}})
	require.Empty(t, ferr)
	assert.True(t, resp.OK)
	alice.ExpectRaw(ctx, `{"pub":"to alice"}`)
	resp, ferr = Invoke(ctx, t, lambdaClient, tg.PublisherName, map[string]any{"action": "broadcast", "data": "all"})
	require.Empty(t, ferr)
	require.NotNil(t, resp.Delivered)
	assert.Equal(t, 2, *resp.Delivered)
	alice.ExpectRaw(ctx, `"all"`)
	bob.ExpectRaw(ctx, `"all"`)
	resp, ferr = Invoke(ctx, t, lambdaClient, "arn:aws:lambda:us-east-1:000000000000:function:"+tg.PublisherName, map[string]any{"action": "sendToChannel", "channel": "lobby", "data": 42})
	require.Empty(t, ferr)
	alice.ExpectRaw(ctx, `42`)
	bob.ExpectRaw(ctx, `42`)
	_, ferr = Invoke(ctx, t, lambdaClient, tg.PublisherName, map[string]any{"action": "explode"})
	assert.Contains(t, ferr, `Unhandled:`)
	assert.Contains(t, ferr, `"errorType":"BadCommandError"`)
	_, err = lambdaClient.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("no-such-function"), Payload: []byte(`{}`)})
	var notFound *lambdatypes.ResourceNotFoundException
	assert.ErrorAs(t, err, &notFound)

	// Oversize messages close the connection with 1009 and clean up.
	big := MustDial(ctx, t, tg.URL, Token(t, tg.JWTSecret, "carol", ""))
	carolID := big.Whoami(ctx).ConnectionID
	big.Subscribe(ctx, "lobby")
	// 128 KB + 1 in frames of at most 32 KB: the message limit, not the frame limit.
	w, err := big.Conn.Writer(ctx, websocket.MessageText)
	require.NoError(t, err)
	for _, n := range []int{32 * 1024, 32 * 1024, 32 * 1024, 32 * 1024, 1} {
		if _, err := w.Write(make([]byte, n)); err != nil {
			break // the gateway may close before the last frame is written
		}
	}
	_ = w.Close()
	assert.Equal(t, websocket.StatusMessageTooBig, CloseCode(big.Closed(ctx)))
	waitGone(ctx, t, tg.Store, carolID)

	// DELETE closes the socket and runs $disconnect; GET of a dead id is 410.
	_, err = mgmt.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(aliceID)})
	require.NoError(t, err)
	assert.NotEqual(t, websocket.StatusCode(-1), CloseCode(alice.Closed(ctx)))
	waitGone(ctx, t, tg.Store, aliceID)
	_, err = mgmt.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(aliceID)})
	assertAPIError(t, err, "GoneException")
	_, err = mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(aliceID), Data: []byte("x")})
	assertAPIError(t, err, "GoneException")

	// A client closing normally is cleaned up too, and nothing is left.
	require.NoError(t, bob.Conn.Close(websocket.StatusNormalClosure, "bye"))
	waitGone(ctx, t, tg.Store, bobID)
	WaitFor(ctx, t, "store empty", func() bool {
		st, err := tg.Store.Stats(ctx)
		return err == nil && st.TotalConnections == 0 && st.TotalChannels == 0
	})
	chans, err := tg.Store.Channels(ctx)
	require.NoError(t, err)
	assert.Empty(t, chans)
}

func waitGone(ctx context.Context, t *testing.T, st store.Store, id string) {
	t.Helper()
	WaitFor(ctx, t, "connection "+id+" removed from the store", func() bool {
		_, err := st.GetConnection(ctx, id)
		return errors.Is(err, store.ErrNotFound)
	})
}

func assertAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if assert.ErrorAs(t, err, &apiErr) {
		assert.Equal(t, code, apiErr.ErrorCode())
	}
}
