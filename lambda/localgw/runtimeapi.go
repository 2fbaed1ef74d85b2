package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

// runtimeAPIPrefix is the Lambda Runtime API's path prefix.
const runtimeAPIPrefix = "/2018-06-01/runtime/"

// BootstrapConfig configures a pool of processes running one compiled Lambda
// bootstrap (a provided.al2023 function built for the host).
type BootstrapConfig struct {
	// Name is the function name (AWS_LAMBDA_FUNCTION_NAME).
	Name string
	// Path is the bootstrap executable.
	Path string
	// Env is the function's environment, KEY=VALUE. The Lambda variables
	// (AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME, ...) are added.
	Env []string
	// MaxProcesses bounds the concurrent invocations, one process each (Lambda's
	// execution environments). Default 4.
	MaxProcesses int
	// Timeout is the function timeout; an invocation running longer kills its
	// process and fails with Sandbox.Timedout. Default 30s.
	Timeout time.Duration
	// MemorySize is the function's memory in MB
	// (AWS_LAMBDA_FUNCTION_MEMORY_SIZE). Default 128.
	MemorySize int
	// Region and AccountID fill the invoked function ARN. Defaults us-east-1, 000000000000.
	Region, AccountID string
	// Output receives the processes' stdout and stderr; nil discards them.
	Output io.Writer
	// Metrics, when set, also receives the metrics of the EMF lines each
	// process writes to stdout (metrics.EMFTap), as CloudWatch Logs turns
	// them into metrics on AWS: the gateway's GET /metrics.
	Metrics metrics.Recorder
	// Logger logs process starts and exits; nil means slog.Default().
	Logger *slog.Logger
}

// ProcessStats describes one bootstrap process (one execution environment).
type ProcessStats struct {
	// Function is the function name.
	Function string
	// PID is the process id.
	PID int
	// StartedAt is when the process was started.
	StartedAt time.Time
	// FirstPollAt is when it first asked for an invocation (zero until then).
	FirstPollAt time.Time
	// InitDuration is FirstPollAt minus StartedAt: the cold start.
	InitDuration time.Duration
	// Invocations counts the invocations it has been handed.
	Invocations int
	// Exited reports whether the process has ended.
	Exited bool
}

// Bootstrap runs invocations of one function on a pool of bootstrap
// processes, each behind its own Lambda Runtime API server. Its Invoke method
// is a Function. Close stops every process it started.
type Bootstrap struct {
	cfg BootstrapConfig
	log *slog.Logger

	mu      sync.Mutex
	idle    []*process
	all     []*process
	running int
	changed chan struct{} // closed (and replaced) whenever a process is released or removed
	closed  bool
}

// NewBootstrap checks that the executable exists and returns an idle pool;
// processes start on demand.
func NewBootstrap(cfg BootstrapConfig) (*Bootstrap, error) {
	if cfg.Name == "" {
		return nil, errors.New("new bootstrap: empty function name")
	}
	st, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("new bootstrap %s: %w", cfg.Name, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("new bootstrap %s: %s is not an executable file", cfg.Name, cfg.Path)
	}
	if abs, err := filepath.Abs(cfg.Path); err == nil {
		cfg.Path = abs
	}
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MemorySize <= 0 {
		cfg.MemorySize = 128
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Bootstrap{cfg: cfg, log: cfg.Logger, changed: make(chan struct{})}, nil
}

// Processes returns the stats of every process the pool has started.
func (b *Bootstrap) Processes() []ProcessStats {
	b.mu.Lock()
	all := append([]*process(nil), b.all...)
	b.mu.Unlock()
	out := make([]ProcessStats, 0, len(all))
	for _, p := range all {
		out = append(out, p.stats())
	}
	return out
}

// Function returns the pool as a Function.
func (b *Bootstrap) Function() Function { return b.Invoke }

// Invoke runs one invocation on an idle process, starting one when fewer
// than MaxProcesses run, or waits for one to be free. When ctx ends first,
// Invoke returns its error but the invocation runs to completion (or to the
// function's Timeout) in the background, as on Lambda: the process is
// neither killed nor handed another event meanwhile.
//
// The invocation's request id (Lambda-Runtime-Aws-Request-Id, and the
// "RequestId:" of Lambda's error messages) is the AwsRequestID of ctx's
// lambdacontext when it has one, as the Invoke API sets it from its
// x-amzn-RequestId, and a new one otherwise.
func (b *Bootstrap) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	type result struct {
		out []byte
		err error
	}
	id := newUUID()
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		id = lc.AwsRequestID
	}
	for {
		p, err := b.acquire(ctx)
		if err != nil {
			return nil, err
		}
		done := make(chan result, 1)
		go func() {
			out, err, healthy := p.invoke(id, payload, b.cfg.Timeout)
			b.release(p, healthy)
			done <- result{out, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			return nil, fmt.Errorf("invoke %s: %w", b.cfg.Name, ctx.Err())
		}
		if errors.Is(r.err, errStale) {
			// A warm process died between invocations (after a panic, say):
			// the event never reached it, so run it in a fresh one.
			continue
		}
		return r.out, r.err
	}
}

