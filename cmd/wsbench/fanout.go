package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsforge/terraform-aws-websocket/bench"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// serverFlags are shared by fanout and serve.
type serverFlags struct {
	latency time.Duration
	rate    float64
	burst   int
	dead    float64
	gogc    string
	tls     bool
	verify  bool
}

func (s *serverFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&s.latency, "latency", mgmtapitest.DefaultLatency, "latency of every management API call")
	fs.Float64Var(&s.rate, "rate", mgmtapitest.DefaultRateLimit, "token-bucket rate limit (calls/s); 429 LimitExceededException beyond")
	fs.IntVar(&s.burst, "burst", 100, "token-bucket size")
	fs.Float64Var(&s.dead, "dead", 0.01, "share of recipients that are dead connections (410 GoneException)")
	// The stand-in plays API Gateway, whose CPU is not the sender's: a
	// lighter GC leaves more of the shared cores to the strategy measured.
	fs.StringVar(&s.gogc, "server-gogc", "400", "GOGC of the stand-in process")
	// API Gateway's management API is HTTPS only and checks every signature;
	// without both, a faster post path could skip work AWS makes it do.
	fs.BoolVar(&s.tls, "tls", true, "the stand-in serves HTTPS with a self-signed certificate the client trusts")
	fs.BoolVar(&s.verify, "verify-sigv4", true, "the stand-in verifies every call's SigV4 signature (403 InvalidSignatureException)")
}

// validate refuses values the stand-in cannot honour: the tables print the
// flags, so a run must use exactly what they say. A rate of 0 (no limit) is
// valid here; the commands that need a limit check for it.
func (s *serverFlags) validate() error {
	switch {
	case s.latency < 0:
		return fmt.Errorf("-latency %v: want 0 or more", s.latency)
	case !finite(s.rate) || s.rate < 0:
		return fmt.Errorf("-rate %v: want calls per second, 0 or more", s.rate)
	case s.burst < 1:
		return fmt.Errorf("-burst %d: want at least 1", s.burst)
	case !(s.dead >= 0 && s.dead < 1):
		return fmt.Errorf("-dead %v: want a share from 0 up to (not including) 1", s.dead)
	}
	return validGOGC("-server-gogc", s.gogc)
}

