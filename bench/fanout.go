// Package bench measures fan-out to one channel's recipients through the API
// Gateway management API stand-in (lambda/mgmtapitest), comparing three
// strategies in the same run:
//
//   - sequential: the original Laravel package's loop, one post at a time, no retry;
//   - all-at-once: the AWS sample's Promise.all, one goroutine per recipient,
//     no bound, no retry;
//   - ours: lambda/sender's bounded, throttle-aware fan-out with AIMD.
//
// Every strategy posts through the same management API client the Lambdas
// use (sender.ManagementAPI), so only the strategy differs. The go test benchmarks in
// this package run everything in one process for a quick check; cmd/wsbench
// runs the server and each measurement in separate processes for the numbers
// in docs/benchmarks.md.
package bench

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// Strategy names a fan-out strategy.
type Strategy string

// The strategies compared.
const (
	Sequential Strategy = "sequential"
	AllAtOnce  Strategy = "all-at-once"
	Ours       Strategy = "ours"
)

// Strategies lists them in table order.
var Strategies = []Strategy{Sequential, AllAtOnce, Ours}

// ParseStrategy checks a strategy name.
func ParseStrategy(s string) (Strategy, error) {
	for _, st := range Strategies {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown strategy %q (want sequential, all-at-once or ours)", s)
}

// Config describes one measurement.
type Config struct {
	// Endpoint is the management API stage URL.
	Endpoint string
	// N is the number of recipients in the channel.
	N int
	// Payload is the message; default 200 bytes of JSON.
	Payload []byte
	// TimeBox stops a run after this long and extrapolates the rest from the
	// measured prefix. 0 means run to the end.
	TimeBox time.Duration
	// Sender configures ours.
	Sender sender.Options
	// IsDead tells which ids the server treats as gone, to count the live recipients.
	IsDead func(id string) bool
	// RootCAs are the certificates an https:// stand-in is trusted by (its
	// self-signed one); nil for the system roots.
	RootCAs *x509.CertPool
	// SDKPost posts through the SDK client's PostToConnection instead of the
	// lean path the Lambdas use (sender.WithSDKPost).
	SDKPost bool
	// ClientTransport sends the lean path's posts through the http.Client
	// (net/http's Transport) instead of its own HTTP/1.1 connections
	// (sender.WithClientTransport).
	ClientTransport bool
	// HTTP1 turns HTTP/2 off in the client's transport.
	HTTP1 bool
}

// Result is one measurement.
type Result struct {
	Strategy Strategy `json:"strategy"`
	// N is the audience; Live the recipients that are not dead connections.
	N    int `json:"n"`
	Live int `json:"live"`
	// Posted is the number of recipients attempted before the time box (N when not time-boxed).
	Posted int `json:"posted"`
	// Delivered, Gone and Lost count recipients of the measured part: Lost are
	// live recipients that did not get the message.
	Delivered int `json:"delivered"`
	Gone      int `json:"gone"`
	Lost      int `json:"lost"`
	// Retried counts extra posts (after 429 or 5xx); Throttled the 429s met.
	Retried   int `json:"retried"`
	Throttled int `json:"throttled"`
	// OtherErrors counts posts that failed neither with 410 nor 429: 5xx or
	// transport errors (a refused or failed connection, a timeout).
	OtherErrors int `json:"otherErrors"`
	// FirstError is one of those errors, for the record.
	FirstError string `json:"firstError,omitempty"`
	// Wall is the measured time; when Extrapolated, WallEstimate is the
	// measured time scaled to N.
	Wall         time.Duration `json:"wall"`
	WallEstimate time.Duration `json:"wallEstimate"`
	Extrapolated bool          `json:"extrapolated"`
	// Rate is the calls API Gateway accepted (200 and 410: both use the
	// account's budget) per second over the measured part.
	Rate float64 `json:"rate"`
	// PeakHeap is the highest Go heap (objects and unused spans) plus goroutine
	// stacks seen, sampled every 10 ms with runtime/metrics.
	PeakHeap uint64 `json:"peakHeap"`
	// PeakRSS is the process's high-water resident set (VmHWM), 0 when unknown.
	PeakRSS uint64 `json:"peakRss"`
}

// ID is the id of recipient i: the length of a real API Gateway connection id.
func ID(i int) string { return fmt.Sprintf("c%015d=", i) }

// DefaultPayload is a typical 200-byte protocol frame.
var DefaultPayload = []byte(`{"type":"message","channel":"bench","event":"tick","data":{"text":"` + strings.Repeat("x", 140) + `"}}`)

// NewPoster returns the management API client the Lambdas use, signing with
// mgmtapitest.TestCredentials (which a verifying stand-in accepts) in
// us-east-1 and trusting rootCAs (nil: the system's) for an https:// stand-in.
func NewPoster(endpoint string, concurrency int, rootCAs *x509.CertPool) (*sender.ManagementAPI, error) {
	return newPoster(Config{Endpoint: endpoint, RootCAs: rootCAs}, concurrency)
}

func newPoster(cfg Config, concurrency int) (*sender.ManagementAPI, error) {
	awsCfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.StaticCredentialsProvider{Value: mgmtapitest.TestCredentials},
	}
	client := sender.NewHTTPClient(concurrency)
	tr := client.Transport.(*http.Transport)
	if cfg.RootCAs != nil {
		tr.TLSClientConfig.RootCAs = cfg.RootCAs
	}
	if cfg.HTTP1 {
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	var opts []sender.ManagementOption
	if cfg.SDKPost {
		opts = append(opts, sender.WithSDKPost())
	}
	if cfg.ClientTransport {
		opts = append(opts, sender.WithClientTransport())
	}
	return sender.NewManagementAPI(awsCfg, cfg.Endpoint, client, opts...)
}

// Run measures one strategy.
func Run(ctx context.Context, st Strategy, cfg Config) (Result, error) {
	if cfg.N <= 0 {
		return Result{}, errors.New("bench: N must be positive")
	}
	if cfg.Payload == nil {
		cfg.Payload = DefaultPayload
	}
	res := Result{Strategy: st, N: cfg.N}
	for i := range cfg.N {
		if cfg.IsDead == nil || !cfg.IsDead(ID(i)) {
			res.Live++
		}
	}
	runtime.GC()
	mem := startMemSampler()
	start := time.Now()
	var err error
	switch st {
	case Sequential:
		err = runSequential(ctx, cfg, &res)
	case AllAtOnce:
		err = runAllAtOnce(ctx, cfg, &res)
	case Ours:
		err = runOurs(ctx, cfg, &res)
	default:
		err = fmt.Errorf("bench: unknown strategy %q", st)
	}
	res.Wall = time.Since(start)
	res.PeakHeap = mem.stop()
	res.PeakRSS = PeakRSS()
	if err != nil {
		return res, err
	}
	if res.Wall > 0 {
		res.Rate = float64(res.Delivered+res.Gone) / res.Wall.Seconds()
	}
	res.WallEstimate = res.Wall
	if res.Posted < cfg.N {
		res.Extrapolated = true
		res.WallEstimate = time.Duration(float64(res.Wall) * float64(cfg.N) / float64(max(res.Posted, 1)))
	}
	// Lost counts live recipients of the measured part that got nothing.
	liveMeasured := res.Posted
	if cfg.IsDead != nil {
		liveMeasured = 0
		for i := range res.Posted {
			if !cfg.IsDead(ID(i)) {
				liveMeasured++
			}
		}
	}
	res.Lost = liveMeasured - res.Delivered
	return res, nil
}

// outcomes counts the outcomes of a baseline's posts.
type outcomes struct {
	delivered, gone, throttled, other atomic.Int64
	first                             sync.Once
	firstErr                          string
}

func (o *outcomes) add(err error) {
	switch {
	case err == nil:
		o.delivered.Add(1)
	case errors.Is(err, sender.ErrGone):
		o.gone.Add(1)
	case errors.Is(err, sender.ErrThrottled):
		o.throttled.Add(1)
	default:
		o.other.Add(1)
		o.first.Do(func() { o.firstErr = err.Error() })
	}
}

func (o *outcomes) fill(res *Result) {
	res.Delivered, res.Gone = int(o.delivered.Load()), int(o.gone.Load())
	res.Throttled, res.OtherErrors = int(o.throttled.Load()), int(o.other.Load())
	o.first.Do(func() {})
	res.FirstError = o.firstErr
}

// runSequential is the original package's loop: for each id, post and move
// on; an error is logged there and the message is lost.
func runSequential(ctx context.Context, cfg Config, res *Result) error {
	poster, err := newPoster(cfg, 1)
	if err != nil {
		return err
	}
	var o outcomes
	start := time.Now()
	posted := 0
	for i := range cfg.N {
		if cfg.TimeBox > 0 && time.Since(start) >= cfg.TimeBox {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o.add(poster.Post(ctx, ID(i), cfg.Payload))
		posted++
	}
	res.Posted = posted
	o.fill(res)
	return nil
}

// runAllAtOnce is the AWS sample's Promise.all over the scanned ids: one
// goroutine per recipient, no bound, no retry. It shares the Lambdas' HTTP
// client settings (keep-alive, no cap on connections per host).
func runAllAtOnce(ctx context.Context, cfg Config, res *Result) error {
	poster, err := newPoster(cfg, 64)
	if err != nil {
		return err
	}
	ids := make([]string, cfg.N)
	for i := range ids {
		ids[i] = ID(i)
	}
	var (
		o  outcomes
		wg sync.WaitGroup
	)
	for _, id := range ids {
		wg.Go(func() { o.add(poster.Post(ctx, id, cfg.Payload)) })
	}
	wg.Wait()
	res.Posted = cfg.N
	o.fill(res)
	return ctx.Err()
}

// PageSize is how many ids one store page holds in the benchmark (DynamoDB
// returns up to 1 MB per Query page; a membership item is about 100 bytes).
const PageSize = 1000

// runOurs streams the ids page by page into lambda/sender, as SendToChannel does.
func runOurs(ctx context.Context, cfg Config, res *Result) error {
	opts := cfg.Sender
	opts.OmitDelivered = true
	conc := opts.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	opts.Concurrency = conc
	poster, err := newPoster(cfg, conc)
	if err != nil {
		return err
	}
	s := sender.NewSender(poster, opts)
	page := make([]string, 0, PageSize)
	rep, err := s.SendPages(ctx, cfg.Payload, func(fn func([]string) error) error {
		for i := 0; i < cfg.N; {
			page = page[:0]
			for ; i < cfg.N && len(page) < PageSize; i++ {
				page = append(page, ID(i))
			}
			if err := fn(page); err != nil {
				return err
			}
		}
		return nil
	})
	res.Posted, res.Delivered, res.Gone = cfg.N, rep.Delivered, rep.Gone
	res.Retried, res.Throttled, res.OtherErrors = rep.Retries, rep.Throttled, rep.Failed
	for _, r := range rep.Results {
		if r.Status == sender.StatusFailed && r.Err != nil {
			res.FirstError = r.Err.Error()
			break
		}
	}
	return err
}

// DefaultConcurrency is the sender concurrency the benchmark (and the
// proposed WS_SEND_CONCURRENCY default) uses: 10,000 requests per second at
// 20 ms per call need 200 in flight, plus headroom for slower calls.
const DefaultConcurrency = sender.DefaultConcurrency

type memSampler struct {
	peak atomic.Uint64
	done chan struct{}
	wg   sync.WaitGroup
}

func startMemSampler() *memSampler {
	m := &memSampler{done: make(chan struct{})}
	// runtime/metrics, unlike ReadMemStats, does not stop the world.
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	sample := func() {
		metrics.Read(samples)
		var v uint64
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				v += s.Value.Uint64()
			}
		}
		for {
			p := m.peak.Load()
			if v <= p || m.peak.CompareAndSwap(p, v) {
				return
			}
		}
	}
	m.wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-m.done:
				sample()
				return
			case <-t.C:
			}
		}
	})
	return m
}

func (m *memSampler) stop() uint64 {
	close(m.done)
	m.wg.Wait()
	return m.peak.Load()
}

// PeakRSS is the process's VmHWM in bytes from /proc/self/status, 0 when unavailable.
func PeakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
