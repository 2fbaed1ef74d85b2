package localgw_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// recorder is a websocket integration that records every event and answers
// with what respond returns.
type recorder struct {
	mu      sync.Mutex
	events  []events.APIGatewayWebsocketProxyRequest
	respond func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
}

func (r *recorder) handle(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	if r.respond != nil {
		return r.respond(ev)
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func (r *recorder) byRoute(routeKey string) []events.APIGatewayWebsocketProxyRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.APIGatewayWebsocketProxyRequest
	for _, ev := range r.events {
		if ev.RequestContext.RouteKey == routeKey {
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) count(routeKey string) func() bool {
	return func() bool { return len(r.byRoute(routeKey)) > 0 }
}

// startGateway serves a Gateway on an httptest server; it returns the ws URL.
func startGateway(t *testing.T, cfg localgw.Config) (*localgw.Gateway, string) {
	t.Helper()
	gw, err := localgw.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, gw.Shutdown(ctx))
		srv.Close()
	})
	return gw, "ws" + strings.TrimPrefix(srv.URL, "http") + "/" + gw.Stage()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMessagesAreStampedWhenReceived: a message's requestTimeEpoch is when
// the gateway received it, as on API Gateway, not when its turn came behind a
// slow earlier message of the same connection.
func TestMessagesAreStampedWhenReceived(t *testing.T) {
	ctx := testCtx(t)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	first, release := make(chan struct{}), make(chan struct{})
	rec := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.Body == `"1"` {
			close(first)
			<-release
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}}
	gw, url := startGateway(t, localgw.Config{Stage: "prod", WebSocket: localgw.Handler(rec.handle), Now: clock})
	c := localgwtest.MustDial(ctx, t, url, "")
	c.Send(ctx, "1")
	c.Send(ctx, "2")
	<-first
	id := rec.byRoute("$connect")[0].RequestContext.ConnectionID
	localgwtest.WaitFor(ctx, t, "the second message received", func() bool {
		_, in := gw.QueuedBytes(id)
		return in >= 2*len(`"1"`) // each weighs its size, the first until its route returns
	})
	mu.Lock()
	now = now.Add(5 * time.Second)
	mu.Unlock()
	close(release)
	localgwtest.WaitFor(ctx, t, "the second message's route", func() bool { return len(rec.byRoute("$default")) == 2 })
	msgs := rec.byRoute("$default")
	assert.Equal(t, time.Unix(1_800_000_000, 0).UnixMilli(), msgs[1].RequestContext.RequestTimeEpoch, "stamped on arrival")
	assert.Equal(t, msgs[0].RequestContext.RequestTime, msgs[1].RequestContext.RequestTime)
}

