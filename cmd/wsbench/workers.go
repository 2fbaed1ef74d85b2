package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsforge/terraform-aws-websocket/bench"
	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// The workers benchmark: one stand-in with one token bucket, k worker
// processes started together, each running lambda/fanout's Worker over its
// share of the batches that lambda/fanout's Enqueuer made of N recipients.
// Modes: "before" is the worker as it was before the rate hint and the start
// rate (no budget in the batches, each sender starting unlimited: its AIMD
// limiter finds the limit by itself); "alone" has the start rate but no
// hint; "hint" enqueues with WS_FANOUT_RATE_BUDGET = the stand-in's limit and
// WS_FANOUT_MAX_CONCURRENCY = k, so every batch carries MaxRate = limit / k;
// "hint-unpaced" is "hint" with sender.Options.PaceWindow negative, every
// post waking at its own token as before pacing ("before" is unpaced too);
// "hint-full" is "hint" with sender.Options.FullConcurrency, every worker
// keeping its whole concurrency in flight instead of its share.

// workerModes are the enqueue and sender settings compared.
var workerModes = []string{"before", "alone", "hint", "hint-unpaced", "hint-full"}

// workerResult is what one worker process reports.
type workerResult struct {
	// Batches is the number of batches it was given; Redelivered counts the
	// extra deliveries of batches that failed (SQS redelivers them), and
	// FailedBatches those still failing after maxReceive deliveries.
	Batches, Redelivered, FailedBatches int
	// Delivered counts distinct recipients that got the message; Duplicates
	// extra deliveries (a redelivered batch goes to all of its recipients).
	Delivered, Duplicates int
	// Throttled and Retries are the senders' counters.
	Throttled, Retries int
	// Wall runs from the start signal to the last batch.
	Wall time.Duration
	// CPU is the process's user+system time over the same span.
	CPU time.Duration
}

// workersRow is one k and mode.
type workersRow struct {
	K             int
	PerInvocation int
	Mode          string
	Hint          float64
	N, Live       int
	Workers       []workerResult
	Server        mgmtapitest.Counts
	Wall          time.Duration
}

func (r workersRow) sum() (res workerResult) {
	for _, w := range r.Workers {
		res.Batches += w.Batches
		res.Redelivered += w.Redelivered
		res.FailedBatches += w.FailedBatches
		res.Delivered += w.Delivered
		res.Duplicates += w.Duplicates
		res.Throttled += w.Throttled
		res.Retries += w.Retries
		res.CPU += w.CPU
	}
	return res
}

