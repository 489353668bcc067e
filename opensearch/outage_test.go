package opensearch_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/testenv"
)

// outage is how long OpenSearch stays down: a real stop of the node, as long as issue 6 asks.
const outage = 30 * time.Second

// TestFaultSinkOutage stops the shared OpenSearch node for a while, so it runs in the fault
// step of make test (see testenv.FaultTest). The sink's retries are bounded (a few attempts
// per Write), so the outage is bounded by the pipeline's policy: each failed Write fails the
// batch retryably, the pipeline writes it again, and nothing is acknowledged or lost.
func TestFaultSinkOutage(t *testing.T) {
	testenv.FaultTest(t)
	n := newNode(t)
	prefix := n.newPrefix(t)
	sink, err := opensearch.NewSink(n.client, statsMapping(prefix),
		opensearch.WithRetry(stream.RetryPolicy{Initial: 50 * time.Millisecond, Max: time.Second, MaxAttempts: 4}))
	require.NoError(t, err)

	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[cabStats](h)
	stream.To(src, sink)
	const per = 10_000
	vals := stats(0, 3*per)
	for i := 0; i < len(vals); i += per {
		q.AddValues(vals[i : i+per]...)
	}
	q.End()

	h.Step()
	require.Equal(t, int64(per), q.Committed(0))

	testenv.StopService(t, "opensearch")
	down := true
	t.Cleanup(func() {
		if down {
			testenv.StartService(t, "opensearch")
		}
	})
	stopped := time.Now()
	done := make(chan error, 1)
	var failedWrites atomic.Int64
	go func() {
		// The pipeline's retry loop, as Run does it: a failed batch is written again.
		for {
			_, err := h.TryStep()
			if err == nil || stream.IsPermanent(err) {
				done <- err
				return
			}
			failedWrites.Add(1)
		}
	}()
	waitFor(t, time.Minute, "the sink to retry", func() bool { return sink.Stats().RequestRetries > 0 })
	// Keep the node down for the outage, checking all along that the batch is neither
	// acknowledged nor given up.
	waitFor(t, 2*outage, "the outage to last", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the batch finished while OpenSearch was down: %v", err)
		default:
		}
		require.Equal(t, int64(per), q.Committed(0), "committed while OpenSearch was down")
		return time.Since(stopped) >= outage
	})
	retries := sink.Stats().RequestRetries
	require.GreaterOrEqual(t, retries, int64(3))
	require.Positive(t, failedWrites.Load(), "Write gave up under its policy and the pipeline retried the batch")

	testenv.StartService(t, "opensearch")
	down = false
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(3 * time.Minute):
		t.Fatal("the pipeline did not resume after OpenSearch came back")
	}
	require.Equal(t, int64(2*per), q.Committed(0))
	h.RunUntilDone()
	require.Equal(t, int64(3*per), q.Committed(0))

	require.Equal(t, 3*per, n.count(t, prefix+"-*"))
	st := sink.Stats()
	require.Equal(t, int64(3*per), st.Indexed+st.Updated)
	t.Logf("down %v, request retries while down %d, batch attempts failed %d; stats %+v", time.Since(stopped).Round(time.Second), retries, failedWrites.Load(), st)
}
