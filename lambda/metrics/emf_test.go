package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden and metrics.json")

// validateEMF checks one line against the Embedded Metric Format's rules
// and the catalog: _aws.Timestamp in ms, one directive with the namespace,
// dimension sets of at most 30 names whose values are top-level strings,
// at most 100 metrics, each a catalog name with its unit and a top-level
// number or array of at most 100 numbers.
func validateEMF(t *testing.T, namespace string, line []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(line, &doc), "line is JSON: %s", line)
	aws, ok := doc["_aws"].(map[string]any)
	require.True(t, ok, "_aws object")
	ts, ok := aws["Timestamp"].(float64)
	require.True(t, ok, "_aws.Timestamp is a number")
	assert.Greater(t, ts, float64(1e12), "Timestamp in milliseconds")
	dirs, ok := aws["CloudWatchMetrics"].([]any)
	require.True(t, ok && len(dirs) == 1, "one CloudWatchMetrics directive")
	dir := dirs[0].(map[string]any)
	assert.Equal(t, namespace, dir["Namespace"])
	dimSets := dir["Dimensions"].([]any)
	require.NotEmpty(t, dimSets)
	for _, ds := range dimSets {
		names := ds.([]any)
		require.LessOrEqual(t, len(names), metrics.MaxDimensions)
		require.Equal(t, metrics.DimensionFunction, names[0], "Function is always the first dimension")
		for _, n := range names {
			v, ok := doc[n.(string)].(string)
			require.True(t, ok && v != "", "dimension %v has a top-level string value", n)
			if n == metrics.DimensionReason {
				assert.Contains(t, metrics.DenyReasons, v)
			}
		}
		require.LessOrEqual(t, len(names), 2, "dimensions are Function and, at most, Reason")
	}
	ms := dir["Metrics"].([]any)
	require.NotEmpty(t, ms)
	require.LessOrEqual(t, len(ms), metrics.MaxMetricsPerLine)
	seen := map[string]bool{}
	for _, m := range ms {
		mm := m.(map[string]any)
		name := mm["Name"].(string)
		require.False(t, seen[name], "metric %s once per line", name)
		seen[name] = true
		d, ok := metrics.Lookup(name)
		require.True(t, ok, "metric %s is in the catalog", name)
		assert.Equal(t, d.Unit, mm["Unit"], "unit of %s", name)
		switch v := doc[name].(type) {
		case float64:
		case []any:
			require.LessOrEqual(t, len(v), metrics.MaxValuesPerMetric, "values of %s", name)
			for _, x := range v {
				_, ok := x.(float64)
				require.True(t, ok, "value of %s is a number", name)
			}
		default:
			t.Fatalf("metric %s has no top-level value: %T", name, doc[name])
		}
		hasReason := false
		for _, ds := range dimSets {
			hasReason = hasReason || len(ds.([]any)) == 2
		}
		assert.Equal(t, d.HasReason, hasReason, "Reason dimension on %s", name)
	}
	return doc
}

func lines(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	require.NoError(t, sc.Err())
	return out
}

func fixedClock() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

func TestEMFGolden(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.NewEMF(&buf, "WebSocket/demo", "publisher")
	e.SetClock(fixedClock)
	e.Add(metrics.DeliveriesAttempted, 12)
	e.Add(metrics.DeliveriesSucceeded, 9)
	e.Add(metrics.DeliveriesGone, 1)
	e.Add(metrics.Throttled, 2)
	e.Add(metrics.Retries, 2)
	e.Add(metrics.DeliveriesAttempted, 1)
	e.Observe(metrics.Recipients, 10)
	e.Observe(metrics.FanoutDuration, 41.5)
	e.Observe(metrics.FanoutRate, 241)
	e.Observe(metrics.Recipients, 1)
	e.AddReason(metrics.AuthorizerDenied, metrics.ReasonInvalidToken, 1)
	require.NoError(t, e.Flush())
	golden(t, "testdata/invocation.golden", buf.Bytes())
	for _, l := range lines(t, buf.Bytes()) {
		validateEMF(t, "WebSocket/demo", l)
	}
	buf.Reset()
	require.NoError(t, e.Flush())
	assert.Empty(t, buf.String(), "a flush with nothing recorded writes nothing")
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./lambda/metrics -update to create it")
	assert.Equal(t, string(want), string(got))
}