// errStale means a warm process exited before it took the invocation.
var errStale = errors.New("process exited before taking the invocation")

func (b *Bootstrap) acquire(ctx context.Context) (*process, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, fmt.Errorf("invoke %s: function pool closed", b.cfg.Name)
		}
		if n := len(b.idle); n > 0 {
			p := b.idle[n-1]
			b.idle = b.idle[:n-1]
			b.mu.Unlock()
			if p.alive() {
				return p, nil
			}
			b.release(p, false)
			continue
		}
		if b.running < b.cfg.MaxProcesses {
			b.running++
			b.mu.Unlock()
			p, err := b.start()
			if err != nil {
				b.release(nil, false)
				return nil, err
			}
			return p, nil
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("invoke %s: waiting for a free process: %w", b.cfg.Name, ctx.Err())
		}
	}
}

// release returns a healthy process to the pool or stops a broken one.
func (b *Bootstrap) release(p *process, healthy bool) {
	b.mu.Lock()
	if p != nil && healthy && !b.closed {
		b.idle = append(b.idle, p)
	} else {
		b.running--
		if p != nil {
			p.stop()
		}
	}
	// Wake every waiter: each re-checks the pool, so no release is lost.
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// Close stops every process the pool started and waits for them to exit.
func (b *Bootstrap) Close() error {
	b.mu.Lock()
	b.closed = true
	all := append([]*process(nil), b.all...)
	b.mu.Unlock()
	for _, p := range all {
		p.stop()
	}
	for _, p := range all {
		<-p.exited
	}
	return nil
}

// start launches one process behind a fresh Runtime API server.
func (b *Bootstrap) start() (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start %s: runtime api listener: %w", b.cfg.Name, err)
	}
	p := &process{
		log:     b.log,
		fn:      b.cfg.Name,
		arn:     fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", b.cfg.Region, b.cfg.AccountID, b.cfg.Name),
		next:    make(chan *invocation),
		exited:  make(chan struct{}),
		started: make(chan struct{}),
		polled:  make(chan struct{}),
		pending: map[string]*invocation{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()

	cmd := exec.Command(b.cfg.Path)
	cmd.Dir = filepath.Dir(b.cfg.Path)
	cmd.Env = append(lambdaEnv(b.cfg, ln.Addr().String()), b.cfg.Env...)
	cmd.Stdout = b.cfg.Output
	cmd.Stderr = b.cfg.Output
	var tap io.Closer
	if b.cfg.Metrics != nil {
		// Only the namespace the process is told to write to, as the
		// module's dashboard reads only its own: a route's own function
		// writing EMF for its namespace moves nothing here.
		t := metrics.EMFTapNamespace(b.cfg.Output, b.cfg.Metrics, metrics.NamespaceFromEnv(envLookup(cmd.Env)))
		cmd.Stdout, tap = t, t
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd = cmd
	p.mu.Lock() // serveNext may read startedAt as soon as the process runs
	p.startedAt = time.Now()
	p.mu.Unlock()
	err = cmd.Start()
	close(p.started)
	if err != nil {
		_ = p.srv.Close()
		return nil, fmt.Errorf("start %s: %w", b.cfg.Name, err)
	}
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.all = append(b.all, p)
	}
	b.mu.Unlock()
	if closed {
		// Close ran while the process started: it would never be stopped.
		p.stop()
		_ = cmd.Wait()
		_ = p.srv.Close()
		return nil, fmt.Errorf("start %s: function pool closed", b.cfg.Name)
	}
	b.log.Debug("bootstrap started", "function", b.cfg.Name, "pid", cmd.Process.Pid)
	go func() {
		err := cmd.Wait()
		if tap != nil {
			_ = tap.Close()
		}
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(p.exited)
		_ = p.srv.Close()
		b.log.Debug("bootstrap exited", "function", b.cfg.Name, "pid", cmd.Process.Pid, "error", err)
	}()
	return p, nil
}

// lambdaEnv is the environment Lambda gives a provided.al2023 function.
func lambdaEnv(cfg BootstrapConfig, runtimeAPI string) []string {
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME=" + cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(cfg.MemorySize),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME=local",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_REGION=" + cfg.Region,
		"AWS_DEFAULT_REGION=" + cfg.Region,
		"LAMBDA_TASK_ROOT=" + filepath.Dir(cfg.Path),
		"LAMBDA_RUNTIME_DIR=" + filepath.Dir(cfg.Path),
		"_HANDLER=bootstrap",
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
	return env
}

// invocation is one event handed to a process.
type invocation struct {
	id      string
	payload []byte
	timeout time.Duration // counted from the hand-off (the process's invocation/next)
	done    chan invokeResult
}

// InitLimit is Lambda's limit on a function's init phase (starting the
// runtime until its first invocation/next). As on Lambda, the function's
// timeout counts from the hand-off of the event, not from the start of a
// cold process; a process whose init overran is given the function's
// timeout again before the invocation fails (Lambda retries the init within
// it).
const InitLimit = 10 * time.Second

type invokeResult struct {
	body []byte
	ferr *FunctionError
}

// process is one bootstrap process and the Runtime API server it talks to.
type process struct {
	log     *slog.Logger
	fn, arn string
	cmd     *exec.Cmd
	srv     *http.Server
	next    chan *invocation
	exited  chan struct{}
	polled  chan struct{}
	// started is closed once cmd.Start has returned: the process may call
	// the runtime API (an init error stops it) before Start has set
	// cmd.Process.
	started chan struct{}

	mu          sync.Mutex
	pending     map[string]*invocation
	startedAt   time.Time
	firstPollAt time.Time
	invocations int
	initErr     *FunctionError
	exitErr     error
	stopOnce    sync.Once
}

func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *process) stats() ProcessStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ProcessStats{Function: p.fn, StartedAt: p.startedAt, FirstPollAt: p.firstPollAt, Invocations: p.invocations, Exited: !p.alive()}
	if p.cmd.Process != nil {
		s.PID = p.cmd.Process.Pid
	}
	if !p.firstPollAt.IsZero() {
		s.InitDuration = p.firstPollAt.Sub(p.startedAt)
	}
	return s
}