func TestEventsCarryAPIGatewayFields(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.RequestContext.RouteKey == "$default" {
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: "echo:" + ev.Body}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}}
	authHeaders := make(chan map[string]string, 1)
	authorizer := func(_ context.Context, req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
		authHeaders <- req.Headers
		return events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: "u-1",
			PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{
				{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{req.MethodArn}},
			}},
			Context: map[string]any{"userId": "u-1", "channels": "private-x"},
		}, nil
	}
	_, url := startGateway(t, localgw.Config{Stage: "prod", WebSocket: localgw.Handler(rec.handle), Authorizer: localgw.Handler(authorizer)})

	c := localgwtest.MustDial(ctx, t, url+"?room=lobby&room=hall&x=1", "")
	c.Send(ctx, map[string]string{"action": "hello"})
	c.ExpectRaw(ctx, `echo:{"action":"hello"}`)
	require.NoError(t, c.Conn.Close(4001, "done here"))
	localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))

	connect := rec.byRoute("$connect")[0]
	rc := connect.RequestContext
	assert.Equal(t, "CONNECT", rc.EventType)
	assert.Equal(t, "IN", rc.MessageDirection)
	assert.Equal(t, "prod", rc.Stage)
	assert.Equal(t, localgw.DefaultAPIID, rc.APIID)
	assert.Regexp(t, `^[A-Za-z0-9]{15}=$`, rc.ConnectionID)
	assert.Regexp(t, `^[A-Za-z0-9]{15}=$`, rc.RequestID)
	assert.Equal(t, rc.RequestID, rc.ExtendedRequestID)
	assert.Regexp(t, `^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$`, rc.RequestTime)
	assert.NotZero(t, rc.ConnectedAt)
	assert.GreaterOrEqual(t, rc.RequestTimeEpoch, rc.ConnectedAt)
	assert.Equal(t, "127.0.0.1", rc.Identity.SourceIP)
	assert.Equal(t, "localgwtest", rc.Identity.UserAgent)
	assert.Equal(t, map[string]any{"userId": "u-1", "channels": "private-x", "principalId": "u-1"}, rc.Authorizer)
	assert.Empty(t, rc.MessageID)
	assert.NotContains(t, connect.Headers, "Upgrade", "API Gateway does not pass hop-by-hop headers")
	assert.NotContains(t, connect.Headers, "Connection")
	// Its REQUEST authorizer gets them, and content-length (AWS's example input).
	ah := <-authHeaders
	assert.Equal(t, "upgrade", ah["Connection"])
	assert.Equal(t, "websocket", ah["Upgrade"])
	assert.Equal(t, "0", ah["content-length"])
	assert.Equal(t, connect.Headers["Sec-WebSocket-Key"], ah["Sec-WebSocket-Key"])
	assert.Equal(t, "13", connect.Headers["Sec-WebSocket-Version"])
	assert.Equal(t, []string{"13"}, connect.MultiValueHeaders["Sec-WebSocket-Version"])
	assert.NotEmpty(t, connect.Headers["Sec-WebSocket-Key"])
	assert.Equal(t, "127.0.0.1", connect.Headers["X-Forwarded-For"])
	assert.Contains(t, connect.Headers["X-Amzn-Trace-Id"], "Root=1-")
	assert.Equal(t, []string{"lobby", "hall"}, connect.MultiValueQueryStringParameters["room"])
	assert.Equal(t, "1", connect.QueryStringParameters["x"])
	assert.Empty(t, connect.Body)

	msg := rec.byRoute("$default")[0]
	assert.Equal(t, "MESSAGE", msg.RequestContext.EventType)
	assert.Regexp(t, `^[A-Za-z0-9]{15}=$`, msg.RequestContext.MessageID)
	assert.Equal(t, rc.ConnectionID, msg.RequestContext.ConnectionID)
	assert.Equal(t, rc.ConnectedAt, msg.RequestContext.ConnectedAt)
	assert.Equal(t, rc.Authorizer, msg.RequestContext.Authorizer)
	assert.Equal(t, `{"action":"hello"}`, msg.Body)
	assert.False(t, msg.IsBase64Encoded)
	assert.Nil(t, msg.Headers)
	assert.Nil(t, msg.QueryStringParameters)

	disc := rec.byRoute("$disconnect")[0]
	assert.Equal(t, "DISCONNECT", disc.RequestContext.EventType)
	assert.Equal(t, int64(4001), disc.RequestContext.DisconnectStatusCode)
	require.NotNil(t, disc.RequestContext.DisconnectReason)
	assert.Equal(t, "done here", *disc.RequestContext.DisconnectReason)
	assert.Equal(t, rc.Authorizer, disc.RequestContext.Authorizer)
	// The headers of aws-lambda-go's apigw-websocket-request-disconnect.json.
	assert.Equal(t, map[string]string{"Host": rc.DomainName, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}, disc.Headers)
	assert.Equal(t, map[string][]string{"Host": {rc.DomainName}, "x-api-key": {""}, "X-Forwarded-For": {""}, "x-restapi": {""}}, disc.MultiValueHeaders)
	assert.Empty(t, disc.RequestContext.MessageID)
}

