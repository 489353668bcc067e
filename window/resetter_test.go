package window_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
				asg := window.Tumbling(10 * time.Second)
				want := runAgg(t, asg, emit, seed, listAgg{})
				reused := 0
				got := runAgg(t, asg, emit, seed, resetAgg{reused: &reused})
				require.Equal(t, want, got)
				require.Positive(t, reused, "no accumulator memory was reused")
			})
		}
	}
}
