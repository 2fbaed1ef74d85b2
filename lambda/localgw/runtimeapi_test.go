package localgw_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
)

var (
	echoOnce sync.Once
	echoPath string
	echoErr  error
)

// echoBootstrap builds testdata/echobootstrap once, the way tools/package
// builds the real ones (static, lambda.norpc).
func echoBootstrap(t *testing.T) string {
	t.Helper()
	echoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "echobootstrap")
		if err != nil {
			echoErr = err
			return
		}
		echoPath = filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", echoPath, "./testdata/echobootstrap")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			echoErr = errors.New(string(out))
		}
	})
	require.NoError(t, echoErr, "build echo bootstrap")
	return echoPath
}

func newPool(t *testing.T, cfg localgw.BootstrapConfig) *localgw.Bootstrap {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = echoBootstrap(t)
	}
	if cfg.Name == "" {
		cfg.Name = "echo"
	}
	b, err := localgw.NewBootstrap(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

type echoResult struct {
	Value       string `json:"value"`
	PID         int    `json:"pid"`
	FunctionArn string `json:"functionArn"`
	RequestID   string `json:"requestId"`
	HasDeadline bool   `json:"hasDeadline"`
	Env         string `json:"env"`
	MemoryMB    int    `json:"memoryMB"`
	RemainingMs int64  `json:"remainingMs"`
}

func invokeEcho(t *testing.T, b *localgw.Bootstrap, mode, value string) (echoResult, error) {
	t.Helper()
	payload, _ := json.Marshal(map[string]string{"mode": mode, "value": value})
	out, err := b.Invoke(context.Background(), payload)
	var r echoResult
	if err == nil {
		require.NoError(t, json.Unmarshal(out, &r), "%s", out)
	}
	return r, err
}

func TestBootstrapRunsUnderRuntimeAPI(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{Name: "my-fn", Env: []string{"ECHO_ENV=from-config"}, MaxProcesses: 1})
	r, err := invokeEcho(t, b, "echo", "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", r.Value)
	assert.Equal(t, "arn:aws:lambda:us-east-1:000000000000:function:my-fn", r.FunctionArn)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, r.RequestID)
	assert.True(t, r.HasDeadline)
	assert.Equal(t, "from-config", r.Env)
	assert.Equal(t, 128, r.MemoryMB, "Lambda's default memory")

	r2, err := invokeEcho(t, b, "echo", "again")
	require.NoError(t, err)
	assert.Equal(t, r.PID, r2.PID, "a warm process is reused")
	assert.NotEqual(t, r.RequestID, r2.RequestID)

	procs := b.Processes()
	require.Len(t, procs, 1)
	assert.Equal(t, r.PID, procs[0].PID)
	assert.Equal(t, 2, procs[0].Invocations)
	assert.False(t, procs[0].FirstPollAt.IsZero())
	assert.Positive(t, procs[0].InitDuration)
	assert.False(t, procs[0].Exited)
}

// TestBootstrapTimeoutCountsFromTheHandOff: as on Lambda, a cold start's
// init does not count against the function's timeout (init has its own
// limit, localgw.InitLimit), and the deadline the handler sees is the
// timeout from when it got the event.
func TestBootstrapTimeoutCountsFromTheHandOff(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{Env: []string{"ECHO_INIT_SLEEP=1500ms"}, MaxProcesses: 1, Timeout: time.Second})
	r, err := invokeEcho(t, b, "echo", "after a slow init")
	require.NoError(t, err, "an init of 1.5 s within a timeout of 1 s")
	assert.Equal(t, "after a slow init", r.Value)
	assert.Positive(t, r.RemainingMs, "the deadline counts from the hand-off")
	assert.LessOrEqual(t, r.RemainingMs, int64(1000))
	procs := b.Processes()
	require.Len(t, procs, 1)
	assert.GreaterOrEqual(t, procs[0].InitDuration, 1500*time.Millisecond)
}

