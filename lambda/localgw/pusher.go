package localgw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Pusher mode: a second WebSocket API stage, next to protocol v1's, whose
// integration is the websocket function in Pusher mode (a second instance of
// it, as a Pusher-mode deployment is on AWS).
const (
	// PusherStage is the stage of the Pusher API: its management endpoint
	// is http://HOST/pusher/@connections/{id}.
	PusherStage = "pusher"
	// FunctionPusher is the Pusher-mode websocket function's name; its
	// welcome step invokes it through the Lambda Invoke API.
	FunctionPusher = "pusher"
)

// maxAPIBody bounds an HTTP API request body.
const maxAPIBody = 1 << 20

// wirePusher builds the Pusher stage and function: in process on a second
// Manager over the same store, or the websocket bootstrap with WS_PUSHER_*.
func (s *Server) wirePusher(ctx context.Context, cfg ServerConfig, gcfg *Config) error {
	pc := *cfg.Pusher
	endpoint := s.BaseURL() + "/" + PusherStage
	var fn Function
	if cfg.LambdaDir == "" {
		awsCfg := awsConfig()
		m, err := realtime.New(realtime.Config{
			Store: s.store,
			NewPoster: func(ep string) (sender.Poster, error) {
				return sender.NewManagementAPI(awsCfg, ep, sender.NewHTTPClient(64))
			},
			ManagementEndpoint: endpoint,
			// Pusher channels matching the history rules keep their
			// streams in the same history store, as pusher/{name}.
			History:      s.history,
			HistoryRules: cfg.History,
			Metrics:      s.metrics,
			Logger:       cfg.Logger,
			// As the bootstraps get it (WS_MAX_CHANNELS_PER_CONNECTION).
			MaxChannelsPerConnection: cfg.MaxChannelsPerConnection,
		})
		if err != nil {
			return fmt.Errorf("localgw: pusher: %w", err)
		}
		var pv interface {
			store.Presence
			store.Values
		}
		if cfg.DynamoDBEndpoint != "" {
			client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
				o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
				o.DisableValidateResponseChecksum = true
				o.Retryer = DynamoDBLocalRetryer()
			})
			dp, err := store.NewDynamoPresence(client, store.DynamoOptions{Table: cfg.Table})
			if err != nil {
				return fmt.Errorf("localgw: pusher: %w", err)
			}
			pv = dp
		} else {
			pv = store.NewMemoryPresence(nil)
		}
		pc.Manager, pc.Presence, pc.Values = m, pv, pv
		// The in-process publisher's Cleanup (protocol v1's Manager) removes
		// expired Pusher connections too: they leave their Pusher presence
		// channels with member_removed, as the publisher function does.
		if s.manager != nil {
			s.manager.OnRemoved(pusher.LeavePresence(pv, m, cfg.Logger))
		}
		if pc.Logger == nil {
			pc.Logger = cfg.Logger
		}
		// The welcome step goes through the Lambda Invoke API, as on AWS.
		lc := lambda.NewFromConfig(awsCfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(s.LambdaEndpoint()) })
		pc.Welcomer = pusher.LambdaWelcomer{Client: lc, FunctionName: FunctionPusher}
		h, err := pusher.NewHandler(pc)
		if err != nil {
			return fmt.Errorf("localgw: %w", err)
		}
		fn = Handler(h.Invoke)
	} else {
		env := append(s.bootstrapEnv(cfg, endpoint), PusherEnv(pc)...)
		env = append(env, "AWS_ENDPOINT_URL_LAMBDA="+s.LambdaEndpoint())
		env = append(env, GoRuntimeEnv(ModuleFunctions[FunctionPusher].MemorySize)...)
		b, err := NewBootstrap(BootstrapConfig{
			Name: FunctionPusher, Path: filepath.Join(cfg.LambdaDir, FunctionWebSocket, "bootstrap"),
			Env: env, MaxProcesses: cfg.MaxProcesses, Output: cfg.ProcessOutput, Metrics: s.metrics, Logger: cfg.Logger,
			Timeout: ModuleFunctions[FunctionPusher].Timeout, MemorySize: ModuleFunctions[FunctionPusher].MemorySize,
		})
		if err != nil {
			return fmt.Errorf("localgw: pusher: %w", err)
		}
		s.pools[FunctionPusher] = b
		fn = b.Function()
	}
	gcfg.Functions[FunctionPusher] = fn
	gw, err := New(Config{
		Stage: PusherStage, WebSocket: fn,
		MaxMessageSize: cfg.MaxMessageSize, FrameSize: cfg.FrameSize, AllowBinary: cfg.AllowBinary,
		IdleTimeout: cfg.IdleTimeout, MaxDuration: cfg.MaxDuration, Logger: cfg.Logger,
		// Per connection and for the management API, as on protocol v1's stage.
		MaxQueuedBytes: cfg.MaxQueuedBytes, AllowedOrigins: cfg.AllowedOrigins,
	})
	if err != nil {
		return fmt.Errorf("localgw: pusher: %w", err)
	}
	s.pusherGW, s.pusherFn = gw, fn
	_ = ctx
	return nil
}

