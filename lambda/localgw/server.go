package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/prom"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/publisher"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Function names of the module's Lambdas, as tools/package names their folders.
const (
	FunctionWebSocket  = "websocket"
	FunctionAuthorizer = "authorizer"
	FunctionPublisher  = "publisher"
)

// DefaultIdentitySource is the module's default authorizer identity source:
// the token query string parameter.
const DefaultIdentitySource = "route.request.querystring.token"

// DefaultTable is the DynamoDB table the gateway uses when none is named.
const DefaultTable = "wslocal"

// HTTP server timeouts: idle keep-alive connections are closed, so they
// cannot pile up until the process runs out of file descriptors, and a
// client gets this long to send a request's headers.
const (
	DefaultHTTPIdleTimeout = 60 * time.Second
	readHeaderTimeout      = 10 * time.Second
)

// Static credentials the gateway signs DynamoDB Local and management API requests with.
const (
	localAccessKey = "wslocal"
	localSecretKey = "wslocal"
)

// ServerConfig configures Start: the gateway plus the stack behind it.
type ServerConfig struct {
	// Addr is the listen address. Default 127.0.0.1:0 (a free port).
	Addr string
	// Stage is the stage name. Default "dev".
	Stage string

	// Store is the registry when DynamoDBEndpoint is empty; nil means a new
	// in-memory store.
	Store store.Store
	// DynamoDBEndpoint, when set, puts the registry in DynamoDB at that
	// endpoint (DynamoDB Local), creating Table if it is missing.
	DynamoDBEndpoint string
	// Table is the DynamoDB table. Default "wslocal".
	Table string

	// Hooks are the user's callbacks on the in-process realtime.Manager.
	Hooks realtime.Hooks
	// JWTSecret (HS256) or JWTPublicKey (PEM or JWKS) turn on the built-in
	// JWT authorizer on $connect, as the module's authorizer does on AWS.
	JWTSecret, JWTPublicKey string
	// JWT holds the authorizer's JWKS URL and leeway; the token is taken from
	// IdentitySources[0] (the default when nil).
	JWT JWTConfig
	// Authorizer is a user's own REQUEST authorizer; it wins over the JWT settings.
	Authorizer Function
	// IdentitySources are the authorizer's identity sources (see
	// Config.IdentitySources); nil means the module's default,
	// route.request.querystring.token. Unused without an authorizer.
	IdentitySources []string

	// BuiltinRoutes are custom route keys handled by the websocket function
	// (the Manager's Hooks.Routes / Hooks.OnRoute).
	BuiltinRoutes []string
	// Routes are custom route keys handled by the caller's functions.
	Routes map[string]Function
	// BootstrapRoutes are custom route keys handled by a user's compiled
	// bootstrap, by path.
	BootstrapRoutes map[string]string

	// LambdaDir, when set, runs the module's compiled bootstraps
	// (LambdaDir/{websocket,authorizer,publisher}/bootstrap, as `make package`
	// lays them out, built for the host) instead of the in-process handlers.
	// It needs DynamoDBEndpoint: the bootstraps use DynamoDB only.
	LambdaDir string
	// MaxProcesses bounds the processes per bootstrap function. Default 4.
	MaxProcesses int
	// ProcessOutput receives the bootstraps' output; nil discards it.
	ProcessOutput io.Writer

	// PublisherNames are the Invoke API names the publisher answers to, in
	// addition to any name ending in "publisher".
	PublisherNames []string

	// MaxMessageSize, FrameSize, IdleTimeout and MaxDuration override API Gateway's limits (see Config).
	MaxMessageSize int
	FrameSize      int
	IdleTimeout    time.Duration
	MaxDuration    time.Duration
	// AllowBinary accepts binary client messages (see Config.AllowBinary).
	AllowBinary bool
	// MaxChannelsPerConnection caps the channels one connection may join
	// (realtime.Config.MaxChannelsPerConnection; WS_MAX_CHANNELS_PER_CONNECTION
	// for the bootstraps). Zero means realtime.DefaultMaxChannelsPerConnection.
	MaxChannelsPerConnection int
	// MaxQueuedBytes bounds each connection's buffers (see Config.MaxQueuedBytes).
	MaxQueuedBytes int
	// History opts protocol v1 channels into history and recovery
	// (realtime.Config.HistoryRules; WS_HISTORY for the bootstraps).
	History realtime.HistoryRules
	// AllowedOrigins may call the management and Invoke APIs from a browser
	// (see Config.AllowedOrigins).
	AllowedOrigins []string
	// HTTPIdleTimeout closes a keep-alive HTTP connection that sends no new
	// request for this long (WebSocket connections have their own
	// IdleTimeout). Default DefaultHTTPIdleTimeout.
	HTTPIdleTimeout time.Duration

	// Logger logs; nil means slog.Default().
	Logger *slog.Logger
	// Web serves the paths the gateway does not own (the demo page).
	Web http.Handler

	// Pusher, when set, serves the Pusher protocol at /app/{key} and the
	// Pusher HTTP API at /apps/{app_id}/... next to protocol v1, with this
	// app and these limits (the runtime fields are filled in by the server).
	Pusher *pusher.Config
}

