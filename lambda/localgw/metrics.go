package localgw

import (
	"net/http"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/prom"
)

// MetricsPath is where the gateway serves its metrics in the Prometheus text
// format: the counters the Lambda functions write as CloudWatch EMF on AWS,
// under the names of metrics.PrometheusName (docs/operations.md).
const MetricsPath = "/metrics"

// Metrics returns the recorder behind GET /metrics. The in-process handlers
// (websocket, publisher, authorizer) record into it; compiled bootstraps
// (LambdaDir) write EMF lines to their output instead.
func (s *Server) Metrics() *prom.Prometheus { return s.metrics }

// withMetrics serves GET /metrics and hands every other request to next.
// A stage named "metrics" keeps the path for its WebSocket endpoint.
func (s *Server) withMetrics(next http.Handler) http.Handler {
	metricsHandler := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == MetricsPath && s.stage != MetricsPath[1:] && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			metricsHandler.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
