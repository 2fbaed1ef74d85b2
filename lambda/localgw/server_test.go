package localgw_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

// startServer starts a gateway on a free loopback port and closes it at cleanup.
func startServer(t *testing.T, cfg localgw.ServerConfig) *localgw.Server {
	t.Helper()
	srv, err := localgw.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
	})
	return srv
}

func target(srv *localgw.Server) localgwtest.Target {
	return localgwtest.Target{
		URL: srv.URL(), ManagementEndpoint: srv.ManagementEndpoint(), LambdaEndpoint: srv.LambdaEndpoint(),
		Store: srv.Store(), JWTSecret: testSecret,
	}
}

func TestScenarioEmbeddedStore(t *testing.T) {
	srv := startServer(t, localgw.ServerConfig{JWTSecret: testSecret})
	require.True(t, strings.HasPrefix(srv.URL(), "ws://127.0.0.1:"))
	localgwtest.Scenario(t, target(srv))
}

func TestServerCustomRoutes(t *testing.T) {
	ctx := testCtx(t)
	hookCalls := make(chan string, 1)
	srv := startServer(t, localgw.ServerConfig{
		Hooks: realtime.Hooks{Routes: map[string]realtime.RouteFunc{
			"sendmessage": func(_ context.Context, _ *realtime.Manager, req *realtime.Request) ([]byte, error) {
				hookCalls <- string(req.Body)
				return []byte(`{"type":"sent","by":"` + req.ConnectionID + `"}`), nil
			},
		}},
		BuiltinRoutes:            []string{"sendmessage"},
		BootstrapRoutes:          map[string]string{"shout": echoBootstrap(t)},
		MaxChannelsPerConnection: 7,
		History:                  realtime.HistoryRules{{Pattern: "chat-*", Size: 10, TTL: time.Minute}},
	})
	c := localgwtest.MustDial(ctx, t, srv.URL(), "")
	id := c.Whoami(ctx).ConnectionID
	c.Send(ctx, map[string]string{"action": "sendmessage", "text": "hi"})
	c.ExpectRaw(ctx, `{"type":"sent","by":"`+id+`"}`)
	assert.Equal(t, `{"action":"sendmessage","text":"hi"}`, <-hookCalls)
	c.Send(ctx, map[string]string{"action": "shout"})
	c.ExpectRaw(ctx, `bootstrap shout: {"action":"shout"}`)
	// A bootstrap route gets the settings the module's functions get.
	for _, kv := range []string{"WS_MAX_CHANNELS_PER_CONNECTION=7", `WS_HISTORY=[{"pattern":"chat-*","size":10,"ttl":"1m0s"}]`, "WS_MANAGEMENT_ENDPOINT=" + srv.ManagementEndpoint()} {
		name, _, _ := strings.Cut(kv, "=")
		c.Send(ctx, map[string]string{"action": "shout", "env": name})
		c.ExpectRaw(ctx, kv)
	}
	// GET /metrics reads the module's namespace only: a route's own
	// function writing EMF for its namespace moves nothing, as on the
	// module's dashboard.
	received := promName(t, metrics.MessagesReceived)
	before := scrapeMetrics(ctx, t, srv)[received]
	c.Send(ctx, map[string]any{"action": "shout", "emf": "MyApp", "count": 1000})
	c.ExpectRaw(ctx, "emf MyApp")
	c.Send(ctx, map[string]any{"action": "shout", "emf": metrics.DefaultNamespace, "count": 7})
	c.ExpectRaw(ctx, "emf "+metrics.DefaultNamespace)
	require.Eventually(t, func() bool { return scrapeMetrics(ctx, t, srv)[received] != before }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, before+7, scrapeMetrics(ctx, t, srv)[received], "the line in the process's own namespace only (written after the other)")

	c.Send(ctx, map[string]string{"action": "subscribe", "channel": "a"})
	c.ExpectType(ctx, "subscribed", "a")
	procs := srv.Processes()
	require.Len(t, procs, 1)
	assert.Equal(t, "route-shout", procs[0].Function)
}

func TestStartValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  localgw.ServerConfig
	}{
		{"bootstraps without dynamodb", localgw.ServerConfig{LambdaDir: t.TempDir()}},
		{"secret and public key", localgw.ServerConfig{JWTSecret: testSecret, JWTPublicKey: "x"}},
		{"builtin route named like a protocol action", localgw.ServerConfig{BuiltinRoutes: []string{"subscribe"}}},
		{"bootstrap route named like a protocol action", localgw.ServerConfig{BootstrapRoutes: map[string]string{"publish": "/x/bootstrap"}}},
		{"short secret", localgw.ServerConfig{JWTSecret: "short"}},
		{"short secret for the authorizer bootstrap", localgw.ServerConfig{LambdaDir: t.TempDir(), DynamoDBEndpoint: "http://127.0.0.1:1", JWTSecret: "short"}},
		{"JWKS over http for the authorizer bootstrap", localgw.ServerConfig{LambdaDir: t.TempDir(), DynamoDBEndpoint: "http://127.0.0.1:1", JWT: localgw.JWTConfig{JWKSURL: "http://insecure.example/jwks"}}},
		{"bad public key", localgw.ServerConfig{JWTPublicKey: "not a key"}},
		{"bad route key", localgw.ServerConfig{BuiltinRoutes: []string{"$connect"}}},
		{"missing route bootstrap", localgw.ServerConfig{BootstrapRoutes: map[string]string{"x": "/nonexistent/bootstrap"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := localgw.Start(context.Background(), tc.cfg)
			assert.Error(t, err)
			if strings.Contains(tc.name, "authorizer bootstrap") {
				assert.Regexp(t, "secret is 5 bytes|https", err.Error(), "refused for its key settings, before DynamoDB or the bootstraps")
			}
			if strings.Contains(tc.name, "protocol action") {
				assert.Contains(t, err.Error(), "is a protocol v1 action")
			}
		})
	}
	// A refused configuration leaves no listener behind.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	for _, stage := range []string{localgw.PusherStage, "app", "apps"} {
		_, err = localgw.Start(context.Background(), localgw.ServerConfig{Addr: addr, Stage: stage, Pusher: &pusher.Config{}})
		require.ErrorContains(t, err, "is taken by the Pusher API", stage)
	}
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err, "the address is free again")
	require.NoError(t, ln.Close())
}