func TestEventJSONMatchesAWSFieldNames(t *testing.T) {
	ctx := testCtx(t)
	var mu sync.Mutex
	var raw []map[string]any
	fn := func(_ context.Context, payload []byte) ([]byte, error) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(payload, &m))
		mu.Lock()
		raw = append(raw, m)
		mu.Unlock()
		return []byte(`{"statusCode":200}`), nil
	}
	_, url := startGateway(t, localgw.Config{WebSocket: fn})
	c := localgwtest.MustDial(ctx, t, url, "")
	c.Send(ctx, "x")
	require.NoError(t, c.Conn.Close(websocket.StatusNormalClosure, ""))
	localgwtest.WaitFor(ctx, t, "three events", func() bool { mu.Lock(); defer mu.Unlock(); return len(raw) == 3 })

	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	mu.Lock()
	defer mu.Unlock()
	common := []string{"routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage",
		"connectedAt", "requestTimeEpoch", "identity", "requestId", "domainName", "connectionId", "apiId"}
	assert.ElementsMatch(t, []string{"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"}, keys(raw[0]))
	assert.ElementsMatch(t, common, keys(raw[0]["requestContext"].(map[string]any)))
	assert.ElementsMatch(t, []string{"requestContext", "body", "isBase64Encoded"}, keys(raw[1]))
	assert.ElementsMatch(t, append([]string{"messageId"}, common...), keys(raw[1]["requestContext"].(map[string]any)))
	assert.ElementsMatch(t, []string{"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"}, keys(raw[2]))
	assert.ElementsMatch(t, append([]string{"disconnectStatusCode", "disconnectReason"}, common...), keys(raw[2]["requestContext"].(map[string]any)))
}

func TestRouteSelection(t *testing.T) {
	ctx := testCtx(t)
	def := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "default:" + ev.RequestContext.RouteKey}, nil
	}}
	custom := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "custom:" + ev.RequestContext.RouteKey}, nil
	}}
	_, url := startGateway(t, localgw.Config{
		WebSocket: localgw.Handler(def.handle),
		Routes:    map[string]localgw.Function{"sendmessage": localgw.Handler(custom.handle)},
	})
	c := localgwtest.MustDial(ctx, t, url, "")
	for _, tc := range []struct{ name, frame, want string }{
		{"custom route key", `{"action":"sendmessage","text":"hi"}`, "custom:sendmessage"},
		{"built-in protocol action", `{"action":"subscribe","channel":"a"}`, "default:$default"},
		{"whoami", `{"action":"whoami"}`, "default:$default"},
		{"unknown action", `{"action":"nope"}`, "default:$default"},
		{"action not a string", `{"action":5}`, "default:$default"},
		{"not json", `hello`, "default:$default"},
		{"json array", `["sendmessage"]`, "default:$default"},
		{"case matters", `{"action":"SendMessage"}`, "default:$default"},
		{"the key's case matters too", `{"Action":"sendmessage"}`, "default:$default"},
		{"upper-case key", `{"ACTION":"sendmessage"}`, "default:$default"},
	} {
		require.NoError(t, c.Conn.Write(ctx, websocket.MessageText, []byte(tc.frame)), tc.name)
		assert.Equal(t, tc.want, string(c.Expect(ctx, tc.name, func(localgwtest.Frame) bool { return true }).Raw), tc.name)
	}
}

func TestConnectRejection(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name    string
		connect func() (events.APIGatewayProxyResponse, error)
		status  int
	}{
		{"handler answers 403", func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 403}, nil
		}, 403},
		{"handler answers 429", func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 429}, nil
		}, 429},
		{"handler fails", func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		}, 500},
		{"no status", func() (events.APIGatewayProxyResponse, error) { return events.APIGatewayProxyResponse{}, nil }, 502},
		{"status 100", func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 100}, nil
		}, 502},
		{"status 101", func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 101}, nil
		}, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				return tc.connect()
			}}
			gw, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle)})
			_, resp, err := websocket.Dial(ctx, url, nil)
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, strings.ReplaceAll(http.StatusText(tc.status), " ", "")+"Exception", resp.Header.Get("x-amzn-ErrorType"))
			assert.Empty(t, gw.ConnectionIDs())
			assert.Empty(t, rec.byRoute("$disconnect"), "a refused connection has no $disconnect")
		})
	}
}

