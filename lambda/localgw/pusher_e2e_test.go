//go:build e2e

package localgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

var pusherApp = pusher.App{ID: pusher.DefaultAppID, Key: pusher.DefaultAppKey, Secret: pusher.DefaultAppSecret}

// lockedBuffer collects the bootstraps' output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(b.buf.String(), "\n")
}

// pusherBootstrapServer runs protocol v1 and Pusher mode on DynamoDB Local
// with the compiled websocket bootstrap (its Lambda main) for both, and
// returns the processes' output.
func pusherBootstrapServer(t *testing.T) (*localgw.Server, *lockedBuffer, string) {
	t.Helper()
	out := &lockedBuffer{}
	table := uniqueTable(t)
	srv := startServer(t, localgw.ServerConfig{
		DynamoDBEndpoint: dynamoEndpoint(t), Table: table, LambdaDir: lambdaDir(t), JWTSecret: testSecret,
		ProcessOutput: out, Pusher: &pusher.Config{App: pusherApp},
	})
	return srv, out, table
}

// pusherServers runs fn against a Pusher-mode gateway on DynamoDB Local both
// ways the gateway runs the functions: the compiled bootstraps, and in
// process (no LambdaDir: the Pusher handler, the publisher and their
// wiring built by the server itself).
func pusherServers(t *testing.T, fn func(t *testing.T, srv *localgw.Server, table string)) {
	pusherServersWith(t, nil, fn)
}

// pusherServersWith is pusherServers with the gateway's settings changed by
// mutate (nil: none).
func pusherServersWith(t *testing.T, mutate func(*localgw.ServerConfig), fn func(t *testing.T, srv *localgw.Server, table string)) {
	for _, name := range []string{"bootstrap", "in-process"} {
		t.Run(name, func(t *testing.T) {
			table := uniqueTable(t)
			cfg := localgw.ServerConfig{
				DynamoDBEndpoint: dynamoEndpoint(t), Table: table, JWTSecret: testSecret, Pusher: &pusher.Config{App: pusherApp},
			}
			if name == "bootstrap" {
				cfg.LambdaDir, cfg.ProcessOutput = lambdaDir(t), &lockedBuffer{}
			}
			if mutate != nil {
				mutate(&cfg)
			}
			fn(t, startServer(t, cfg), table)
		})
	}
}

// TestPusherSigninRefusedAtTheCapLeavesTheConnectionFree: on DynamoDB, a
// signin refused for the channel cap releases its claim on the connection:
// a presence subscribe without channel_data is not made as that user, and a
// signin as another user succeeds once a channel is left.
func TestPusherSigninRefusedAtTheCapLeavesTheConnectionFree(t *testing.T) {
	pusherServersWith(t, func(c *localgw.ServerConfig) { c.MaxChannelsPerConnection = 1 }, func(t *testing.T, srv *localgw.Server, _ string) {
		ctx := testCtx(t)
		p := dialPusher(ctx, t, srv)
		signin := func(userData string) map[string]any {
			p.send(ctx, map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": pusherApp.UserAuth(p.socketID, userData), "user_data": userData}})
			for {
				_, b, err := p.c.Read(ctx)
				require.NoError(t, err)
				var f map[string]any
				require.NoError(t, json.Unmarshal(b, &f))
				if f["event"] == "pusher:signin_success" || f["event"] == "pusher:error" {
					return f
				}
			}
		}
		p.send(ctx, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "news"}})
		p.next(ctx, "pusher_internal:subscription_succeeded")
		f := signin(`{"id":"ghost"}`)
		require.Equal(t, "pusher:error", f["event"], "%v", f)
		assert.Contains(t, f["data"], "Too many channels")
		p.send(ctx, map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
		ch := "presence-room"
		p.send(ctx, map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch, "auth": pusherApp.ChannelAuth(p.socketID, ch, "")}})
		f = p.next(ctx, "pusher:subscription_error")
		assert.Contains(t, f["data"], "channel_data missing", "not a member as the refused signin's user")
		f = signin(`{"id":"other"}`)
		assert.Equal(t, "pusher:signin_success", f["event"], "%v", f)
	})
}

// localPresence returns a DynamoDB Local client and the presence store on table.
func localPresence(t *testing.T, table string) (*dynamodb.Client, *store.DynamoPresence) {
	t.Helper()
	client := dynamodb.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(dynamoEndpoint(t))
		o.DisableValidateResponseChecksum = true
		o.Retryer = localgw.DynamoDBLocalRetryer()
	})
	presence, err := store.NewDynamoPresence(client, store.DynamoOptions{Table: table})
	require.NoError(t, err)
	return client, presence
}

func dialPusher(ctx context.Context, t *testing.T, srv *localgw.Server) *pusherClient {
	t.Helper()
	return dialPusherKey(ctx, t, srv, pusherApp.Key)
}