func TestBootstrapFunctionErrors(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{MaxProcesses: 1, Timeout: 2 * time.Second})
	for _, tc := range []struct {
		mode, value, errType, contains string
	}{
		{"error", "x", "customError", "failed: x"},
		{"plain-error", "", "errorString", "plain"},
		{"panic", "", "string", "boom"},
		{"exit", "", "Runtime.ExitError", "exit status 3"},
		{"sleep", "5s", "Sandbox.Timedout", "Task timed out after 2.00 seconds"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			_, err := invokeEcho(t, b, tc.mode, tc.value)
			var ferr *localgw.FunctionError
			require.ErrorAs(t, err, &ferr)
			assert.Equal(t, tc.errType, ferr.Type)
			assert.Contains(t, ferr.Message, tc.contains)
			// The pool recovers: the next invocation works.
			r, err := invokeEcho(t, b, "echo", "after "+tc.mode)
			require.NoError(t, err)
			assert.Equal(t, "after "+tc.mode, r.Value)
		})
	}
}

func TestBootstrapInitError(t *testing.T) {
	// "hang": the runtime reports its failed init and does not exit; the
	// invocation still fails with that error (not a timeout), as on Lambda.
	for _, mode := range []string{"1", "hang"} {
		t.Run(mode, func(t *testing.T) {
			b := newPool(t, localgw.BootstrapConfig{Env: []string{"ECHO_INIT_FAIL=" + mode}, MaxProcesses: 1})
			_, err := invokeEcho(t, b, "echo", "x")
			var ferr *localgw.FunctionError
			require.ErrorAs(t, err, &ferr)
			assert.Equal(t, "ConfigError", ferr.Type)
			assert.Equal(t, "no config", ferr.Message)
		})
	}
}

// An init error reported after init (the runtime already polled /next) is
// refused with 403, and a later crash of that process is reported as the
// crash it is, not as the refused init error.
func TestBootstrapLateInitErrorIsRefused(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{MaxProcesses: 1})
	r, err := invokeEcho(t, b, "late-init-error", "")
	require.NoError(t, err)
	assert.Equal(t, "403", r.Value)
	_, err = invokeEcho(t, b, "exit", "")
	var ferr *localgw.FunctionError
	require.ErrorAs(t, err, &ferr)
	assert.Equal(t, "Runtime.ExitError", ferr.Type)
}

func TestBootstrapPoolRunsConcurrentInvocationsInSeparateProcesses(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{MaxProcesses: 3})
	var wg sync.WaitGroup
	pids := make([]int, 6)
	for i := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := invokeEcho(t, b, "sleep", "300ms")
			assert.NoError(t, err)
			pids[i] = r.PID
		}()
	}
	wg.Wait()
	distinct := map[int]bool{}
	for _, p := range pids {
		distinct[p] = true
	}
	assert.LessOrEqual(t, len(distinct), 3, "never more processes than MaxProcesses")
	assert.Len(t, b.Processes(), len(distinct))
	assert.Greater(t, len(distinct), 1, "concurrent invocations get their own process")
}

func TestBootstrapCloseStopsProcesses(t *testing.T) {
	b, err := localgw.NewBootstrap(localgw.BootstrapConfig{Name: "echo", Path: echoBootstrap(t)})
	require.NoError(t, err)
	_, err = invokeEcho(t, b, "echo", "x")
	require.NoError(t, err)
	require.NoError(t, b.Close())
	for _, p := range b.Processes() {
		assert.True(t, p.Exited, "pid %d", p.PID)
	}
	_, err = invokeEcho(t, b, "echo", "x")
	assert.Error(t, err)
}

func TestNewBootstrapValidates(t *testing.T) {
	_, err := localgw.NewBootstrap(localgw.BootstrapConfig{Name: "x", Path: filepath.Join(t.TempDir(), "missing")})
	assert.Error(t, err)
	_, err = localgw.NewBootstrap(localgw.BootstrapConfig{Name: "x", Path: t.TempDir()})
	assert.Error(t, err)
	_, err = localgw.NewBootstrap(localgw.BootstrapConfig{Path: "/bin/true"})
	assert.Error(t, err)
}