func runWorkers(args []string) error {
	fs := flag.NewFlagSet("workers", flag.ExitOnError)
	var sf serverFlags
	sf.register(fs)
	ks := fs.String("k", "1,2,4,8", "comma-separated worker counts (separate processes)")
	n := fs.Int("n", 100000, "recipients of the distributed send")
	batch := fs.Int("batch", fanout.DefaultBatchSize, "WS_FANOUT_BATCH_SIZE")
	modes := fs.String("modes", "before,hint", "before (no rate hint, senders start unlimited, no pacing grid), alone (no rate hint, senders start at 10,000/s), hint (WS_FANOUT_RATE_BUDGET = -rate split among k), hint-unpaced (hint without the pacing grid: every post wakes at its own token), hint-full (hint with each worker's whole concurrency in flight instead of its share of it)")
	concurrency := fs.Int("concurrency", bench.DefaultConcurrency, "WS_SEND_CONCURRENCY of each worker")
	perInvocation := fs.String("per-invocation", "1", "comma-separated distributed_fanout.messages_per_invocation values (batches per worker invocation, delivered together); auto: the module's default for each k (fanout.Settings.MessagesPerInvocation: about half a second of posting at the worker's share)")
	gogc := fs.String("client-gogc", "400", "GOGC of the worker processes")
	gomaxprocs := fs.Int("client-gomaxprocs", sendingGOMAXPROCS, "GOMAXPROCS of the worker processes (0 = the Go default)")
	ceiling := fs.Bool("ceiling", false, "per k, first measure k workers against a stand-in without rate limit (each sender unlimited, no hint): the machine's own ceiling for k processes")
	cpuprofile := fs.String("cpuprofile", "", "write each worker's CPU profile (from the start signal to its last batch) to cpu-k<k>-<mode>-<per invocation>-w<worker>.pprof in this folder")
	_ = fs.Parse(args)
	if err := sf.validate(); err != nil {
		return err
	}
	if sf.rate <= 0 {
		return errors.New("-rate must be positive")
	}
	switch {
	case *n < 1:
		return fmt.Errorf("-n %d: want at least 1 recipient", *n)
	case *batch < 1 || *batch > fanout.MaxBatchSize:
		return fmt.Errorf("-batch %d: want 1 to %d (WS_FANOUT_BATCH_SIZE)", *batch, fanout.MaxBatchSize)
	case *concurrency < 1:
		return fmt.Errorf("-concurrency %d: want at least 1", *concurrency)
	case *gomaxprocs < 0:
		return fmt.Errorf("-client-gomaxprocs %d: want 0 (the Go default) or more", *gomaxprocs)
	}
	if err := validGOGC("-client-gogc", *gogc); err != nil {
		return err
	}
	counts, err := positiveInts("-k", *ks)
	if err != nil {
		return err
	}
	var ms []string
	for _, m := range strings.Split(*modes, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(workerModes, m) {
			return fmt.Errorf("-modes: unknown mode %q (want before, alone, hint, hint-unpaced or hint-full)", m)
		}
		ms = append(ms, m)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	perInv, err := perInvocationValues(*perInvocation)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		if err := os.MkdirAll(*cpuprofile, 0o755); err != nil {
			return err
		}
	}
	loadBefore := loadAvg()
	var rows []workersRow
	ceilings := map[[2]int]float64{} // k, per invocation -> accepted calls/s without a limit
	for _, k := range counts {
		for _, pi := range perInv {
			if pi == perInvocationAuto {
				pi = fanout.Settings{RateBudget: sf.rate, MaxConcurrency: k, BatchSize: *batch}.MessagesPerInvocation()
			}
			if *ceiling {
				unlimited := sf
				unlimited.rate = 0
				fmt.Fprintf(os.Stderr, "wsbench: workers k=%d ceiling %d per invocation N=%d ...\n", k, pi, *n)
				r, err := measureWorkers(exe, unlimited, k, "before", *n, *batch, *concurrency, pi, clientEnv(*gogc, *gomaxprocs), "")
				if err != nil {
					return fmt.Errorf("k=%d ceiling: %w", k, err)
				}
				ceilings[[2]int{k, pi}] = r.accepted()
				fmt.Fprintf(os.Stderr, "wsbench: workers k=%d ceiling: %.0f calls/s\n", k, r.accepted())
			}
			for _, m := range ms {
				fmt.Fprintf(os.Stderr, "wsbench: workers k=%d %s %d per invocation N=%d ...\n", k, m, pi, *n)
				r, err := measureWorkers(exe, sf, k, m, *n, *batch, *concurrency, pi, clientEnv(*gogc, *gomaxprocs), *cpuprofile)
				if err != nil {
					return fmt.Errorf("k=%d %s: %w", k, m, err)
				}
				fmt.Fprintf(os.Stderr, "wsbench: workers k=%d %s: %d delivered, %d 429s, %s\n", k, m, r.Server.Delivered, r.Server.Throttled, r.Wall.Round(time.Millisecond))
				rows = append(rows, r)
			}
		}
	}
	fmt.Printf("Machine load (1-minute load average) before/after the run: %s / %s. Worker GOMAXPROCS %s.\n\n", loadBefore, loadAvg(), procsText(*gomaxprocs))
	fmt.Print(workersTable(rows, sf, *batch, *concurrency, ceilings))
	return nil
}

