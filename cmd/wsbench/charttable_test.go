package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/bench"
)

// The chart committed next to docs/benchmarks.md must be the one drawn from
// the table published there: regenerate both with `make bench-fanout`, or the
// chart alone with `go run ./cmd/wsbench chart`.
func TestCommittedChartMatchesPublishedTable(t *testing.T) {
	docs := filepath.Join("..", "..", "docs")
	text, err := os.ReadFile(filepath.Join(docs, "benchmarks.md"))
	require.NoError(t, err)
	rows, limit, ceiling, err := fanoutTableRows(string(text))
	require.NoError(t, err)
	committed, err := os.ReadFile(filepath.Join(docs, "benchmarks-rate.svg"))
	require.NoError(t, err, "docs/benchmarks-rate.svg is missing: run go run ./cmd/wsbench chart")
	assert.Equal(t, rateChart(rows, limit, ceiling), string(committed),
		"docs/benchmarks-rate.svg is stale: run go run ./cmd/wsbench chart")
	assert.Contains(t, string(text), "](benchmarks-rate.svg)", "docs/benchmarks.md must show the chart")
}

func TestFanoutTableRows(t *testing.T) {
	const doc = `intro
Machine ceiling (ours, N=100000, stand-in without rate limit, same latency): 10230 calls/s, 100.0% delivered, 9.775s.

Stand-in: 20ms per call, token bucket 10000/s (burst 100), 1.0% dead connections. Ours: concurrency 256, max rate adaptive only. GOMAXPROCS 2 on 2 cores.

| N | strategy | delivered (of live) | lost | retried | 429s met | other errors | wall time | accepted calls/s | share of limit | peak RSS | peak Go heap+stacks |
| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| 1000 | sequential | 952 / 952 of the first 964 (100.0%) | 0 of the first 964 | 0 | 0 | 0 | 21s est. (measured 20.017s for the first 964) | 48 | 0.5% | 29.0 MiB | 16.3 MiB |
| 1000 | ours | 988 / 988 (100.0%) | 0 | 13 | 13 | 0 | 184ms | 5441 | 54.4% | 50.1 MiB | 39.2 MiB |

Stand-in: 20ms per call, token bucket 3000/s (burst 100)
| N | strategy | delivered (of live) | lost | retried | 429s met | other errors | wall time | accepted calls/s | share of limit | peak RSS | peak Go heap+stacks |
| 1000 | ours | 988 / 988 (100.0%) | 0 | 13 | 13 | 0 | 184ms | 2999 | 99.9% | 50.1 MiB | 39.2 MiB |
`
	rows, limit, ceiling, err := fanoutTableRows(doc)
	require.NoError(t, err)
	assert.Equal(t, 10000.0, limit)
	assert.Equal(t, 10230.0, ceiling)
	require.Len(t, rows, 2, "only the first table counts")
	assert.Equal(t, bench.Sequential, rows[0].Strategy)
	assert.Equal(t, 1000, rows[0].N)
	assert.Equal(t, 48.0, rows[0].Rate)
	assert.Equal(t, bench.Ours, rows[1].Strategy)
	assert.Equal(t, 5441.0, rows[1].Rate)

	_, _, _, err = fanoutTableRows("no table here")
	assert.Error(t, err)
}

func TestRamp(t *testing.T) {
	w := 50 * time.Millisecond
	// 10,000/s is 500 per window: two windows of ramp, then the limit, then
	// the partial last window.
	acc := []int64{50, 200, 460, 500, 490, 510, 120}
	rt, inRamp, steady, ok := ramp(acc, 10000, w)
	require.True(t, ok)
	assert.Equal(t, 100*time.Millisecond, rt, "the first window at 450 or more is the third")
	assert.Equal(t, int64(250), inRamp)
	assert.InDelta(t, (460+500+490+510)/(4*0.05)/10000, steady, 1e-9, "the whole windows after the ramp, not the last")

	_, _, _, ok = ramp([]int64{100, 200, 300}, 10000, w)
	assert.False(t, ok, "never at 90% of the limit")
	_, _, _, ok = ramp([]int64{100, 500}, 10000, w)
	assert.False(t, ok, "only the partial last window after the ramp")
	_, _, _, ok = ramp(nil, 10000, w)
	assert.False(t, ok)
}
