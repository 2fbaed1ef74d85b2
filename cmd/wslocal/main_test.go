package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	jsclient "github.com/wsforge/terraform-aws-websocket/clients/js"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// syncBuffer is a bytes.Buffer safe for the writer and the test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var wsURLLine = regexp.MustCompile(`WebSocket\s+(ws://\S+)`)

func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, o *options)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, o *options) {
			assert.Equal(t, "127.0.0.1:8080", o.addr)
			assert.Equal(t, "dev", o.stage)
			assert.Equal(t, 10*time.Minute, o.idleTimeout)
			assert.Equal(t, 2*time.Hour, o.maxDuration)
			assert.Equal(t, 128*1024, o.maxMessageSize)
			assert.Empty(t, o.dynamoEndpoint)
		}},
		{name: "environment", env: map[string]string{"WSLOCAL_ADDR": "127.0.0.1:9999", "WSLOCAL_JWT_SECRET": "s", "WSLOCAL_IDLE_TIMEOUT": "1s"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, "127.0.0.1:9999", o.addr)
				assert.Equal(t, "s", o.jwtSecret)
				assert.Equal(t, time.Second, o.idleTimeout)
			}},
		{name: "repeatable flags from the environment, separated by spaces",
			env: map[string]string{"WSLOCAL_HISTORY": " chat-*:100:1h  feed-*:50:10m\t", "WSLOCAL_JWT_SECRET": "s", "WSLOCAL_IDENTITY_SOURCE": "route.request.querystring.token route.request.header.X-Tenant"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, listFlag{"chat-*:100:1h", "feed-*:50:10m"}, o.history)
				assert.Equal(t, listFlag{"route.request.querystring.token", "route.request.header.X-Tenant"}, o.identitySources)
			}},
		{name: "flag wins over environment", args: []string{"-addr", "127.0.0.1:7000"}, env: map[string]string{"WSLOCAL_ADDR": "127.0.0.1:9999"},
			check: func(t *testing.T, o *options) { assert.Equal(t, "127.0.0.1:7000", o.addr) }},
		{name: "repeatable routes", args: []string{"-route", "a=builtin", "-route", "b=bootstrap:/x/bootstrap"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, listFlag{"a=builtin", "b=bootstrap:/x/bootstrap"}, o.routes)
			}},
		{name: "gateway fidelity flags", args: []string{"-jwt-secret", strings.Repeat("s", 32), "-identity-source", "route.request.querystring.token", "-identity-source", "route.request.header.X-Tenant", "-frame-size", "1024", "-allow-binary"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, listFlag{"route.request.querystring.token", "route.request.header.X-Tenant"}, o.identitySources)
				assert.Equal(t, 1024, o.frameSize)
				assert.True(t, o.allowBinary)
				cfg, err := o.serverConfig(nil, io.Discard)
				require.NoError(t, err)
				assert.Equal(t, []string{"route.request.querystring.token", "route.request.header.X-Tenant"}, cfg.IdentitySources)
				assert.Equal(t, 1024, cfg.FrameSize)
				assert.True(t, cfg.AllowBinary)
			}},
		{name: "fidelity defaults", check: func(t *testing.T, o *options) {
			assert.Empty(t, o.identitySources)
			assert.Equal(t, 32*1024, o.frameSize)
			assert.False(t, o.allowBinary)
			cfg, err := o.serverConfig(nil, io.Discard)
			require.NoError(t, err)
			assert.Nil(t, cfg.IdentitySources, "nil: the server applies the module's default with an authorizer")
		}},
		{name: "slow clients and browser origins", args: []string{"-max-queued-bytes", "262144", "-allow-origin", "http://localhost:3000", "-allow-origin", "https://app.example"},
			env: map[string]string{"WSLOCAL_ALLOW_ORIGIN": "http://ignored.example"},
			check: func(t *testing.T, o *options) {
				cfg, err := o.serverConfig(nil, io.Discard)
				require.NoError(t, err)
				assert.Equal(t, 262144, cfg.MaxQueuedBytes)
				assert.Equal(t, []string{"http://localhost:3000", "https://app.example"}, cfg.AllowedOrigins)
			}},
		{name: "buffer and origin defaults", check: func(t *testing.T, o *options) {
			assert.Equal(t, 1<<20, o.maxQueuedBytes)
			assert.Empty(t, o.allowOrigins)
		}},
		{name: "bad environment value", env: map[string]string{"WSLOCAL_MAX_DURATION": "soon"}, wantErr: `WSLOCAL_MAX_DURATION="soon": invalid value for -max-duration (want a duration)`},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "missing key file", args: []string{"-jwt-public-key", "@/nonexistent.pem"}, wantErr: "-jwt-public-key"},
		{name: "JWT defaults", check: func(t *testing.T, o *options) {
			cfg, err := o.serverConfig(nil, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, localgw.JWTConfig{Leeway: 5 * time.Second}, cfg.JWT)
		}},
		{name: "JWKS URL and leeway", args: []string{"-jwt-jwks-url", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab/.well-known/jwks.json", "-jwt-leeway", "30s"},
			check: func(t *testing.T, o *options) {
				cfg, err := o.serverConfig(nil, io.Discard)
				require.NoError(t, err)
				assert.Equal(t, localgw.JWTConfig{JWKSURL: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab/.well-known/jwks.json", Leeway: 30 * time.Second}, cfg.JWT)
			}},
		{name: "leeway in whole seconds from the environment", env: map[string]string{"WSLOCAL_JWT_LEEWAY": "0"},
			check: func(t *testing.T, o *options) { assert.Equal(t, leewayFlag(0), o.jwtLeeway) }},
		{name: "negative leeway", args: []string{"-jwt-leeway", "-1s"}, wantErr: "negative"},
		{name: "no processes", args: []string{"-max-processes", "0"}, wantErr: "-max-processes 0: want at least 1"},
		{name: "negative message size", args: []string{"-max-message-size", "-5"}, wantErr: "-max-message-size -5"},
		{name: "frame larger than a message", args: []string{"-frame-size", "200000"}, wantErr: "want at most -max-message-size"},
		{name: "no queue", env: map[string]string{"WSLOCAL_MAX_QUEUED_BYTES": "-1"}, wantErr: "-max-queued-bytes -1"},
		{name: "identity source without an authorizer", args: []string{"-identity-source", "route.request.header.Authorization"}, wantErr: "-identity-source needs the built-in authorizer"},
		{name: "audience without an authorizer", args: []string{"-jwt-audience", "app"}, wantErr: "-jwt-audience needs the built-in authorizer"},
		{name: "claim settings", args: []string{"-jwt-jwks-url", "https://issuer.example/jwks.json", "-jwt-issuer", "https://issuer.example", "-jwt-audience", "app", "-jwt-token-use", "id", "-jwt-user-claim", "email", "-jwt-channels-claim", "rooms"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, []string{"https://issuer.example", "app", "id", "email", "rooms"}, []string{o.jwtIssuer, o.jwtAudience, o.jwtTokenUse, o.jwtUserClaim, o.jwtChannelsClaim})
			}},
		{name: "zero client event rate", args: []string{"-pusher-client-event-rate", "0"}, wantErr: "-pusher-client-event-rate 0"},
		{name: "negative idle timeout", args: []string{"-idle-timeout", "-1s"}, wantErr: "-idle-timeout -1s: want a positive duration"},
		{name: "garbage leeway", env: map[string]string{"WSLOCAL_JWT_LEEWAY": "soon"}, wantErr: "WSLOCAL_JWT_LEEWAY"},
		{name: "empty stage", args: []string{"-stage", ""}, check: func(t *testing.T, o *options) {
			_, err := o.serverConfig(nil, io.Discard)
			require.ErrorContains(t, err, `-stage ""`)
		}},
		{name: "empty table", args: []string{"-table", ""}, check: func(t *testing.T, o *options) {
			_, err := o.serverConfig(nil, io.Discard)
			require.ErrorContains(t, err, `-table "": want a DynamoDB table name`)
		}},
		{name: "Pusher key that is no URL path segment", args: []string{"-pusher-key", "app.key"}, check: func(t *testing.T, o *options) {
			_, err := o.serverConfig(nil, io.Discard)
			require.ErrorContains(t, err, `-pusher-key "app.key": want 1 to 64 letters, digits, '-' or '_'`)
		}},
		{name: "empty Pusher secret", args: []string{"-pusher-secret="}, check: func(t *testing.T, o *options) {
			_, err := o.serverConfig(nil, io.Discard)
			require.ErrorContains(t, err, `-pusher-secret "": want the app secret`)
		}},
		{name: "Pusher app id with a slash", args: []string{"-pusher-app-id", "a/b"}, check: func(t *testing.T, o *options) {
			_, err := o.serverConfig(nil, io.Discard)
			require.ErrorContains(t, err, `-pusher-app-id "a/b": want 1 to 64 letters`)
		}},
		{name: "two routes for one key", args: []string{"-route", "x=builtin", "-route", "x=bootstrap:/bin/true"}, check: func(t *testing.T, o *options) {
			_, err := o.serverConfig(nil, io.Discard)
			require.ErrorContains(t, err, `-route "x=bootstrap:/bin/true": route key x is already given by -route "x=builtin"; one route per key`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, env(tc.env), io.Discard)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, o)
		})
	}
}

