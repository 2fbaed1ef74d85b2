package pusher

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var goldenApp = App{ID: DefaultAppID, Key: DefaultAppKey, Secret: DefaultAppSecret}

// The golden vectors of the issue: key app-key, secret app-secret, socket 123.456.
func TestGoldenSignatures(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"private", ChannelSignature("app-secret", "123.456", "private-orders", ""), "fa24923d1d5972f2c827aceb385f438a659796cd37cc4edc043128f78f18790a"},
		{"presence", ChannelSignature("app-secret", "123.456", "presence-room", `{"user_id":"u1","user_info":{"name":"A"}}`), "45c5574c587cad0cfb332773156ed6fd727bca50d27026b06587308568b7014d"},
		{"user", UserSignature("app-secret", "123.456", `{"id":"u1"}`), "b291393dce2108060c768aa06b328705c6601bc45babaaad6f4636de8cc8354e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
	assert.Equal(t, "app-key:fa24923d1d5972f2c827aceb385f438a659796cd37cc4edc043128f78f18790a", goldenApp.ChannelAuth("123.456", "private-orders", ""))
	assert.True(t, goldenApp.VerifyChannelAuth("app-key:fa24923d1d5972f2c827aceb385f438a659796cd37cc4edc043128f78f18790a", "123.456", "private-orders", ""))
	assert.True(t, goldenApp.VerifyChannelAuth("app-key:45c5574c587cad0cfb332773156ed6fd727bca50d27026b06587308568b7014d", "123.456", "presence-room", `{"user_id":"u1","user_info":{"name":"A"}}`))
	assert.True(t, goldenApp.VerifyUserAuth("app-key:b291393dce2108060c768aa06b328705c6601bc45babaaad6f4636de8cc8354e", "123.456", `{"id":"u1"}`))
	for _, bad := range []string{
		"app-key:fa24923d1d5972f2c827aceb385f438a659796cd37cc4edc043128f78f18790b",
		"other-key:fa24923d1d5972f2c827aceb385f438a659796cd37cc4edc043128f78f18790a",
		"fa24923d1d5972f2c827aceb385f438a659796cd37cc4edc043128f78f18790a",
		"",
	} {
		assert.False(t, goldenApp.VerifyChannelAuth(bad, "123.456", "private-orders", ""), bad)
	}
	assert.False(t, goldenApp.VerifyChannelAuth(goldenApp.ChannelAuth("123.457", "private-orders", ""), "123.456", "private-orders", ""))
}

func signedQuery(t *testing.T, app App, method, path string, body []byte, at time.Time, extra url.Values) url.Values {
	t.Helper()
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("auth_key", app.Key)
	q.Set("auth_timestamp", strconv.FormatInt(at.Unix(), 10))
	q.Set("auth_version", "1.0")
	if len(body) > 0 {
		q.Set("body_md5", BodyMD5(body))
	}
	q.Set("auth_signature", RequestSignature(app.Secret, method, path, q))
	return q
}