// perInvocationAuto stands for -per-invocation auto: the module's default
// for each k.
const perInvocationAuto = 0

// perInvocationValues parses -per-invocation: positive whole numbers or auto
// (perInvocationAuto).
func perInvocationValues(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if strings.TrimSpace(f) == "auto" {
			out = append(out, perInvocationAuto)
			continue
		}
		v, err := positiveInts("-per-invocation", f)
		if err != nil || v[0] > fanout.MaxMessagesPerInvocation {
			return nil, fmt.Errorf("-per-invocation %q: want 1 to %d (SQS's batch size for a Lambda event source) or auto", strings.TrimSpace(f), fanout.MaxMessagesPerInvocation)
		}
		out = append(out, v...)
	}
	return out, nil
}

// accepted is the stand-in's 200 and 410 answers per second of wall time.
func (r workersRow) accepted() float64 {
	return float64(r.Server.Delivered+r.Server.Gone) / r.Wall.Seconds()
}

// standIn is a running `wsbench serve` process.
type standIn struct {
	endpoint string       // stage URL
	caFile   string       // its certificate (PEM) when it serves HTTPS, else ""
	client   *http.Client // trusts it, for its counts
	stop     func()
}

// caArgs are the flags that make a child process trust the stand-in.
func (s *standIn) caArgs() []string {
	if s.caFile == "" {
		return nil
	}
	return []string{"-ca-file", s.caFile}
}

// startStandIn runs `wsbench serve` (writing its certificate to a temporary
// file when it serves HTTPS) and returns it once it has printed its URL.
func startStandIn(exe string, sf serverFlags) (*standIn, error) {
	tmp, err := os.MkdirTemp("", "wsbench-")
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(tmp, "ca.pem")
	srv := exec.Command(exe, append([]string{"serve", "-ca-file", caFile}, sf.args()...)...)
	srv.Stderr = os.Stderr
	srv.Env = append(os.Environ(), "GOGC="+sf.gogc)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := srv.Start(); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	s := &standIn{client: http.DefaultClient, stop: func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
		os.RemoveAll(tmp)
	}}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("server did not print its URL: %w", err)
	}
	s.endpoint = strings.TrimSpace(line)
	if sf.tls {
		pool, err := loadRootCAs(caFile)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.caFile = caFile
		s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return s, nil
}

// counts reads the stand-in's counts.
func (s *standIn) counts() (mgmtapitest.Counts, error) {
	var c mgmtapitest.Counts
	resp, err := s.client.Get(strings.TrimSuffix(s.endpoint, "/test") + mgmtapitest.CountsPath)
	if err != nil {
		return c, fmt.Errorf("server counts: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &c); err != nil {
		return c, fmt.Errorf("server counts %q: %w", body, err)
	}
	return c, nil
}

// rootCAsFrom loads -ca-file in a child process (nil when unset).
func rootCAsFrom(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	return loadRootCAs(caFile)
}

// capturedSQS is the queue as the publisher sees it: it keeps the message bodies.
type capturedSQS struct{ bodies []string }

func (q *capturedSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		q.bodies = append(q.bodies, aws.ToString(e.MessageBody))
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String(strconv.Itoa(len(q.bodies)))})
	}
	return out, nil
}

// enqueueBatches runs the publisher's Enqueuer over n recipients and returns the message bodies.
func enqueueBatches(endpoint string, n, batch int, budget float64, k int) ([]string, error) {
	q := &capturedSQS{}
	e, err := fanout.NewEnqueuer(q, fanout.Settings{QueueURL: "wsbench", BatchSize: batch, RateBudget: budget, MaxConcurrency: k})
	if err != nil {
		return nil, err
	}
	_, err = e.Distribute(context.Background(), endpoint, bench.DefaultPayload, benchPages(n))
	return q.bodies, err
}