func TestRouteFlags(t *testing.T) {
	for _, tc := range []struct {
		route     string
		builtin   []string
		bootstrap map[string]string
		wantErr   bool
	}{
		{route: "sendmessage=builtin", builtin: []string{"sendmessage"}, bootstrap: map[string]string{}},
		{route: "upload=bootstrap:/opt/fn/bootstrap", bootstrap: map[string]string{"upload": "/opt/fn/bootstrap"}},
		{route: "$connect=builtin", wantErr: true},
		{route: "subscribe=builtin", wantErr: true},
		{route: "history=bootstrap:/x/bootstrap", wantErr: true},
		{route: "nokey", wantErr: true},
		{route: "x=lambda", wantErr: true},
		{route: "x=bootstrap:", wantErr: true},
	} {
		o := &options{stage: localgw.DefaultStage, table: localgw.DefaultTable, routes: listFlag{tc.route}}
		cfg, err := o.serverConfig(nil, io.Discard)
		if tc.wantErr {
			assert.Error(t, err, tc.route)
			continue
		}
		require.NoError(t, err, tc.route)
		assert.Equal(t, tc.builtin, cfg.BuiltinRoutes, tc.route)
		assert.Equal(t, tc.bootstrap, cfg.BootstrapRoutes, tc.route)
	}
}