// Server is a running local gateway: listener, HTTP server, gateway, store and
// either the in-process Manager or the bootstrap pools.
type Server struct {
	gw      *Gateway
	http    *http.Server
	ln      net.Listener
	stage   string
	store   store.Store
	manager *realtime.Manager
	// history and presence back protocol v1's history and presence-*
	// channels in process.
	history  store.History
	presence store.Presence
	pools    map[string]*Bootstrap
	served   chan error

	log      *slog.Logger
	pusherGW *Gateway // nil without ServerConfig.Pusher
	pusherFn Function
	metrics  *prom.Prometheus
}

// FunctionSettings are a function's timeout and memory.
type FunctionSettings struct {
	Timeout    time.Duration
	MemorySize int
}

// ModuleFunctions are the module's default timeout and memory of each
// function it deploys (variables.tf: lambda_timeout, lambda_memory_size and
// pusher's), which the gateway runs the compiled bootstraps with, so a slow
// handler times out locally where it would on AWS.
var ModuleFunctions = map[string]FunctionSettings{
	FunctionWebSocket:  {Timeout: 10 * time.Second, MemorySize: 256},
	FunctionAuthorizer: {Timeout: 5 * time.Second, MemorySize: 128},
	FunctionPublisher:  {Timeout: 60 * time.Second, MemorySize: 743},
	FunctionPusher:     {Timeout: 20 * time.Second, MemorySize: 512},
}

// GoRuntimeEnv is the Go runtime settings the module gives a function of
// memoryMB (lambda.tf, go_runtime_environment): GOGC=400, GOMEMLIMIT at 80%
// of the memory, GOMAXPROCS one per 1,769 MB (one vCPU), at least 1. The
// gateway runs the module's bootstraps with them, so they use CPU and memory
// locally as they do on Lambda.
func GoRuntimeEnv(memoryMB int) []string {
	return []string{
		"GOGC=400",
		"GOMEMLIMIT=" + strconv.Itoa(memoryMB*8/10) + "MiB",
		"GOMAXPROCS=" + strconv.Itoa(max(1, memoryMB/1769)),
	}
}

