package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// the lambda.norpc tag. It is built once per test binary.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	path, err := builtBootstrap()
	require.NoError(t, err)
	return path
}

var (
	buildDir       string
	builtBootstrap = sync.OnceValues(func() (string, error) {
		goBin, err := exec.LookPath("go")
		if err != nil {
			return "", fmt.Errorf("the go command must be on PATH to build the bootstrap: %w", err)
		}
		if buildDir, err = os.MkdirTemp("", "authorizer-bootstrap-"); err != nil {
			return "", err
		}
		out := filepath.Join(buildDir, "bootstrap")
		cmd := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-o", out, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if output, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build: %w: %s", err, output)
		}
		return out, nil
	})
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
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

// runInvocations starts bin with the Lambda environment plus env against the
// runtime API and waits for n answers, by request id. stdout holds the
// function's JSON logs; the runtime client writes its own plain lines (such
// as the returned error) to stderr.
func runInvocations(ctx context.Context, t *testing.T, bin string, rt *runtimeAPI, srv *httptest.Server, n int, env ...string) (got map[string]invocationResult, stdout, stderr *syncBuffer) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = lambdaEnv(t, strings.TrimPrefix(srv.URL, "http://"), env...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	got = map[string]invocationResult{}
	for len(got) < n {
		select {
		case r := <-rt.results:
			got[r.requestID] = r
		case <-ctx.Done():
			t.Fatalf("bootstrap answered %d of %d invocations; output:\n%s%s", len(got), n, stdout.String(), stderr.String())
		}
	}
	return got, stdout, stderr
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

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, stdout, stderr := runInvocations(ctx, t, bin, rt, srv, 3,
		"WS_JWT_SECRET="+testSecret, "WS_JWT_ISSUER=https://issuer.example", "WS_LOG_LEVEL=debug")

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

func TestBootstrapRefusesToStartWithABadConfig(t *testing.T) {
	bin := buildBootstrap(t)
	_, srv := newRuntimeAPI(t)

	for _, tc := range []struct {
		name    string
		env     []string
		wantMsg string
	}{
		{name: "short secret", env: []string{"WS_JWT_SECRET=short"}, wantMsg: "secret is 5 bytes; HS256 needs at least 32"},
		{name: "negative leeway", env: []string{"WS_JWT_SECRET=" + testSecret, "WS_JWT_LEEWAY=-5s"}, wantMsg: `WS_JWT_LEEWAY: leeway "-5s" is negative`},
		{name: "garbage leeway", env: []string{"WS_JWT_SECRET=" + testSecret, "WS_JWT_LEEWAY=soon"}, wantMsg: `leeway "soon": want a duration`},
		{name: "bad identity source", env: []string{"WS_JWT_SECRET=" + testSecret, "WS_JWT_IDENTITY_SOURCE=route.request.cookie.token"}, wantMsg: "WS_JWT_IDENTITY_SOURCE"},
		{name: "JWKS URL over http", env: []string{"WS_JWT_JWKS_URL=http://127.0.0.1:1/jwks.json"}, wantMsg: "only https is allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = lambdaEnv(t, strings.TrimPrefix(srv.URL, "http://"), tc.env...)
			out, err := cmd.Output()
			var exitErr *exec.ExitError
			require.ErrorAs(t, err, &exitErr, "the bootstrap must exit; output: %s", out)
			assert.Equal(t, 1, exitErr.ExitCode())

			var entry map[string]any
			require.NoError(t, json.Unmarshal(bytes.TrimSpace(out), &entry), "one JSON log line: %s", out)
			assert.Equal(t, "ERROR", entry["level"])
			assert.Equal(t, "start authorizer", entry["msg"])
			assert.Contains(t, entry["error"], tc.wantMsg)
			assert.NotContains(t, string(out), "WS_JWT_SECRET=short")
		})
	}
}

// The shipped bootstrap with a Cognito-style setup: keys from an https
// jwks_uri (trusted through SSL_CERT_FILE, as the system roots are on
// Lambda), the token from the Authorization header, access tokens checked
// by client_id, and a clock-skew leeway.
func TestBootstrapVerifiesTokensFromAJWKSURL(t *testing.T) {
	bin := buildBootstrap(t)
	rt, srv := newRuntimeAPI(t)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	jwks, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	require.NoError(t, err)
	var fetches atomic.Int32
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(idp.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.Certificate().Raw}), 0o600))
	issuer := idp.URL + "/eu-west-1_AbCdEfGhI"

	sign := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	access := func(sub string, exp time.Time) string {
		return sign(jwt.MapClaims{"sub": sub, "iss": issuer, "client_id": "client-1", "token_use": "access", "exp": exp.Unix()})
	}
	// Expired 10 s ago: inside the 30 s leeway.
	justExpired := access("user-9", time.Now().Add(-10*time.Second))
	longSub := access(strings.Repeat("a", 3000), time.Now().Add(time.Hour))
	withHeader := func(value string) func(map[string]any) {
		return func(ev map[string]any) { ev["headers"].(map[string]any)["Authorization"] = value }
	}
	rt.events <- [2]string{"req-allow", connectEvent(t, withHeader("Bearer "+justExpired))}
	rt.events <- [2]string{"req-query-only", connectEvent(t, func(ev map[string]any) {
		ev["queryStringParameters"].(map[string]any)["token"] = access("user-9", time.Now().Add(time.Hour))
	})}
	rt.events <- [2]string{"req-long-sub", connectEvent(t, withHeader("Bearer "+longSub))}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, _, _ := runInvocations(ctx, t, bin, rt, srv, 3,
		"SSL_CERT_FILE="+caFile,
		"WS_JWT_JWKS_URL="+idp.URL+"/eu-west-1_AbCdEfGhI/.well-known/jwks.json",
		"WS_JWT_ISSUER="+issuer, "WS_JWT_AUDIENCE=client-1", "WS_JWT_TOKEN_USE=access",
		"WS_JWT_IDENTITY_SOURCE=route.request.header.Authorization", "WS_JWT_LEEWAY=30")
	effect := func(body []byte) string {
		var resp struct {
			PrincipalID    string `json:"principalId"`
			PolicyDocument struct {
				Statement []struct{ Effect string } `json:"Statement"`
			} `json:"policyDocument"`
		}
		require.NoError(t, json.Unmarshal(body, &resp), "%s", body)
		require.Len(t, resp.PolicyDocument.Statement, 1)
		return resp.PrincipalID + ":" + resp.PolicyDocument.Statement[0].Effect
	}
	require.False(t, got["req-allow"].isError, "%s", got["req-allow"].body)
	assert.Equal(t, "user-9:Allow", effect(got["req-allow"].body))
	require.True(t, got["req-query-only"].isError, "the token in ?token= is not looked at: %s", got["req-query-only"].body)
	assert.Contains(t, string(got["req-query-only"].body), `"errorMessage":"Unauthorized"`)
	require.False(t, got["req-long-sub"].isError, "%s", got["req-long-sub"].body)
	assert.Equal(t, "anonymous:Deny", effect(got["req-long-sub"].body))
	assert.EqualValues(t, 1, fetches.Load(), "the key set is fetched once, at cold start")
}
