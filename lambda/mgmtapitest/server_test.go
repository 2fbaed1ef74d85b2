package mgmtapitest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
)

func post(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", strings.NewReader("x"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestWireFormatOfErrors(t *testing.T) {
	srv := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true, Inject: func(_, id string, _ int) int {
		switch id {
		case "throttled":
			return http.StatusTooManyRequests
		case "broken":
			return http.StatusBadGateway
		}
		return 0
	}})
	defer srv.Close()
	srv.Kill("dead")

	tests := []struct {
		id         string
		status     int
		errorType  string
		wantMsgKey bool
	}{
		{"alive", http.StatusOK, "", false},
		{"dead", http.StatusGone, "GoneException", true},
		{"throttled", http.StatusTooManyRequests, "LimitExceededException", true},
		{"broken", http.StatusBadGateway, "BadGatewayException", true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			resp := post(t, srv.URL()+"/@connections/"+tt.id)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.errorType, resp.Header.Get("x-amzn-ErrorType"))
			if tt.wantMsgKey {
				var body map[string]any
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
				assert.Contains(t, body, "message")
			}
		})
	}
	resp, err := http.Get(strings.TrimSuffix(srv.URL(), "/test") + mgmtapitest.CountsPath)
	require.NoError(t, err)
	defer resp.Body.Close()
	var c mgmtapitest.Counts
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	// Accepted counts what the rate limit let through: here every call (an
	// injected 429 is an answer, not the limit).
	assert.Equal(t, int64(4), sum(c.Accepted), "accepted over time: %v", c.Accepted)
	c.Accepted = nil
	assert.Equal(t, mgmtapitest.Counts{Posts: 4, Delivered: 1, Gone: 1, Throttled: 1, ServerErrors: 1, MaxInFlight: c.MaxInFlight}, c)
}

func sum(ns []int64) int64 {
	total := int64(0)
	for _, n := range ns {
		total += n
	}
	return total
}

func TestRateLimitAnswers429(t *testing.T) {
	srv := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true, RateLimit: 0.01, Burst: 2})
	defer srv.Close()
	var statuses []int
	for i := range 4 {
		statuses = append(statuses, post(t, fmt.Sprintf("%s/@connections/c%d", srv.URL(), i)).StatusCode)
	}
	assert.Equal(t, []int{200, 200, 429, 429}, statuses, "a burst of 2, then the bucket is empty")
	assert.Equal(t, int64(2), srv.Counts().Throttled)
	assert.Equal(t, int64(2), sum(srv.Counts().Accepted), "the two calls let through; the 429s are not counted")
}

func TestAcceptedOverTime(t *testing.T) {
	srv := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true})
	defer srv.Close()
	assert.Nil(t, srv.Counts().Accepted, "nothing before the first call")
	for i := range 3 {
		post(t, fmt.Sprintf("%s/@connections/c%d", srv.URL(), i))
	}
	time.Sleep(2*mgmtapitest.AcceptedWindow + 10*time.Millisecond)
	post(t, srv.URL()+"/@connections/c3")
	acc := srv.Counts().Accepted
	require.GreaterOrEqual(t, len(acc), 3, "the last call is two windows or more after the first: %v", acc)
	assert.Equal(t, int64(4), sum(acc), "every call counted once: %v", acc)
	assert.Equal(t, int64(1), acc[len(acc)-1], "the last window holds the last call: %v", acc)
	assert.GreaterOrEqual(t, acc[0], int64(1), "the first window holds the first call: %v", acc)
}

func TestDeadShare(t *testing.T) {
	srv := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true, DeadShare: 0.1})
	defer srv.Close()
	dead := 0
	for i := range 10000 {
		id := fmt.Sprintf("c%06d", i)
		assert.Equal(t, mgmtapitest.DeadByShare(id, 0.1), srv.IsDead(id))
		if srv.IsDead(id) {
			dead++
		}
	}
	assert.InDelta(t, 1000, dead, 150, "about a tenth of the ids are dead")
	assert.False(t, mgmtapitest.DeadByShare("c000001", 0))

	resp := post(t, srv.URL()+"/@connections/"+firstDead(t))
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	_, _ = io.Copy(io.Discard, resp.Body)
}

func firstDead(t *testing.T) string {
	t.Helper()
	for i := range 1000 {
		if id := fmt.Sprintf("c%06d", i); mgmtapitest.DeadByShare(id, 0.1) {
			return id
		}
	}
	t.Fatal("no dead id among 1000")
	return ""
}

func TestConnectionIDUnescapes(t *testing.T) {
	tests := []struct {
		path string
		id   string
		ok   bool
	}{
		{"/test/@connections/abc%3D", "abc=", true},
		{"/test/@connections/a%2Fb", "a/b", true},
		{"/test/@connections/a/b", "", false},
		{"/test/@connections/", "", false},
		{"/other/@connections/abc", "", false},
	}
	for _, tt := range tests {
		id, ok := mgmtapitest.ConnectionID("test", tt.path)
		assert.Equal(t, tt.ok, ok, tt.path)
		assert.Equal(t, tt.id, id, tt.path)
	}
}

// Over HTTPS with SigV4 verification on, an unsigned call is answered as API
// Gateway answers it, and the certificate is trusted only through RootCAs.
func TestTLSAndSigV4RefuseUnsignedCall(t *testing.T) {
	srv := mgmtapitest.New(mgmtapitest.Options{AutoRegister: true, TLS: true, SigV4: &mgmtapitest.SigV4{Credentials: mgmtapitest.TestCredentials}})
	defer srv.Close()
	require.True(t, strings.HasPrefix(srv.URL(), "https://"))

	_, err := http.Post(srv.URL()+"/@connections/c1", "application/octet-stream", strings.NewReader("x"))
	require.Error(t, err, "the self-signed certificate is not trusted by default")

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.TLSConfig()}}
	resp, err := client.Post(srv.URL()+"/@connections/c1", "application/octet-stream", strings.NewReader("x"))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, mgmtapitest.ErrorTypeMissingToken, resp.Header.Get("x-amzn-ErrorType"))
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, map[string]string{"message": mgmtapitest.MessageMissingToken}, body)
	assert.Equal(t, int64(1), srv.Counts().Refused)
	assert.Contains(t, string(srv.CACertPEM()), "BEGIN CERTIFICATE")
}
