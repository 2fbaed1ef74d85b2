// Command wslocal is the local gateway: it stands in for API Gateway's
// WebSocket API, its @connections management API and the Lambda Invoke API
// of the publisher, running the module's handler code on a laptop with an
// embedded store (default), DynamoDB Local, or the compiled bootstraps.
//
//	go run ./cmd/wslocal                       # ws://127.0.0.1:8080/dev, demo page on http://127.0.0.1:8080/
//	go run ./cmd/wslocal -dynamodb-endpoint http://127.0.0.1:8000
//	go run ./cmd/wslocal -jwt-secret "$(openssl rand -hex 32)"
//	go run ./cmd/wslocal -dynamodb-endpoint http://127.0.0.1:8000 -lambda-dir dist/host
//
// Every flag can also be set in the environment as WSLOCAL_<FLAG>, with dashes
// as underscores (WSLOCAL_ADDR, WSLOCAL_JWT_SECRET, ...), a repeatable flag's
// values separated by spaces (WSLOCAL_HISTORY="chat-*:100:1h feed-*:50:10m"); a flag
// on the command line wins. See docs/local-development.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsforge/terraform-aws-websocket/cmd/wslocal/web"
	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the default action is back: a second
		// Ctrl-C or SIGTERM ends the process at once.
		<-ctx.Done()
		stop()
		fmt.Fprintln(os.Stderr, "wslocal: graceful shutdown; press Ctrl-C again to exit now")
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "wslocal:", err)
		os.Exit(1)
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// leewayFlag is a clock-skew duration spelled as WS_JWT_LEEWAY is: a Go
// duration or whole seconds, never negative.
type leewayFlag time.Duration

func (l *leewayFlag) String() string { return time.Duration(*l).String() }
func (l *leewayFlag) Set(v string) error {
	d, err := auth.ParseLeeway(v)
	*l = leewayFlag(d)
	return err
}