// validGOGC accepts what the Go runtime accepts as GOGC: off or a
// non-negative integer.
func validGOGC(name, v string) error {
	if v == "off" {
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 0 {
		return fmt.Errorf("%s %q: want off or a percentage of 0 or more", name, v)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func (s *serverFlags) args() []string {
	return []string{"-latency", s.latency.String(), "-rate", fmt.Sprint(s.rate), "-burst", strconv.Itoa(s.burst), "-dead", fmt.Sprint(s.dead),
		"-tls=" + strconv.FormatBool(s.tls), "-verify-sigv4=" + strconv.FormatBool(s.verify)}
}

// runServe runs the stand-in until killed and prints its URL on the first
// line; with -tls it first writes its certificate to -ca-file.
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var sf serverFlags
	sf.register(fs)
	caFile := fs.String("ca-file", "", "with -tls: write the stand-in's certificate (PEM) here for the client to trust")
	_ = fs.Parse(args)
	if err := sf.validate(); err != nil {
		return err
	}
	opts := mgmtapitest.Options{
		Latency: sf.latency, RateLimit: sf.rate, Burst: sf.burst, DeadShare: sf.dead, AutoRegister: true, TLS: sf.tls,
	}
	if sf.verify {
		opts.SigV4 = &mgmtapitest.SigV4{Credentials: mgmtapitest.TestCredentials}
	}
	srv := mgmtapitest.New(opts)
	defer srv.Close()
	if sf.tls && *caFile != "" {
		if err := os.WriteFile(*caFile, srv.CACertPEM(), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", *caFile, err)
		}
	}
	fmt.Println(srv.URL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// clientFlags are shared by fanout and client.
type clientFlags struct {
	timebox     time.Duration
	concurrency int
	maxRate     float64
	paceWindow  time.Duration
	stepCuts    bool
	gogc        string
	post        string
	gomaxprocs  int
	http1       bool
	cpuprofile  string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.timebox, "timebox", 20*time.Second, "stop a run after this long and extrapolate the rest (0 = never)")
	fs.IntVar(&c.concurrency, "concurrency", bench.DefaultConcurrency, "ours: sender concurrency")
	fs.Float64Var(&c.maxRate, "max-rate", 0, "ours: Options.MaxRate (0 = adaptive only)")
	fs.DurationVar(&c.paceWindow, "pace-window", 0, "ours: Options.PaceWindow (0 = the default, 10ms; negative = every post wakes at its own token, the sender before pacing)")
	fs.BoolVar(&c.stepCuts, "step-cuts-only", false, "ours: sender.Options.StepCutsOnly (every 429 cuts the limit by its step, also when most posts meet 429s: the sender before the cut to the accepted rate)")
	// The module runs the sending functions with GOGC=400 (and a GOMEMLIMIT
	// below their memory size); every strategy's client gets the same.
	fs.StringVar(&c.gogc, "client-gogc", "400", "GOGC of the client process (every strategy)")
	fs.StringVar(&c.post, "post", "lean", "post path of every strategy: lean (what the Lambdas use: SigV4 by the SDK's signer, own HTTP/1.1 keep-alive connections), lean-client (the same through net/http's Transport) or sdk (the SDK client's PostToConnection)")
	fs.IntVar(&c.gomaxprocs, "client-gomaxprocs", sendingGOMAXPROCS, "GOMAXPROCS of the client process (every strategy; 0 = the Go default, one per core)")
	fs.BoolVar(&c.http1, "http1", false, "turn HTTP/2 off in the client (HTTP/1.1 keep-alive only)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write the client's CPU profile (client: to this file; fanout: cpu-<strategy>-<n>.pprof in this folder)")
}

// validate refuses values the client cannot honour.
func (c *clientFlags) validate() error {
	switch {
	case c.timebox < 0:
		return fmt.Errorf("-timebox %v: want 0 (never) or more", c.timebox)
	case c.concurrency < 1:
		return fmt.Errorf("-concurrency %d: want at least 1", c.concurrency)
	case !finite(c.maxRate) || c.maxRate < 0:
		return fmt.Errorf("-max-rate %v: want 0 (adaptive only) or a rate in posts per second", c.maxRate)
	case c.gomaxprocs < 0:
		return fmt.Errorf("-client-gomaxprocs %d: want 0 (the Go default) or more", c.gomaxprocs)
	case c.post != "lean" && c.post != "lean-client" && c.post != "sdk":
		return fmt.Errorf("-post: %q, want lean, lean-client or sdk", c.post)
	}
	return validGOGC("-client-gogc", c.gogc)
}

func (c *clientFlags) args() []string {
	return []string{"-timebox", c.timebox.String(), "-concurrency", strconv.Itoa(c.concurrency), "-max-rate", fmt.Sprint(c.maxRate),
		"-pace-window", c.paceWindow.String(), "-step-cuts-only=" + strconv.FormatBool(c.stepCuts),
		"-post", c.post, "-http1=" + strconv.FormatBool(c.http1)}
}

// sendingGOMAXPROCS is the module's GOMAXPROCS for a sending function of the
// default 743 MB: one P per 1,769 MB (one vCPU), at least one (lambda.tf).
const sendingGOMAXPROCS = 1

// clientEnv is the environment of a client or worker process: the Go
// runtime settings the module gives a sending function.
func clientEnv(gogc string, gomaxprocs int) []string {
	env := append(os.Environ(), "GOGC="+gogc)
	if gomaxprocs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(gomaxprocs))
	}
	return env
}

// procsText describes a client's GOMAXPROCS setting.
func procsText(n int) string {
	if n > 0 {
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("%d (the Go default)", gomaxprocs())
}

// runClient measures one strategy and prints its bench.Result as JSON.
func runClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	strategy := fs.String("strategy", "ours", "sequential, all-at-once or ours")
	n := fs.Int("n", 1000, "recipients")
	endpoint := fs.String("endpoint", "", "management API stage URL")
	dead := fs.Float64("dead", 0, "the server's dead share, to count live recipients")
	caFile := fs.String("ca-file", "", "PEM certificate(s) to trust for an https:// endpoint (the stand-in's)")
	_ = fs.Parse(args)
	st, err := bench.ParseStrategy(*strategy)
	if err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	if *n < 1 || !(*dead >= 0 && *dead < 1) {
		return fmt.Errorf("-n %d, -dead %v: want at least 1 recipient and a share from 0 up to 1", *n, *dead)
	}
	cfg := bench.Config{
		Endpoint: *endpoint, N: *n,
		Sender:  sender.Options{Concurrency: cf.concurrency, MaxRate: cf.maxRate, PaceWindow: cf.paceWindow, StepCutsOnly: cf.stepCuts},
		IsDead:  func(id string) bool { return mgmtapitest.DeadByShare(id, *dead) },
		SDKPost: cf.post == "sdk", ClientTransport: cf.post == "lean-client", HTTP1: cf.http1,
	}
	if *caFile != "" {
		if cfg.RootCAs, err = loadRootCAs(*caFile); err != nil {
			return err
		}
	}
	stopProfile, err := startCPUProfile(cf.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if st == bench.Sequential {
		cfg.TimeBox = cf.timebox
	}
	res, err := bench.Run(context.Background(), st, cfg)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// loadRootCAs reads a PEM file into a certificate pool.
func loadRootCAs(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// row is one measurement with what the server saw and what the client
// process cost.
type row struct {
	bench.Result
	Server mgmtapitest.Counts `json:"server"`
	// ClientCPU is the client process's user+system CPU time (rusage), from
	// start to exit; CPUPerPost divides it by the posts the stand-in received
	// from it (every attempt: delivered, gone, throttled, failed).
	ClientCPU  time.Duration `json:"clientCpu"`
	CPUPerPost time.Duration `json:"clientCpuPerPost"`
	// ClientSys is the system (kernel) part of ClientCPU. On loopback the
	// kernel runs the stand-in's TCP receive path inside the client's write
	// calls, so part of it is the stand-in's cost, not the client's.
	ClientSys time.Duration `json:"clientSys"`
}

func runFanout(args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	var (
		sf serverFlags
		cf clientFlags
	)
	sf.register(fs)
	cf.register(fs)
	ns := fs.String("n", "1000,10000,100000", "comma-separated audience sizes")
	strategies := fs.String("strategies", "sequential,all-at-once,ours", "comma-separated strategies")
	out := fs.String("out", "artifacts", "folder for fanout.json and benchmarks-rate.svg")
	ceiling := fs.Bool("ceiling", false, "first measure ours against a stand-in without rate limit at the largest N: the machine's own ceiling")
	_ = fs.Parse(args)
	if err := sf.validate(); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	if sf.rate <= 0 {
		return errors.New("-rate must be positive (use -ceiling for an unlimited run)")
	}

	sizes, err := positiveInts("-n", *ns)
	if err != nil {
		return err
	}
	var sts []bench.Strategy
	for _, f := range strings.Split(*strategies, ",") {
		st, err := bench.ParseStrategy(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		sts = append(sts, st)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	loadBefore := loadAvg()
	var (
		ceilingNote string
		ceilingRate float64
	)
	if *ceiling {
		unlimited := sf
		unlimited.rate = 0
		maxN := slices.Max(sizes)
		fmt.Fprintf(os.Stderr, "wsbench: ceiling: ours N=%d without rate limit ...\n", maxN)
		r, err := measure(exe, unlimited, cf, bench.Ours, maxN)
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		ceilingRate = r.Rate
		ceilingNote = fmt.Sprintf("Machine ceiling (ours, N=%d, stand-in without rate limit, same latency): %.0f calls/s, %.1f%% delivered, %s.\n\n",
			maxN, r.Rate, pct(r.Delivered, r.Live), r.Wall.Round(time.Millisecond))
		fmt.Fprint(os.Stderr, "wsbench: ", ceilingNote)
	}
	var rows []row
	for _, n := range sizes {
		for _, st := range sts {
			fmt.Fprintf(os.Stderr, "wsbench: %s N=%d ...\n", st, n)
			r, err := measure(exe, sf, cf, st, n)
			if err != nil {
				return fmt.Errorf("%s N=%d: %w", st, n, err)
			}
			fmt.Fprintf(os.Stderr, "wsbench: %s N=%d: delivered %d/%d live, %.0f calls/s, %s\n", st, n, r.Delivered, r.Live, r.Rate, r.Wall.Round(time.Millisecond))
			rows = append(rows, r)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(rows, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "fanout.json"), js, 0o644); err != nil {
		return err
	}
	svg := rateChart(rows, sf.rate, ceilingRate)
	if err := os.WriteFile(filepath.Join(*out, "benchmarks-rate.svg"), []byte(svg), 0o644); err != nil {
		return err
	}
	fmt.Printf("Machine load (1-minute load average, 2 cores) before/after the run: %s / %s.\n\n", loadBefore, loadAvg())
	fmt.Print(ceilingNote + fanoutTable(rows, sf, cf) + ceilingShares(rows, sf, ceilingRate) + rampTable(rows, sf))
	fmt.Fprintf(os.Stderr, "wsbench: wrote %s and %s\n", filepath.Join(*out, "fanout.json"), filepath.Join(*out, "benchmarks-rate.svg"))
	return nil
}

// measure starts a fresh server process, runs one client process against it
// and reads the server's counts.
func measure(exe string, sf serverFlags, cf clientFlags, st bench.Strategy, n int) (row, error) {
	si, err := startStandIn(exe, sf)
	if err != nil {
		return row{}, err
	}
	defer si.stop()
	cargs := append([]string{"client", "-strategy", string(st), "-n", strconv.Itoa(n), "-endpoint", si.endpoint, "-dead", fmt.Sprint(sf.dead)}, cf.args()...)
	cargs = append(cargs, si.caArgs()...)
	if cf.cpuprofile != "" {
		if err := os.MkdirAll(cf.cpuprofile, 0o755); err != nil {
			return row{}, err
		}
		cargs = append(cargs, "-cpuprofile", filepath.Join(cf.cpuprofile, fmt.Sprintf("cpu-%s-%d.pprof", st, n)))
	}
	cl := exec.Command(exe, cargs...)
	cl.Stderr = os.Stderr
	cl.Env = clientEnv(cf.gogc, cf.gomaxprocs)
	outb, err := cl.Output()
	if err != nil {
		return row{}, fmt.Errorf("client: %w", err)
	}
	var r row
	if err := json.Unmarshal(outb, &r.Result); err != nil {
		return row{}, fmt.Errorf("client output %q: %w", outb, err)
	}
	if r.Server, err = si.counts(); err != nil {
		return row{}, err
	}
	r.ClientCPU = cl.ProcessState.UserTime() + cl.ProcessState.SystemTime()
	r.ClientSys = cl.ProcessState.SystemTime()
	if r.Server.Posts > 0 {
		r.CPUPerPost = r.ClientCPU / time.Duration(r.Server.Posts)
	}
	if r.Server.Delivered != int64(r.Delivered) {
		return row{}, errors.New("client and server disagree on deliveries: " + strconv.Itoa(r.Delivered) + " vs " + strconv.FormatInt(r.Server.Delivered, 10))
	}
	return r, nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func fanoutTable(rows []row, sf serverFlags, cf clientFlags) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Stand-in: %s per call, token bucket %.0f/s (burst %d), %.1f%% dead connections, %s. Ours: concurrency %d, max rate %s, %s%s. Post path: %s. Client GOMAXPROCS %s on %d cores.\n\n",
		sf.latency, sf.rate, sf.burst, sf.dead*100, standInTransport(sf), cf.concurrency, rateOrAdaptive(cf.maxRate), paceText(cf.paceWindow), cutsText(cf.stepCuts), postPath(cf), procsText(cf.gomaxprocs), numCPU())
	b.WriteString("| N | strategy | delivered (of live) | lost | retried | 429s met | other errors | wall time | accepted calls/s | share of limit | peak RSS | peak Go heap+stacks | client CPU per post (of it kernel) |\n")
	b.WriteString("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		wall := r.Wall.Round(time.Millisecond).String()
		delivered := fmt.Sprintf("%d / %d (%.1f%%)", r.Delivered, r.Live, pct(r.Delivered, r.Live))
		lost := strconv.Itoa(r.Lost)
		if r.Extrapolated {
			wall = fmt.Sprintf("%s est. (measured %s for the first %d)", r.WallEstimate.Round(time.Second), r.Wall.Round(time.Millisecond), r.Posted)
			liveMeasured := r.Delivered + r.Lost
			delivered = fmt.Sprintf("%d / %d of the first %d (%.1f%%)", r.Delivered, liveMeasured, r.Posted, pct(r.Delivered, liveMeasured))
			lost = fmt.Sprintf("%d of the first %d", r.Lost, r.Posted)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d | %d | %d | %s | %.0f | %.1f%% | %s | %s | %s |\n",
			r.N, r.Strategy, delivered, lost, r.Retried, r.Throttled, r.OtherErrors, wall, r.Rate, 100*r.Rate/sf.rate, mib(r.PeakRSS), mib(r.PeakHeap), cpuCell(r))
	}
	b.WriteString("\nOurs against the baselines of the same run (time: baseline wall time / ours; delivered: ours' delivered share / baseline's):\n\n")
	b.WriteString("| N | vs sequential: time | vs sequential: delivered | vs all-at-once: time | vs all-at-once: delivered |\n| ---: | ---: | ---: | ---: | ---: |\n")
	byKey := map[string]row{}
	var order []int
	for _, r := range rows {
		if _, ok := byKey[fmt.Sprint(r.N, bench.Ours)]; !ok && r.Strategy == bench.Ours {
			order = append(order, r.N)
		}
		byKey[fmt.Sprint(r.N, r.Strategy)] = r
	}
	for _, n := range order {
		ours := byKey[fmt.Sprint(n, bench.Ours)]
		cell := func(st bench.Strategy) (string, string) {
			base, ok := byKey[fmt.Sprint(n, st)]
			if !ok {
				return "-", "-"
			}
			t := fmt.Sprintf("%.1f×", base.WallEstimate.Seconds()/ours.Wall.Seconds())
			if base.Extrapolated {
				t += " (est.)"
			}
			bl := base.Delivered + base.Lost
			d := "-"
			if bl > 0 && base.Delivered > 0 {
				d = fmt.Sprintf("%.2f×", pct(ours.Delivered, ours.Live)/pct(base.Delivered, bl))
			} else if bl > 0 {
				d = "∞ (baseline delivered none)"
			}
			return t, d
		}
		st, sd := cell(bench.Sequential)
		at, ad := cell(bench.AllAtOnce)
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", n, st, sd, at, ad)
	}
	var errs []string
	for _, r := range rows {
		if r.FirstError != "" {
			errs = append(errs, fmt.Sprintf("- %s N=%d: %d other errors, e.g. `%s`", r.Strategy, r.N, r.OtherErrors, r.FirstError))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nOther errors seen:\n\n" + strings.Join(errs, "\n") + "\n")
	}
	return b.String()
}

// rampMinN is the least N whose ramp is worth a row: a smaller fan-out is
// over in a few of the stand-in's windows.
const rampMinN = 10000

// ramp splits a run's accepted calls per window (the stand-in's
// Counts.Accepted) at the first window at 90% of the limit or more: the
// ramp before it (a cold sender opening its connections) and the steady
// state after it, up to the last whole window. ok is false when no window
// reaches 90%, or none follows the ramp.
func ramp(accepted []int64, limit float64, window time.Duration) (rampTime time.Duration, inRamp int64, steadyShare float64, ok bool) {
	full := 0.9 * limit * window.Seconds()
	i := slices.IndexFunc(accepted, func(n int64) bool { return float64(n) >= full })
	last := len(accepted) - 1 // partial: the run ended in it
	if i < 0 || i >= last {
		return 0, 0, 0, false
	}
	for _, n := range accepted[:i] {
		inRamp += n
	}
	var steady int64
	for _, n := range accepted[i:last] {
		steady += n
	}
	steadyShare = float64(steady) / (float64(last-i) * window.Seconds()) / limit
	return time.Duration(i) * window, inRamp, steadyShare, true
}

// rampTable splits ours' share of the limit at N >= rampMinN into the ramp
// and the steady state after it, from the stand-in's accepted calls over time.
func rampTable(rows []row, sf serverFlags) string {
	var b strings.Builder
	for _, r := range rows {
		if r.Strategy != bench.Ours || r.N < rampMinN {
			continue
		}
		rt, inRamp, steady, ok := ramp(r.Server.Accepted, sf.rate, mgmtapitest.AcceptedWindow)
		if !ok {
			continue
		}
		if b.Len() == 0 {
			fmt.Fprintf(&b, "\nOurs over time, from the calls the stand-in accepted per %s: the ramp lasts until the first %s at 90%% of the limit or more (a cold sender opening its connections, each a TLS handshake); the time lost in it is the ramp less the time its calls take at the limit.\n\n", mgmtapitest.AcceptedWindow, mgmtapitest.AcceptedWindow)
			b.WriteString("| N | ramp | calls accepted in the ramp | time lost in the ramp (share of wall time) | share of limit after the ramp | share of limit overall |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		}
		lost := rt - time.Duration(float64(inRamp)/sf.rate*float64(time.Second))
		fmt.Fprintf(&b, "| %d | %s | %d | %s (%.1f%%) | %.1f%% | %.1f%% |\n", r.N, rt, inRamp, lost.Round(time.Millisecond), 100*lost.Seconds()/r.Wall.Seconds(), 100*steady, 100*r.Rate/sf.rate)
	}
	return b.String()
}

// ceilingShares states ours' rate as a share of the limit and of the
// machine's ceiling (measured with -ceiling), per N.
func ceilingShares(rows []row, sf serverFlags, ceiling float64) string {
	if ceiling <= 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nOurs as a share of the limit and of the machine ceiling:\n\n| N | accepted calls/s | share of limit | share of min(limit, machine ceiling) |\n| ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		if r.Strategy == bench.Ours {
			fmt.Fprintf(&b, "| %d | %.0f | %.1f%% | %.1f%% |\n", r.N, r.Rate, 100*r.Rate/sf.rate, 100*r.Rate/min(ceiling, sf.rate))
		}
	}
	return b.String()
}

// micros formats a CPU time per post in µs.
// cpuCell is the client CPU per post with its kernel share.
func cpuCell(r row) string {
	if r.Server.Posts == 0 {
		return micros(r.CPUPerPost)
	}
	return fmt.Sprintf("%s (%s)", micros(r.CPUPerPost), micros(r.ClientSys/time.Duration(r.Server.Posts)))
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// standInTransport says how the stand-in is reached.
func standInTransport(sf serverFlags) string {
	t := "plain HTTP"
	if sf.tls {
		t = "HTTPS"
	}
	if sf.verify {
		return t + ", every SigV4 signature verified"
	}
	return t + ", signatures not checked"
}

// postPath says which post path and HTTP version the client used.
func postPath(cf clientFlags) string {
	switch cf.post {
	case "sdk":
		p := "SDK client's PostToConnection (sender.WithSDKPost)"
		if cf.http1 {
			return p + ", HTTP/1.1 only"
		}
		return p + ", HTTP/2 when offered"
	case "lean-client":
		p := "lean signing through net/http's Transport (sender.WithClientTransport)"
		if cf.http1 {
			return p + ", HTTP/1.1 only"
		}
		return p + ", HTTP/2 when offered"
	}
	return "lean (sender.ManagementAPI, the Lambdas' path: SigV4 byte for byte as the SDK's signer computes it, its own HTTP/1.1 keep-alive connections)"
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func rateOrAdaptive(r float64) string {
	if r <= 0 {
		return "adaptive only"
	}
	return fmt.Sprintf("%.0f/s", r)
}

// paceText describes Options.PaceWindow.
func paceText(w time.Duration) string {
	switch {
	case w < 0:
		return "no pacing grid (each post wakes at its own token)"
	case w == 0:
		return fmt.Sprintf("pace window %s (the default)", sender.DefaultPaceWindow)
	}
	return "pace window " + w.String()
}

// cutsText describes -step-cuts-only ("" when off).
func cutsText(stepOnly bool) string {
	if stepOnly {
		return ", every 429 cutting the limit by its step (-step-cuts-only: before the cut to the accepted rate)"
	}
	return ""
}

// loadAvg is the 1-minute load average, "?" when unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// startCPUProfile writes this process's CPU profile to path until the
// returned stop is called; with an empty path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