func TestEMFEveryMetricValid(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.NewEMF(&buf, "WebSocket/all", "websocket")
	for _, d := range metrics.Catalog {
		switch {
		case d.HasReason:
			for _, r := range metrics.DenyReasons {
				e.AddReason(d.Name, r, 1)
			}
		case d.Kind == metrics.Counter:
			e.Add(d.Name, 1)
		default:
			e.Observe(d.Name, 1)
		}
	}
	require.NoError(t, e.Flush())
	got := map[string]bool{}
	ls := lines(t, buf.Bytes())
	assert.Len(t, ls, 1+len(metrics.DenyReasons), "one line for Function, one per reason")
	for _, l := range ls {
		doc := validateEMF(t, "WebSocket/all", l)
		for _, d := range metrics.Catalog {
			if _, ok := doc[d.Name]; ok {
				got[d.Name] = true
			}
		}
	}
	assert.Len(t, got, len(metrics.Catalog))
}

func TestEMFSplitsAtLimits(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.NewEMF(&buf, "ns", "fanout")
	for i := range 250 {
		e.Observe(metrics.FanoutDuration, float64(i))
	}
	e.Observe(metrics.Recipients, 5)
	e.Add(metrics.BatchesCompleted, 3)
	require.NoError(t, e.Flush())
	ls := lines(t, buf.Bytes())
	require.Len(t, ls, 3, "250 samples take three documents of at most 100")
	var samples []float64
	for _, l := range ls {
		doc := validateEMF(t, "ns", l)
		switch v := doc[metrics.FanoutDuration].(type) {
		case []any:
			for _, x := range v {
				samples = append(samples, x.(float64))
			}
		case float64:
			samples = append(samples, v)
		}
	}
	assert.Len(t, samples, 250, "no sample lost")
}

func TestEMFDropsUnknownNamesAndReasons(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.NewEMF(&buf, "ns", "authorizer")
	e.Add("channel:news", 1)
	e.Observe(metrics.ConnectionsOpened, 1) // a counter, not an observation
	e.AddReason(metrics.AuthorizerDenied, "user-42", 1)
	e.AddReason(metrics.ConnectionsOpened, metrics.ReasonError, 1)
	require.NoError(t, e.Flush())
	assert.Empty(t, buf.String())
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestWrapFlushesAfterEachInvocation(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.NewEMF(&buf, "ns", "websocket")
	h := metrics.Wrap(e, func(_ context.Context, n int) (string, error) {
		e.Add(metrics.MessagesReceived, float64(n))
		return fmt.Sprint(n), nil
	})
	out, err := h(context.Background(), 3)
	require.NoError(t, err)
	assert.Equal(t, "3", out)
	ls := lines(t, buf.Bytes())
	require.Len(t, ls, 1)
	assert.Equal(t, float64(3), validateEMF(t, "ns", ls[0])[metrics.MessagesReceived])
	_, err = h(context.Background(), 2)
	require.NoError(t, err)
	ls = lines(t, buf.Bytes())
	require.Len(t, ls, 2)
	assert.Equal(t, float64(2), validateEMF(t, "ns", ls[1])[metrics.MessagesReceived], "each invocation flushes its own counts")

	failing := metrics.NewEMF(failingWriter{}, "ns", "websocket")
	failing.Add(metrics.MessagesReceived, 1)
	assert.Error(t, failing.Flush())
}

func TestNamespaceFromEnv(t *testing.T) {
	assert.Equal(t, metrics.DefaultNamespace, metrics.NamespaceFromEnv(func(string) string { return "" }))
	assert.Equal(t, "WebSocket/prod", metrics.NamespaceFromEnv(func(k string) string {
		if k == metrics.EnvNamespace {
			return "WebSocket/prod"
		}
		return ""
	}))
}

// TestCatalogFile keeps metrics.json, which the module's plan tests read to
// check the dashboard, equal to Catalog. Regenerate with -update.
func TestCatalogFile(t *testing.T) {
	b, err := json.MarshalIndent(struct {
		DenyReasons []string             `json:"denyReasons"`
		Metrics     []metrics.Definition `json:"metrics"`
	}{metrics.DenyReasons, metrics.Catalog}, "", "  ")
	require.NoError(t, err)
	golden(t, "metrics.json", append(b, '\n'))
}

func TestPrometheusNames(t *testing.T) {
	assert.Equal(t, "websocket_connections_opened_total", metrics.PrometheusName(metrics.ConnectionsOpened, metrics.UnitCount, metrics.Counter))
	assert.Equal(t, "websocket_fanout_duration_milliseconds", metrics.PrometheusName(metrics.FanoutDuration, metrics.UnitMilliseconds, metrics.Observation))
	assert.Equal(t, "websocket_fanout_rate_per_second", metrics.PrometheusName(metrics.FanoutRate, metrics.UnitCountPerSec, metrics.Observation))
	assert.Equal(t, "websocket_recipients", metrics.PrometheusName(metrics.Recipients, metrics.UnitCount, metrics.Observation))
}

// TestOperationsDocListsEveryMetric keeps docs/operations.md's metric table
// (name and unit) in step with the catalog.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	require.NoError(t, err)
	for _, d := range metrics.Catalog {
		assert.Contains(t, string(doc), fmt.Sprintf("| `%s` | %s |", d.Name, d.Unit), "docs/operations.md lists %s with its unit", d.Name)
	}
}

