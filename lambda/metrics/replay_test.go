package metrics_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
)

// TestEMFTapReplaysWhatEMFWrites: what a function's EMF recorder flushes
// (counters, more than 100 samples of an observation over several lines, a
// Reason dimension), written through a tap in odd-sized pieces between log
// lines, is recorded again exactly, while every byte reaches the output.
func TestEMFTapReplaysWhatEMFWrites(t *testing.T) {
	var out bytes.Buffer
	var emfOut bytes.Buffer
	e := metrics.NewEMF(&emfOut, "WebSocket/test", metrics.FunctionPublisher)
	e.Add(metrics.DeliveriesSucceeded, 998)
	e.Add(metrics.DeliveriesGone, 2)
	var samples []float64
	for i := range 150 {
		samples = append(samples, float64(i))
		e.Observe(metrics.FanoutDuration, float64(i))
	}
	e.AddReason(metrics.AuthorizerDenied, metrics.ReasonInvalidToken, 3)
	require.NoError(t, e.Flush())
	stream := append([]byte(`{"level":"INFO","msg":"a log line, not metrics","_aws":"no"}`+"\nplain text\n"), emfOut.Bytes()...)
	stream = append(stream, []byte("{\"msg\":\"last\"}\n")...)
	want := bytes.Clone(stream)

	rec := metricstest.New()
	tap := metrics.EMFTap(&out, rec)
	for len(stream) > 0 {
		n := min(len(stream), 37)
		k, err := tap.Write(stream[:n])
		require.NoError(t, err)
		require.Equal(t, n, k)
		stream = stream[n:]
	}
	require.NoError(t, tap.Close())

	assert.Equal(t, 998.0, rec.Count(metrics.DeliveriesSucceeded))
	assert.Equal(t, 2.0, rec.Count(metrics.DeliveriesGone))
	assert.Equal(t, samples, rec.Samples(metrics.FanoutDuration), "every sample, across lines")
	assert.Equal(t, 3.0, rec.CountReason(metrics.AuthorizerDenied, metrics.ReasonInvalidToken))
	assert.Zero(t, rec.Count(metrics.ConnectionsOpened))
	assert.Contains(t, out.String(), "a log line, not metrics")
	assert.Equal(t, string(want), out.String(), "every byte passes through")
}

// TestReplayEMFSkipsWhatIsNotItsOwn: log lines, broken JSON, metrics outside
// the catalog and non-numeric values are skipped.
func TestReplayEMFSkipsWhatIsNotItsOwn(t *testing.T) {
	rec := metricstest.New()
	for _, line := range []string{
		``, `not json`, `{"msg":"hello"}`, `{"_aws":{"CloudWatchMetrics":[]}}`, `{"_aws":`,
	} {
		assert.False(t, metrics.ReplayEMF([]byte(line), rec), line)
	}
	assert.True(t, metrics.ReplayEMF([]byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["Function"]],"Metrics":[{"Name":"SomethingElse","Unit":"Count"},{"Name":"DeliveriesSucceeded","Unit":"Count"},{"Name":"DeliveriesGone","Unit":"Count"}]}]},"Function":"websocket","SomethingElse":5,"DeliveriesSucceeded":"five","DeliveriesGone":4}`), rec))
	assert.Zero(t, rec.Count(metrics.DeliveriesSucceeded))
	assert.Equal(t, 4.0, rec.Count(metrics.DeliveriesGone))
}

// TestEMFTapNamespaceSkipsOtherNamespaces: a tap for one namespace replays
// only that namespace's directives, as a dashboard reads only its own.
func TestEMFTapNamespaceSkipsOtherNamespaces(t *testing.T) {
	var mine, theirs bytes.Buffer
	e := metrics.NewEMF(&mine, "WebSocket", metrics.FunctionWebSocket)
	e.Add(metrics.MessagesReceived, 7)
	require.NoError(t, e.Flush())
	o := metrics.NewEMF(&theirs, "MyApp", metrics.FunctionWebSocket)
	o.Add(metrics.MessagesReceived, 1000)
	require.NoError(t, o.Flush())

	rec := metricstest.New()
	tap := metrics.EMFTapNamespace(&bytes.Buffer{}, rec, "WebSocket")
	_, err := tap.Write(append(theirs.Bytes(), mine.Bytes()...))
	require.NoError(t, err)
	require.NoError(t, tap.Close())
	assert.Equal(t, 7.0, rec.Count(metrics.MessagesReceived))

	all := metricstest.New()
	tap = metrics.EMFTap(&bytes.Buffer{}, all)
	_, err = tap.Write(append(theirs.Bytes(), mine.Bytes()...))
	require.NoError(t, err)
	require.NoError(t, tap.Close())
	assert.Equal(t, 1007.0, all.Count(metrics.MessagesReceived), "EMFTap replays every namespace")
}
