//go:build e2e

// End-to-end tests against real parts: DynamoDB Local (WS_DYNAMODB_ENDPOINT)
// and the module's compiled bootstraps (WS_LAMBDA_DIR, or built here with
// tools/package for the host). Run them with `make test-e2e`.
package localgw_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// dynamoEndpoint names DynamoDB Local; with WS_REQUIRE_DYNAMODB=1 its absence fails the test.
func dynamoEndpoint(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("WS_DYNAMODB_ENDPOINT")
	if ep == "" {
		if os.Getenv("WS_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("WS_DYNAMODB_ENDPOINT is not set but WS_REQUIRE_DYNAMODB=1: start it with scripts/dynamodb-local.sh start")
		}
		t.Skip("WS_DYNAMODB_ENDPOINT not set (make test-e2e starts DynamoDB Local)")
	}
	return ep
}

func uniqueTable(t *testing.T) string {
	return fmt.Sprintf("wslocal-e2e-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano())
}

var (
	lambdaOnce sync.Once
	lambdaPath string
	lambdaErr  error
)

// lambdaDir returns a folder with websocket/, authorizer/ and publisher/
// bootstraps built for the host, exactly as tools/package builds the zips.
func lambdaDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("WS_LAMBDA_DIR"); dir != "" {
		return dir
	}
	lambdaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wslocal-lambdas")
		if err != nil {
			lambdaErr = err
			return
		}
		cmd := exec.Command("go", "run", "./tools/package", "-out", dir, "-os", runtime.GOOS, "-arch", runtime.GOARCH,
			localgw.FunctionWebSocket, localgw.FunctionAuthorizer, localgw.FunctionPublisher)
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			lambdaErr = fmt.Errorf("tools/package: %v: %s", err, out)
		}
		lambdaPath = dir
	})
	require.NoError(t, lambdaErr)
	return lambdaPath
}

// testLog sends the bootstraps' output to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestScenarioDynamoDBLocal(t *testing.T) {
	srv := startServer(t, localgw.ServerConfig{DynamoDBEndpoint: dynamoEndpoint(t), Table: uniqueTable(t), JWTSecret: testSecret})
	localgwtest.Scenario(t, target(srv))
}

func TestScenarioCompiledBootstraps(t *testing.T) {
	var out io.Writer = testLog{t}
	if testing.Verbose() {
		out = os.Stderr
	}
	srv := startServer(t, localgw.ServerConfig{
		DynamoDBEndpoint: dynamoEndpoint(t), Table: uniqueTable(t), JWTSecret: testSecret,
		LambdaDir: lambdaDir(t), ProcessOutput: out,
	})
	require.Nil(t, srv.Manager(), "bootstrap mode runs no in-process handler")
	tg := target(srv)
	tg.PublisherName = "wsforge-dev-publisher"
	localgwtest.Scenario(t, tg)

	seen := map[string]bool{}
	for _, p := range srv.Processes() {
		seen[p.Function] = true
		assert.Positive(t, p.PID)
		assert.Positive(t, p.InitDuration, "%s pid %d reached /next", p.Function, p.PID)
		t.Logf("%s pid %d: start-up %s, %d invocations", p.Function, p.PID, p.InitDuration, p.Invocations)
	}
	assert.Equal(t, map[string]bool{"websocket": true, "authorizer": true, "publisher": true}, seen)
}

// TestMetricsEndpointCompiledBootstraps: with the compiled bootstraps
// (-lambda-dir) GET /metrics follows the EMF lines they write to stdout
// (metrics.EMFTap), as CloudWatch Logs turns the same lines into metrics on
// AWS: the same events move the same counters as with the in-process
// handlers (TestMetricsEndpoint).
func TestMetricsEndpointCompiledBootstraps(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, localgw.ServerConfig{
		DynamoDBEndpoint: dynamoEndpoint(t), Table: uniqueTable(t), JWTSecret: testSecret,
		LambdaDir: lambdaDir(t),
	})
	checkMetricsMove(ctx, t, srv)
}