// PusherEnv is the environment that puts the websocket function in Pusher
// mode with pc's app and limits (the WS_PUSHER_* variables).
func PusherEnv(pc pusher.Config) []string {
	env := []string{
		"WS_PUSHER_APP_ID=" + pc.App.ID, "WS_PUSHER_APP_KEY=" + pc.App.Key, "WS_PUSHER_APP_SECRET=" + pc.App.Secret,
		"WS_PUSHER_CLIENT_EVENTS=" + strconv.FormatBool(!pc.DisableClientEvents),
	}
	add := func(name string, n int) {
		if n > 0 {
			env = append(env, name+"="+strconv.Itoa(n))
		}
	}
	add("WS_PUSHER_MAX_PRESENCE_USERS", pc.MaxPresenceUsers)
	add("WS_PUSHER_MAX_USER_INFO_BYTES", pc.MaxUserInfoBytes)
	add("WS_PUSHER_CLIENT_EVENT_RATE", pc.ClientEventRate)
	if pc.CacheTTL > 0 {
		env = append(env, "WS_PUSHER_CACHE_TTL="+pc.CacheTTL.String())
	}
	return env
}

// PusherURL is the Pusher WebSocket endpoint: ws://host:port/app/{key}.
func (s *Server) PusherURL(key string) string { return "ws://" + s.hostPort() + "/app/" + key }

// PusherAPI is the Pusher HTTP API base: http://host:port/apps/{app_id}.
func (s *Server) PusherAPI(appID string) string { return s.BaseURL() + "/apps/" + appID }

// pusherAppPath is the CloudFront Function's APP_PATH: whole segments (a
// wsPath) before /app/{key}, the key of letters, digits, '_' and '-'.
var pusherAppPath = regexp.MustCompile(`^(?:/[^/]+)*/app/([A-Za-z0-9_\-]+)$`)

// handler routes the listener: the Lambda Invoke API first, /apps/... to
// the Pusher HTTP API, [wsPath]/app/{key} and /pusher/... to the Pusher
// stage, the rest to protocol v1's stage (whose name cannot be pusher, app
// or apps in Pusher mode).
func (s *Server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case s.pusherGW == nil,
			// The Invoke API: a function may be called app or apps.
			strings.HasPrefix(path, invokePrefix):
			s.gw.ServeHTTP(w, r)
		case strings.HasPrefix(path, "/apps/"):
			// Like the management and Invoke APIs: a web page from another
			// origin must not trigger events with the well-known secret.
			if s.gw.crossOrigin(w, r, writePusherForbidden) {
				return
			}
			s.serveHTTPAPI(w, r)
		case strings.Contains(path, "/app/") && !strings.Contains(path, "/@connections"):
			// pusher-js puts its wsPath option before /app/{key}. The
			// module's CloudFront Function (functions/pusher-rewrite.js)
			// answers any other path 404 before API Gateway: so here. It
			// sees the URI as sent, escapes and all: /app/app%2Dkey is 404.
			m := pusherAppPath.FindStringSubmatch(r.URL.EscapedPath())
			if m == nil {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, "Connect to /app/{key}; the HTTP API is under /apps/{app_id}/.\n")
				return
			}
			key := m[1]
			q := r.URL.Query()
			q.Set(pusher.QueryAppKey, key)
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath, r2.URL.RawQuery = "/"+PusherStage, "", q.Encode()
			s.pusherGW.ServeHTTP(w, r2)
		case path == "/"+PusherStage || strings.HasPrefix(path, "/"+PusherStage+"/"):
			s.pusherGW.ServeHTTP(w, r)
		default:
			s.gw.ServeHTTP(w, r)
		}
	})
}

// writePusherForbidden answers a refused cross-origin request in the Pusher
// HTTP API's error shape.
func writePusherForbidden(w http.ResponseWriter) {
	writePusherError(w, http.StatusForbidden, "Cross-origin requests are refused; allow the origin with -allow-origin")
}

// writePusherError answers in the Pusher HTTP API's error shape,
// {"error":…,"code":N}, as the function does.
func writePusherError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]any{"error": msg, "code": status})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// serveHTTPAPI passes a request to the Pusher function as a Lambda function
// URL event (payload format 2.0) and writes its answer back.
func (s *Server) serveHTTPAPI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	if err != nil {
		writePusherError(w, http.StatusBadRequest, "Request body could not be read: "+err.Error())
		return
	}
	if len(body) > maxAPIBody {
		writePusherError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body exceeds %d bytes", maxAPIBody))
		return
	}
	now := time.Now()
	headers := map[string]string{}
	for k, vs := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Headers: headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "$default", AccountID: DefaultAccountID, Stage: "$default", RequestID: newUUID(), APIID: DefaultAPIID,
			DomainName: r.Host, Time: now.UTC().Format(requestTimeLayout), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: remoteIP(r), UserAgent: r.UserAgent(),
			},
		},
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		writePusherError(w, http.StatusInternalServerError, "Internal error")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), DefaultFunctionTimeout)
	defer cancel()
	out, err := s.pusherFn(ctx, payload)
	var resp events.APIGatewayV2HTTPResponse
	if err == nil {
		err = json.Unmarshal(out, &resp)
	}
	if err != nil {
		s.log.Error("pusher http api failed", "path", r.URL.Path, "error", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"message":"Internal Server Error"}`))
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			respBody = b
		}
	}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}
