package localgw_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// TestWrongStageAnswersForbidden: a handshake or a management call for a
// stage the gateway does not have answers what execute-api answers, 403
// {"message":"Forbidden"} with x-amzn-ErrorType ForbiddenException, even
// when a demo page serves the other paths.
func TestWrongStageAnswersForbidden(t *testing.T) {
	ctx := testCtx(t)
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) })
	_, url := startGateway(t, localgw.Config{WebSocket: localgw.Handler((&recorder{}).handle), NotFound: page})
	base := httpBase(url)

	_, resp, err := websocket.Dial(ctx, base+"/prod", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assertForbidden(t, resp, "handshake on another stage")
	_, resp, err = websocket.Dial(ctx, base+"/dev/extra", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assertForbidden(t, resp, "handshake on a path below the stage")

	for _, path := range []string{"/prod/@connections/abc=", "/@connections/abc="} {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader("x"))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			assertForbidden(t, resp, method+" "+path)
		}
	}
}

func assertForbidden(t *testing.T, resp *http.Response, what string) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, what)
	assert.Equal(t, "ForbiddenException", resp.Header.Get("x-amzn-ErrorType"), what)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), what)
	assert.JSONEq(t, `{"message":"Forbidden"}`, string(body), what)
}

// TestCrossOriginRequestsAreRefused: a browser request from another origin
// to the management or Invoke API (a text/plain POST needs no preflight) is
// refused with 403 before it does anything; requests without an Origin
// header, from the gateway's own origin or from an allowed one go through.
func TestCrossOriginRequestsAreRefused(t *testing.T) {
	ctx := testCtx(t)
	rec := &recorder{}
	gw, url := startGateway(t, localgw.Config{
		WebSocket: localgw.Handler(rec.handle), Functions: map[string]localgw.Function{"publisher": localgw.Handler(rec.handle)},
		AllowedOrigins: []string{"http://app.example:3000/"},
	})
	c := localgwtest.MustDial(ctx, t, url, "")
	localgwtest.WaitFor(ctx, t, "connection", func() bool { return len(gw.ConnectionIDs()) == 1 })
	id := gw.ConnectionIDs()[0]
	own := httpBase(url) // http://127.0.0.1:PORT, the gateway's own origin
	port := own[strings.LastIndex(own, ":")+1:]

	type request struct {
		method, path, origin, host string
		header                     map[string]string
	}
	do := func(r request) *http.Response {
		req, err := http.NewRequestWithContext(ctx, r.method, own+r.path, strings.NewReader(`{"action":"broadcast","data":"x"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "text/plain")
		if r.origin != "" {
			req.Header.Set("Origin", r.origin)
		}
		if r.host != "" {
			req.Host = r.host
		}
		for k, v := range r.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	post := "/dev/@connections/" + id
	invoke := "/2015-03-31/functions/publisher/invocations"

	for _, tc := range []struct {
		name      string
		req       request
		status    int
		errorType string
	}{
		{"management POST from another origin", request{method: http.MethodPost, path: post, origin: "http://evil.example"}, 403, "ForbiddenException"},
		{"management DELETE from another origin", request{method: http.MethodDelete, path: post, origin: "http://evil.example"}, 403, "ForbiddenException"},
		{"Invoke from another origin", request{method: http.MethodPost, path: invoke, origin: "http://evil.example"}, 403, "AccessDeniedException"},
		{"preflight from another origin", request{method: http.MethodOptions, path: post, origin: "http://evil.example",
			header: map[string]string{"Access-Control-Request-Method": "DELETE"}}, 403, "ForbiddenException"},
		{"a sandboxed page", request{method: http.MethodPost, path: invoke, origin: "null"}, 403, "AccessDeniedException"},
		{"a DNS-rebinding page: Origin matches Host, a non-loopback name", request{method: http.MethodPost, path: post,
			origin: "http://evil.example:" + port, host: "evil.example:" + port}, 403, "ForbiddenException"},
		{"management POST without Origin (SDK, curl)", request{method: http.MethodPost, path: post}, 200, ""},
		{"Invoke without Origin", request{method: http.MethodPost, path: invoke}, 200, ""},
		{"management POST from the gateway's own origin", request{method: http.MethodPost, path: post, origin: own}, 200, ""},
		{"Invoke from an allowed origin", request{method: http.MethodPost, path: invoke, origin: "http://app.example:3000"}, 200, ""},
		{"preflight from an allowed origin", request{method: http.MethodOptions, path: post, origin: "http://APP.example:3000",
			header: map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}}, 204, ""},
	} {
		resp := do(tc.req)
		assert.Equal(t, tc.status, resp.StatusCode, tc.name)
		assert.Equal(t, tc.errorType, resp.Header.Get("x-amzn-ErrorType"), tc.name)
		if tc.req.origin == "http://app.example:3000" || tc.req.origin == "http://APP.example:3000" {
			assert.Equal(t, tc.req.origin, resp.Header.Get("Access-Control-Allow-Origin"), tc.name)
			// A page's SDK must see AWS's error type and Lambda's function error.
			for _, h := range []string{"x-amzn-ErrorType", "X-Amz-Function-Error", "x-amzn-RequestId"} {
				assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), h, tc.name)
			}
		} else {
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), tc.name)
		}
		if tc.req.method == http.MethodOptions && tc.status == 204 {
			assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST", tc.name)
			assert.Equal(t, "content-type", resp.Header.Get("Access-Control-Allow-Headers"), tc.name)
		}
	}
	// Two posts went through, none of the refused ones: a last post is the
	// third frame the client gets.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, own+post, strings.NewReader("end"))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	var got []string
	for len(got) == 0 || got[len(got)-1] != "end" {
		got = append(got, string(c.Expect(ctx, "end", func(localgwtest.Frame) bool { return true }).Raw))
	}
	assert.Equal(t, []string{`{"action":"broadcast","data":"x"}`, `{"action":"broadcast","data":"x"}`, "end"}, got)
	assert.Len(t, gw.ConnectionIDs(), 1, "no refused DELETE closed the connection")
}

func TestNewValidatesAllowedOrigins(t *testing.T) {
	for _, o := range []string{"evil.example", "http://", "http://a.example/path", "http://a.example?x=1"} {
		_, err := localgw.New(localgw.Config{WebSocket: localgw.Handler((&recorder{}).handle), AllowedOrigins: []string{o}})
		assert.Error(t, err, o)
	}
}