// A malformed opening handshake is refused before the authorizer or
// $connect runs, so it leaves no trace: no $connect, no $disconnect.
func TestMalformedHandshakeRunsNothing(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	var authorized atomic.Int32
	authz := func(context.Context, auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
		authorized.Add(1)
		return events.APIGatewayCustomAuthorizerResponse{}, auth.ErrUnauthorized
	}
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle), Authorizer: localgw.Handler(authz)})
	good := map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	for _, tc := range []struct {
		name, header, value string
		status              int
	}{
		{"version 8", "Sec-WebSocket-Version", "8", http.StatusUpgradeRequired},
		{"no key", "Sec-WebSocket-Key", "", http.StatusBadRequest},
		{"key not 16 bytes", "Sec-WebSocket-Key", "c2hvcnQ=", http.StatusBadRequest},
		{"no Connection: Upgrade", "Connection", "keep-alive", http.StatusBadRequest},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http"+strings.TrimPrefix(url, "ws")+"?token=abc", nil)
		require.NoError(t, err)
		for k, v := range good {
			req.Header.Set(k, v)
		}
		req.Header.Set(tc.header, tc.value)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, tc.name)
		resp.Body.Close()
		assert.Equal(t, tc.status, resp.StatusCode, tc.name)
	}
	assert.Zero(t, authorized.Load(), "the authorizer never ran")
	assert.Empty(t, rec.byRoute("$connect"))
	assert.Empty(t, rec.byRoute("$disconnect"))
}

func TestAuthorizerAnswers(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name   string
		answer func(req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error)
		status int
	}{
		{"unauthorized", func(auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
			return events.APIGatewayCustomAuthorizerResponse{}, auth.ErrUnauthorized
		}, 401},
		{"deny policy", func(req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
			return events.APIGatewayCustomAuthorizerResponse{PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Statement: []events.IAMPolicyStatement{
				{Action: []string{"execute-api:Invoke"}, Effect: "Deny", Resource: []string{req.MethodArn}}}}}, nil
		}, 403},
		{"other error", func(auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
			return events.APIGatewayCustomAuthorizerResponse{}, errors.New("db down")
		}, 500},
		// API Gateway takes strings, numbers and booleans in the context, never
		// an object or an array: the connection fails.
		{"allow with an array in the context", func(req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
			return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "u", PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{
				{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{req.MethodArn}}}},
				Context: map[string]any{"userId": "u", "roles": []string{"admin"}}}, nil
		}, 500},
		{"allow with an object in the context", func(req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
			return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "u", PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{
				{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{req.MethodArn}}}},
				Context: map[string]any{"userId": "u", "profile": map[string]string{"name": "U"}}}, nil
		}, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			requests := make(chan auth.Request, 1)
			authz := func(_ context.Context, req auth.Request) (events.APIGatewayCustomAuthorizerResponse, error) {
				requests <- req
				return tc.answer(req)
			}
			_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle), Authorizer: localgw.Handler(authz)})
			_, resp, err := websocket.Dial(ctx, url+"?token=abc", nil)
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Empty(t, rec.byRoute("$connect"), "$connect must not run when the authorizer refuses")
			got := <-requests
			assert.Equal(t, "REQUEST", got.Type)
			assert.Equal(t, "arn:aws:execute-api:us-east-1:000000000000:wslocal/dev/$connect", got.MethodArn)
			assert.Equal(t, "abc", got.QueryStringParameters["token"])
			assert.Equal(t, "CONNECT", got.RequestContext.EventType)
		})
	}
}

