package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsforge/terraform-aws-websocket/bench"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// The small fan-outs benchmark: N = 100 and 1,000 through lambda/sender, on
// a cold sender (a fresh process: no connection open, nothing learnt, as in
// a Lambda's first invocation) and on a warm one (the same sender after one
// untimed fan-out to the same N, as in a warm Lambda: connections open, the
// limiter's rate kept), against the ideal max(N / limit, ceil(N /
// concurrency) × latency).

// smallRun is one timed fan-out.
type smallRun struct {
	Wall      time.Duration
	Delivered int
	Gone      int
	Failed    int
	Throttled int
	Retries   int
}

// smallRow is the runs of one N and temperature.
type smallRow struct {
	N         int
	Warm      bool
	StartRate float64
	Runs      []smallRun
}

func runSmall(args []string) error {
	fs := flag.NewFlagSet("small", flag.ExitOnError)
	var sf serverFlags
	sf.register(fs)
	ns := fs.String("n", "100,1000", "comma-separated audience sizes")
	runs := fs.Int("runs", 5, "timed fan-outs per N and temperature (cold: one fresh process each)")
	concurrency := fs.Int("concurrency", bench.DefaultConcurrency, "sender concurrency")
	pause := fs.Duration("pause", time.Second, "idle time before each timed fan-out (lets the stand-in's bucket refill)")
	gogc := fs.String("client-gogc", "400", "GOGC of the client processes")
	gomaxprocs := fs.Int("client-gomaxprocs", sendingGOMAXPROCS, "GOMAXPROCS of the client processes (0 = the Go default)")
	startRates := fs.String("start-rate", "0", "comma-separated sender.Options.StartRate values to compare (0 = the default 10,000/s, -1 = unlimited, the sender before issue 13)")
	_ = fs.Parse(args)
	if err := sf.validate(); err != nil {
		return err
	}
	if *concurrency < 1 || *pause < 0 || *gomaxprocs < 0 {
		return fmt.Errorf("-concurrency %d, -pause %v, -client-gomaxprocs %d: want at least 1, 0 or more, 0 or more", *concurrency, *pause, *gomaxprocs)
	}
	if err := validGOGC("-client-gogc", *gogc); err != nil {
		return err
	}
	if sf.rate <= 0 || *runs <= 0 {
		return fmt.Errorf("-rate and -runs must be positive")
	}
	sizes, err := positiveInts("-n", *ns)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	si, err := startStandIn(exe, sf)
	if err != nil {
		return err
	}
	defer si.stop()
	endpoint := si.endpoint
	loadBefore := loadAvg()
	var starts []float64
	for _, f := range strings.Split(*startRates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return fmt.Errorf("-start-rate: bad value %q", f)
		}
		starts = append(starts, v)
	}
	client := func(n, repeat int, warm bool, start float64) ([]smallRun, error) {
		cmd := exec.Command(exe, append([]string{"small-client", "-endpoint", endpoint, "-n", strconv.Itoa(n), "-runs", strconv.Itoa(repeat),
			"-concurrency", strconv.Itoa(*concurrency), "-pause", pause.String(), "-warm=" + strconv.FormatBool(warm), "-start-rate", fmt.Sprint(start)},
			si.caArgs()...)...)
		cmd.Stderr = os.Stderr
		cmd.Env = clientEnv(*gogc, *gomaxprocs)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("small-client N=%d: %w", n, err)
		}
		var rs []smallRun
		if err := json.Unmarshal(out, &rs); err != nil {
			return nil, fmt.Errorf("small-client output %q: %w", out, err)
		}
		return rs, nil
	}
	var rows []smallRow
	for _, start := range starts {
		for _, n := range sizes {
			fmt.Fprintf(os.Stderr, "wsbench: small N=%d start rate %v: cold x%d, warm x%d ...\n", n, start, *runs, *runs)
			cold := smallRow{N: n, StartRate: start}
			for range *runs {
				rs, err := client(n, 1, false, start)
				if err != nil {
					return err
				}
				cold.Runs = append(cold.Runs, rs...)
			}
			rs, err := client(n, *runs, true, start)
			if err != nil {
				return err
			}
			rows = append(rows, cold, smallRow{N: n, Warm: true, StartRate: start, Runs: rs})
		}
	}
	fmt.Printf("Machine load (1-minute load average) before/after the run: %s / %s. Client GOMAXPROCS %s.\n\n", loadBefore, loadAvg(), procsText(*gomaxprocs))
	fmt.Print(smallTable(rows, sf, *concurrency))
	return nil
}

