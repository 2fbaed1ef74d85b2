package prom_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/prom"
)

func scrape(t *testing.T, p *prom.Prometheus) string {
	t.Helper()
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestPrometheusServesEveryCatalogMetric(t *testing.T) {
	p := prom.NewPrometheus()
	body := scrape(t, p)
	for _, d := range metrics.Catalog {
		assert.Contains(t, body, "# TYPE "+d.Prometheus+" ", "metric %s is served from the start", d.Name)
		assert.Contains(t, body, "# HELP "+d.Prometheus+" "+d.Name+": ", "the HELP text names %s, as CloudWatch does", d.Name)
	}
	for _, r := range metrics.DenyReasons {
		assert.Contains(t, body, `websocket_authorizer_denied_total{reason="`+r+`"} 0`)
	}
}

func TestPrometheusRecords(t *testing.T) {
	p := prom.NewPrometheus()
	p.Add(metrics.ConnectionsOpened, 2)
	p.Add(metrics.ConnectionsOpened, 1)
	p.Add("channel:news", 1)
	p.Observe(metrics.FanoutDuration, 12)
	p.AddReason(metrics.AuthorizerDenied, metrics.ReasonNoToken, 1)
	p.AddReason(metrics.AuthorizerDenied, "user-1", 1)
	body := scrape(t, p)
	assert.Contains(t, body, "\nwebsocket_connections_opened_total 3\n")
	assert.Contains(t, body, "\nwebsocket_fanout_duration_milliseconds_count 1\n")
	assert.Contains(t, body, "\nwebsocket_fanout_duration_milliseconds_sum 12\n")
	assert.Contains(t, body, `websocket_authorizer_denied_total{reason="no_token"} 1`)
	assert.NotContains(t, body, "user-1")
	assert.NotContains(t, body, "channel")
	assert.Equal(t, len(metrics.Catalog), strings.Count(body, "# TYPE "), "only catalog metrics")
}