func TestRouteResponseAndFailures(t *testing.T) {
	ctx := testCtx(t)
	big := strings.Repeat("x", 100*1024)
	rec := &recorder{respond: func(ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		switch ev.Body {
		case "big":
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: big}, nil
		case "fail":
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		case "silent":
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		case "too big":
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: strings.Repeat("y", 128*1024+1)}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "ok:" + ev.Body}, nil
	}}
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle), AllowBinary: true})
	c := localgwtest.MustDial(ctx, t, url, "")
	write := func(s string) { require.NoError(t, c.Conn.Write(ctx, websocket.MessageText, []byte(s))) }
	write("silent")
	write("too big") // over API Gateway's 128 KB message limit: not delivered
	write("big")
	assert.True(t, big == string(c.Expect(ctx, "big reply", func(localgwtest.Frame) bool { return true }).Raw),
		"a message larger than one 32 KB frame arrives whole, and the one over 128 KB before it did not arrive")
	write("fail")
	f := c.Expect(ctx, "error", func(localgwtest.Frame) bool { return true })
	var apigwErr map[string]string
	require.NoError(t, json.Unmarshal(f.Raw, &apigwErr))
	assert.Equal(t, "Internal server error", apigwErr["message"])
	assert.NotEmpty(t, apigwErr["connectionId"])
	require.NoError(t, c.Conn.Write(ctx, websocket.MessageBinary, []byte{0xff, 0x00}))
	c.ExpectRaw(ctx, "ok:/wA=")
	msgs := rec.byRoute("$default")
	assert.True(t, msgs[len(msgs)-1].IsBase64Encoded)
}

func TestTimeoutsCloseWithGoingAway(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		cfg  localgw.Config
	}{
		{"idle timeout", localgw.Config{IdleTimeout: 150 * time.Millisecond}},
		{"maximum duration", localgw.Config{MaxDuration: 150 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			cfg := tc.cfg
			cfg.WebSocket = localgw.Handler(rec.handle)
			_, url := startGateway(t, cfg)
			c := localgwtest.MustDial(ctx, t, url, "")
			assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(c.Closed(ctx)))
			localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))
			assert.Equal(t, int64(1001), rec.byRoute("$disconnect")[0].RequestContext.DisconnectStatusCode)
		})
	}
}