// idealFanout is the shortest a fan-out of n can take: the limit's pace, or
// the latency of each wave of concurrency posts, whichever is longer.
func idealFanout(n int, limit float64, concurrency int, latency time.Duration) time.Duration {
	byRate := time.Duration(float64(n) / limit * float64(time.Second))
	byWaves := time.Duration(math.Ceil(float64(n)/float64(concurrency))) * latency
	return max(byRate, byWaves)
}

func smallTable(rows []smallRow, sf serverFlags, concurrency int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Stand-in: %s per call, token bucket %.0f/s (burst %d), %.1f%% dead connections; sender concurrency %d, adaptive limiter. Cold: a fresh process per run (client built, no connection open). Warm: one process, one untimed fan-out to the same N first, then the timed ones, each after an idle pause.\n\n",
		sf.latency, sf.rate, sf.burst, sf.dead*100, concurrency)
	b.WriteString("| N | start rate | sender | runs | median | min | max | ideal | median / ideal | 429s per run (median) | retries per run (median) | lost |\n")
	b.WriteString("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		var walls []time.Duration
		var throttled, retries []int
		lost := 0
		for _, run := range r.Runs {
			walls = append(walls, run.Wall)
			throttled = append(throttled, run.Throttled)
			retries = append(retries, run.Retries)
			lost += run.Failed
		}
		slices.Sort(walls)
		slices.Sort(throttled)
		slices.Sort(retries)
		med := walls[len(walls)/2]
		ideal := idealFanout(r.N, sf.rate, concurrency, sf.latency)
		temp := "cold"
		if r.Warm {
			temp = "warm"
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
		start := "10,000/s (default)"
		switch {
		case r.StartRate < 0:
			start = "unlimited (before)"
		case r.StartRate > 0:
			start = fmt.Sprintf("%.0f/s", r.StartRate)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %s | %s | %s | %s | %.2f× | %d | %d | %d |\n",
			r.N, start, temp, len(r.Runs), ms(med), ms(walls[0]), ms(walls[len(walls)-1]), ms(ideal), med.Seconds()/ideal.Seconds(),
			throttled[len(throttled)/2], retries[len(retries)/2], lost)
	}
	b.WriteString("\nIdeal: max(N / limit, ceil(N / concurrency) × latency). Lost: live recipients not delivered, over all runs.\n")
	return b.String()
}

// runSmallClient builds one sender as a Lambda does at start-up, optionally
// warms it with an untimed fan-out, then times -runs fan-outs to the same N
// and prints them as JSON.
func runSmallClient(args []string) error {
	fs := flag.NewFlagSet("small-client", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "management API stage URL")
	n := fs.Int("n", 1000, "recipients")
	runs := fs.Int("runs", 1, "timed fan-outs")
	concurrency := fs.Int("concurrency", bench.DefaultConcurrency, "sender concurrency")
	warm := fs.Bool("warm", false, "one untimed fan-out first")
	startRate := fs.Float64("start-rate", 0, "sender.Options.StartRate (0 = default, -1 = unlimited)")
	pause := fs.Duration("pause", time.Second, "idle time before each timed fan-out")
	caFile := fs.String("ca-file", "", "PEM certificate(s) to trust for an https:// endpoint (the stand-in's)")
	_ = fs.Parse(args)
	rootCAs, err := rootCAsFrom(*caFile)
	if err != nil {
		return err
	}
	poster, err := bench.NewPoster(*endpoint, *concurrency, rootCAs)
	if err != nil {
		return err
	}
	s := sender.NewSender(poster, sender.Options{Concurrency: *concurrency, StartRate: *startRate, OmitDelivered: true})
	send := func() sender.Report {
		rep, _ := s.SendPages(context.Background(), bench.DefaultPayload, benchPages(*n))
		return rep
	}
	if *warm {
		send()
	}
	var out []smallRun
	for range *runs {
		if *warm {
			time.Sleep(*pause)
		}
		start := time.Now()
		rep := send()
		wall := time.Since(start)
		out = append(out, smallRun{Wall: wall, Delivered: rep.Delivered, Gone: rep.Gone, Failed: rep.Failed, Throttled: rep.Throttled, Retries: rep.Retries})
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// positiveInts parses a comma-separated list of positive integers (flag name for errors).
func positiveInts(name, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: bad value %q", name, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// benchPages yields bench.ID(0..n-1) in store-sized pages, as a channel's paged Query would.
func benchPages(n int) func(fn func([]string) error) error {
	return func(fn func([]string) error) error {
		page := make([]string, 0, bench.PageSize)
		for i := 0; i < n; {
			page = page[:0]
			for ; i < n && len(page) < bench.PageSize; i++ {
				page = append(page, bench.ID(i))
			}
			if err := fn(page); err != nil {
				return err
			}
		}
		return nil
	}
}