// measureWorkers starts a stand-in and k worker processes, hands each its
// share of the batches, starts them together and collects their results.
// With profileDir set, each worker writes its CPU profile there.
func measureWorkers(exe string, sf serverFlags, k int, mode string, n, batch, concurrency, perInvocation int, env []string, profileDir string) (workersRow, error) {
	row := workersRow{K: k, Mode: mode, N: n, PerInvocation: perInvocation}
	for i := range n {
		if !mgmtapitest.DeadByShare(bench.ID(i), sf.dead) {
			row.Live++
		}
	}
	si, err := startStandIn(exe, sf)
	if err != nil {
		return row, err
	}
	defer si.stop()
	endpoint := si.endpoint
	budget := 0.0
	if mode == "hint" || mode == "hint-unpaced" || mode == "hint-full" {
		budget = sf.rate
		row.Hint = fanout.Settings{RateBudget: budget, MaxConcurrency: k}.RateHint()
	}
	bodies, err := enqueueBatches(endpoint, n, batch, budget, k)
	if err != nil {
		return row, err
	}
	type proc struct {
		cmd   *exec.Cmd
		in    io.WriteCloser
		out   *bufio.Reader
		stdin *bufio.Writer
	}
	procs := make([]*proc, k)
	defer func() {
		for _, p := range procs {
			if p != nil && p.cmd.Process != nil {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
		}
	}()
	for w := range k {
		startRate, pace := "0", "0s"
		if mode == "before" {
			startRate = "-1"
		}
		if mode == "before" || mode == "hint-unpaced" {
			pace = "-1ns"
		}
		args := []string{"worker", "-endpoint", endpoint, "-concurrency", strconv.Itoa(concurrency), "-start-rate", startRate,
			"-pace-window", pace, "-per-invocation", strconv.Itoa(perInvocation)}
		if mode == "hint-full" {
			args = append(args, "-full-concurrency")
		}
		if profileDir != "" {
			args = append(args, "-cpuprofile", filepath.Join(profileDir, fmt.Sprintf("cpu-k%d-%s-%d-w%d.pprof", k, mode, perInvocation, w)))
		}
		cmd := exec.Command(exe, append(args, si.caArgs()...)...)
		cmd.Stderr = os.Stderr
		cmd.Env = env
		in, err := cmd.StdinPipe()
		if err != nil {
			return row, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return row, err
		}
		if err := cmd.Start(); err != nil {
			return row, err
		}
		p := &proc{cmd: cmd, in: in, out: bufio.NewReader(out), stdin: bufio.NewWriter(in)}
		procs[w] = p
		// Round robin, as SQS hands the queue's messages to the pollers.
		for i := w; i < len(bodies); i += k {
			fmt.Fprintln(p.stdin, bodies[i])
		}
		fmt.Fprintln(p.stdin)
		if err := p.stdin.Flush(); err != nil {
			return row, err
		}
	}
	for w, p := range procs {
		if line, err := p.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
			return row, fmt.Errorf("worker %d not ready: %q %v", w, line, err)
		}
	}
	for _, p := range procs {
		fmt.Fprintln(p.stdin, "go")
		_ = p.stdin.Flush()
	}
	for w, p := range procs {
		var res workerResult
		if err := json.NewDecoder(p.out).Decode(&res); err != nil {
			return row, fmt.Errorf("worker %d result: %w", w, err)
		}
		_ = p.in.Close()
		if err := p.cmd.Wait(); err != nil {
			return row, fmt.Errorf("worker %d: %w", w, err)
		}
		procs[w] = nil
		row.Workers = append(row.Workers, res)
		row.Wall = max(row.Wall, res.Wall)
	}
	row.Server, err = si.counts()
	return row, err
}