// TestDocsGiveTheSeriesBound keeps the series bound that docs/operations.md
// works out and docs/module.md quotes in step with the catalog: every metric
// without a Reason once per function, the one with a Reason once per reason
// and function; in practice only the authorizer records the latter.
func TestDocsGiveTheSeriesBound(t *testing.T) {
	const functions = 5
	plain, reasoned := 0, 0
	for _, d := range metrics.Catalog {
		if d.HasReason {
			reasoned++
		} else {
			plain++
		}
	}
	require.Equal(t, 1, reasoned, "one metric has the Reason dimension")
	reasons := len(metrics.DenyReasons)
	bound := plain*functions + reasons*functions
	practice := bound - reasons*(functions-1)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		require.NoError(t, err)
		return strings.Join(strings.Fields(string(b)), " ")
	}
	assert.Contains(t, read("operations.md"), fmt.Sprintf("at most %d metrics x %d functions + %d reasons x %d functions = %d series", plain, functions, reasons, functions, bound))
	assert.Contains(t, read("operations.md"), fmt.Sprintf("(so %d)", practice))
	assert.Contains(t, read("module.md"), fmt.Sprintf("at most %d series per deployment, %d in practice", bound, practice))
}

// TestWrapEndsTheHandlerBeforeTheDeadline: a handler that runs until its
// context ends (a send cut short by the invocation's deadline) returns
// DeadlineMargin before the deadline, and its metrics are flushed by then.
func TestWrapEndsTheHandlerBeforeTheDeadline(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.NewEMF(&buf, "ns", "publisher")
	h := metrics.Wrap(e, func(ctx context.Context, _ int) (string, error) {
		<-ctx.Done()
		e.Add(metrics.DeliveriesLost, 7)
		return "", ctx.Err()
	})
	deadline := time.Now().Add(2 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, err := h(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	flushed := time.Now()
	assert.True(t, flushed.Before(deadline), "returned and flushed before the invocation's deadline")
	ls := lines(t, buf.Bytes())
	require.Len(t, ls, 1)
	assert.Equal(t, float64(7), validateEMF(t, "ns", ls[0])[metrics.DeliveriesLost])

	// Less than twice the margin left: the handler keeps the whole of it.
	short, cancelShort := context.WithTimeout(context.Background(), metrics.DeadlineMargin)
	defer cancelShort()
	got := metrics.Wrap(e, func(ctx context.Context, _ int) (time.Time, error) {
		dl, _ := ctx.Deadline()
		return dl, nil
	})
	dl, _ := short.Deadline()
	at, err := got(short, 1)
	require.NoError(t, err)
	assert.Equal(t, dl, at)
}
