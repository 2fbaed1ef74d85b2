package metrics

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
)

// ReplayEMF reads line as one CloudWatch Embedded Metric Format document, as
// EMF.Flush writes them, and records its metrics into r: counters with Add
// (AddReason when the document carries a Reason dimension), observations
// with one Observe per sample. Metrics outside the Catalog and values that
// are not numbers are skipped. It reports whether line was an EMF document
// (a log line is not): the local gateway replays its compiled bootstraps'
// output into GET /metrics this way, as CloudWatch Logs turns the same lines
// into metrics on AWS.
func ReplayEMF(line []byte, r Recorder) bool {
	return replayEMF(line, r, "")
}

// replayEMF is ReplayEMF keeping only the directives of namespace ("" keeps
// every one).
func replayEMF(line []byte, r Recorder, namespace string) bool {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(`"_aws"`)) {
		return false
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(line, &doc) != nil {
		return false
	}
	var meta struct {
		CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
	}
	if raw, ok := doc["_aws"]; !ok || json.Unmarshal(raw, &meta) != nil || len(meta.CloudWatchMetrics) == 0 {
		return false
	}
	var reason string
	if raw, ok := doc[DimensionReason]; ok {
		_ = json.Unmarshal(raw, &reason)
	}
	for _, dir := range meta.CloudWatchMetrics {
		if namespace != "" && dir.Namespace != namespace {
			continue
		}
		for _, m := range dir.Metrics {
			d, ok := Lookup(m.Name)
			if !ok {
				continue
			}
			values := emfValues(doc[m.Name])
			for _, v := range values {
				switch {
				case d.HasReason && reason != "":
					r.AddReason(d.Name, reason, v)
				case d.Kind == Counter:
					r.Add(d.Name, v)
				default:
					r.Observe(d.Name, v)
				}
			}
		}
	}
	return true
}

// emfValues reads a metric's value: one number or an array of samples.
func emfValues(raw json.RawMessage) []float64 {
	var one float64
	if json.Unmarshal(raw, &one) == nil {
		return []float64{one}
	}
	var many []float64
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}

// EMFTap returns a writer that passes every byte to w and replays each
// complete line that is an EMF document into r (ReplayEMF). Give each
// process its own tap: it joins the lines of one stream. Close replays a
// last line that had no newline.
func EMFTap(w io.Writer, r Recorder) io.WriteCloser {
	return &emfTap{w: w, r: r}
}

// EMFTapNamespace is EMFTap replaying only the metrics of namespace, as a
// deployment's dashboard reads only its own: a process that writes EMF for
// another namespace (a route's own function) moves nothing.
func EMFTapNamespace(w io.Writer, r Recorder, namespace string) io.WriteCloser {
	return &emfTap{w: w, r: r, namespace: namespace}
}

type emfTap struct {
	mu        sync.Mutex
	w         io.Writer
	r         Recorder
	namespace string
	partial   []byte
}

// maxEMFLine bounds the bytes held for one line; a longer line is passed
// through but not replayed (EMF.Flush writes at most 100 metrics per line).
const maxEMFLine = 1 << 20

func (t *emfTap) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := p
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if t.partial != nil {
			if len(t.partial) <= maxEMFLine {
				replayEMF(append(t.partial, rest[:i]...), t.r, t.namespace)
			}
			t.partial = nil
		} else {
			replayEMF(rest[:i], t.r, t.namespace)
		}
		rest = rest[i+1:]
	}
	if len(rest) > 0 && len(t.partial) <= maxEMFLine {
		t.partial = append(t.partial, rest...)
	}
	return n, err
}

func (t *emfTap) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 && len(t.partial) <= maxEMFLine {
		replayEMF(t.partial, t.r, t.namespace)
	}
	t.partial = nil
	return nil
}