// nextMemberRemoved waits for pusher_internal:member_removed and checks it
// names channel and userID.
func (p *pusherClient) nextMemberRemoved(ctx context.Context, channel, userID string) {
	p.t.Helper()
	f := p.next(ctx, "pusher_internal:member_removed")
	assert.Equal(p.t, channel, f["channel"])
	var d map[string]any
	require.NoError(p.t, json.Unmarshal([]byte(f["data"].(string)), &d))
	assert.Equal(p.t, map[string]any{"user_id": userID}, d)
}

// addStaleMember puts a presence member in channel as the registry holds
// one whose $disconnect was lost: connection id connected at connectedAt
// (in st), a member of the channel, and userID in its presence until
// expiresAt.
func addStaleMember(ctx context.Context, t *testing.T, st store.Store, presence store.Presence, channel, id, userID string, connectedAt, expiresAt time.Time) {
	t.Helper()
	require.NoError(t, st.AddConnection(ctx, store.Connection{ID: id, ConnectedAt: connectedAt}))
	_, err := st.Join(ctx, id, pusher.StoreChannel(channel))
	require.NoError(t, err)
	_, err = presence.JoinPresence(ctx, pusher.StoreChannel(channel), store.PresenceMember{ConnectionID: id, UserID: userID, ExpiresAt: expiresAt}, 0)
	require.NoError(t, err)
}

func (p *pusherClient) joinPresence(ctx context.Context, channel, userID string) {
	p.t.Helper()
	cd := `{"user_id":"` + userID + `"}`
	p.send(ctx, map[string]any{"event": "pusher:subscribe", "data": map[string]any{
		"channel": channel, "auth": pusherApp.ChannelAuth(p.socketID, channel, cd), "channel_data": cd,
	}})
	p.next(ctx, "pusher_internal:subscription_succeeded")
}

// TestPusherModeMetricsCarryFunctionPusher runs the websocket bootstrap in
// Pusher mode (WS_PUSHER_APP_KEY set, as pusher.tf configures the Pusher-mode
// function) and checks its EMF lines: the welcome's delivery is recorded
// under Function=pusher, not websocket.
func TestPusherModeMetricsCarryFunctionPusher(t *testing.T) {
	srv, out, _ := pusherBootstrapServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dialPusher(ctx, t, srv)

	emf := func() (functions map[string]bool) {
		functions = map[string]bool{}
		for _, line := range out.lines() {
			var doc map[string]any
			if json.Unmarshal([]byte(line), &doc) != nil || doc["_aws"] == nil {
				continue
			}
			if _, delivered := doc["DeliveriesSucceeded"]; delivered {
				functions[doc["Function"].(string)] = true
			}
		}
		return functions
	}
	// The welcome is posted by an asynchronous invocation, whose metrics are
	// flushed when it returns: wait for the line.
	require.Eventually(t, func() bool { return emf()["pusher"] }, 30*time.Second, 20*time.Millisecond,
		"an EMF line with Function=pusher and DeliveriesSucceeded; output:\n%s", strings.Join(out.lines(), "\n"))
	assert.False(t, emf()["websocket"], "only the Pusher stage's function delivered: nothing is filed under websocket")
}

// TestGonePresenceMemberIsRemoved: a presence member whose connection is gone
// without a $disconnect (API Gateway's $disconnect is best effort) answers
// 410 to the next post; the Pusher-mode function then removes it and leaves
// its presence channels, so the other member gets member_removed and the
// channel's user count drops, at once rather than when its items expire.
func TestGonePresenceMemberIsRemoved(t *testing.T) {
	pusherServers(t, testGonePresenceMemberIsRemoved)
}

func testGonePresenceMemberIsRemoved(t *testing.T, srv *localgw.Server, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const channel = "presence-room"

	// b is a live member. The gone member is as the registry holds it: a
	// connection a minute old (past realtime.GoneGrace) in the channel, which
	// the gateway no longer has, so a post to it answers 410 GoneException.
	_, presence := localPresence(t, table)
	b := dialPusher(ctx, t, srv)
	b.joinPresence(ctx, channel, "live-user")
	st := srv.Store()
	const gone = "GoneConnId0001="
	addStaleMember(ctx, t, st, presence, channel, gone, "gone-user", time.Now().Add(-time.Minute), time.Now().Add(store.DefaultTTL))
	n, err := presence.PresenceUserCount(ctx, pusher.StoreChannel(channel))
	require.NoError(t, err)
	require.Equal(t, 2, n)

	// A whisper from b is posted to the gone member: 410.
	b.send(ctx, map[string]any{"event": "client-typing", "channel": channel, "data": map[string]any{}})
	b.nextMemberRemoved(ctx, channel, "gone-user")

	n, err = presence.PresenceUserCount(ctx, pusher.StoreChannel(channel))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "user_count no longer counts the gone member")
	_, err = st.GetConnection(ctx, gone)
	assert.ErrorIs(t, err, store.ErrNotFound, "the gone connection is removed")
	chans, err := st.ConnectionChannels(ctx, gone)
	require.NoError(t, err)
	assert.Empty(t, chans)
}

