package localgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
)

// FuzzServeHTTP sends any method, path, query, invocation type and body to
// the gateway's HTTP side (the management API, Lambda's Invoke, unknown
// paths; the WebSocket handshake needs a real connection and has its own
// tests): it never panics, and every answer that is not a success carries
// AWS's error wire format, an x-amzn-ErrorType header and a JSON body.
func FuzzServeHTTP(f *testing.F) {
	echo := localgw.Handler(func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil })
	fail := localgw.Handler(func(context.Context, json.RawMessage) (json.RawMessage, error) { return nil, errors.New("no") })
	gw, err := localgw.New(localgw.Config{WebSocket: echo, Functions: map[string]localgw.Function{"echo": echo, "fail": fail}})
	require.NoError(f, err)
	for _, s := range []struct{ method, path, query, invocation, body string }{
		{"POST", "/dev/@connections/abc=", "", "", "hello"},
		{"GET", "/dev/@connections/abc=", "", "", ""},
		{"DELETE", "/dev/@connections/abc=", "", "", ""},
		{"POST", "/2015-03-31/functions/echo/invocations", "", "", `{"a":1}`},
		{"POST", "/2015-03-31/functions/fail/invocations", "", "RequestResponse", `{}`},
		{"POST", "/2015-03-31/functions/echo/invocations", "Qualifier=$LATEST", "Event", `{}`},
		{"POST", "/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:echo/invocations", "", "DryRun", `{}`},
		{"POST", "/2015-03-31/functions/nope/invocations", "", "", `{}`},
		{"GET", "/other", "", "", ""},
	} {
		f.Add(s.method, s.path, s.query, s.invocation, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, query, invocation string, body []byte) {
		u, err := url.Parse("http://localhost" + path)
		if err != nil || u.Host != "localhost" || !validMethod(method) {
			return // not an HTTP request a client could send
		}
		u.RawQuery = query
		req := httptest.NewRequest(http.MethodGet, "http://localhost/", bytes.NewReader(body))
		req.Method, req.URL, req.RequestURI = method, u, u.RequestURI()
		if invocation != "" {
			req.Header.Set("X-Amz-Invocation-Type", invocation)
		}
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		if rec.Code < 300 || u.EscapedPath() == "/dev" || u.EscapedPath() == "/dev/" {
			return // a success, or the handshake path answering a request that is no handshake
		}
		require.NotEmpty(t, rec.Header().Get("X-Amzn-Errortype"), "%s %q ?%q %q: %d without x-amzn-ErrorType", method, path, query, invocation, rec.Code)
		require.True(t, json.Valid(rec.Body.Bytes()), "%s %q: body %q", method, path, rec.Body.String())
	})
}

// validMethod is a token, as net/http requires of a request's method.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range []byte(m) {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`()<>@,;:\"/[]?={}`), c) >= 0 {
			return false
		}
	}
	return true
}