func TestShutdownClosesEveryConnection(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	gw, err := localgw.New(localgw.Config{WebSocket: localgw.Handler(rec.handle)})
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/dev"
	clients := []*localgwtest.Client{localgwtest.MustDial(ctx, t, url, ""), localgwtest.MustDial(ctx, t, url, ""), localgwtest.MustDial(ctx, t, url, "")}
	localgwtest.WaitFor(ctx, t, "three connections", func() bool { return len(gw.ConnectionIDs()) == 3 })
	require.NoError(t, gw.Shutdown(ctx))
	assert.Len(t, rec.byRoute("$disconnect"), 3, "Shutdown returns after every $disconnect ran")
	for _, c := range clients {
		assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(c.Closed(ctx)))
	}
	_, resp, err := websocket.Dial(ctx, url, nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestInvokeAPI(t *testing.T) {
	ctx := testCtx(t)
	type echoIn struct {
		Say string `json:"say"`
	}
	calls := make(chan string, 4)
	requestIDs := make(chan string, 16)
	echo := localgw.Handler(func(ctx context.Context, in echoIn) (map[string]string, error) {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			requestIDs <- lc.AwsRequestID
		}
		calls <- in.Say
		if in.Say == "fail" {
			return nil, &echoError{}
		}
		return map[string]string{"said": in.Say}, nil
	})
	gw, err := localgw.New(localgw.Config{WebSocket: echo, Functions: map[string]localgw.Function{"echo": echo}})
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	post := func(path, body string, header map[string]string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	read := func(resp *http.Response) string { b, _ := io.ReadAll(resp.Body); return string(b) }

	resp := post("/2015-03-31/functions/echo/invocations", `{"say":"hi"}`, nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"said":"hi"}`, read(resp))
	assert.Empty(t, resp.Header.Get("X-Amz-Function-Error"))
	<-calls

	resp = post("/2015-03-31/functions/"+"arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aecho%3A%24LATEST"+"/invocations", `{"say":"arn"}`, nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"said":"arn"}`, read(resp))
	<-calls

	resp = post("/2015-03-31/functions/echo/invocations", `{"say":"async"}`, map[string]string{"X-Amz-Invocation-Type": "Event"})
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, "async", <-calls)

	resp = post("/2015-03-31/functions/echo/invocations", `{}`, map[string]string{"X-Amz-Invocation-Type": "DryRun"})
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	resp = post("/2015-03-31/functions/echo/invocations", `not json`, nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "InvalidRequestContentException", resp.Header.Get("x-amzn-ErrorType"))

	resp = post("/2015-03-31/functions/nothing/invocations", `{}`, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "ResourceNotFoundException", resp.Header.Get("x-amzn-ErrorType"))
	var notFound map[string]string
	require.NoError(t, json.Unmarshal([]byte(read(resp)), &notFound))
	assert.Equal(t, "User", notFound["Type"])
	assert.Contains(t, notFound["Message"], "nothing", "Message, as Lambda's model spells it for ResourceNotFoundException")

	resp = post("/2015-03-31/functions/echo/invocations", `{"say":"fail"}`, nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Unhandled", resp.Header.Get("X-Amz-Function-Error"))
	assert.JSONEq(t, `{"errorMessage":"x","errorType":"echoError"}`, read(resp))
	<-calls
	// Lambda's answers to parameters outside their enums, and to payloads
	// over its limits (6 MB, and 1 MB for Event), in its words.
	resp = post("/2015-03-31/functions/echo/invocations", `{}`, map[string]string{"X-Amz-Invocation-Type": "dry_run"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "ValidationException", resp.Header.Get("x-amzn-ErrorType"))
	assert.JSONEq(t, `{"message":"1 validation error detected: Value 'dry_run' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [DryRun, RequestResponse, Event]"}`, read(resp))
	resp = post("/2015-03-31/functions/echo/invocations", `{}`, map[string]string{"X-Amz-Log-Type": "All"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "ValidationException", resp.Header.Get("x-amzn-ErrorType"))
	assert.Contains(t, read(resp), "Value 'All' at 'logType'")
	jsonOf := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }
	resp = post("/2015-03-31/functions/echo/invocations", jsonOf(localgw.MaxEventPayload+1), map[string]string{"X-Amz-Invocation-Type": "Event"})
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "RequestEntityTooLargeException", resp.Header.Get("x-amzn-ErrorType"))
	assert.Contains(t, read(resp), "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)")
	resp = post("/2015-03-31/functions/echo/invocations", jsonOf(localgw.MaxInvokePayload+1), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "RequestEntityTooLargeException", resp.Header.Get("x-amzn-ErrorType"))
	assert.Contains(t, read(resp), "Request must be smaller than 6291456 bytes for the InvokeFunction operation")

	// LogType Tail: the lines Lambda writes around the invocation, base64.
	resp = post("/2015-03-31/functions/echo/invocations", `{"say":"tail"}`, map[string]string{"X-Amz-Log-Type": "Tail"})
	assert.Equal(t, 200, resp.StatusCode)
	<-calls
	tail, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Amz-Log-Result"))
	require.NoError(t, err)
	id := resp.Header.Get("x-amzn-RequestId")
	var seen string
	for len(requestIDs) > 0 {
		seen = <-requestIDs // the last invocation's
	}
	assert.Equal(t, id, seen, "the handler's lambdacontext carries the Invoke API's request id")
	assert.Regexp(t, `^START RequestId: `+id+` Version: \$LATEST\nEND RequestId: `+id+`\nREPORT RequestId: `+id+`\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t\n$`, string(tail))
	resp = post("/2015-03-31/functions/echo/invocations", `{"say":"none"}`, nil)
	assert.Empty(t, resp.Header.Get("X-Amz-Log-Result"), "no LogType: no log")
	<-calls
}