// options are the parsed flags.
type options struct {
	addr, stage, dynamoEndpoint, table  string
	jwtSecret, jwtPublicKey, lambdaDir  string
	jwtJWKSURL                          string
	jwtLeeway                           leewayFlag
	jwtIssuer, jwtAudience, jwtTokenUse string
	jwtUserClaim, jwtChannelsClaim      string
	routes, publisherNames              listFlag
	history                             listFlag
	identitySources                     listFlag
	allowOrigins                        listFlag
	maxQueuedBytes                      int
	maxProcesses, maxMessageSize        int
	frameSize                           int
	maxChannelsPerConnection            int
	idleTimeout, maxDuration, shutdown  time.Duration
	logLevel                            string
	quietProcesses, allowBinary         bool

	pusherOn, pusherClientEvents         bool
	pusherAppID, pusherKey, pusherSecret string
	pusherClientEventRate, pusherUsers   int
	webNodeModules                       string
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("wslocal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address; the WebSocket endpoint is ws://ADDR/STAGE")
	fs.StringVar(&o.stage, "stage", localgw.DefaultStage, "stage name, the first path segment: 1 to 128 of A-Z a-z 0-9 - _ (API Gateway's rule); not pusher, app or apps in Pusher mode")
	fs.StringVar(&o.dynamoEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint (e.g. DynamoDB Local, http://127.0.0.1:8000) instead of the embedded store; the table is created if missing")
	fs.StringVar(&o.table, "table", localgw.DefaultTable, "DynamoDB table name (with -dynamodb-endpoint)")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HS256 secret (at least 32 bytes): turns on the built-in JWT authorizer on $connect")
	fs.StringVar(&o.jwtPublicKey, "jwt-public-key", "", "RS256/ES256 public key as PEM or JWKS JSON, or @FILE: turns on the built-in JWT authorizer")
	fs.StringVar(&o.jwtJWKSURL, "jwt-jwks-url", "", "identity provider's https jwks_uri (Cognito: ISSUER/.well-known/jwks.json): turns on the built-in JWT authorizer with rotating keys")
	o.jwtLeeway = leewayFlag(auth.DefaultLeeway)
	fs.Var(&o.jwtLeeway, "jwt-leeway", "clock skew the built-in JWT authorizer tolerates on exp, nbf and iat: a duration (5s) or whole seconds")
	fs.StringVar(&o.jwtIssuer, "jwt-issuer", "", "required \"iss\" of tokens (the module's authorizer.jwt.issuer; Cognito: https://cognito-idp.REGION.amazonaws.com/POOL_ID)")
	fs.StringVar(&o.jwtAudience, "jwt-audience", "", "required \"aud\" of tokens (authorizer.jwt.audience; with -jwt-token-use access, Cognito's client_id)")
	fs.StringVar(&o.jwtTokenUse, "jwt-token-use", "", "required Cognito \"token_use\": id or access (authorizer.jwt.token_use)")
	fs.StringVar(&o.jwtUserClaim, "jwt-user-claim", "", "claim read as the userId (authorizer.jwt.user_claim; default sub)")
	fs.StringVar(&o.jwtChannelsClaim, "jwt-channels-claim", "", "claim read as the channels joined at connect (authorizer.jwt.channels_claim; default channels)")
	fs.Var(&o.identitySources, "identity-source", "authorizer identity source `route.request.querystring.NAME` or route.request.header.NAME; a handshake missing one is refused with 401 before the authorizer runs; repeatable (default "+localgw.DefaultIdentitySource+")")
	fs.Var(&o.routes, "route", "custom route `KEY=builtin` (the websocket handler) or KEY=bootstrap:/path/to/bootstrap (your Lambda binary); repeatable")
	fs.StringVar(&o.lambdaDir, "lambda-dir", "", "run the compiled bootstraps in DIR/{websocket,authorizer,publisher}/bootstrap (make host-lambdas builds them for this machine into dist/host); needs -dynamodb-endpoint")
	fs.IntVar(&o.maxProcesses, "max-processes", 4, "bootstrap processes per function (concurrent invocations)")
	fs.Var(&o.publisherNames, "publisher-name", "extra Lambda Invoke API name for the publisher (any name ending in \"publisher\" always works); repeatable")
	fs.IntVar(&o.maxMessageSize, "max-message-size", localgw.DefaultMaxMessageSize, "largest client message in bytes; larger ones close the connection with 1009")
	fs.IntVar(&o.frameSize, "frame-size", localgw.DefaultFrameSize, "largest client frame in bytes (larger ones close the connection with 1009) and the size of outgoing frames")
	fs.IntVar(&o.maxChannelsPerConnection, "max-channels-per-connection", realtime.DefaultMaxChannelsPerConnection, "most channels one connection may join; a subscribe beyond answers too_many_channels, a ?channels= listing more is refused with 400")
	fs.Var(&o.history, "history", "keep history on protocol v1 and Pusher channels matching `PATTERN:SIZE:TTL` (chat-*:100:1h): offsets, epochs and recovery on resubscribe (docs/protocol.md, docs/pusher.md); repeatable, the first match wins")
	fs.BoolVar(&o.allowBinary, "allow-binary", false, "accept binary client messages, passed base64 encoded: a local extension (API Gateway WebSocket APIs close a binary frame with 1003, as the default here does)")
	fs.IntVar(&o.maxQueuedBytes, "max-queued-bytes", localgw.DefaultMaxQueuedBytes, "per connection: bytes of outgoing messages that may wait for a slow client (a POST that does not fit answers 429 LimitExceededException) and of client messages waiting for their route")
	fs.Var(&o.allowOrigins, "allow-origin", "browser `ORIGIN` (scheme://host[:port], or *) allowed to call the management, Invoke and Pusher HTTP APIs besides the gateway's own; other cross-origin requests answer 403; repeatable")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", localgw.DefaultIdleTimeout, "close connections without messages after this long")
	fs.DurationVar(&o.maxDuration, "max-duration", localgw.DefaultMaxDuration, "close connections after this long")
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 30*time.Second, "how long SIGINT/SIGTERM waits for every $disconnect and accepted Event invocation")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.quietProcesses, "quiet-processes", false, "discard the bootstraps' output")
	fs.BoolVar(&o.pusherOn, "pusher", true, "serve the Pusher protocol at ws://ADDR/app/KEY and the Pusher HTTP API at http://ADDR/apps/APP_ID/ (docs/pusher.md)")
	fs.StringVar(&o.pusherAppID, "pusher-app-id", pusher.DefaultAppID, "Pusher app id")
	fs.StringVar(&o.pusherKey, "pusher-key", pusher.DefaultAppKey, "Pusher app key")
	fs.StringVar(&o.pusherSecret, "pusher-secret", pusher.DefaultAppSecret, "Pusher app secret")
	fs.BoolVar(&o.pusherClientEvents, "pusher-client-events", true, "allow Pusher client events (client-*, Echo's whisper); false answers them with 4301")
	fs.IntVar(&o.pusherClientEventRate, "pusher-client-event-rate", pusher.DefaultClientEventRate, "Pusher client events per connection per second; more answer 4301")
	fs.IntVar(&o.pusherUsers, "pusher-max-presence-users", pusher.DefaultMaxPresenceUsers, "users per Pusher presence channel")
	fs.StringVar(&o.webNodeModules, "web-node-modules", "test/pusher/node_modules", "node_modules folder with pusher-js and laravel-echo for the presence chat page (/pusher.html)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: wslocal [flags]\n\nEvery flag can be set as WSLOCAL_<FLAG> in the environment (dashes as underscores; a repeatable flag's values separated by spaces).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		name := "WSLOCAL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := getenv(name)
		if v == "" {
			return
		}
		vals := []string{v}
		if _, repeatable := f.Value.(*listFlag); repeatable {
			vals = strings.Fields(v) // a repeatable flag: values separated by spaces
		}
		for _, x := range vals {
			if err := f.Value.Set(x); err != nil {
				if kind, _ := flag.UnquoteUsage(f); kind != "" {
					envErr = fmt.Errorf("%s=%q: invalid value for -%s (want a %s): %w", name, v, f.Name, kind, err)
				} else {
					envErr = fmt.Errorf("%s=%q: invalid value for -%s: %w", name, v, f.Name, err)
				}
				return
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := o.checkNumbers(); err != nil {
		return nil, err
	}
	if o.jwtSecret == "" && o.jwtPublicKey == "" && o.jwtJWKSURL == "" {
		// These belong to the authorizer; without one they would do nothing.
		for _, f := range []struct{ name, value string }{
			{"-identity-source", strings.Join(o.identitySources, " ")},
			{"-jwt-issuer", o.jwtIssuer}, {"-jwt-audience", o.jwtAudience}, {"-jwt-token-use", o.jwtTokenUse},
			{"-jwt-user-claim", o.jwtUserClaim}, {"-jwt-channels-claim", o.jwtChannelsClaim},
		} {
			if f.value != "" {
				return nil, errors.New(f.name + " needs the built-in authorizer: set -jwt-secret, -jwt-public-key or -jwt-jwks-url")
			}
		}
	}
	if strings.HasPrefix(o.jwtPublicKey, "@") {
		b, err := os.ReadFile(o.jwtPublicKey[1:])
		if err != nil {
			return nil, fmt.Errorf("-jwt-public-key: %w", err)
		}
		o.jwtPublicKey = string(b)
	}
	return o, nil
}

// checkNumbers refuses sizes, counts and durations that cannot work: the
// library reads zero as "the default", but a flag set to 0 or less is a
// mistake worth saying.
func (o *options) checkNumbers() error {
	for _, n := range []struct {
		flag  string
		value int
	}{
		{"max-channels-per-connection", o.maxChannelsPerConnection},
		{"max-processes", o.maxProcesses},
		{"max-message-size", o.maxMessageSize},
		{"frame-size", o.frameSize},
		{"max-queued-bytes", o.maxQueuedBytes},
		{"pusher-client-event-rate", o.pusherClientEventRate},
		{"pusher-max-presence-users", o.pusherUsers},
	} {
		if n.value < 1 {
			return fmt.Errorf("-%s %d: want at least 1", n.flag, n.value)
		}
	}
	if o.frameSize > o.maxMessageSize {
		return fmt.Errorf("-frame-size %d: want at most -max-message-size (%d): a frame is part of a message", o.frameSize, o.maxMessageSize)
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{
		{"idle-timeout", o.idleTimeout},
		{"max-duration", o.maxDuration},
		{"shutdown-timeout", o.shutdown},
	} {
		if d.value <= 0 {
			return fmt.Errorf("-%s %s: want a positive duration", d.flag, d.value)
		}
	}
	return nil
}

func (o *options) serverConfig(log *slog.Logger, stderr io.Writer) (localgw.ServerConfig, error) {
	if o.stage == "" {
		// The library reads an empty stage as the default; a flag set to
		// nothing is a mistake.
		return localgw.ServerConfig{}, errors.New(`-stage "": want 1 to 128 letters, digits, '-' or '_', as API Gateway requires`)
	}
	if o.table == "" {
		return localgw.ServerConfig{}, errors.New(`-table "": want a DynamoDB table name (default ` + localgw.DefaultTable + `)`)
	}
	cfg := localgw.ServerConfig{
		Addr: o.addr, Stage: o.stage, DynamoDBEndpoint: o.dynamoEndpoint, Table: o.table,
		JWTSecret: o.jwtSecret, JWTPublicKey: o.jwtPublicKey, LambdaDir: o.lambdaDir,
		JWT: localgw.JWTConfig{JWKSURL: o.jwtJWKSURL, Leeway: time.Duration(o.jwtLeeway),
			Issuer: o.jwtIssuer, Audience: o.jwtAudience, TokenUse: o.jwtTokenUse, UserClaim: o.jwtUserClaim, ChannelsClaim: o.jwtChannelsClaim},
		MaxProcesses: o.maxProcesses, PublisherNames: o.publisherNames,
		MaxMessageSize: o.maxMessageSize, FrameSize: o.frameSize, AllowBinary: o.allowBinary,
		MaxQueuedBytes: o.maxQueuedBytes, AllowedOrigins: o.allowOrigins,
		IdleTimeout: o.idleTimeout, MaxDuration: o.maxDuration, IdentitySources: o.identitySources,
		Logger: log, Web: web.Handler(o.stage), BootstrapRoutes: map[string]string{},
	}
	cfg.MaxChannelsPerConnection = o.maxChannelsPerConnection
	for _, h := range o.history {
		r, err := realtime.ParseHistoryRule(h)
		if err != nil {
			return cfg, fmt.Errorf("-history: %w", err)
		}
		cfg.History = append(cfg.History, r)
	}
	if !o.quietProcesses {
		cfg.ProcessOutput = stderr
	}
	if o.pusherOn {
		// The module's rule for the id and key: they are URL path segments.
		if !pusher.ValidAppName(o.pusherAppID) {
			return cfg, fmt.Errorf("-pusher-app-id %q: want 1 to 64 letters, digits, '-' or '_' (it is the URL path /apps/{id})", o.pusherAppID)
		}
		if !pusher.ValidAppName(o.pusherKey) {
			return cfg, fmt.Errorf("-pusher-key %q: want 1 to 64 letters, digits, '-' or '_' (it is the URL path /app/{key})", o.pusherKey)
		}
		if o.pusherSecret == "" {
			return cfg, errors.New(`-pusher-secret "": want the app secret that signs authorizations and HTTP API requests`)
		}
		cfg.Pusher = &pusher.Config{
			App:             pusher.App{ID: o.pusherAppID, Key: o.pusherKey, Secret: o.pusherSecret},
			ClientEventRate: o.pusherClientEventRate, DisableClientEvents: !o.pusherClientEvents,
			MaxPresenceUsers: o.pusherUsers,
		}
		cfg.Web = web.WithPusher(cfg.Web, cfg.Pusher.App, o.webNodeModules)
	}
	seen := map[string]string{}
	for _, r := range o.routes {
		key, target, ok := strings.Cut(r, "=")
		if first, dup := seen[key]; dup && ok {
			// API Gateway has one route per key; the last would win silently.
			return cfg, fmt.Errorf("-route %q: route key %s is already given by -route %q; one route per key", r, key, first)
		}
		seen[key] = r
		switch {
		case !ok || key == "" || strings.HasPrefix(key, "$"):
			return cfg, fmt.Errorf("-route %q: want KEY=builtin or KEY=bootstrap:/path (KEY not starting with $)", r)
		case protocol.IsAction(key):
			return cfg, fmt.Errorf("-route %q: %s is a protocol v1 action, which $default answers; use another route key", r, key)
		case target == "builtin":
			cfg.BuiltinRoutes = append(cfg.BuiltinRoutes, key)
		case strings.HasPrefix(target, "bootstrap:") && len(target) > len("bootstrap:"):
			cfg.BootstrapRoutes[key] = strings.TrimPrefix(target, "bootstrap:")
		default:
			return cfg, fmt.Errorf("-route %q: target must be builtin or bootstrap:/path/to/bootstrap", r)
		}
	}
	return cfg, nil
}

// jwtFlagNames names the flags behind the JWT environment variables in
// errors.
var jwtFlagNames = strings.NewReplacer(auth.EnvSecret, "-jwt-secret", auth.EnvPublicKey, "-jwt-public-key",
	auth.EnvJWKSURL, "-jwt-jwks-url", auth.EnvLeeway, "-jwt-leeway", auth.EnvIdentitySource, "-identity-source",
	auth.EnvIssuer, "-jwt-issuer", auth.EnvAudience, "-jwt-audience", auth.EnvTokenUse, "-jwt-token-use",
	auth.EnvUserClaim, "-jwt-user-claim", auth.EnvChannelsClaim, "-jwt-channels-claim")

// run starts the gateway, prints its URLs and serves until ctx ends, then
// closes every connection with 1001 and runs their $disconnect.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", o.logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := o.serverConfig(log, stderr)
	if err != nil {
		return err
	}
	srv, err := localgw.Start(ctx, cfg)
	if err != nil {
		// The JWT settings reach the authorizer as the environment the
		// function gets on Lambda; here they came from flags.
		return errors.New(jwtFlagNames.Replace(err.Error()))
	}
	storeName := "embedded (in memory)"
	if o.dynamoEndpoint != "" {
		storeName = fmt.Sprintf("DynamoDB table %s at %s", o.table, o.dynamoEndpoint)
	}
	handlers := "in-process Go handlers"
	if o.lambdaDir != "" {
		handlers = "compiled bootstraps in " + o.lambdaDir
	}
	authz := "none"
	if o.jwtSecret != "" || o.jwtPublicKey != "" || o.jwtJWKSURL != "" {
		authz = "built-in JWT authorizer"
	}
	fmt.Fprintf(stdout, "wslocal listening on %s (stage %s)\n", srv.Addr(), o.stage)
	fmt.Fprintf(stdout, "  WebSocket      %s\n", srv.URL())
	fmt.Fprintf(stdout, "  Demo page      %s/\n", srv.BaseURL())
	fmt.Fprintf(stdout, "  @connections   %s/@connections/{connectionId}\n", srv.ManagementEndpoint())
	fmt.Fprintf(stdout, "  Lambda Invoke  %s/2015-03-31/functions/publisher/invocations\n", srv.LambdaEndpoint())
	if o.stage != "metrics" {
		// A stage named metrics keeps that path for itself.
		fmt.Fprintf(stdout, "  Metrics        %s/metrics\n", srv.BaseURL())
	}
	if o.pusherOn {
		fmt.Fprintf(stdout, "  Pusher         %s (app id %s), HTTP API %s/...\n", srv.PusherURL(o.pusherKey), o.pusherAppID, srv.PusherAPI(o.pusherAppID))
		fmt.Fprintf(stdout, "  Presence chat  %s/pusher.html\n", srv.BaseURL())
	}
	fmt.Fprintf(stdout, "  store: %s; handlers: %s; authorizer: %s\n", storeName, handlers, authz)

	<-ctx.Done()
	fmt.Fprintln(stdout, "wslocal: shutting down: closing every connection with 1001")
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdown)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "wslocal: stopped")
	return nil
}
