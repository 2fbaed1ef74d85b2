package lambdaenv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePusher(t *testing.T) {
	_, on, err := ParsePusher(env(nil))
	require.NoError(t, err)
	assert.False(t, on, "without WS_PUSHER_APP_KEY the function speaks protocol v1")

	base := map[string]string{"WS_PUSHER_APP_ID": "app-id", "WS_PUSHER_APP_KEY": "app-key", "WS_PUSHER_APP_SECRET": "app-secret", "AWS_LAMBDA_FUNCTION_NAME": "ws"}
	ps, on, err := ParsePusher(env(base))
	require.NoError(t, err)
	assert.True(t, on)
	assert.Equal(t, "ws", ps.WelcomeFunction)
	assert.False(t, ps.DisableClientEvents)

	full := map[string]string{"WS_PUSHER_MAX_PRESENCE_USERS": "5", "WS_PUSHER_MAX_USER_INFO_BYTES": "64", "WS_PUSHER_CLIENT_EVENT_RATE": "3",
		"WS_PUSHER_CLIENT_EVENTS": "false", "WS_PUSHER_CACHE_TTL": "1m", "WS_PUSHER_WELCOME_FUNCTION": "welcomer"}
	for k, v := range base {
		full[k] = v
	}
	ps, _, err = ParsePusher(env(full))
	require.NoError(t, err)
	assert.Equal(t, PusherSettings{App: ps.App, MaxPresenceUsers: 5, MaxUserInfoBytes: 64, ClientEventRate: 3, DisableClientEvents: true, CacheTTL: time.Minute, WelcomeFunction: "welcomer"}, ps)

	for name, bad := range map[string]map[string]string{
		"no secret":     {"WS_PUSHER_APP_KEY": "k", "WS_PUSHER_APP_ID": "i", "AWS_LAMBDA_FUNCTION_NAME": "ws"},
		"bad rate":      {"WS_PUSHER_CLIENT_EVENT_RATE": "0"},
		"bad switch":    {"WS_PUSHER_CLIENT_EVENTS": "maybe"},
		"bad ttl":       {"WS_PUSHER_CACHE_TTL": "soon"},
		"no welcome fn": {"AWS_LAMBDA_FUNCTION_NAME": ""},
	} {
		kv := map[string]string{}
		for k, v := range base {
			kv[k] = v
		}
		for k, v := range bad {
			kv[k] = v
		}
		if name == "no secret" {
			delete(kv, "WS_PUSHER_APP_SECRET")
		}
		_, _, err := ParsePusher(env(kv))
		assert.Error(t, err, name)
	}
}
