package lambdaenv

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// PusherSettings are the WS_PUSHER_* variables of a Pusher-mode websocket
// function. See docs/pusher.md.
type PusherSettings struct {
	// App is WS_PUSHER_APP_ID, WS_PUSHER_APP_KEY and WS_PUSHER_APP_SECRET.
	App pusher.App
	// MaxPresenceUsers is WS_PUSHER_MAX_PRESENCE_USERS (default 100).
	MaxPresenceUsers int
	// MaxUserInfoBytes is WS_PUSHER_MAX_USER_INFO_BYTES (default 1024).
	MaxUserInfoBytes int
	// ClientEventRate is WS_PUSHER_CLIENT_EVENT_RATE, per connection per second (default 10).
	ClientEventRate int
	// DisableClientEvents is WS_PUSHER_CLIENT_EVENTS=false.
	DisableClientEvents bool
	// CacheTTL is WS_PUSHER_CACHE_TTL, a Go duration (default 30m).
	CacheTTL time.Duration
	// ActivityTimeout is WS_PUSHER_ACTIVITY_TIMEOUT, the activity_timeout in
	// seconds announced to clients (default 120, at most 540).
	ActivityTimeout int
	// WelcomeFunction is WS_PUSHER_WELCOME_FUNCTION, the function the welcome
	// step is invoked on (default AWS_LAMBDA_FUNCTION_NAME: itself).
	WelcomeFunction string
}

// MaxPusherActivityTimeout is the largest WS_PUSHER_ACTIVITY_TIMEOUT: a
// client pings after that much silence and waits up to 30 s for the pong,
// which must come before API Gateway's 10-minute idle timeout.
const MaxPusherActivityTimeout = 540

// Environment variables that give the Pusher app secret by reference, read
// by [WithPusherSecret]. The module sets one of them, never the value.
const (
	// EnvPusherSecretSSMParameter names an SSM parameter (SecureString) holding the app secret.
	EnvPusherSecretSSMParameter = "WS_PUSHER_APP_SECRET_SSM_PARAMETER"
	// EnvPusherSecretARN is the ARN of a Secrets Manager secret holding the app secret.
	EnvPusherSecretARN = "WS_PUSHER_APP_SECRET_ARN"
)

// PusherSecretReferenced reports whether the app secret is given by reference
// (SSM or Secrets Manager), so the caller knows to build AWS clients.
func PusherSecretReferenced(getenv func(string) string) bool {
	return getenv(EnvPusherSecretSSMParameter) != "" || getenv(EnvPusherSecretARN) != ""
}

// WithPusherSecret returns getenv unchanged unless the function is in Pusher
// mode (WS_PUSHER_APP_KEY set) and its secret is given by reference. Then it
// fetches the secret once (at cold start) and returns a getenv that answers
// WS_PUSHER_APP_SECRET with it, for [ParsePusher]. Setting more than one of
// WS_PUSHER_APP_SECRET, WS_PUSHER_APP_SECRET_SSM_PARAMETER and
// WS_PUSHER_APP_SECRET_ARN is an error.
func WithPusherSecret(ctx context.Context, getenv func(string) string, clients auth.EnvClients) (func(string) string, error) {
	if getenv("WS_PUSHER_APP_KEY") == "" {
		return getenv, nil
	}
	secret, found, err := auth.SecretFromEnv(ctx, getenv, clients, "WS_PUSHER_APP_SECRET", EnvPusherSecretSSMParameter, EnvPusherSecretARN)
	if err != nil {
		return nil, fmt.Errorf("pusher app secret: %w", err)
	}
	if !found {
		return getenv, nil
	}
	value := string(secret)
	return func(k string) string {
		if k == "WS_PUSHER_APP_SECRET" {
			return value
		}
		return getenv(k)
	}, nil
}

// ParsePusher reads PusherSettings. enabled is false when WS_PUSHER_APP_KEY
// is unset: the function then speaks protocol v1.
func ParsePusher(getenv func(string) string) (ps PusherSettings, enabled bool, err error) {
	ps.App = pusher.App{ID: getenv("WS_PUSHER_APP_ID"), Key: getenv("WS_PUSHER_APP_KEY"), Secret: getenv("WS_PUSHER_APP_SECRET")}
	if ps.App.Key == "" {
		return ps, false, nil
	}
	if ps.App.ID == "" || ps.App.Secret == "" {
		return ps, true, fmt.Errorf("WS_PUSHER_APP_KEY is set: WS_PUSHER_APP_ID and WS_PUSHER_APP_SECRET are required too")
	}
	ints := []struct {
		name string
		dst  *int
	}{
		{"WS_PUSHER_MAX_PRESENCE_USERS", &ps.MaxPresenceUsers},
		{"WS_PUSHER_MAX_USER_INFO_BYTES", &ps.MaxUserInfoBytes},
		{"WS_PUSHER_CLIENT_EVENT_RATE", &ps.ClientEventRate},
		{"WS_PUSHER_ACTIVITY_TIMEOUT", &ps.ActivityTimeout},
	}
	for _, v := range ints {
		if s := getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return ps, true, fmt.Errorf("%s=%q: want a positive integer", v.name, s)
			}
			*v.dst = n
		}
	}
	if ps.ActivityTimeout > MaxPusherActivityTimeout {
		return ps, true, fmt.Errorf("WS_PUSHER_ACTIVITY_TIMEOUT=%d: want at most %d seconds (API Gateway closes idle connections after 600 s)", ps.ActivityTimeout, MaxPusherActivityTimeout)
	}
	switch s := getenv("WS_PUSHER_CLIENT_EVENTS"); s {
	case "", "true":
	case "false":
		ps.DisableClientEvents = true
	default:
		return ps, true, fmt.Errorf("WS_PUSHER_CLIENT_EVENTS=%q: want true or false", s)
	}
	if s := getenv("WS_PUSHER_CACHE_TTL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return ps, true, fmt.Errorf("WS_PUSHER_CACHE_TTL=%q: want a positive Go duration", s)
		}
		ps.CacheTTL = d
	}
	ps.WelcomeFunction = getenv("WS_PUSHER_WELCOME_FUNCTION")
	if ps.WelcomeFunction == "" {
		ps.WelcomeFunction = getenv("AWS_LAMBDA_FUNCTION_NAME")
	}
	if ps.WelcomeFunction == "" {
		return ps, true, fmt.Errorf("WS_PUSHER_WELCOME_FUNCTION or AWS_LAMBDA_FUNCTION_NAME is required for the welcome step")
	}
	return ps, true, nil
}

