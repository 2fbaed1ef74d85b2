package bench

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
)

var (
	benchN       = flag.String("wsbench.n", "1000", "comma-separated audience sizes for BenchmarkFanout")
	benchLatency = flag.Duration("wsbench.latency", mgmtapitest.DefaultLatency, "stand-in latency per call")
	benchRate    = flag.Float64("wsbench.rate", mgmtapitest.DefaultRateLimit, "stand-in rate limit (calls/s)")
	benchDead    = flag.Float64("wsbench.dead", 0.01, "share of dead connections")
	benchTimeBox = flag.Duration("wsbench.timebox", 2*time.Second, "time box of the sequential strategy")
)

// BenchmarkFanout runs the three strategies against an in-process stand-in.
// It reports the share of the rate limit reached, the share of live
// recipients reached and the retries; ns/op is the wall time of one fan-out.
// For the documented numbers use cmd/wsbench, which isolates the processes.
func BenchmarkFanout(b *testing.B) {
	for _, f := range strings.Split(*benchN, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(b, err)
		for _, st := range Strategies {
			b.Run(fmt.Sprintf("N=%d/%s", n, st), func(b *testing.B) {
				var last Result
				for b.Loop() {
					b.StopTimer()
					srv := mgmtapitest.New(mgmtapitest.Options{
						Latency: *benchLatency, RateLimit: *benchRate, Burst: 100, DeadShare: *benchDead, AutoRegister: true,
					})
					cfg := Config{
						Endpoint: srv.URL(), N: n,
						IsDead: func(id string) bool { return mgmtapitest.DeadByShare(id, *benchDead) },
					}
					if st == Sequential {
						cfg.TimeBox = *benchTimeBox
					}
					b.StartTimer()
					res, err := Run(context.Background(), st, cfg)
					b.StopTimer()
					require.NoError(b, err)
					require.Equal(b, int64(res.Delivered), srv.Counts().Delivered, "client and server count deliveries alike")
					srv.Close()
					last = res
					b.StartTimer()
				}
				b.ReportMetric(last.Rate / *benchRate, "limit-share")
				b.ReportMetric(float64(last.Delivered)/float64(max(1, last.Delivered+last.Lost)), "delivered-share")
				b.ReportMetric(float64(last.Retried), "retries")
				b.ReportMetric(float64(last.PeakHeap)/(1<<20), "peak-heap-MiB")
			})
		}
	}
}
