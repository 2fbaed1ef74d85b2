// Package lambdaenv wires the runtime from the Lambda environment variables
// the Terraform module sets (WS_TABLE_NAME, WS_MANAGEMENT_ENDPOINT, ...), so
// every Lambda main stays a few lines long. See docs/operations.md.
package lambdaenv

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/lifecycle"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// Settings are the runtime's environment variables, parsed.
type Settings struct {
	// TableName is WS_TABLE_NAME, the DynamoDB table (required).
	TableName string
	// ManagementEndpoint is WS_MANAGEMENT_ENDPOINT; empty means derive it from events.
	ManagementEndpoint string
	// PusherManagementEndpoint is WS_PUSHER_MANAGEMENT_ENDPOINT, the Pusher
	// stage's @connections endpoint, which the publisher announces
	// member_removed through when its Cleanup removes an expired Pusher
	// connection (NewPusherAnnouncer); empty leaves such connections' presence
	// channels quietly.
	PusherManagementEndpoint string
	// SendConcurrency is WS_SEND_CONCURRENCY, the posts in flight per fan-out
	// (default 256); a sender capped below 10,000/s keeps its share of it
	// (sender.Options.Concurrency).
	SendConcurrency int
	// MaxSendRate is WS_MAX_SEND_RATE, the requests per second one fan-out may use (0 = adaptive only).
	MaxSendRate float64
	// ConnectionTTL is WS_CONNECTION_TTL, how long a connection record lives (default 2h10m).
	ConnectionTTL time.Duration
	// MaxChannelsPerConnection is WS_MAX_CHANNELS_PER_CONNECTION, the cap on
	// the channels one connection may join (an integer >= 1, default 100).
	MaxChannelsPerConnection int
	// EventBusName is WS_EVENT_BUS_NAME; empty turns lifecycle events off.
	EventBusName string
	// EventSource is WS_EVENT_SOURCE, the events' source (default "websocket").
	EventSource string
	// LogLevel is WS_LOG_LEVEL (debug, info, warn, error; default info).
	LogLevel slog.Level
	// History is WS_HISTORY, a JSON list of {"pattern","size","ttl"} that
	// opts channels into history and recovery (docs/protocol.md); empty
	// means no channel keeps history.
	History realtime.HistoryRules
	// Fanout is WS_FANOUT_QUEUE_URL, WS_FANOUT_THRESHOLD,
	// WS_FANOUT_BATCH_SIZE, WS_FANOUT_RATE_BUDGET and
	// WS_FANOUT_MAX_CONCURRENCY; an empty queue URL keeps every send in-process.
	Fanout fanout.Settings
	// MetricsNamespace is WS_METRICS_NAMESPACE, the CloudWatch namespace of
	// the EMF metrics (default metrics.DefaultNamespace).
	MetricsNamespace string
	// Metrics is the recorder NewManager wires in (not from the
	// environment: a main sets it, see NewEMF); nil records nothing.
	Metrics metrics.Recorder
}

// Parse reads Settings with getenv (os.Getenv in mains, a map in tests).
func Parse(getenv func(string) string) (Settings, error) {
	s := Settings{
		TableName:                getenv("WS_TABLE_NAME"),
		ManagementEndpoint:       strings.TrimSuffix(getenv("WS_MANAGEMENT_ENDPOINT"), "/"),
		PusherManagementEndpoint: strings.TrimSuffix(getenv("WS_PUSHER_MANAGEMENT_ENDPOINT"), "/"),
		SendConcurrency:          sender.DefaultConcurrency,
		ConnectionTTL:            store.DefaultTTL,
		EventBusName:             getenv("WS_EVENT_BUS_NAME"),
		EventSource:              getenv("WS_EVENT_SOURCE"),
		MetricsNamespace:         metrics.NamespaceFromEnv(getenv),
	}
	s.MaxChannelsPerConnection = realtime.DefaultMaxChannelsPerConnection
	if s.TableName == "" {
		return s, fmt.Errorf("WS_TABLE_NAME is required")
	}
	if v := s.ManagementEndpoint; v != "" && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		return s, fmt.Errorf("WS_MANAGEMENT_ENDPOINT=%q: want the stage's https://{api-id}.execute-api.{region}.amazonaws.com/{stage}", v)
	}
	if v := s.PusherManagementEndpoint; v != "" && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		return s, fmt.Errorf("WS_PUSHER_MANAGEMENT_ENDPOINT=%q: want the Pusher stage's https://{api-id}.execute-api.{region}.amazonaws.com/{stage}", v)
	}
	if v := getenv("WS_SEND_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return s, fmt.Errorf("WS_SEND_CONCURRENCY=%q: want an integer from 1 to 10000", v)
		}
		s.SendConcurrency = n
	}
	if v := getenv("WS_MAX_SEND_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return s, fmt.Errorf("WS_MAX_SEND_RATE=%q: want a number of requests per second, 0 for adaptive only", v)
		}
		s.MaxSendRate = f
	}
	if v := getenv("WS_CONNECTION_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 2*time.Hour {
			return s, fmt.Errorf("WS_CONNECTION_TTL=%q: want a Go duration of at least 2h (API Gateway's connection limit)", v)
		}
		s.ConnectionTTL = d
	}
	if v := getenv("WS_MAX_CHANNELS_PER_CONNECTION"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return s, fmt.Errorf("WS_MAX_CHANNELS_PER_CONNECTION=%q: want an integer of at least 1 (channels one connection may join)", v)
		}
		s.MaxChannelsPerConnection = n
	}
	rules, err := realtime.ParseHistoryRules(getenv("WS_HISTORY"))
	if err != nil {
		return s, err
	}
	s.History = rules
	fs, err := fanout.ParseSettings(getenv)
	if err != nil {
		return s, err
	}
	s.Fanout = fs
	if v := getenv("WS_LOG_LEVEL"); v != "" {
		if err := s.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return s, fmt.Errorf("WS_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	return s, nil
}

// Logger returns the JSON logger Lambda mains use.
func Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
}