// stop kills the process (the one this pool started, by PID) and its group.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		<-p.started
		if p.cmd.Process == nil {
			return
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
	})
}

// invoke hands one event to the process and waits for its answer. healthy
// is false when the process died or timed out.
func (p *process) invoke(id string, payload []byte, timeout time.Duration) ([]byte, error, bool) {
	inv := &invocation{id: id, payload: payload, timeout: timeout, done: make(chan invokeResult, 1)}
	p.mu.Lock()
	p.pending[inv.id] = inv
	p.invocations++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, inv.id)
		p.mu.Unlock()
	}()
	handoff := time.NewTimer(InitLimit + timeout)
	defer handoff.Stop()
	select {
	case p.next <- inv:
	case <-p.exited:
		p.mu.Lock()
		warm := p.invocations > 1 && p.initErr == nil
		p.mu.Unlock()
		if warm {
			return nil, errStale, false
		}
		return nil, p.exitError(inv.id), false
	case <-handoff.C:
		return nil, p.timeoutError(inv.id, timeout), false
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-inv.done:
		if r.ferr != nil {
			return nil, r.ferr, true
		}
		return r.body, nil, true
	case <-p.exited:
		return nil, p.exitError(inv.id), false
	case <-timer.C:
		return nil, p.timeoutError(inv.id, timeout), false
	}
}