// TestBannerPrintsURLsThatWork: listening on every interface, the banner's
// URLs name localhost (not [::], which a browser cannot open); a stage named
// metrics keeps that path, so no metrics URL is printed.
func TestBannerPrintsURLsThatWork(t *testing.T) {
	ctx, stdout, stop := startRun(t, "-addr", ":0", "-stage", "metrics", "-log-level", "warn")
	out := stdout.String()
	wsURL := wsURLLine.FindStringSubmatch(out)[1]
	assert.Regexp(t, `^ws://localhost:\d+/metrics$`, wsURL)
	assert.Regexp(t, `Demo page      http://localhost:\d+/\n`, out)
	assert.NotContains(t, strings.SplitN(out, "\n", 2)[1], "[::]", "the first line says where it listens; the URLs are dialable")
	assert.NotContains(t, out, "Metrics  ", "the stage named metrics answers /metrics")
	c := localgwtest.MustDial(ctx, t, wsURL, "")
	assert.Nil(t, c.Whoami(ctx).UserID)
	require.NoError(t, stop())
}

// TestJWTErrorsNameTheFlags: the JWT settings reach the authorizer as the
// function's environment, but a wslocal user set flags: errors name those.
func TestJWTErrorsNameTheFlags(t *testing.T) {
	for args, want := range map[string]string{
		"-identity-source bogus":                 `-identity-source: identity source "bogus"`,
		"-jwt-jwks-url https://127.0.0.1:1/jwks": "-jwt-secret and -jwt-jwks-url are all set",
		"-jwt-token-use refresh":                 "-jwt-token-use",
	} {
		err := run(t.Context(), append([]string{"-addr", "127.0.0.1:0", "-jwt-secret", strings.Repeat("s", 40)}, strings.Fields(args)...), func(string) string { return "" }, io.Discard, io.Discard)
		require.Error(t, err, args)
		assert.Contains(t, err.Error(), want, args)
		assert.NotContains(t, err.Error(), "WS_JWT_", args)
	}
}