func TestManagementAPIWireFormat(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	gw, err := localgw.New(localgw.Config{WebSocket: localgw.Handler(rec.handle)})
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	c := localgwtest.MustDial(ctx, t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/dev", "")
	localgwtest.WaitFor(ctx, t, "connection", func() bool { return len(gw.ConnectionIDs()) == 1 })
	id := gw.ConnectionIDs()[0]
	do := func(method, path, body string) (*http.Response, string) {
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := do(http.MethodPost, "/dev/@connections/"+id, "hello")
	assert.Equal(t, 200, resp.StatusCode)
	c.ExpectRaw(ctx, "hello")
	resp, body := do(http.MethodGet, "/dev/@connections/"+id, "")
	assert.Equal(t, 200, resp.StatusCode)
	var info struct {
		ConnectedAt, LastActiveAt string
		Identity                  map[string]string
	}
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	_, err = time.Parse(time.RFC3339, info.ConnectedAt)
	assert.NoError(t, err)
	assert.Equal(t, map[string]string{"sourceIp": "127.0.0.1", "userAgent": "localgwtest"}, info.Identity)
	resp, body = do(http.MethodPost, "/dev/@connections/unknownid000000=", "x")
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	assert.Equal(t, "GoneException", resp.Header.Get("x-amzn-ErrorType"))
	assert.JSONEq(t, `{"message":""}`, body)
	resp, _ = do(http.MethodPost, "/dev/@connections/"+id, strings.Repeat("y", 128*1024+1))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "PayloadTooLargeException", resp.Header.Get("x-amzn-ErrorType"))
	resp, _ = do(http.MethodPut, "/dev/@connections/"+id, "")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = do(http.MethodGet, "/other/path", "")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "MissingAuthenticationTokenException", resp.Header.Get("x-amzn-ErrorType"))
	resp, _ = do(http.MethodDelete, "/dev/@connections/"+id, "")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, websocket.StatusNormalClosure, localgwtest.CloseCode(c.Closed(ctx)))
	localgwtest.WaitFor(ctx, t, "$disconnect", rec.count("$disconnect"))
	resp, _ = do(http.MethodDelete, "/dev/@connections/"+id, "")
	assert.Equal(t, http.StatusGone, resp.StatusCode)
}

