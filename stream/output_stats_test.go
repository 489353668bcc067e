package stream_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// TestOutputStats: BatchStats.Outputs gives each output's name, values, write time (every
// attempt of the batch, without the backoff between them) and attempts, one at a time and
// with WithConcurrentOutputs; the times are the sinks' own, in the bubble's fake time.
func TestOutputStats(t *testing.T) {
	for _, concurrent := range []int{1, 2} {
		t.Run(map[int]string{1: "one at a time", 2: "concurrent"}[concurrent], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var stats []stream.BatchStats
				p, err := stream.New(time.Second, stream.WithConcurrentOutputs(concurrent),
					stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Second, Max: 10 * time.Second}),
					stream.WithStatsHook(func(st stream.BatchStats) { stats = append(stats, st) }))
				require.NoError(t, err)
				s := stream.From(p, stream.Source[int](&sliceSource{recs: []int{1, 2, 3, 4, 5}}))
				// A sink of its own name that takes 300 ms a write and fails its first one.
				failed := false
				stream.To(s, stream.SinkFunc[int](func(_ context.Context, b []int) error {
					time.Sleep(300 * time.Millisecond)
					if len(b) > 0 && !failed {
						failed = true
						return errDown
					}
					return nil
				}), stream.OutputName("slow-index"))
				// An unnamed output of a named stream, 50 ms a write, of the even values only.
				even := s.Filter(func(v int) bool { return v%2 == 0 })
				stream.ForEachBatch(even, func(context.Context, stream.BatchInfo, []int) error {
					time.Sleep(50 * time.Millisecond)
					return nil
				})
				require.NoError(t, p.Run(t.Context()))

				var withRecords *stream.BatchStats
				for i := range stats {
					if stats[i].InputRecords > 0 {
						withRecords = &stats[i]
					}
				}
				require.NotNil(t, withRecords)
				require.Equal(t, []stream.OutputStats{
					// Two attempts of 300 ms; the 10 s backoff between them is not its time.
					{Output: "slow-index", Values: 5, Time: 600 * time.Millisecond, Attempts: 2},
					// Written by the first attempt, not called again by the second.
					{Output: "output 1 (" + even.Name() + ")", Values: 2, Time: 50 * time.Millisecond, Attempts: 1},
				}, withRecords.Outputs)
				require.Equal(t, 2, withRecords.Attempts)
			})
		})
	}
}

// TestOutputNameEmptyRefused: OutputName("") is a graph error that Run reports.
func TestOutputNameEmptyRefused(t *testing.T) {
	p, err := stream.New(time.Second)
	require.NoError(t, err)
	s := stream.From(p, stream.Source[int](&sliceSource{recs: []int{1}}))
	stream.To(s, stream.SinkFunc[int](func(context.Context, []int) error { return nil }), stream.OutputName(""))
	err = p.Run(t.Context())
	require.ErrorContains(t, err, "OutputName: empty name")
}

// TestOutputStatsRepartition: a repartition's send is an output of its own in
// BatchStats.Outputs, named after the repartition, its values the records it sent.
func TestOutputStatsRepartition(t *testing.T) {
	var outs [][]stream.OutputStats
	h := streamtest.New(t, time.Second, stream.WithStatsHook(func(st stream.BatchStats) {
		if st.InputRecords > 0 {
			outs = append(outs, st.Outputs)
		}
	}))
	q, src := streamtest.NewQueue[string](h)
	log := streamtest.NewExchangeLog[stream.Pair[string, int]](2)
	_, shuffled := streamtest.NewRepartition(h, stream.Map(src, func(w string) stream.Pair[string, int] { return stream.KV(w, 1) }), "words", log)
	streamtest.Collect(shuffled)
	q.Add(stream.Record[string]{Value: "a", Partition: 0}, stream.Record[string]{Value: "b", Partition: 0, Offset: 1})
	h.Step()
	require.Len(t, outs, 1)
	sent := log.Len(0) + log.Len(1)
	require.Equal(t, "repartition words", outs[0][0].Output)
	require.Equal(t, sent, outs[0][0].Values, "the records in the exchange's log, marks included")
	require.GreaterOrEqual(t, sent, 2)
	require.Equal(t, 1, outs[0][0].Attempts)
}