func TestVerifyRequest(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"name":"e","channel":"c","data":"{}"}`)
	q := signedQuery(t, goldenApp, "POST", "/apps/app-id/events", body, now, nil)
	require.NoError(t, goldenApp.VerifyRequest("POST", "/apps/app-id/events", q, body, now))

	// The string to sign, by hand: keys sorted, values raw.
	mac := hmac.New(sha256.New, []byte("app-secret"))
	mac.Write([]byte("POST\n/apps/app-id/events\nauth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&body_md5=" + BodyMD5(body)))
	assert.Equal(t, hex.EncodeToString(mac.Sum(nil)), q.Get("auth_signature"))

	assert.ErrorIs(t, goldenApp.VerifyRequest("POST", "/apps/app-id/events", q, []byte(`{"tampered":1}`), now), ErrBadSignature)
	assert.ErrorIs(t, goldenApp.VerifyRequest("POST", "/apps/app-id/events", q, body, now.Add(601*time.Second)), ErrBadSignature)
	assert.ErrorIs(t, goldenApp.VerifyRequest("GET", "/apps/app-id/events", q, body, now), ErrBadSignature)
	bad := signedQuery(t, App{Key: "app-key", Secret: "wrong"}, "POST", "/apps/app-id/events", body, now, nil)
	assert.ErrorIs(t, goldenApp.VerifyRequest("POST", "/apps/app-id/events", bad, body, now), ErrBadSignature)

	// A body signed without its body_md5: refused, saying it is missing.
	noMD5 := signedQuery(t, goldenApp, "POST", "/apps/app-id/events", nil, now, nil)
	err := goldenApp.VerifyRequest("POST", "/apps/app-id/events", noMD5, body, now)
	require.ErrorIs(t, err, ErrBadSignature)
	assert.Contains(t, err.Error(), "body_md5 missing")
	err = goldenApp.VerifyRequest("POST", "/apps/app-id/events", q, []byte(`{"tampered":1}`), now)
	assert.Contains(t, err.Error(), "body_md5 does not match the body")

	withInfo := signedQuery(t, goldenApp, "GET", "/apps/app-id/channels", nil, now, url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}})
	require.NoError(t, goldenApp.VerifyRequest("GET", "/apps/app-id/channels", withInfo, nil, now))
}

// TestVerifyRequestRefusesRepeatedParameters: a captured request with a
// fresh auth_timestamp and another body's body_md5 put in front of its own
// (url.Values keeps both; the checks read the first, the signature the
// last) must not pass, nor a key repeated in another case.
func TestVerifyRequestRefusesRepeatedParameters(t *testing.T) {
	signedAt := time.Unix(1_800_000_000, 0)
	body := []byte(`{"name":"a","channel":"news","data":"x"}`)
	q := signedQuery(t, goldenApp, "POST", "/apps/app-id/events", body, signedAt, nil)
	require.NoError(t, goldenApp.VerifyRequest("POST", "/apps/app-id/events", q, body, signedAt))

	later := signedAt.Add(24 * time.Hour)
	forged := []byte(`{"name":"forged","channel":"private-admin","data":"y"}`)
	replay := url.Values{}
	for k, v := range q {
		replay[k] = append([]string(nil), v...)
	}
	replay["body_md5"] = append([]string{BodyMD5(forged)}, replay["body_md5"]...)
	replay["auth_timestamp"] = append([]string{strconv.FormatInt(later.Unix(), 10)}, replay["auth_timestamp"]...)
	err := goldenApp.VerifyRequest("POST", "/apps/app-id/events", replay, forged, later)
	require.ErrorIs(t, err, ErrBadSignature)
	assert.Contains(t, err.Error(), "given more than once")

	cased := url.Values{}
	for k, v := range q {
		cased[k] = v
	}
	cased["AUTH_TIMESTAMP"] = []string{strconv.FormatInt(later.Unix(), 10)}
	assert.ErrorIs(t, goldenApp.VerifyRequest("POST", "/apps/app-id/events", cased, body, signedAt), ErrBadSignature)
}

func TestFrames(t *testing.T) {
	// Byte for byte what Pusher sends (the frames): fields in
	// Pusher's order, nothing HTML-escaped.
	assert.Equal(t, `{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}`, string(ConnectionEstablished("123.456", ActivityTimeout)))
	assert.Equal(t, `{"event":"pusher:error","data":"{\"code\":4001,\"message\":\"App key k not in this cluster\"}"}`, string(ErrorFrame(4001, "App key k not in this cluster")))
	assert.Equal(t, `{"event":"news","channel":"c","data":"<b>&\"x\"</b>"}`, string(ChannelEvent("c", "news", `<b>&"x"</b>`)))
	assert.JSONEq(t, `{"event":"pusher:pong","data":"{}"}`, string(Pong()))
	var f Frame
	require.NoError(t, json.Unmarshal(PresenceSucceeded("presence-room", []Member{{UserID: "u1", UserInfo: json.RawMessage(`{"name":"A"}`)}}), &f))
	var s string
	require.NoError(t, json.Unmarshal(f.Data, &s))
	assert.Equal(t, `{"presence":{"ids":["u1"],"hash":{"u1":{"name":"A"}},"count":1}}`, s)
	require.NoError(t, json.Unmarshal(SubscriptionError("private-x", 401, "bad"), &f))
	require.NoError(t, json.Unmarshal(f.Data, &s))
	assert.Equal(t, `{"type":"AuthError","error":"bad","status":401}`, s)

	in, err := ParseFrame([]byte(`{"event":"pusher:subscribe","data":{"channel":"private-x","auth":"k:s"}}`))
	require.NoError(t, err)
	var sub struct{ Channel, Auth string }
	require.NoError(t, in.DataObject(&sub))
	assert.Equal(t, "private-x", sub.Channel)
	in, err = ParseFrame([]byte(`{"event":"pusher:subscribe","data":"{\"channel\":\"y\"}"}`))
	require.NoError(t, err)
	require.NoError(t, in.DataObject(&sub))
	assert.Equal(t, "y", sub.Channel)
}

func TestSocketIDAndChannels(t *testing.T) {
	for _, id := range []string{"", "abc=", "Ab1-Cd2_Ef3=", "a very long connection id that is not API Gateway's"} {
		s := SocketID(id, 0)
		assert.True(t, ValidSocketID(s), s)
		assert.Equal(t, s, SocketID(id, 0))
		assert.NotEqual(t, s, SocketID(id, 1))
	}
	assert.False(t, ValidSocketID("1.2.3"))
	assert.False(t, ValidSocketID("a.1"))
	assert.True(t, ValidChannel("presence-room"))
	assert.True(t, ValidChannel("#server-to-user-u1"))
	assert.False(t, ValidChannel("a:b"))
	assert.False(t, ValidChannel("#other"))
	for _, ch := range []string{"cache-x", "private-cache-x", "private-encrypted-cache-x", "presence-cache-x"} {
		assert.True(t, IsCache(ch), ch)
	}
	for _, ch := range []string{"x-cache-", "private-encrypted-x", "presence-x", "encrypted-cache-x"} {
		assert.False(t, IsCache(ch), ch)
	}
	assert.True(t, IsPrivate("private-encrypted-x"))
}

// TestAppValidate: an app id or key that cannot be a URL path segment the
// CloudFront function and the local gateway route (/apps/{id}, /app/{key}),
// or a key with the ':' that splits a signature, is refused up front, with
// the module's rule: 1 to 64 letters, digits, '-' or '_'.
func TestAppValidate(t *testing.T) {
	ok := App{ID: "my_app-1", Key: strings.Repeat("k", 64), Secret: "s"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		app  App
		want string
	}{
		{App{ID: "", Key: "k", Secret: "s"}, `app id ""`},
		{App{ID: "a.b", Key: "k", Secret: "s"}, `app id "a.b"`},
		{App{ID: "a/b", Key: "k", Secret: "s"}, `app id "a/b"`},
		{App{ID: "a", Key: "app.key", Secret: "s"}, `app key "app.key"`},
		{App{ID: "a", Key: "a:b", Secret: "s"}, `app key "a:b"`},
		{App{ID: "a", Key: strings.Repeat("k", 65), Secret: "s"}, "app key"},
		{App{ID: "a", Key: "k"}, "the app secret is required"},
	} {
		err := tc.app.Validate()
		require.Error(t, err, "%+v", tc.app)
		assert.Contains(t, err.Error(), tc.want)
		_, err = NewHandler(Config{App: tc.app})
		assert.ErrorContains(t, err, tc.want, "NewHandler refuses it too")
	}
}