// HandlerConfig is the pusher.Config these settings give, without the
// runtime parts (Manager, Presence, Values, Welcomer).
func (ps PusherSettings) HandlerConfig() pusher.Config {
	return pusher.Config{
		App: ps.App, MaxPresenceUsers: ps.MaxPresenceUsers, MaxUserInfoBytes: ps.MaxUserInfoBytes,
		ClientEventRate: ps.ClientEventRate, DisableClientEvents: ps.DisableClientEvents, CacheTTL: ps.CacheTTL,
		ActivityTimeout: ps.ActivityTimeout,
	}
}

// NewPusherHandler builds the Pusher-mode handler on DynamoDB, the
// management API and Lambda (for the welcome step) from the AWS default
// configuration. The AWS SDK honours AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_LAMBDA, which the local gateway sets.
func NewPusherHandler(ctx context.Context, s Settings, ps PusherSettings, log *slog.Logger) (*pusher.Handler, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	return NewPusherHandlerFromConfig(awsCfg, s, ps, log)
}

// NewPusherHandlerFromConfig is NewPusherHandler with an explicit AWS configuration.
func NewPusherHandlerFromConfig(awsCfg aws.Config, s Settings, ps PusherSettings, log *slog.Logger) (*pusher.Handler, error) {
	m, err := NewManagerFromConfig(awsCfg, s, log, realtime.Hooks{})
	if err != nil {
		return nil, err
	}
	presence, err := store.NewDynamoPresence(dynamodb.NewFromConfig(awsCfg), store.DynamoOptions{Table: s.TableName, TTL: s.ConnectionTTL})
	if err != nil {
		return nil, err
	}
	cfg := ps.HandlerConfig()
	cfg.Manager, cfg.Presence, cfg.Values, cfg.Logger = m, presence, presence, log
	cfg.Welcomer = pusher.LambdaWelcomer{Client: lambda.NewFromConfig(awsCfg), FunctionName: ps.WelcomeFunction}
	return pusher.NewHandler(cfg)
}

// NewPusherAnnouncer returns the Manager a protocol v1 function (the
// publisher) announces Pusher member_removed through, or nil when
// WS_PUSHER_MANAGEMENT_ENDPOINT is not set: the same table, the Pusher
// stage's endpoint, every send in process (the fan-out worker may post to the
// protocol v1 API only), no lifecycle events and no history (member_removed
// is not numbered). Register it with [LeavePusherPresence].
func NewPusherAnnouncer(awsCfg aws.Config, s Settings, log *slog.Logger) (*realtime.Manager, error) {
	if s.PusherManagementEndpoint == "" {
		return nil, nil
	}
	m, err := NewManagerFromConfig(awsCfg, pusherAnnouncerSettings(s), log, realtime.Hooks{})
	if err != nil {
		return nil, fmt.Errorf("pusher announcer: %w", err)
	}
	return m, nil
}

// pusherAnnouncerSettings are s for the Manager of NewPusherAnnouncer.
func pusherAnnouncerSettings(s Settings) Settings {
	a := s
	a.ManagementEndpoint = s.PusherManagementEndpoint
	a.Fanout = fanout.Settings{}
	a.EventBusName = ""
	a.History = nil
	return a
}

// LeavePusherPresence makes the connections m removes without $disconnect
// (its Cleanup, a 410) leave their Pusher presence channels, with
// member_removed through announce (see [NewPusherAnnouncer]; nil: quietly).
// The connections announce itself finds gone while announcing leave the same
// way.
func LeavePusherPresence(m, announce *realtime.Manager, log *slog.Logger) {
	p := m.Presence()
	if p == nil {
		return
	}
	leave := pusher.LeavePresence(p, announce, log)
	m.OnRemoved(leave)
	if announce != nil {
		announce.OnRemoved(leave)
	}
}
