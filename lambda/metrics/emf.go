package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// EMF limits: metrics per directive and values per metric.
const (
	// MaxMetricsPerLine is CloudWatch's limit of metrics in one EMF document.
	MaxMetricsPerLine = 100
	// MaxValuesPerMetric is CloudWatch's limit of values in one metric's array.
	MaxValuesPerMetric = 100
	// MaxDimensions is CloudWatch's limit of dimensions in one dimension set.
	MaxDimensions = 30
)

// Dimension names.
const (
	DimensionFunction = "Function"
	DimensionReason   = "Reason"
)

// EMF is the Recorder of the Lambda functions: it buffers one invocation's
// metrics and Flush writes them to w as CloudWatch Embedded Metric Format
// lines (one JSON document per line), which CloudWatch Logs turns into
// metrics of namespace, dimension Function=function (and Reason for
// AuthorizerDenied).
type EMF struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	function  string
	now       func() time.Time
	sums      map[string]float64
	samples   map[string][]float64
	reasons   map[string]map[string]float64 // name -> reason -> sum
}

var _ Recorder = (*EMF)(nil)

// NewEMF returns an EMF recorder writing to w (os.Stdout on Lambda).
func NewEMF(w io.Writer, namespace, function string) *EMF {
	e := &EMF{w: w, namespace: namespace, function: function, now: time.Now}
	e.reset()
	return e
}

// SetClock replaces time.Now (golden tests).
func (e *EMF) SetClock(now func() time.Time) { e.now = now }

func (e *EMF) reset() {
	e.sums = map[string]float64{}
	e.samples = map[string][]float64{}
	e.reasons = map[string]map[string]float64{}
}

// Add implements Recorder.
func (e *EMF) Add(name string, v float64) {
	if d, ok := Lookup(name); !ok || d.Kind != Counter || d.HasReason {
		return
	}
	e.mu.Lock()
	e.sums[name] += v
	e.mu.Unlock()
}

// Observe implements Recorder.
func (e *EMF) Observe(name string, v float64) {
	if d, ok := Lookup(name); !ok || d.Kind != Observation {
		return
	}
	e.mu.Lock()
	e.samples[name] = append(e.samples[name], v)
	e.mu.Unlock()
}

// AddReason implements Recorder.
func (e *EMF) AddReason(name, reason string, v float64) {
	if d, ok := Lookup(name); !ok || !d.HasReason || !ValidReason(reason) {
		return
	}
	e.mu.Lock()
	if e.reasons[name] == nil {
		e.reasons[name] = map[string]float64{}
	}
	e.reasons[name][reason] += v
	e.mu.Unlock()
}

// Flush writes the buffered metrics, one line per document, and empties the
// buffer. Nothing is written when nothing was recorded.
func (e *EMF) Flush() error {
	e.mu.Lock()
	lines, err := e.linesLocked()
	e.reset()
	e.mu.Unlock()
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := e.w.Write(append(l, '\n')); err != nil {
			return fmt.Errorf("write metrics to log: %w", err)
		}
	}
	return nil
}

// emfValue is one metric's value in a document: a number or up to 100 samples.
type emfValue struct {
	name  string
	unit  string
	value any
}

func (e *EMF) linesLocked() ([][]byte, error) {
	ts := e.now().UnixMilli()
	// Each round takes the counters (first round only) and the next 100
	// samples of each observation, so a metric appears once per document.
	var rounds [][]emfValue
	var first []emfValue
	for _, name := range sortedKeys(e.sums) {
		d, _ := Lookup(name)
		first = append(first, emfValue{name, d.Unit, e.sums[name]})
	}
	for round := 0; ; round++ {
		var vals []emfValue
		if round == 0 {
			vals = first
		}
		for _, name := range sortedKeys(e.samples) {
			s := e.samples[name]
			lo := round * MaxValuesPerMetric
			if lo >= len(s) {
				continue
			}
			chunk := s[lo:min(lo+MaxValuesPerMetric, len(s))]
			d, _ := Lookup(name)
			var v any = chunk
			if len(chunk) == 1 {
				v = chunk[0]
			}
			vals = append(vals, emfValue{name, d.Unit, v})
		}
		if len(vals) == 0 && round > 0 {
			break
		}
		for len(vals) > 0 {
			n := min(len(vals), MaxMetricsPerLine)
			rounds = append(rounds, vals[:n])
			vals = vals[n:]
		}
	}
	var lines [][]byte
	for _, vals := range rounds {
		l, err := e.document(ts, vals, nil)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	for _, name := range sortedKeys(e.reasons) {
		d, _ := Lookup(name)
		for _, reason := range sortedKeys(e.reasons[name]) {
			l, err := e.document(ts, []emfValue{{name, d.Unit, e.reasons[name][reason]}}, map[string]string{DimensionReason: reason})
			if err != nil {
				return nil, err
			}
			lines = append(lines, l)
		}
	}
	return lines, nil
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// document renders one EMF line: _aws metadata, the dimension values and
// the metric values as top-level keys.
func (e *EMF) document(ts int64, vals []emfValue, extra map[string]string) ([]byte, error) {
	dims := []string{DimensionFunction}
	doc := map[string]any{DimensionFunction: e.function}
	for _, k := range sortedKeys(extra) {
		dims = append(dims, k)
		doc[k] = extra[k]
	}
	dir := emfDirective{Namespace: e.namespace, Dimensions: [][]string{dims}}
	for _, v := range vals {
		dir.Metrics = append(dir.Metrics, emfMetric{Name: v.name, Unit: v.unit})
		doc[v.name] = v.value
	}
	doc["_aws"] = emfMetadata{Timestamp: ts, CloudWatchMetrics: []emfDirective{dir}}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode metrics: %w", err)
	}
	return b, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
