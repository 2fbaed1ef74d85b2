// Package prom is the Prometheus face of package metrics: the local
// gateway's GET /metrics. It lives apart so the Lambda binaries, which write
// EMF, do not link the Prometheus client.
package prom

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

// Prometheus is the metrics.Recorder of the local gateway: every metric of metrics.Catalog
// as a Prometheus counter or histogram (names from metrics.PrometheusName, reason
// as a label of websocket_authorizer_denied_total), in its own registry,
// served by Handler. Every series exists from the start, at zero.
type Prometheus struct {
	reg        *prometheus.Registry
	counters   map[string]prometheus.Counter
	histograms map[string]prometheus.Histogram
	reasons    map[string]*prometheus.CounterVec
}

var _ metrics.Recorder = (*Prometheus)(nil)

// Histogram buckets by unit.
var (
	bucketsMilliseconds = prometheus.ExponentialBuckets(1, 4, 10)  // 1 ms .. 262 s
	bucketsPerSecond    = prometheus.ExponentialBuckets(10, 2, 12) // 10/s .. 20,480/s
	bucketsCount        = prometheus.ExponentialBuckets(1, 4, 10)  // 1 .. 262,144
)

// NewPrometheus registers every metric of metrics.Catalog in a new registry.
func NewPrometheus() *Prometheus {
	p := &Prometheus{
		reg:        prometheus.NewRegistry(),
		counters:   map[string]prometheus.Counter{},
		histograms: map[string]prometheus.Histogram{},
		reasons:    map[string]*prometheus.CounterVec{},
	}
	for _, d := range metrics.Catalog {
		switch {
		case d.HasReason:
			v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Prometheus, Help: help(d)}, []string{"reason"})
			for _, r := range metrics.DenyReasons {
				v.WithLabelValues(r)
			}
			p.reasons[d.Name] = v
			p.reg.MustRegister(v)
		case d.Kind == metrics.Counter:
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: d.Prometheus, Help: help(d)})
			p.counters[d.Name] = c
			p.reg.MustRegister(c)
		default:
			buckets := bucketsCount
			switch d.Unit {
			case metrics.UnitMilliseconds:
				buckets = bucketsMilliseconds
			case metrics.UnitCountPerSec:
				buckets = bucketsPerSecond
			}
			h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: d.Prometheus, Help: help(d), Buckets: buckets})
			p.histograms[d.Name] = h
			p.reg.MustRegister(h)
		}
	}
	return p
}

// Add implements metrics.Recorder.
func (p *Prometheus) Add(name string, v float64) {
	if c, ok := p.counters[name]; ok && v >= 0 {
		c.Add(v)
	}
}

// Observe implements metrics.Recorder.
func (p *Prometheus) Observe(name string, v float64) {
	if h, ok := p.histograms[name]; ok {
		h.Observe(v)
	}
}

// AddReason implements metrics.Recorder.
func (p *Prometheus) AddReason(name, reason string, v float64) {
	if c, ok := p.reasons[name]; ok && metrics.ValidReason(reason) && v >= 0 {
		c.WithLabelValues(reason).Add(v)
	}
}

// Registry returns the registry the metrics live in.
func (p *Prometheus) Registry() *prometheus.Registry { return p.reg }

// Handler serves the metrics in the Prometheus text format (GET /metrics).
func (p *Prometheus) Handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{})
}

// help is a metric's HELP text: its CloudWatch (EMF) name first, so that
// the scrape itself says which dashboard metric each series is.
func help(d metrics.Definition) string { return d.Name + ": " + d.Help }