// runWorker is one worker process: it reads batch bodies (one per line, then
// an empty line) from stdin, builds lambda/fanout's Worker as the fan-out
// Lambda does, says "ready", waits for "go", then handles -per-invocation
// batches per invocation (messages_per_invocation), redelivering failed
// batches after the others as SQS would, up to maxReceive deliveries, and
// prints a workerResult as JSON.
func runWorker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "management API stage URL")
	concurrency := fs.Int("concurrency", bench.DefaultConcurrency, "WS_SEND_CONCURRENCY")
	startRate := fs.Float64("start-rate", 0, "sender.Options.StartRate (0 = default, -1 = unlimited as before)")
	paceWindow := fs.Duration("pace-window", 0, "sender.Options.PaceWindow (0 = default, negative = no pacing grid as before)")
	fullConcurrency := fs.Bool("full-concurrency", false, "sender.Options.FullConcurrency: the whole concurrency in flight while capped")
	perInvocation := fs.Int("per-invocation", 1, "messages per invocation (distributed_fanout.messages_per_invocation)")
	maxReceive := fs.Int("max-receive", 5, "deliveries of a batch before it would go to the dead-letter queue")
	caFile := fs.String("ca-file", "", "PEM certificate(s) to trust for an https:// endpoint (the stand-in's)")
	cpuprofile := fs.String("cpuprofile", "", "write the worker's CPU profile, from the start signal to its last batch, to this file")
	_ = fs.Parse(args)
	rootCAs, err := rootCAsFrom(*caFile)
	if err != nil {
		return err
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	var queue []events.SQSMessage
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return fmt.Errorf("worker: read batches: %w", err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		queue = append(queue, events.SQSMessage{MessageId: strconv.Itoa(len(queue)), Body: line, EventSource: "aws:sqs"})
	}
	poster, err := bench.NewPoster(*endpoint, *concurrency, rootCAs)
	if err != nil {
		return err
	}
	tp := &trackingPoster{Poster: poster, delivered: map[string]int{}}
	rec := &countingRecorder{counts: map[string]float64{}}
	w, err := fanout.NewWorker(fanout.WorkerConfig{
		Endpoint: *endpoint,
		Ledger:   fanout.NewMemoryLedger(0, nil),
		Logger:   discardLogger(),
		NewSender: func(string) (*sender.Sender, error) {
			// As lambda/cmd/fanout builds it (WS_MAX_SEND_RATE = 0).
			return sender.NewSender(tp, sender.Options{Concurrency: *concurrency, FullConcurrency: *fullConcurrency, StartRate: *startRate, PaceWindow: *paceWindow, OmitDelivered: true, Metrics: rec}), nil
		},
	})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	if line, err := in.ReadString('\n'); err != nil || strings.TrimSpace(line) != "go" {
		return fmt.Errorf("worker: want go, got %q: %v", line, err)
	}
	res := workerResult{Batches: len(queue)}
	stopProfile, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	cpu0 := processCPU()
	start := time.Now()
	ctx := context.Background()
	for round := 1; len(queue) > 0; round++ {
		var again []events.SQSMessage
		for len(queue) > 0 {
			recs := queue[:min(*perInvocation, len(queue))]
			queue = queue[len(recs):]
			resp, err := w.Handle(ctx, events.SQSEvent{Records: recs})
			if err != nil {
				return err
			}
			failed := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
			for _, m := range recs {
				if failed[m.MessageId] {
					again = append(again, m)
				}
			}
		}
		if round == *maxReceive {
			res.FailedBatches = len(again)
			break
		}
		res.Redelivered += len(again)
		queue = again
	}
	res.Wall = time.Since(start)
	res.CPU = processCPU() - cpu0
	stopProfile()
	for _, c := range tp.delivered {
		res.Delivered++
		res.Duplicates += c - 1
	}
	res.Throttled = int(rec.get(metrics.Throttled))
	res.Retries = int(rec.get(metrics.Retries))
	return json.NewEncoder(os.Stdout).Encode(res)
}

// trackingPoster counts deliveries per recipient.
type trackingPoster struct {
	sender.Poster
	mu        sync.Mutex
	delivered map[string]int
}

func (t *trackingPoster) Post(ctx context.Context, id string, data []byte) error {
	err := t.Poster.Post(ctx, id, data)
	if err == nil {
		t.mu.Lock()
		t.delivered[id]++
		t.mu.Unlock()
	}
	return err
}

