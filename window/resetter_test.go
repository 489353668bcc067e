package window_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// listAgg keeps a window's values in a slice, as cab stats keep their points, and results in
// the sorted values rendered as text (a copy: Result must not alias the accumulator).
type listAgg struct{}

func (listAgg) Zero() []float64                        { return nil }
func (listAgg) Add(acc []float64, v float64) []float64 { return append(acc, v) }
func (listAgg) Merge(a, b []float64) []float64         { return append(slices.Clone(a), b...) }
func (listAgg) Result(acc []float64) string {
	s := slices.Sorted(slices.Values(acc))
	return fmt.Sprint(s)
}

// resetAgg is listAgg with window.Resetter; it counts the resets that reused memory.
type resetAgg struct {
	listAgg
	reused *int
}

func (a resetAgg) Reset(acc []float64) []float64 {
	if cap(acc) > 0 {
		*a.reused++
	}
	return acc[:0]
}

// TestResetterSameResults: an aggregator with window.Resetter gives a tumbling window the
// same results, batch by batch, as the same aggregator without it, on random keys, values,
// times (out of order, late) and partitions, with emission on close and every batch; and its
// accumulators' memory is reused (an earlier window's, once emitted), which is what it is
// for. A reused accumulator that kept an earlier window's values, or a result computed after
// the reuse, would differ.
func TestResetterSameResults(t *testing.T) {
	for _, emit := range []window.Emission{window.OnClose, window.EveryBatch} {
		for seed := range uint64(20) {
			t.Run(fmt.Sprintf("%v/seed%d", emit, seed), func(t *testing.T) {
				run := func(agg window.Aggregator[float64, []float64, string]) [][]window.Result[string, string] {
					h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(5*time.Second), stream.WithIdleTimeout(0))
					q, s := streamtest.NewQueue[ev](h)
					q.SetPartitions(2)
					w, err := window.Aggregate(s, evKey, evVal, window.Tumbling(10*time.Second), agg, window.WithEmit(emit))
					require.NoError(t, err)
					res := streamtest.Collect(w.Results())
					r := rand.New(rand.NewPCG(seed, 1))
					var clock time.Duration
					for range 40 {
						for range r.IntN(12) {
							d := clock - time.Duration(r.IntN(8))*time.Second // out of order, sometimes late
							q.Add(at(int32(r.IntN(2)), fmt.Sprint("k", r.IntN(6)), d, float64(r.IntN(100))))
						}
						clock += time.Duration(r.IntN(4)) * time.Second
						h.Step()
					}
					q.End()
					h.RunUntilDone()
					return res.Batches()
				}
				want := run(listAgg{})
				reused := 0
				got := run(resetAgg{reused: &reused})
				require.Equal(t, want, got)
				require.Positive(t, reused, "no accumulator memory was reused")
			})
		}
	}
}
