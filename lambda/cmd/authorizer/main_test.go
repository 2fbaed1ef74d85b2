package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testSecret = "an-hs256-secret-of-at-least-32-bytes!"
	fixture    = "../../auth/testdata/apigw-websocket-request-authorizer-connect.json"
)

// invocationResult is what the bootstrap posted back for one invocation.
type invocationResult struct {
	requestID string
	isError   bool
	body      []byte
}

// runtimeAPI serves the Lambda Runtime API (2018-06-01) the way the Lambda
// service does for a provided.al2023 function: it hands out queued events on
// /next and records /response and /error posts.
type runtimeAPI struct {
	events  chan [2]string // request id, event JSON
	results chan invocationResult
}

func newRuntimeAPI(t *testing.T) (*runtimeAPI, *httptest.Server) {
	t.Helper()
	rt := &runtimeAPI{events: make(chan [2]string, 16), results: make(chan invocationResult, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case ev := <-rt.events:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", ev[0])
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:ws-authorizer")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-65c66b5f-4a7e3a6b1c2d3e4f5a6b7c8d;Sampled=0")
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, ev[1])
		case <-r.Context().Done():
		}
	})
	record := func(isError bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rt.results <- invocationResult{requestID: r.PathValue("id"), isError: isError, body: body}
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"status":"OK"}`)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", record(false))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", record(true))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return rt, srv
}

// buildBootstrap compiles this command the way it ships: a static binary with
// the lambda.norpc tag.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command must be on PATH to build the bootstrap")
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", output)
	return out
}

// lambdaEnv is the environment Lambda gives the function, with fake
// credentials and no shared AWS config so nothing reaches a real account.
func lambdaEnv(t *testing.T, runtimeAddr string, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAddr,
		"AWS_LAMBDA_FUNCTION_NAME=ws-authorizer",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_EC2_METADATA_DISABLED=true",
	}, extra...)
}

func connectEvent(t *testing.T, edit func(ev map[string]any)) string {
	t.Helper()
	raw, err := os.ReadFile(fixture)
	require.NoError(t, err, "read fixture")
	var ev map[string]any
	require.NoError(t, json.Unmarshal(raw, &ev))
	edit(ev)
	out, err := json.Marshal(ev)
	require.NoError(t, err)
	return string(out)
}

func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	require.NoError(t, err)
	return s
}

// syncBuffer collects the child's stdout while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBootstrapAnswersAuthorizerEvents(t *testing.T) {
	bin := buildBootstrap(t)
	rt, srv := newRuntimeAPI(t)

	valid := token(t, jwt.MapClaims{
		"sub": "user-9", "iss": "https://issuer.example", "exp": time.Now().Add(time.Hour).Unix(),
		"channels": []string{"private-team-*"},
	})
	expired := token(t, jwt.MapClaims{"sub": "user-9", "iss": "https://issuer.example", "exp": time.Now().Add(-time.Hour).Unix()})
	withQueryToken := func(tok string) func(map[string]any) {
		return func(ev map[string]any) { ev["queryStringParameters"].(map[string]any)["token"] = tok }
	}
	rt.events <- [2]string{"req-allow", connectEvent(t, withQueryToken(valid))}
	rt.events <- [2]string{"req-missing", connectEvent(t, func(map[string]any) {})}
	rt.events <- [2]string{"req-deny", connectEvent(t, withQueryToken(expired))}

	// stdout holds our JSON logs; the runtime client writes its own plain
	// lines (such as the returned error) to stderr.
	var stdout, stderr syncBuffer
	cmd := exec.Command(bin)
	cmd.Env = lambdaEnv(t, strings.TrimPrefix(srv.URL, "http://"),
		"WS_JWT_SECRET="+testSecret, "WS_JWT_ISSUER=https://issuer.example", "WS_LOG_LEVEL=debug")
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := map[string]invocationResult{}
	for len(got) < 3 {
		select {
		case r := <-rt.results:
			got[r.requestID] = r
		case <-ctx.Done():
			t.Fatalf("bootstrap answered %d of 3 invocations; output:\n%s%s", len(got), stdout.String(), stderr.String())
		}
	}

	allow := got["req-allow"]
	require.False(t, allow.isError, "allow: %s", allow.body)
	assert.JSONEq(t, `{
		"principalId": "user-9",
		"policyDocument": {"Version": "2012-10-17", "Statement": [{
			"Action": ["execute-api:Invoke"], "Effect": "Allow",
			"Resource": ["arn:aws:execute-api:us-east-1:123456789012:abcdef123/production/$connect"]}]},
		"context": {"userId": "user-9", "channels": "private-team-*"}
	}`, string(allow.body))

	missing := got["req-missing"]
	require.True(t, missing.isError, "missing token: %s", missing.body)
	var lambdaErr struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	require.NoError(t, json.Unmarshal(missing.body, &lambdaErr))
	assert.Equal(t, "Unauthorized", lambdaErr.ErrorMessage, "API Gateway turns exactly this message into 401")

	deny := got["req-deny"]
	require.False(t, deny.isError, "deny: %s", deny.body)
	assert.JSONEq(t, `{
		"principalId": "anonymous",
		"policyDocument": {"Version": "2012-10-17", "Statement": [{
			"Action": ["execute-api:Invoke"], "Effect": "Deny",
			"Resource": ["arn:aws:execute-api:us-east-1:123456789012:abcdef123/production/$connect"]}]}
	}`, string(deny.body))

	// The answer can reach the Runtime API before the child's last log line
	// has been copied from its stdout pipe: wait for the three decisions.
	// Each invocation also flushes one EMF line (metrics.Wrap).
	var decisions, emf []string
	var logs string
	for {
		logs = stdout.String()
		decisions, emf = decisions[:0], emf[:0]
		for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) != nil {
				continue // a line still being written
			}
			if d, ok := entry["decision"].(string); ok {
				decisions = append(decisions, fmt.Sprintf("%s:%s", entry["connectionId"], d))
			}
			if _, ok := entry["_aws"]; ok {
				metric := "AuthorizerAllowed"
				if r, ok := entry["Reason"].(string); ok {
					metric = "AuthorizerDenied:" + r
				}
				emf = append(emf, fmt.Sprintf("%s %s %v", entry["Function"], metric, entry[strings.Split(metric, ":")[0]]))
			}
		}
		if (len(decisions) >= 3 && len(emf) >= 3) || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var entry map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &entry), "JSON log line: %s", line)
	}
	for _, secret := range []string{testSecret, valid, expired} {
		assert.NotContains(t, logs+stderr.String(), secret, "logs must not contain tokens or secrets")
	}
	assert.Equal(t, []string{"Sq3SXeq5IAMCJ8g=:allow", "Sq3SXeq5IAMCJ8g=:unauthorized", "Sq3SXeq5IAMCJ8g=:deny"}, decisions)
	assert.Equal(t, []string{"authorizer AuthorizerAllowed 1", "authorizer AuthorizerDenied:no_token 1", "authorizer AuthorizerDenied:invalid_token 1"}, emf)
}

func TestBootstrapRefusesToStartWithoutAKey(t *testing.T) {
	bin := buildBootstrap(t)
	_, srv := newRuntimeAPI(t)

	cmd := exec.Command(bin)
	cmd.Env = lambdaEnv(t, strings.TrimPrefix(srv.URL, "http://"), "WS_JWT_SECRET=short")
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "the bootstrap must exit; output: %s", out)
	assert.Equal(t, 1, exitErr.ExitCode())

	var entry map[string]any
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(out), &entry), "one JSON log line: %s", out)
	assert.Equal(t, "ERROR", entry["level"])
	assert.Equal(t, "start authorizer", entry["msg"])
	assert.Contains(t, entry["error"], "secret is 5 bytes; HS256 needs at least 32")
	assert.NotContains(t, string(out), "WS_JWT_SECRET=short")
}