// startRun runs the command in-process with args until its start-up lines
// are printed; stop cancels it and returns run's error.
func startRun(t *testing.T, args ...string) (context.Context, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	runCtx, cancelRun := context.WithCancel(ctx)
	t.Cleanup(cancelRun)
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(runCtx, args, func(string) string { return "" }, stdout, io.Discard) }()
	localgwtest.WaitFor(ctx, t, "URLs printed", func() bool { return strings.Contains(stdout.String(), "store: ") })
	return ctx, stdout, func() error { cancelRun(); return <-done }
}

// TestRunServesAndShutsDownGracefully runs the command in-process: it prints
// its URLs, serves the demo page and the WebSocket endpoint, and on
// cancellation (SIGINT/SIGTERM in main) closes every connection with 1001.
func TestRunServesAndShutsDownGracefully(t *testing.T) {
	ctx, stdout, stop := startRun(t, "-addr", "127.0.0.1:0", "-stage", "local", "-log-level", "warn")
	wsURL := wsURLLine.FindStringSubmatch(stdout.String())[1]
	require.True(t, strings.HasSuffix(wsURL, "/local"), wsURL)
	base := "http://" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws://"), "/local")
	out := stdout.String()
	for _, want := range []string{"Demo page      " + base + "/", "@connections   " + base + "/local/@connections/{connectionId}", "Lambda Invoke  " + base + "/2015-03-31/functions/publisher/invocations", "Metrics        " + base + "/metrics"} {
		assert.Contains(t, out, want)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("/")
	assert.Equal(t, 200, status)
	assert.Contains(t, body, `<script type="module" src="app.js"></script>`)
	status, body = get("/config.json")
	assert.Equal(t, 200, status)
	assert.JSONEq(t, `{"stage":"local"}`, body)
	status, body = get("/app.js")
	assert.Equal(t, 200, status)
	assert.Contains(t, body, `import { Client } from './client.js';`, "the page uses the JavaScript client")
	status, body = get("/client.js")
	assert.Equal(t, 200, status)
	assert.Equal(t, string(jsclient.Source), body, "client.js is clients/js/index.js itself")
	// Any other path, or a plain request to another stage, answers as
	// execute-api does for a route it lacks.
	for _, path := range []string{"/nothing-here", "/prod", "/local/foo"} {
		status, body = get(path)
		assert.Equal(t, 403, status, path)
		assert.JSONEq(t, `{"message":"Missing Authentication Token"}`, body, path)
	}

	c := localgwtest.MustDial(ctx, t, wsURL, "")
	assert.Nil(t, c.Whoami(ctx).UserID, "anonymous without an authorizer")
	require.NoError(t, stop())
	assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(c.Closed(ctx)))
	assert.Contains(t, stdout.String(), "wslocal: stopped")
}
