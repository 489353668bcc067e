package prom_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestObserveOutputs: BatchStats.Outputs become output_write_seconds{output} (one
// observation an output name a batch, outputs of one name summed) and
// output_values_total{output}.
func TestObserveOutputs(t *testing.T) {
	m, _, srv := newMetrics(t)
	for i := range 2 {
		m.Observe(stream.BatchStats{Batch: int64(i + 1), Attempts: 1, Outputs: []stream.OutputStats{
			{Output: "cab-stats", Values: 100, Time: 30 * time.Millisecond, Attempts: 1},
			{Output: "dead-letters", Values: 2, Time: 5 * time.Millisecond, Attempts: 1},
			{Output: "dead-letters", Values: 1, Time: 3 * time.Millisecond, Attempts: 1},
		}})
	}
	mfs := scrape(t, srv)
	require.Equal(t, 200.0, mustValue(t, mfs, "fleetstream_output_values_total", "output", "cab-stats"))
	require.Equal(t, 6.0, mustValue(t, mfs, "fleetstream_output_values_total", "output", "dead-letters"))
	sums := map[string]float64{}
	counts := map[string]uint64{}
	for _, mt := range mfs["fleetstream_output_write_seconds"].GetMetric() {
		for _, l := range mt.GetLabel() {
			if l.GetName() == "output" {
				sums[l.GetValue()] = mt.GetHistogram().GetSampleSum()
				counts[l.GetValue()] = mt.GetHistogram().GetSampleCount()
			}
		}
	}
	require.Equal(t, map[string]uint64{"cab-stats": 2, "dead-letters": 2}, counts, "one observation a name a batch")
	require.InDelta(t, 0.060, sums["cab-stats"], 1e-9)
	require.InDelta(t, 0.016, sums["dead-letters"], 1e-9)
}