// Lambda's response limit is 6,291,556 bytes, the figure its
// ResponseSizeTooLarge error names: a response of exactly that size arrives,
// one byte more is the error.
func TestBootstrapResponseSizeLimit(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{MaxProcesses: 1})
	invoke := func(n int) ([]byte, error) {
		payload, _ := json.Marshal(map[string]string{"mode": "size", "value": strconv.Itoa(n)})
		return b.Invoke(context.Background(), payload)
	}
	out, err := invoke(localgw.MaxResponsePayload)
	require.NoError(t, err)
	assert.Len(t, out, 6291556)
	_, err = invoke(localgw.MaxResponsePayload + 1)
	var ferr *localgw.FunctionError
	require.ErrorAs(t, err, &ferr)
	assert.Equal(t, "Function.ResponseSizeTooLarge", ferr.Type)
	assert.Contains(t, ferr.Message, "(6291556 bytes)")
}

// A function's memory reaches its runtime as on Lambda.
func TestBootstrapMemorySize(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{MemorySize: 743, MaxProcesses: 1})
	r, err := invokeEcho(t, b, "echo", "x")
	require.NoError(t, err)
	assert.Equal(t, 743, r.MemoryMB)
}

// The bootstraps run with the module's default timeout and memory of each
// function: the table in localgw follows variables.tf.
func TestModuleFunctionsFollowTheModuleDefaults(t *testing.T) {
	src, err := os.ReadFile("../../variables.tf")
	require.NoError(t, err)
	tf := string(src)
	block := func(name string) string {
		i := strings.Index(tf, `variable "`+name+`"`)
		require.GreaterOrEqual(t, i, 0, name)
		j := strings.Index(tf[i:], "\n}\n")
		require.Greater(t, j, 0, name)
		return tf[i : i+j]
	}
	def := func(body, key string) int {
		m := regexp.MustCompile(`(?m)^\s*` + key + `\s*=\s*optional\(number,\s*(\d+)\)`).FindStringSubmatch(body)
		require.NotNil(t, m, key)
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return n
	}
	timeouts, memory, pusherVar := block("lambda_timeout"), block("lambda_memory_size"), block("pusher")
	for _, fn := range []string{localgw.FunctionWebSocket, localgw.FunctionAuthorizer, localgw.FunctionPublisher} {
		assert.Equal(t, time.Duration(def(timeouts, fn))*time.Second, localgw.ModuleFunctions[fn].Timeout, fn)
		assert.Equal(t, def(memory, fn), localgw.ModuleFunctions[fn].MemorySize, fn)
	}
	assert.Equal(t, time.Duration(def(pusherVar, "timeout"))*time.Second, localgw.ModuleFunctions[localgw.FunctionPusher].Timeout)
	assert.Equal(t, def(pusherVar, "memory_size"), localgw.ModuleFunctions[localgw.FunctionPusher].MemorySize)

	// The Go runtime settings follow lambda.tf's go_runtime_environment.
	lambdaTF, err := os.ReadFile("../../lambda.tf")
	require.NoError(t, err)
	for _, line := range []string{`GOGC       = "400"`, `GOMEMLIMIT = "${floor(mb * 0.8)}MiB"`, `GOMAXPROCS = tostring(max(1, floor(mb / 1769)))`} {
		assert.Contains(t, string(lambdaTF), line, "lambda.tf changed: change localgw.GoRuntimeEnv with it")
	}
	assert.Equal(t, []string{"GOGC=400", "GOMEMLIMIT=204MiB", "GOMAXPROCS=1"}, localgw.GoRuntimeEnv(256))
	assert.Equal(t, []string{"GOGC=400", "GOMEMLIMIT=594MiB", "GOMAXPROCS=1"}, localgw.GoRuntimeEnv(743))
	assert.Equal(t, []string{"GOGC=400", "GOMEMLIMIT=2880MiB", "GOMAXPROCS=2"}, localgw.GoRuntimeEnv(3600))
}

// TestBootstrapTakesTheRequestIDOfItsContext: the Invoke API's
// x-amzn-RequestId reaches the bootstrap as Lambda-Runtime-Aws-Request-Id
// (through ctx's lambdacontext), as on Lambda, where they are one id.
func TestBootstrapTakesTheRequestIDOfItsContext(t *testing.T) {
	b := newPool(t, localgw.BootstrapConfig{MaxProcesses: 1})
	const id = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
	out, err := b.Invoke(ctx, []byte(`{"mode":"echo","value":"x"}`))
	require.NoError(t, err)
	var r echoResult
	require.NoError(t, json.Unmarshal(out, &r))
	assert.Equal(t, id, r.RequestID)
}