// Start listens on cfg.Addr, wires the stack and serves until Close.
func Start(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Stage == "" {
		cfg.Stage = DefaultStage
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LambdaDir != "" && cfg.jwtEnabled() {
		// The authorizer bootstrap checks its key settings only when it
		// starts: check them here as the in-process authorizer does, so a
		// bad flag stops the gateway instead of failing every handshake.
		if _, err := newJWTAuthorizer(ctx, cfg, nil); err != nil {
			return nil, err
		}
	}
	if cfg.LambdaDir != "" && cfg.DynamoDBEndpoint == "" {
		return nil, errors.New("localgw: LambdaDir needs DynamoDBEndpoint: the compiled bootstraps keep state in DynamoDB only")
	}
	if cfg.JWTSecret != "" && cfg.JWTPublicKey != "" {
		return nil, errors.New("localgw: set JWTSecret or JWTPublicKey, not both")
	}
	if cfg.Pusher != nil && (cfg.Stage == PusherStage || cfg.Stage == "app" || cfg.Stage == "apps") {
		// /app/{key} is the Pusher WebSocket and /apps/{id} its HTTP API.
		return nil, fmt.Errorf("localgw: stage %q is taken by the Pusher API (/pusher, /app/{key}, /apps/{app_id}); pick another or turn Pusher mode off", cfg.Stage)
	}
	// As the module's routes input: a protocol v1 action as a route key
	// would take that action away from $default.
	keys := slices.Concat(cfg.BuiltinRoutes, slices.Collect(maps.Keys(cfg.Routes)), slices.Collect(maps.Keys(cfg.BootstrapRoutes)))
	for _, key := range keys {
		if protocol.IsAction(key) {
			return nil, fmt.Errorf("localgw: route key %q is a protocol v1 action, which $default answers; use another route key", key)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("localgw: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{ln: ln, stage: cfg.Stage, pools: map[string]*Bootstrap{}, served: make(chan error, 1), log: cfg.Logger, metrics: prom.NewPrometheus()}
	if err := s.wire(ctx, cfg); err != nil {
		_ = ln.Close()
		s.closePools()
		return nil, err
	}
	if cfg.HTTPIdleTimeout <= 0 {
		cfg.HTTPIdleTimeout = DefaultHTTPIdleTimeout
	}
	s.http = &http.Server{Handler: s.withMetrics(s.handler()), ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: cfg.HTTPIdleTimeout}
	go func() { s.served <- s.http.Serve(ln) }()
	return s, nil
}

func awsConfig() aws.Config {
	return aws.Config{
		Region:      DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider(localAccessKey, localSecretKey, ""),
	}
}

// DynamoDBLocalRetryer is the retryer of the gateway's and the benchmarks'
// DynamoDB Local clients. DynamoDB Local serialises transactions on a lock
// and answers 500 "timed out waiting for a lock. This request will succeed
// in actual DynamoDB API" when it is busy; the SDK's default retries those
// 3 times, from a client-side retry quota meant against retry storms on a
// real service, which a busy emulator drains within seconds. This retries 10
// times without the quota. (The bootstraps get AWS_MAX_ATTEMPTS=10.)
func DynamoDBLocalRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.RateLimiter = ratelimit.None
	})
}

func (s *Server) wire(ctx context.Context, cfg ServerConfig) error {
	awsCfg := awsConfig()
	endpoint := s.ManagementEndpoint()
	if cfg.DynamoDBEndpoint != "" {
		client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
			o.DisableValidateResponseChecksum = true
			o.Retryer = DynamoDBLocalRetryer()
		})
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := store.CreateTable(cctx, client, cfg.Table); err != nil {
			return fmt.Errorf("localgw: %w", err)
		}
		db, err := store.NewDynamoDB(client, store.DynamoOptions{Table: cfg.Table})
		if err != nil {
			return fmt.Errorf("localgw: %w", err)
		}
		s.store = db
		if s.history, err = store.NewDynamoHistory(client, store.DynamoOptions{Table: cfg.Table}); err != nil {
			return fmt.Errorf("localgw: %w", err)
		}
		if s.presence, err = store.NewDynamoPresence(client, store.DynamoOptions{Table: cfg.Table}); err != nil {
			return fmt.Errorf("localgw: %w", err)
		}
	} else {
		s.store = cfg.Store
		if s.store == nil {
			s.store = store.NewMemory(store.MemoryOptions{})
		}
		s.history, s.presence = store.NewMemoryHistory(nil), store.NewMemoryPresence(nil)
	}

	gcfg := Config{
		Stage: cfg.Stage, Routes: map[string]Function{}, Functions: map[string]Function{},
		MaxMessageSize: cfg.MaxMessageSize, FrameSize: cfg.FrameSize, AllowBinary: cfg.AllowBinary,
		MaxQueuedBytes: cfg.MaxQueuedBytes, AllowedOrigins: cfg.AllowedOrigins,
		IdleTimeout: cfg.IdleTimeout, MaxDuration: cfg.MaxDuration,
		Logger: cfg.Logger, NotFound: cfg.Web,
	}
	var publisherFn Function
	if cfg.LambdaDir == "" {
		httpClient := sender.NewHTTPClient(64)
		m, err := realtime.New(realtime.Config{
			Store: s.store,
			NewPoster: func(ep string) (sender.Poster, error) {
				return sender.NewManagementAPI(awsCfg, ep, httpClient)
			},
			ManagementEndpoint:       endpoint,
			MaxChannelsPerConnection: cfg.MaxChannelsPerConnection,
			History:                  s.history,
			HistoryRules:             cfg.History,
			Presence:                 s.presence,
			Hooks:                    cfg.Hooks,
			Logger:                   cfg.Logger,
			Metrics:                  s.metrics,
		})
		if err != nil {
			return fmt.Errorf("localgw: %w", err)
		}
		s.manager = m
		gcfg.WebSocket = Handler(m.HandleJSON)
		publisherFn = Handler(publisher.New(m).Handle)
		if cfg.jwtEnabled() {
			a, err := newJWTAuthorizer(ctx, cfg, s.metrics)
			if err != nil {
				return err
			}
			gcfg.Authorizer = a
		}
	} else {
		env := s.bootstrapEnv(cfg, endpoint)
		pool := func(name string, extra ...string) (*Bootstrap, error) {
			b, err := NewBootstrap(BootstrapConfig{
				Name: name, Path: filepath.Join(cfg.LambdaDir, name, "bootstrap"),
				Env:          slices.Concat(env, GoRuntimeEnv(ModuleFunctions[name].MemorySize), extra),
				MaxProcesses: cfg.MaxProcesses,
				Timeout:      ModuleFunctions[name].Timeout, MemorySize: ModuleFunctions[name].MemorySize,
				Output: cfg.ProcessOutput, Metrics: s.metrics, Logger: cfg.Logger,
			})
			if err != nil {
				return nil, fmt.Errorf("localgw: %w", err)
			}
			s.pools[name] = b
			return b, nil
		}
		ws, err := pool(FunctionWebSocket)
		if err != nil {
			return err
		}
		gcfg.WebSocket = ws.Function()
		// As the module does in Pusher mode: the publisher's Cleanup
		// announces member_removed for expired Pusher connections through
		// the Pusher stage.
		var pubEnv []string
		if cfg.Pusher != nil {
			pubEnv = append(pubEnv, "WS_PUSHER_MANAGEMENT_ENDPOINT="+s.BaseURL()+"/"+PusherStage)
		}
		pub, err := pool(FunctionPublisher, pubEnv...)
		if err != nil {
			return err
		}
		publisherFn = pub.Function()
		if cfg.jwtEnabled() {
			a, err := pool(FunctionAuthorizer, cfg.jwtEnvList()...)
			if err != nil {
				return err
			}
			gcfg.Authorizer = a.Function()
		}
	}
	if cfg.Authorizer != nil {
		gcfg.Authorizer = cfg.Authorizer
	}
	if gcfg.Authorizer != nil {
		gcfg.IdentitySources = cfg.IdentitySources
		if gcfg.IdentitySources == nil {
			gcfg.IdentitySources = []string{DefaultIdentitySource}
		}
	}
	for _, key := range cfg.BuiltinRoutes {
		gcfg.Routes[key] = gcfg.WebSocket
	}
	for key, fn := range cfg.Routes {
		gcfg.Routes[key] = fn
	}
	for key, path := range cfg.BootstrapRoutes {
		b, err := NewBootstrap(BootstrapConfig{
			Name: "route-" + strings.Trim(key, "$"), Path: path,
			Env:          s.bootstrapEnv(cfg, endpoint), // the module's functions' settings (history, channel limit) too
			MaxProcesses: cfg.MaxProcesses, Output: cfg.ProcessOutput, Metrics: s.metrics, Logger: cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("localgw: route %s: %w", key, err)
		}
		s.pools["route:"+key] = b
		gcfg.Routes[key] = b.Function()
	}
	if cfg.Pusher != nil {
		if err := s.wirePusher(ctx, cfg, &gcfg); err != nil {
			return err
		}
	}
	gcfg.Functions[FunctionPublisher] = publisherFn
	for _, n := range cfg.PublisherNames {
		gcfg.Functions[n] = publisherFn
	}
	gcfg.ResolveFunction = func(name string) Function {
		if strings.HasSuffix(name, "publisher") {
			return publisherFn
		}
		return nil
	}
	gw, err := New(gcfg)
	if err != nil {
		return err
	}
	s.gw = gw
	return nil
}

