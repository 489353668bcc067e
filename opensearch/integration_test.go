package opensearch_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

const total = 100_000

// batches feeds total results through a pipeline in batches of 10,000 and returns the sink.
func runPipeline(t *testing.T, sink *opensearch.Sink[cabStats], vals []cabStats) *streamtest.Queue[cabStats] {
	t.Helper()
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[cabStats](h)
	stream.To(src, sink)
	const per = 10_000
	for i := 0; i < len(vals); i += per {
		q.AddValues(vals[i:min(i+per, len(vals))]...)
	}
	q.End()
	h.RunUntilDone()
	require.Equal(t, int64(len(vals)), q.Committed(0))
	return q
}

func TestSinkPipelineExactlyOnce(t *testing.T) {
	n := newNode(t)
	prefix := n.newPrefix(t)
	vals := stats(0, total)

	sink, err := opensearch.NewSink(n.client, statsMapping(prefix))
	require.NoError(t, err)
	runPipeline(t, sink, vals)
	require.Equal(t, total, n.count(t, prefix+"-*"))
	st := sink.Stats()
	require.Equal(t, int64(total), st.Indexed)
	require.Zero(t, st.Updated)

	t.Run("Replay", func(t *testing.T) {
		replay, err := opensearch.NewSink(n.client, statsMapping(prefix))
		require.NoError(t, err)
		runPipeline(t, replay, vals)
		require.Equal(t, total, n.count(t, prefix+"-*"))
		st := replay.Stats()
		require.Equal(t, int64(total), st.Updated)
		require.Zero(t, st.Indexed)
		for _, i := range []int{0, 777, total - 1} {
			v := vals[i]
			index := prefix + "-" + v.WindowStart.Format("2006.01.02")
			require.Equal(t, 2, n.version(t, index, statsID(v)), "doc %d", i)
		}
	})
}
