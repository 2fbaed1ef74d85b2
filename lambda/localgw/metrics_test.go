package localgw_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

// scrapeMetrics reads GET /metrics and returns its samples by series
// ("name" or `name{label="value"}`).
func scrapeMetrics(ctx context.Context, t *testing.T, srv *localgw.Server) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.Addr()+localgw.MetricsPath, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	require.NoError(t, sc.Err())
	return out
}

func promName(t *testing.T, name string) string {
	t.Helper()
	d, ok := metrics.Lookup(name)
	require.True(t, ok, name)
	return d.Prometheus
}

// TestMetricsEndpoint drives real WebSocket clients through the gateway and
// checks each counter on GET /metrics moves with its event.
func TestMetricsEndpoint(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, localgw.ServerConfig{JWTSecret: testSecret})
	checkMetricsMove(ctx, t, srv)
}

// checkMetricsMove drives real WebSocket clients through srv (JWT secret
// testSecret) and checks each counter on GET /metrics moves with its event.
func checkMetricsMove(ctx context.Context, t *testing.T, srv *localgw.Server) {
	t.Helper()
	before := scrapeMetrics(ctx, t, srv)
	for _, d := range metrics.Catalog {
		if d.Kind == metrics.Counter && !d.HasReason {
			assert.Contains(t, before, d.Prometheus, "%s is served from the start", d.Name)
		}
	}

	_, resp, err := localgwtest.Dial(ctx, t, srv.URL(), "")
	require.Error(t, err, "no token")
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	_, resp, err = localgwtest.Dial(ctx, t, srv.URL(), "not-a-jwt")
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	a := localgwtest.MustDial(ctx, t, srv.URL(), localgwtest.Token(t, testSecret, "ann", ""))
	b := localgwtest.MustDial(ctx, t, srv.URL(), localgwtest.Token(t, testSecret, "bob", ""))
	a.Subscribe(ctx, "room")
	b.Subscribe(ctx, "room")
	a.Send(ctx, map[string]any{"action": "publish", "channel": "room", "data": "hi"})
	a.ExpectType(ctx, "published", "room")
	b.ExpectType(ctx, "message", "room")
	require.NoError(t, b.Conn.Close(websocket.StatusNormalClosure, "bye"))

	want := map[string]float64{
		metrics.ConnectionsOpened:   2,
		metrics.ConnectionsClosed:   1,
		metrics.MessagesReceived:    3, // two subscribes and a publish
		metrics.DeliveriesSucceeded: 1,
		metrics.DeliveriesAttempted: 1,
		metrics.AuthorizerAllowed:   2,
		metrics.DeliveriesLost:      0,
	}
	denied := promName(t, metrics.AuthorizerDenied)
	var got map[string]float64
	localgwtest.WaitFor(ctx, t, "the counters to reach their values", func() bool {
		got = scrapeMetrics(ctx, t, srv)
		for name, v := range want {
			if got[promName(t, name)] != v {
				return false
			}
		}
		return got[denied+`{reason="invalid_token"}`] == 1 && got[promName(t, metrics.Recipients)+"_count"] == 1
	})
	for name, v := range want {
		assert.Equal(t, v, got[promName(t, name)], name)
	}
	assert.Equal(t, 0.0, got[denied+`{reason="no_token"}`], "like API Gateway, the gateway answers 401 without calling the authorizer when the identity source is missing")
	assert.Equal(t, 1.0, got[denied+`{reason="invalid_token"}`])
	assert.Equal(t, 1.0, got[promName(t, metrics.Recipients)+"_count"])
}

func TestMetricsPathBelongsToAStageNamedMetrics(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, localgw.ServerConfig{Stage: "metrics"})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.Addr()+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.NotContains(t, string(body), "websocket_connections_opened_total", "the stage's WebSocket endpoint wins")
	c := localgwtest.MustDial(ctx, t, srv.URL(), "")
	c.Whoami(ctx)
}
