package localgw_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	pushersdk "github.com/pusher/pusher-http-go/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
)

// sdkApp has a numeric id, as Pusher's own apps do.
var sdkApp = pusher.App{ID: "1234567", Key: "sdk-key", Secret: "sdk-secret-0123456789"}

// subscribe subscribes with the SDK's authorization answer (nil for a
// public channel) and waits for subscription_succeeded.
func sdkSubscribe(ctx context.Context, s *pusherClient, channel string, authAnswer []byte) {
	s.t.Helper()
	data := map[string]any{"channel": channel}
	if authAnswer != nil {
		var a map[string]string
		require.NoError(s.t, json.Unmarshal(authAnswer, &a))
		data["auth"] = a["auth"]
		if cd, ok := a["channel_data"]; ok {
			data["channel_data"] = cd
		}
	}
	s.send(ctx, map[string]any{"event": "pusher:subscribe", "data": data})
	f := s.next(ctx, "pusher_internal:subscription_succeeded")
	require.Equal(s.t, channel, f["channel"])
}

// authParams is the form body a pusher-js auth request carries.
func authParams(socketID, channel string) []byte {
	v := url.Values{"socket_id": {socketID}}
	if channel != "" {
		v.Set("channel_name", channel)
	}
	return []byte(v.Encode())
}

// TestPusherGoServerSDK drives the Pusher stage with Pusher's own Go server
// library, pusher-http-go v5, unmodified: its channel and user
// authorizations are accepted by the WebSocket side, and its HTTP API calls
// (trigger, multi, exclusive, batch, send to user, an end-to-end
// encrypted channel, channels, channel, users) are signed as the HTTP API verifies and answered as it parses.
// On the embedded store here; the e2e tier runs it on DynamoDB Local with
// the compiled bootstraps too.
func TestPusherGoServerSDK(t *testing.T) {
	srv := startServer(t, localgw.ServerConfig{JWTSecret: testSecret, Pusher: &pusher.Config{App: sdkApp}})
	testPusherGoServerSDK(t, srv, sdkApp)
}