// TestPublisherCleanupAnnouncesExpiredPusherMember: the publisher, invoked
// with {"action":"cleanup"} through the gateway's Lambda Invoke API, removes
// a Pusher connection that expired without $disconnect, and the live member
// hears member_removed through the Pusher stage: the compiled bootstrap with
// WS_PUSHER_MANAGEMENT_ENDPOINT, as the module sets it in Pusher mode, and
// the in-process publisher, whose Manager's OnRemoved hook the server wires
// to the Pusher presence (localgw's wirePusher).
func TestPublisherCleanupAnnouncesExpiredPusherMember(t *testing.T) {
	pusherServers(t, testPublisherCleanupAnnouncesExpiredPusherMember)
}

func testPublisherCleanupAnnouncesExpiredPusherMember(t *testing.T, srv *localgw.Server, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const channel = "presence-room"
	client, presence := localPresence(t, table)
	b := dialPusher(ctx, t, srv)
	b.joinPresence(ctx, channel, "live-user")

	// The expired member, as the registry holds it: connected 3 hours ago
	// (past its 2 h 10 min TTL), in the channel, its $disconnect lost. It
	// joined while it was live: a store whose clock is 3 hours behind.
	connectedAt := time.Now().Add(-3 * time.Hour)
	st, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table, Now: func() time.Time { return connectedAt.Add(time.Minute) }})
	require.NoError(t, err)
	const expired = "ExpiredConnId01="
	addStaleMember(ctx, t, st, presence, channel, expired, "expired-user", connectedAt, connectedAt.Add(store.DefaultTTL))

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.LambdaEndpoint()+"/2015-03-31/functions/publisher/invocations", strings.NewReader(`{"action":"cleanup"}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Empty(t, resp.Header.Get("X-Amz-Function-Error"), "%s", body)

	b.nextMemberRemoved(ctx, channel, "expired-user")
	n, err := presence.PresenceUserCount(ctx, pusher.StoreChannel(channel))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "user_count no longer counts the expired member")
	_, err = presence.PresenceMember(ctx, pusher.StoreChannel(channel), expired)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// TestPusherHTTPAPIRefusalsKeepTheErrorShape: bodies the local gateway
// refuses itself, before the function, answer in the HTTP API's error shape
// ({"error":…,"code":N}, application/json) as the function does.
func TestPusherHTTPAPIRefusalsKeepTheErrorShape(t *testing.T) {
	srv := startServer(t, localgw.ServerConfig{Pusher: &pusher.Config{App: pusherApp}})
	url := "http://" + srv.Addr() + "/apps/" + pusherApp.ID + "/events"
	resp, err := http.Post(url, "application/json", strings.NewReader(strings.Repeat("x", 1<<20+1)))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"error":"Request body exceeds 1048576 bytes","code":413}`, string(body))
}

// TestInvokeAPIFunctionNamedAppWithPusher: the Lambda Invoke API comes
// before the Pusher routes, so a publisher name containing /app/ in its
// path (-publisher-name app) is invoked, not upgraded as a Pusher socket.
func TestInvokeAPIFunctionNamedAppWithPusher(t *testing.T) {
	srv := startServer(t, localgw.ServerConfig{Pusher: &pusher.Config{App: pusherApp}, PublisherNames: []string{"app", "apps"}})
	for _, name := range []string{"app", "apps"} {
		resp, err := http.Post(srv.LambdaEndpoint()+"/2015-03-31/functions/"+name+"/invocations", "application/json", strings.NewReader(`{"action":"stats"}`))
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", name, body)
		assert.Contains(t, string(body), `"action":"stats"`, name)
	}
}

// TestPusherPathsAsTheCloudFrontFunction: the module's CloudFront Function
// (functions/pusher-rewrite.js) sends [wsPath]/app/{key} to the Pusher
// stage and answers any other /app/ path 404; so does the gateway.
func TestPusherPathsAsTheCloudFrontFunction(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, localgw.ServerConfig{Pusher: &pusher.Config{App: pusherApp}})
	base := "ws://" + srv.Addr()
	for _, path := range []string{"/app/" + pusherApp.Key + "/", "/app/" + pusherApp.Key + "/x", "//app/" + pusherApp.Key, "/app/", "/app/a.b", "/app/app%2Dkey"} {
		_, resp, err := websocket.Dial(ctx, base+path+"?protocol=7", nil)
		require.Error(t, err, path)
		require.NotNil(t, resp, path)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	// A wsPath of whole segments before /app/{key} is dropped.
	c, _, err := websocket.Dial(ctx, base+"/ws/v1/app/"+pusherApp.Key+"?protocol=7&client=go&version=1", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	p := &pusherClient{t: t, c: c}
	p.next(ctx, "pusher:connection_established")
}

// TestPusherGoServerSDKOnDynamoDB: pusher-http-go v5 against the Pusher stage
// on DynamoDB Local, with the compiled bootstraps and in process.
func TestPusherGoServerSDKOnDynamoDB(t *testing.T) {
	pusherServers(t, func(t *testing.T, srv *localgw.Server, _ string) { testPusherGoServerSDK(t, srv, pusherApp) })
}