// countingRecorder sums the senders' counters.
type countingRecorder struct {
	mu     sync.Mutex
	counts map[string]float64
}

func (c *countingRecorder) Add(name string, v float64) {
	c.mu.Lock()
	c.counts[name] += v
	c.mu.Unlock()
}
func (c *countingRecorder) Observe(string, float64)           {}
func (c *countingRecorder) AddReason(string, string, float64) {}
func (c *countingRecorder) get(name string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

// processCPU is this process's user+system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func workersTable(rows []workersRow, sf serverFlags, batch, concurrency int, ceilings map[[2]int]float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "One stand-in: %s per call, token bucket %.0f/s (burst %d), %.1f%% dead connections. Batches of %d from lambda/fanout's Enqueuer, dealt round robin to k worker processes (lambda/fanout's Worker, per invocation as many batches as the table says, failed batches redelivered up to 5 times); sender concurrency %d per worker. before: the worker before issue 13 (no rate budget, each sender starts unlimited and its AIMD limiter finds the limit by itself, every post waking at its own token); alone: no rate budget, senders start at 10,000/s; hint: WS_FANOUT_RATE_BUDGET = %.0f, WS_FANOUT_MAX_CONCURRENCY = k, so every batch carries MaxRate = budget / k, posts paced in groups (sender.Options.PaceWindow, default) and each worker keeping its share of the concurrency in flight (concurrency x hint / 10,000, at least 16, or 1.5 x hint x its latency floor when that is more); hint-unpaced: hint with every post waking at its own token; hint-full: hint with each worker's whole concurrency in flight.\n\n",
		sf.latency, sf.rate, sf.burst, sf.dead*100, batch, concurrency, sf.rate)
	if len(ceilings) > 0 {
		b.WriteString("Machine ceiling: k workers against a stand-in without rate limit (same latency, each sender unlimited, no hint), the most this machine delivers with k processes; the last column is the share of min(limit, ceiling).\n\n")
	}
	b.WriteString("| k | batches per invocation | mode | rate hint per worker | delivered (of live) | lost | duplicates | 429s | 429s per delivered post | redelivered batches | wall time | aggregate accepted calls/s | share of limit | worker CPU per post |")
	sep := "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	if len(ceilings) > 0 {
		b.WriteString(" machine ceiling (calls/s) | share of min(limit, ceiling) |")
		sep += " ---: | ---: |"
	}
	b.WriteString("\n" + sep + "\n")
	for _, r := range rows {
		s := r.sum()
		hint := "-"
		if r.Hint > 0 {
			hint = fmt.Sprintf("%.0f/s", r.Hint)
		}
		rate := r.accepted()
		cpuPer := "-"
		if r.Server.Posts > 0 {
			cpuPer = fmt.Sprintf("%.0f µs", float64(s.CPU.Microseconds())/float64(r.Server.Posts))
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %d / %d (%.1f%%) | %d | %d | %d | %.1f%% | %d | %s | %.0f | %.1f%% | %s |",
			r.K, r.PerInvocation, r.Mode, hint, s.Delivered, r.Live, pct(s.Delivered, r.Live), r.Live-s.Delivered, s.Duplicates,
			r.Server.Throttled, 100*float64(r.Server.Throttled)/float64(max(r.Server.Delivered, 1)), s.Redelivered,
			r.Wall.Round(time.Millisecond), rate, 100*rate/sf.rate, cpuPer)
		if len(ceilings) > 0 {
			c := ceilings[[2]int{r.K, r.PerInvocation}]
			fmt.Fprintf(&b, " %.0f | %.1f%% |", c, 100*rate/min(c, sf.rate))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n429s per delivered post: the stand-in's 429 answers / its 200 answers. Worker CPU per post: the workers' user+system time together / the posts the stand-in received.\n")
	return b.String()
}

// discardLogger drops the worker's per-batch log lines (one per batch would
// cost CPU the measurement counts).
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