// bootstrapEnv is the environment of the module's bootstraps, talking to
// DynamoDB Local and to the stage at endpoint.
func (s *Server) bootstrapEnv(cfg ServerConfig, endpoint string) []string {
	env := []string{
		"WS_TABLE_NAME=" + cfg.Table,
		"WS_MANAGEMENT_ENDPOINT=" + endpoint,
		"WS_LOG_LEVEL=info",
		"AWS_ENDPOINT_URL_DYNAMODB=" + cfg.DynamoDBEndpoint,
		"AWS_ACCESS_KEY_ID=" + localAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + localSecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=10", // DynamoDB Local's lock timeouts (DynamoDBLocalRetryer)
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
	if cfg.MaxChannelsPerConnection > 0 {
		env = append(env, "WS_MAX_CHANNELS_PER_CONNECTION="+strconv.Itoa(cfg.MaxChannelsPerConnection))
	}
	if len(cfg.History) > 0 {
		b, _ := json.Marshal(cfg.History)
		env = append(env, "WS_HISTORY="+string(b))
	}
	return env
}

// Addr is the address the server listens on (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// hostPort is the address to reach the server at: the listener's, with an
// unspecified host (listening on every interface: 0.0.0.0, ::) as
// localhost, which a browser and a client can dial.
func (s *Server) hostPort() string {
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		return net.JoinHostPort("localhost", strconv.Itoa(a.Port))
	}
	return s.Addr()
}