// NewEMF returns the EMF recorder a Lambda main flushes after each
// invocation (metrics.Wrap): namespace WS_METRICS_NAMESPACE, dimension
// Function=function, lines on stdout beside the JSON logs.
func NewEMF(s Settings, function string) *metrics.EMF {
	return metrics.NewEMF(os.Stdout, s.MetricsNamespace, function)
}

// MetricsFunction is the Function dimension of the websocket binary's
// metrics: "pusher" in Pusher mode (the module's Pusher-mode function),
// "websocket" otherwise, so the two functions' metrics stay apart.
func MetricsFunction(pusherMode bool) string {
	if pusherMode {
		return metrics.FunctionPusher
	}
	return metrics.FunctionWebSocket
}

// NewManager builds a Manager on DynamoDB, the management API and, when
// configured, EventBridge, from the AWS default configuration.
func NewManager(ctx context.Context, s Settings, log *slog.Logger, hooks realtime.Hooks) (*realtime.Manager, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	return NewManagerFromConfig(awsCfg, s, log, hooks)
}

// NewManagerFromConfig is NewManager with an explicit AWS configuration (the
// local gateway points it at DynamoDB Local and itself).
func NewManagerFromConfig(awsCfg aws.Config, s Settings, log *slog.Logger, hooks realtime.Hooks) (*realtime.Manager, error) {
	client := dynamodb.NewFromConfig(awsCfg)
	opts := store.DynamoOptions{Table: s.TableName, TTL: s.ConnectionTTL}
	db, err := store.NewDynamoDB(client, opts)
	if err != nil {
		return nil, err
	}
	presence, err := store.NewDynamoPresence(client, opts)
	if err != nil {
		return nil, err
	}
	httpClient := sender.NewHTTPClient(s.SendConcurrency)
	cfg := realtime.Config{
		Store: db,
		NewPoster: func(endpoint string) (sender.Poster, error) {
			return sender.NewManagementAPI(awsCfg, endpoint, httpClient)
		},
		ManagementEndpoint: s.ManagementEndpoint,
		Sender:             sender.Options{Concurrency: s.SendConcurrency, MaxRate: s.MaxSendRate},
		TTL:                s.ConnectionTTL,
		Hooks:              hooks,
		Logger:             log,
		Metrics:            s.Metrics,
		Presence:           presence,
	}
	if len(s.History) > 0 {
		h, err := store.NewDynamoHistory(client, opts)
		if err != nil {
			return nil, err
		}
		cfg.History, cfg.HistoryRules = h, s.History
	}
	cfg.MaxChannelsPerConnection = s.MaxChannelsPerConnection
	if s.Fanout.QueueURL != "" {
		enq, err := fanout.NewEnqueuer(sqs.NewFromConfig(awsCfg), s.Fanout)
		if err != nil {
			return nil, err
		}
		cfg.Distributor = enq
	}
	if s.EventBusName != "" {
		ev, err := lifecycle.NewEventBridge(eventbridge.NewFromConfig(awsCfg), s.EventBusName, s.EventSource)
		if err != nil {
			return nil, err
		}
		cfg.Events = ev
	}
	return realtime.New(cfg)
}