func testPusherGoServerSDK(t *testing.T, srv *localgw.Server, app pusher.App) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := pushersdk.Client{AppID: app.ID, Key: app.Key, Secret: app.Secret, Host: srv.Addr(), HTTPClient: &http.Client{Timeout: 5 * time.Second}}

	alice := dialPusherKey(ctx, t, srv, app.Key)
	bob := dialPusherKey(ctx, t, srv, app.Key)
	for _, s := range []*pusherClient{alice, bob} {
		auth, err := client.AuthorizePrivateChannel(authParams(s.socketID, "private-room"))
		require.NoError(t, err)
		sdkSubscribe(ctx, s, "private-room", auth)
		sdkSubscribe(ctx, s, "news", nil)
	}
	auth, err := client.AuthorizePresenceChannel(authParams(alice.socketID, "presence-lobby"),
		pushersdk.MemberData{UserID: "alice", UserInfo: map[string]string{"name": "Alice"}})
	require.NoError(t, err)
	sdkSubscribe(ctx, alice, "presence-lobby", auth)

	// Trigger: the data arrives as the JSON string the SDK encoded.
	require.NoError(t, client.Trigger("private-room", "greet", map[string]int{"n": 1}))
	for _, s := range []*pusherClient{alice, bob} {
		f := s.next(ctx, "greet")
		assert.Equal(t, "private-room", f["channel"])
		assert.JSONEq(t, `{"n":1}`, f["data"].(string))
	}
	require.NoError(t, client.TriggerMulti([]string{"news", "private-room"}, "multi", "plain text"))
	for _, s := range []*pusherClient{alice, bob} {
		assert.Equal(t, "plain text", s.next(ctx, "multi")["data"])
		assert.Equal(t, "plain text", s.next(ctx, "multi")["data"], "once per channel")
	}
	// Exclusive: the socket that caused the event does not get it back.
	require.NoError(t, client.TriggerExclusive("news", "excl", "x", alice.socketID))
	require.NoError(t, client.Trigger("news", "after", "y"))
	assert.Equal(t, "x", bob.next(ctx, "excl")["data"])
	f := alice.next(ctx, "after")
	assert.Equal(t, "y", f["data"], "alice skipped excl and got the next event")

	_, err = client.TriggerBatch([]pushersdk.Event{
		{Channel: "news", Name: "b1", Data: "one"},
		{Channel: "private-room", Name: "b2", Data: map[string]string{"k": "v"}, SocketID: &bob.socketID},
	})
	require.NoError(t, err)
	assert.Equal(t, "one", bob.next(ctx, "b1")["data"])
	assert.JSONEq(t, `{"k":"v"}`, alice.next(ctx, "b2")["data"].(string))

	// User authentication (signin) and send to user.
	signin, err := client.AuthenticateUser(authParams(bob.socketID, ""), map[string]any{"id": "bob", "user_info": map[string]string{"name": "Bob"}})
	require.NoError(t, err)
	var sa map[string]string
	require.NoError(t, json.Unmarshal(signin, &sa))
	bob.send(ctx, map[string]any{"event": "pusher:signin", "data": map[string]string{"auth": sa["auth"], "user_data": sa["user_data"]}})
	bob.next(ctx, "pusher:signin_success")
	require.NoError(t, client.SendToUser("bob", "dm", map[string]string{"hi": "bob"}))
	f = bob.next(ctx, "dm")
	assert.Equal(t, "#server-to-user-bob", f["channel"])
	assert.JSONEq(t, `{"hi":"bob"}`, f["data"].(string))

	// Queries, parsed by the SDK.
	info := "user_count"
	prefix := "presence-"
	list, err := client.Channels(pushersdk.ChannelsParams{FilterByPrefix: &prefix, Info: &info})
	require.NoError(t, err)
	assert.Equal(t, map[string]pushersdk.ChannelListItem{"presence-lobby": {UserCount: 1}}, list.Channels)
	all, err := client.Channels(pushersdk.ChannelsParams{})
	require.NoError(t, err)
	assert.Contains(t, all.Channels, "news")
	assert.Contains(t, all.Channels, "private-room")
	ch, err := client.Channel("presence-lobby", pushersdk.ChannelParams{Info: &info})
	require.NoError(t, err)
	assert.True(t, ch.Occupied)
	assert.Equal(t, 1, ch.UserCount)
	users, err := client.GetChannelUsers("presence-lobby")
	require.NoError(t, err)
	assert.Equal(t, []pushersdk.User{{ID: "alice"}}, users.List)
	empty, err := client.Channel("nobody-here", pushersdk.ChannelParams{})
	require.NoError(t, err)
	assert.False(t, empty.Occupied)

	// An end-to-end encrypted channel: the SDK's authorization carries the
	// channel's shared secret, its Trigger encrypts, the stage relays the
	// ciphertext untouched and the subscriber opens it as pusher-js does.
	enc := client
	enc.EncryptionMasterKeyBase64 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	auth, err = enc.AuthorizePrivateChannel(authParams(alice.socketID, "private-encrypted-vault"))
	require.NoError(t, err)
	var ea struct {
		SharedSecret string `json:"shared_secret"`
	}
	require.NoError(t, json.Unmarshal(auth, &ea))
	sdkSubscribe(ctx, alice, "private-encrypted-vault", auth)
	require.NoError(t, enc.Trigger("private-encrypted-vault", "secret", map[string]string{"pin": "1234"}))
	var box struct{ Nonce, Ciphertext string }
	require.NoError(t, json.Unmarshal([]byte(alice.next(ctx, "secret")["data"].(string)), &box))
	key, _ := base64.StdEncoding.DecodeString(ea.SharedSecret)
	nonce, _ := base64.StdEncoding.DecodeString(box.Nonce)
	sealed, _ := base64.StdEncoding.DecodeString(box.Ciphertext)
	require.Len(t, key, 32)
	require.Len(t, nonce, 24)
	plain, ok := secretbox.Open(nil, sealed, (*[24]byte)(nonce), (*[32]byte)(key))
	require.True(t, ok, "the subscriber opens what the SDK sealed")
	assert.JSONEq(t, `{"pin":"1234"}`, string(plain))

	// A client with the wrong secret is refused, and the SDK says so.
	wrong := client
	wrong.Secret = "not-the-secret"
	err = wrong.Trigger("news", "nope", "z")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "401")
}