// While a connection closes (here a client that never answers the close
// frame, so the close handshake waits), every management method already
// answers 410, not only POST.
func TestClosingConnectionIsGoneForEveryMethod(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	gw, wsURL := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle)})
	conn, _, err := websocket.Dial(ctx, wsURL, nil)
	require.NoError(t, err)
	defer conn.CloseNow()
	localgwtest.WaitFor(ctx, t, "connection", func() bool { return len(gw.ConnectionIDs()) == 1 })
	connURL := httpBase(wsURL) + "/dev/@connections/" + gw.ConnectionIDs()[0]
	do := func(method string) int {
		req, err := http.NewRequestWithContext(ctx, method, connURL, strings.NewReader("x"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNoContent, do(http.MethodDelete))
	assert.Equal(t, http.StatusGone, do(http.MethodGet))
	assert.Equal(t, http.StatusGone, do(http.MethodDelete))
	assert.Equal(t, http.StatusGone, do(http.MethodPost))
}

type echoError struct{}

func (*echoError) Error() string { return "x" }

// authorizerOutputExample is the Lambda authorizer output of AWS's
// documentation ("Output from an API Gateway Lambda authorizer"), with
// Action and Resource as plain strings; %s are the effect and the resource.
const authorizerOutputExample = `{
  "principalId": "yyyyyyyy",
  "policyDocument": {
    "Version": "2012-10-17",
    "Statement": [
      {
        "Action": "execute-api:Invoke",
        "Effect": "%s",
        "Resource": "%s"
      }
    ]
  },
  "context": {
    "stringKey": "value",
    "numberKey": "1",
    "booleanKey": "true"
  },
  "usageIdentifierKey": "{api-key}"
}`

func TestAuthorizerPolicyInAWSDocumentedForm(t *testing.T) {
	ctx := testCtx(t)
	const methodArn = "arn:aws:execute-api:us-east-1:000000000000:wslocal/dev/$connect"
	for _, tc := range []struct {
		name   string
		answer string
		status int
	}{
		{"documented example, Allow", fmt.Sprintf(authorizerOutputExample, "Allow", methodArn), http.StatusSwitchingProtocols},
		{"documented example, Deny", fmt.Sprintf(authorizerOutputExample, "Deny", methodArn), http.StatusForbidden},
		{"documented example, a wildcard resource", fmt.Sprintf(authorizerOutputExample, "Allow", "arn:aws:execute-api:*:*:wslocal/dev/*"), http.StatusSwitchingProtocols},
		{"documented example, another stage", fmt.Sprintf(authorizerOutputExample, "Allow", "arn:aws:execute-api:*:*:wslocal/prod/*"), http.StatusForbidden},
		{"Statement as one object", `{"principalId":"yyyyyyyy","policyDocument":{"Version":"2012-10-17","Statement":
			{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"` + methodArn + `"}}}`, http.StatusSwitchingProtocols},
		{"arrays, as before", `{"principalId":"yyyyyyyy","policyDocument":{"Version":"2012-10-17","Statement":[
			{"Action":["execute-api:Invoke"],"Effect":"Allow","Resource":["` + methodArn + `"]}]}}`, http.StatusSwitchingProtocols},
		{"Action neither a string nor an array", `{"principalId":"yyyyyyyy","policyDocument":{"Version":"2012-10-17","Statement":[
			{"Action":5,"Effect":"Allow","Resource":"` + methodArn + `"}]}}`, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			authz := func(context.Context, []byte) ([]byte, error) { return []byte(tc.answer), nil }
			_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler(rec.handle), Authorizer: authz})
			c, resp, err := websocket.Dial(ctx, url+"?token=abc", nil)
			require.NotNil(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status != http.StatusSwitchingProtocols {
				require.Error(t, err)
				assert.Empty(t, rec.byRoute("$connect"))
				return
			}
			require.NoError(t, err)
			defer c.CloseNow()
			connect := rec.byRoute("$connect")
			require.Len(t, connect, 1)
			assert.Equal(t, "yyyyyyyy", connect[0].RequestContext.Authorizer.(map[string]any)["principalId"])
			if strings.Contains(tc.answer, "stringKey") {
				assert.Equal(t, "value", connect[0].RequestContext.Authorizer.(map[string]any)["stringKey"])
			}
		})
	}
}

// TestShutdownRunsAcceptedEventInvocations: an Event invocation answered
// 202 runs to its end before Shutdown returns (Lambda's queue would run
// it), and one arriving while the gateway shuts down is refused, not
// accepted and dropped.
func TestShutdownRunsAcceptedEventInvocations(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var finished atomic.Int32
	slow := localgw.Function(func(ctx context.Context, _ []byte) ([]byte, error) {
		once.Do(func() { close(started) })
		<-release
		finished.Add(1)
		return []byte(`null`), nil
	})
	var accepted atomic.Int32
	gw, err := localgw.New(localgw.Config{WebSocket: slow, Functions: map[string]localgw.Function{"slow": slow}})
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	event := func() *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/2015-03-31/functions/slow/invocations", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			accepted.Add(1)
		}
		return resp
	}
	require.Equal(t, http.StatusAccepted, event().StatusCode)
	<-started

	shut := make(chan error, 1)
	go func() { shut <- gw.Shutdown(testCtx(t)) }()
	require.Eventually(t, func() bool { return event().StatusCode == http.StatusServiceUnavailable }, 5*time.Second, 10*time.Millisecond,
		"an Event invocation during shutdown is refused")
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned before the accepted invocation ended: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-shut)
	assert.Equal(t, accepted.Load(), finished.Load(), "every accepted invocation ran to its end")
}
