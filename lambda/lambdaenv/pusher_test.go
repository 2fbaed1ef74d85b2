package lambdaenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
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

func TestParsePusherActivityTimeout(t *testing.T) {
	base := map[string]string{"WS_PUSHER_APP_ID": "app-id", "WS_PUSHER_APP_KEY": "app-key", "WS_PUSHER_APP_SECRET": "app-secret", "AWS_LAMBDA_FUNCTION_NAME": "ws"}
	base["WS_PUSHER_ACTIVITY_TIMEOUT"] = "60"
	ps, _, err := ParsePusher(env(base))
	require.NoError(t, err)
	assert.Equal(t, 60, ps.HandlerConfig().ActivityTimeout)
	for _, bad := range []string{"0", "541", "2m"} {
		base["WS_PUSHER_ACTIVITY_TIMEOUT"] = bad
		_, _, err := ParsePusher(env(base))
		assert.ErrorContains(t, err, "WS_PUSHER_ACTIVITY_TIMEOUT", bad)
	}
}

// parameterStore answers GetParameter with decryption only, as the
// function's role and SSM do for a SecureString it may read.
type parameterStore map[string]string

func (p parameterStore) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	v, ok := p[aws.ToString(in.Name)]
	if !ok || !aws.ToBool(in.WithDecryption) {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("Parameter " + aws.ToString(in.Name) + " not found.")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(v)}}, nil
}

func TestWithPusherSecretReadsSSMAtColdStart(t *testing.T) {
	vars := map[string]string{"WS_PUSHER_APP_ID": "app-id", "WS_PUSHER_APP_KEY": "app-key", "AWS_LAMBDA_FUNCTION_NAME": "ws",
		EnvPusherSecretSSMParameter: "/ws/pusher-secret"}
	require.True(t, PusherSecretReferenced(env(vars)))
	getenv, err := WithPusherSecret(t.Context(), env(vars), auth.EnvClients{SSM: parameterStore{"/ws/pusher-secret": "s3cret"}})
	require.NoError(t, err)
	ps, on, err := ParsePusher(getenv)
	require.NoError(t, err)
	assert.True(t, on)
	assert.Equal(t, "s3cret", ps.App.Secret)
	assert.Equal(t, "app-key", getenv("WS_PUSHER_APP_KEY"), "other variables pass through")

	vars["WS_PUSHER_APP_SECRET"] = "plain"
	_, err = WithPusherSecret(t.Context(), env(vars), auth.EnvClients{SSM: parameterStore{}})
	assert.ErrorContains(t, err, "set exactly one")

	delete(vars, "WS_PUSHER_APP_SECRET")
	vars[EnvPusherSecretSSMParameter] = "/ws/missing"
	_, err = WithPusherSecret(t.Context(), env(vars), auth.EnvClients{SSM: parameterStore{}})
	assert.ErrorContains(t, err, "get SSM parameter /ws/missing")

	// Protocol v1 (no app key) never fetches anything.
	delete(vars, "WS_PUSHER_APP_KEY")
	_, err = WithPusherSecret(t.Context(), env(vars), auth.EnvClients{})
	require.NoError(t, err)
}

// TestPusherAnnouncer: without WS_PUSHER_MANAGEMENT_ENDPOINT the publisher
// has no announcer (Pusher presence is left quietly); with it, the announcer
// posts to the Pusher stage, in process (the fan-out worker may post to the
// protocol v1 API only), with no lifecycle events and no history, on the same
// table.
func TestPusherAnnouncer(t *testing.T) {
	cfg := aws.Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}}
	s, err := Parse(env(map[string]string{"WS_TABLE_NAME": "t", "WS_MANAGEMENT_ENDPOINT": "https://v1.example/prod"}))
	require.NoError(t, err)
	m, err := NewPusherAnnouncer(cfg, s, nil)
	require.NoError(t, err)
	assert.Nil(t, m)

	s, err = Parse(env(map[string]string{
		"WS_TABLE_NAME": "t", "WS_MANAGEMENT_ENDPOINT": "https://v1.example/prod", "WS_PUSHER_MANAGEMENT_ENDPOINT": "https://pusher.example/prod",
		"WS_FANOUT_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q", "WS_EVENT_BUS_NAME": "bus",
		"WS_HISTORY": `[{"pattern":"chat-*","size":100,"ttl":"1h"}]`, "WS_SEND_CONCURRENCY": "64",
	}))
	require.NoError(t, err)
	a := pusherAnnouncerSettings(s)
	assert.Equal(t, "https://pusher.example/prod", a.ManagementEndpoint)
	assert.Empty(t, a.Fanout.QueueURL, "no distributed fan-out")
	assert.Empty(t, a.EventBusName)
	assert.Empty(t, a.History)
	assert.Equal(t, "t", a.TableName)
	assert.Equal(t, 64, a.SendConcurrency)
	assert.Equal(t, "https://v1.example/prod", s.ManagementEndpoint, "the publisher's own settings are unchanged")
	m, err = NewPusherAnnouncer(cfg, s, nil)
	require.NoError(t, err)
	require.NotNil(t, m)
	assert.NotNil(t, m.Presence())
}