// The Pusher mode on the embedded store: pusher-js's wsPath before
// /app/{key} is accepted (a path before it is dropped), and the Pusher HTTP
// API refuses browser requests from other origins like the management and
// Invoke APIs do (the default secret is well known).
func TestPusherModeWsPathAndCrossOrigin(t *testing.T) {
	ctx := testCtx(t)
	app := pusher.App{ID: pusher.DefaultAppID, Key: pusher.DefaultAppKey, Secret: pusher.DefaultAppSecret}
	srv := startServer(t, localgw.ServerConfig{JWTSecret: testSecret, Pusher: &pusher.Config{App: app}})

	for _, path := range []string{"/app/" + app.Key, "/ws/app/" + app.Key, "/a/b/app/" + app.Key} {
		c, _, err := websocket.Dial(ctx, "ws://"+srv.Addr()+path+"?protocol=7&client=go&version=1", nil)
		require.NoError(t, err, path)
		_, msg, err := c.Read(ctx)
		require.NoError(t, err, path)
		assert.Contains(t, string(msg), `"event":"pusher:connection_established"`, path)
		_ = c.CloseNow()
	}

	post := func(origin string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.PusherAPI(app.ID)+"/events", strings.NewReader(`{"name":"x","channel":"c","data":"{}"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "text/plain")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, post("http://evil.example"), "a page from another origin")
	assert.Equal(t, http.StatusUnauthorized, post(""), "a server SDK (no Origin) reaches the signature check")
	assert.Equal(t, http.StatusUnauthorized, post("http://"+srv.Addr()), "the gateway's own origin too")
}

// TestPusherStageHonoursMaxChannelsPerConnection: -max-channels-per-connection
// caps the in-process Pusher stage too (the bootstraps get it as
// WS_MAX_CHANNELS_PER_CONNECTION).
func TestPusherStageHonoursMaxChannelsPerConnection(t *testing.T) {
	ctx := testCtx(t)
	app := pusher.App{ID: pusher.DefaultAppID, Key: pusher.DefaultAppKey, Secret: pusher.DefaultAppSecret}
	srv := startServer(t, localgw.ServerConfig{JWTSecret: testSecret, MaxChannelsPerConnection: 2, Pusher: &pusher.Config{App: app}})
	c, _, err := websocket.Dial(ctx, srv.PusherURL(app.Key)+"?protocol=7&client=go&version=1", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(msg), `"event":"pusher:connection_established"`)
	for i, want := range []string{"pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded", "pusher:subscription_error"} {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"event":"pusher:subscribe","data":{"channel":"c`+strconv.Itoa(i)+`"}}`)))
		_, msg, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Contains(t, string(msg), `"event":"`+want+`"`, "subscribe %d", i)
	}
}

// TestPusherStageHonoursQueueAndOriginSettings: -max-queued-bytes and
// -allow-origin apply to the Pusher stage as to protocol v1's: its
// management API answers an allowed origin (here 410 for an unknown
// connection, with the CORS header) and throttles posts to a client that
// does not read once its queue is full (429, not a post that waits).
func TestPusherStageHonoursQueueAndOriginSettings(t *testing.T) {
	ctx := testCtx(t)
	app := pusher.App{ID: pusher.DefaultAppID, Key: pusher.DefaultAppKey, Secret: pusher.DefaultAppSecret}
	const origin = "http://localhost:3000"
	srv := startServer(t, localgw.ServerConfig{JWTSecret: testSecret, MaxQueuedBytes: 1, AllowedOrigins: []string{origin}, Pusher: &pusher.Config{App: app}})
	mgmt := srv.BaseURL() + "/" + localgw.PusherStage + "/@connections/"

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mgmt+"unknown", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusGone, resp.StatusCode, "an allowed origin reaches the Pusher stage's management API")
	assert.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"))

	c, _, err := websocket.Dial(ctx, srv.PusherURL(app.Key)+"?protocol=7&client=go&version=1", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	_, _, err = c.Read(ctx) // connection_established; then the client reads no more
	require.NoError(t, err)
	var id string
	require.NoError(t, srv.Store().AllConnections(ctx, func(ids []string) error { id = ids[0]; return nil }))
	require.NotEmpty(t, id)
	post := func(ctx context.Context, body string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, mgmt+id, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Large posts until the socket's buffers are full and one waits in its
	// write (it holds the queue); each small post then finds the queue taken.
	bctx, stopBig := context.WithCancel(ctx)
	defer stopBig()
	go func() {
		for bctx.Err() == nil {
			if _, err := post(bctx, strings.Repeat("x", 128*1024)); err != nil {
				return
			}
		}
	}()
	status := 0
	for i := 0; i < 100 && status != http.StatusTooManyRequests; i++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		status, err = post(pctx, "x") // a small post admitted behind the large one waits with it
		cancel()
		if err == nil {
			require.Contains(t, []int{http.StatusOK, http.StatusTooManyRequests}, status)
		}
	}
	assert.Equal(t, http.StatusTooManyRequests, status, "the queue of one byte is full")
}
