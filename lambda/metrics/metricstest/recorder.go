// Package metricstest is a metrics.Recorder that remembers what it got, for
// tests that check a counter moves when its event happens.
package metricstest

import (
	"sync"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

// Recorder sums counters and keeps samples in memory. It refuses, by
// panicking, names outside metrics.Catalog and reasons outside
// metrics.DenyReasons, so a test catches a metric the catalog lacks.
type Recorder struct {
	mu      sync.Mutex
	sums    map[string]float64
	samples map[string][]float64
}

var _ metrics.Recorder = (*Recorder)(nil)

// New returns an empty Recorder.
func New() *Recorder {
	return &Recorder{sums: map[string]float64{}, samples: map[string][]float64{}}
}

func mustKind(name string, kind metrics.Kind, reason bool) {
	d, ok := metrics.Lookup(name)
	if !ok || d.Kind != kind || d.HasReason != reason {
		panic("metricstest: " + name + " is not a " + string(kind) + " of the catalog with that dimension set")
	}
}

// Add implements metrics.Recorder.
func (r *Recorder) Add(name string, v float64) {
	mustKind(name, metrics.Counter, false)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sums[name] += v
}

// Observe implements metrics.Recorder.
func (r *Recorder) Observe(name string, v float64) {
	mustKind(name, metrics.Observation, false)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples[name] = append(r.samples[name], v)
}

// AddReason implements metrics.Recorder.
func (r *Recorder) AddReason(name, reason string, v float64) {
	mustKind(name, metrics.Counter, true)
	if !metrics.ValidReason(reason) {
		panic("metricstest: reason " + reason + " is not in metrics.DenyReasons")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sums[name+"/"+reason] += v
}

// Count is the sum of counter name.
func (r *Recorder) Count(name string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sums[name]
}

// CountReason is the sum of counter name for reason.
func (r *Recorder) CountReason(name, reason string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sums[name+"/"+reason]
}

// Samples returns the samples of observation name.
func (r *Recorder) Samples(name string) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]float64(nil), r.samples[name]...)
}
