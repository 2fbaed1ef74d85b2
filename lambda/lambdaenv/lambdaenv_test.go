package lambdaenv

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseDefaults(t *testing.T) {
	s, err := Parse(env(map[string]string{"WS_TABLE_NAME": "t", "WS_MANAGEMENT_ENDPOINT": "https://x.example/prod/"}))
	require.NoError(t, err)
	assert.Equal(t, Settings{TableName: "t", ManagementEndpoint: "https://x.example/prod", SendConcurrency: 256,
		ConnectionTTL: 2*time.Hour + 10*time.Minute, MaxChannelsPerConnection: 100, LogLevel: slog.LevelInfo,
		Fanout:           fanout.Settings{Threshold: fanout.DefaultThreshold, BatchSize: fanout.DefaultBatchSize, RateBudget: fanout.DefaultRateBudget, MaxConcurrency: fanout.DefaultMaxConcurrency},
		MetricsNamespace: metrics.DefaultNamespace}, s)
}

func TestParseValues(t *testing.T) {
	s, err := Parse(env(map[string]string{
		"WS_TABLE_NAME": "t", "WS_SEND_CONCURRENCY": "200", "WS_MAX_SEND_RATE": "2500.5",
		"WS_CONNECTION_TTL": "3h", "WS_MAX_CHANNELS_PER_CONNECTION": "250", "WS_EVENT_BUS_NAME": "bus", "WS_EVENT_SOURCE": "chat", "WS_LOG_LEVEL": "debug",
		"WS_FANOUT_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q", "WS_FANOUT_THRESHOLD": "0", "WS_FANOUT_BATCH_SIZE": "100",
		"WS_METRICS_NAMESPACE":          "WebSocket/chat-prod",
		"WS_HISTORY":                    `[{"pattern":"chat-*","size":100,"ttl":"1h"}]`,
		"WS_PUSHER_MANAGEMENT_ENDPOINT": "https://p.execute-api.eu-west-1.amazonaws.com/prod/",
	}))
	require.NoError(t, err)
	assert.Equal(t, 200, s.SendConcurrency)
	assert.Equal(t, 2500.5, s.MaxSendRate)
	assert.Equal(t, 3*time.Hour, s.ConnectionTTL)
	assert.Equal(t, 250, s.MaxChannelsPerConnection)
	assert.Equal(t, "bus", s.EventBusName)
	assert.Equal(t, "chat", s.EventSource)
	assert.Equal(t, slog.LevelDebug, s.LogLevel)
	assert.Equal(t, fanout.Settings{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/q", Threshold: 0, BatchSize: 100, RateBudget: fanout.DefaultRateBudget, MaxConcurrency: fanout.DefaultMaxConcurrency}, s.Fanout)
	assert.Equal(t, "WebSocket/chat-prod", s.MetricsNamespace)
	assert.Equal(t, realtime.HistoryRules{{Pattern: "chat-*", Size: 100, TTL: time.Hour}}, s.History)
	assert.Equal(t, "https://p.execute-api.eu-west-1.amazonaws.com/prod", s.PusherManagementEndpoint)
}

func TestParseErrors(t *testing.T) {
	tests := map[string]map[string]string{
		"WS_TABLE_NAME is required":              {},
		"WS_SEND_CONCURRENCY":                    {"WS_TABLE_NAME": "t", "WS_SEND_CONCURRENCY": "0"},
		"WS_MAX_SEND_RATE":                       {"WS_TABLE_NAME": "t", "WS_MAX_SEND_RATE": "-1"},
		"WS_MAX_SEND_RATE=\"NaN\"":               {"WS_TABLE_NAME": "t", "WS_MAX_SEND_RATE": "NaN"},
		"WS_MAX_SEND_RATE=\"+Inf\"":              {"WS_TABLE_NAME": "t", "WS_MAX_SEND_RATE": "+Inf"},
		"at least 2h":                            {"WS_TABLE_NAME": "t", "WS_CONNECTION_TTL": "1h"},
		"WS_LOG_LEVEL":                           {"WS_TABLE_NAME": "t", "WS_LOG_LEVEL": "loud"},
		"WS_MAX_CHANNELS_PER_CONNECTION=\"0\"":   {"WS_TABLE_NAME": "t", "WS_MAX_CHANNELS_PER_CONNECTION": "0"},
		"WS_MAX_CHANNELS_PER_CONNECTION=\"-5\"":  {"WS_TABLE_NAME": "t", "WS_MAX_CHANNELS_PER_CONNECTION": "-5"},
		"WS_MAX_CHANNELS_PER_CONNECTION=\"ten\"": {"WS_TABLE_NAME": "t", "WS_MAX_CHANNELS_PER_CONNECTION": "ten"},
		"WS_FANOUT_BATCH_SIZE":                   {"WS_TABLE_NAME": "t", "WS_FANOUT_BATCH_SIZE": "5000"},
		"WS_HISTORY":                             {"WS_TABLE_NAME": "t", "WS_HISTORY": `{"pattern":"chat-*"}`},
		"size 0":                                 {"WS_TABLE_NAME": "t", "WS_HISTORY": `[{"pattern":"chat-*","size":0,"ttl":"1h"}]`},
		"WS_PUSHER_MANAGEMENT_ENDPOINT":          {"WS_TABLE_NAME": "t", "WS_PUSHER_MANAGEMENT_ENDPOINT": "p.execute-api.eu-west-1.amazonaws.com/prod"},
		"WS_MANAGEMENT_ENDPOINT=":                {"WS_TABLE_NAME": "t", "WS_MANAGEMENT_ENDPOINT": "x.execute-api.eu-west-1.amazonaws.com/prod"},
	}
	for want, vars := range tests {
		_, err := Parse(env(vars))
		assert.ErrorContains(t, err, want)
	}
}

// TestMetricsFunction: the websocket binary files its metrics under
// Function=pusher in Pusher mode, so the Pusher-mode function's never mix
// with protocol v1's.
func TestMetricsFunction(t *testing.T) {
	_, pusherMode, err := ParsePusher(func(k string) string {
		return map[string]string{"WS_PUSHER_APP_ID": "app-id", "WS_PUSHER_APP_KEY": "app-key", "WS_PUSHER_APP_SECRET": "s", "AWS_LAMBDA_FUNCTION_NAME": "ws-pusher"}[k]
	})
	require.NoError(t, err)
	assert.Equal(t, metrics.FunctionPusher, MetricsFunction(pusherMode))
	assert.Equal(t, metrics.FunctionWebSocket, MetricsFunction(false))
}