func (p *process) exitError(requestID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.initErr != nil {
		return p.initErr
	}
	msg := "Runtime exited without providing a reason"
	if p.exitErr != nil {
		msg = "Runtime exited with error: " + p.exitErr.Error()
	}
	return &FunctionError{Type: "Runtime.ExitError", Message: fmt.Sprintf("RequestId: %s Error: %s", requestID, msg)}
}

func (p *process) timeoutError(requestID string, timeout time.Duration) error {
	return &FunctionError{Type: "Sandbox.Timedout", Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", requestID, timeout.Seconds())}
}

// ServeHTTP is the Runtime API: invocation/next, invocation/{id}/response,
// invocation/{id}/error and init/error.
func (p *process) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, runtimeAPIPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case path == "invocation/next" && r.Method == http.MethodGet:
		p.serveNext(w, r)
	case path == "init/error" && r.Method == http.MethodPost:
		ferr := readRuntimeError(r, "Runtime.InitError")
		p.mu.Lock()
		initialized := !p.firstPollAt.IsZero()
		if !initialized {
			p.initErr = ferr
		}
		p.mu.Unlock()
		if initialized {
			// Init ended with the first /next: as Lambda, refuse the report.
			writeRuntimeError(w, http.StatusForbidden, "InvalidStateTransition", "State transition from Ready to InitError is not allowed: the runtime already asked for an invocation")
			return
		}
		writeRuntimeAccepted(w)
		// A failed init ends the environment, as on Lambda: the waiting
		// invocation fails with this error (exitError) and the next one
		// starts a new process, whatever this one does next.
		go p.stop()
	case strings.HasPrefix(path, "invocation/") && r.Method == http.MethodPost:
		id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		if kind != "response" && kind != "error" {
			http.NotFound(w, r)
			return
		}
		// The first answer claims the invocation; a second one for the same
		// id is refused like an unknown id instead of blocking on inv.done.
		p.mu.Lock()
		inv := p.pending[id]
		delete(p.pending, id)
		p.mu.Unlock()
		if inv == nil {
			writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
			return
		}
		switch kind {
		case "response":
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponsePayload+1))
			if err != nil {
				writeRuntimeError(w, http.StatusBadRequest, "InvalidRequest", "could not read the response")
				inv.done <- invokeResult{ferr: &FunctionError{Type: "Runtime.InvalidResponse", Message: "could not read the response: " + err.Error()}}
				return
			}
			if len(body) > MaxResponsePayload {
				writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response exceeds 6 MB")
				inv.done <- invokeResult{ferr: &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxResponsePayload)}}
				return
			}
			inv.done <- invokeResult{body: body}
		case "error":
			inv.done <- invokeResult{ferr: readRuntimeError(r, "Runtime.Unknown")}
		}
		writeRuntimeAccepted(w)
	default:
		http.NotFound(w, r)
	}
}

// serveNext blocks until an invocation is handed to the process.
func (p *process) serveNext(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.firstPollAt.IsZero() {
		p.firstPollAt = time.Now()
		close(p.polled)
		// The process may poll before cmd.Start has returned and set cmd.Process: no pid here.
		p.log.Info("bootstrap ready", "function", p.fn, "initDuration", p.firstPollAt.Sub(p.startedAt))
	}
	p.mu.Unlock()
	select {
	case inv := <-p.next:
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(inv.timeout).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", p.arn)
		h.Set("Lambda-Runtime-Trace-Id", newTraceID(time.Now().Unix())+";Parent=0000000000000000;Sampled=0")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
	case <-p.exited:
	}
}

func readRuntimeError(r *http.Request, fallbackType string) *FunctionError {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxInvokePayload))
	var ferr FunctionError
	if json.Unmarshal(body, &ferr) != nil || (ferr.Message == "" && ferr.Type == "") {
		ferr = FunctionError{Message: string(body)}
	}
	if ferr.Type == "" {
		ferr.Type = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	}
	if ferr.Type == "" {
		ferr.Type = fallbackType
	}
	return &ferr
}

func writeRuntimeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

func writeRuntimeError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"errorType": errorType, "errorMessage": message})
	_, _ = w.Write(body)
}

// envLookup reads a variable from a process environment list (the last
// NAME=value wins, as in exec).
func envLookup(env []string) func(string) string {
	return func(name string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], name+"="); ok {
				return v
			}
		}
		return ""
	}
}