// BaseURL is the gateway's HTTP base URL (demo page, /metrics):
// http://host:port.
func (s *Server) BaseURL() string { return "http://" + s.hostPort() }

// URL is the WebSocket endpoint: ws://host:port/stage.
func (s *Server) URL() string { return "ws://" + s.hostPort() + "/" + s.stage }

// ManagementEndpoint is the management API's base URL (the SDK's
// BaseEndpoint, WS_MANAGEMENT_ENDPOINT): http://host:port/stage.
func (s *Server) ManagementEndpoint() string { return s.BaseURL() + "/" + s.stage }

// LambdaEndpoint is the Lambda Invoke API's base URL (the Lambda client's
// BaseEndpoint): http://host:port.
func (s *Server) LambdaEndpoint() string { return s.BaseURL() }

// Gateway returns the gateway.
func (s *Server) Gateway() *Gateway { return s.gw }

// Store returns the registry behind the gateway (also in bootstrap mode,
// where it is a view of the same DynamoDB table).
func (s *Server) Store() store.Store { return s.store }

// Manager returns the in-process Manager, or nil when bootstraps run the functions.
func (s *Server) Manager() *realtime.Manager { return s.manager }

// Processes returns the stats of every bootstrap process started so far,
// sorted by function and start time.
func (s *Server) Processes() []ProcessStats {
	var out []ProcessStats
	for _, b := range s.pools {
		out = append(out, b.Processes()...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].StartedAt.Before(out[j].StartedAt)
	})
	return out
}

// Close shuts down gracefully: every connection is closed with 1001 and
// its $disconnect runs, then the HTTP server and the bootstrap processes stop.
func (s *Server) Close(ctx context.Context) error {
	err := s.gw.Shutdown(ctx)
	if s.pusherGW != nil {
		if perr := s.pusherGW.Shutdown(ctx); perr != nil && err == nil {
			err = perr
		}
	}
	if herr := s.http.Shutdown(ctx); herr != nil && err == nil {
		err = fmt.Errorf("localgw: http shutdown: %w", herr)
	}
	s.closePools()
	return err
}

func (s *Server) closePools() {
	for _, b := range s.pools {
		_ = b.Close()
	}
}
