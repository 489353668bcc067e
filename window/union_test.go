// Windows behind a Union of two Filters of one source: their input comes out of offset order
// (the records one Filter kept, then the other's), and they must still give what the same
// window over the partition's records in order gives.

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

// uev is a record that Filter A keeps if In&1 is set and Filter B if In&2 is (both: the
// window behind their Union gets it twice), that neither keeps if In is 0.
type uev struct {
	Key string
	V   float64
	In  uint8
}

// unionRun is one run of a window over records of uev: behind the Union of Filter A and
// Filter B (union), or, the reference, over every record in offset order, a record both
// keep twice, a record neither keeps once under its own key (dropped: it moves the clock and
// touches no window of the kept keys).
type unionRun struct {
	h       *streamtest.Harness
	q       *streamtest.Queue[uev]
	results []seen[window.Result[string, window.Summary]]
	late    []seen[window.Late[uev]]
}

func newUnionRun(t *testing.T, sp spec, emit window.Emission, union bool) *unionRun {
	r := &unionRun{h: streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Duration(sp.ooo)), stream.WithIdleTimeout(0))}
	var s *stream.Stream[uev]
	r.q, s = streamtest.NewQueue[uev](r.h)
	r.q.SetPartitions(3)
	if union {
		s = s.Filter(func(e uev) bool { return e.In&1 != 0 }).Union(s.Filter(func(e uev) bool { return e.In&2 != 0 }))
	} else {
		s = stream.FlatMap(s, func(e uev, emit func(uev)) {
			switch e.In {
			case 0:
				e.Key = dropped
				emit(e)
			case 3:
				emit(e)
				emit(e)
			default:
				emit(e)
			}
		})
	}
	w, err := window.Aggregate(s, func(e uev) string { return e.Key }, func(e uev) float64 { return e.V }, sp.asg, stats,
		window.WithGrace(time.Duration(sp.grace)), window.WithEmit(emit), window.WithPerPartitionResults())
	require.NoError(t, err)
	stream.Apply(w.Results(), "tap", stream.Operator[window.Result[string, window.Summary], window.Result[string, window.Summary]](tap[window.Result[string, window.Summary]]{&r.results}))
	stream.Apply(w.Late(), "tap.late", stream.Operator[window.Late[uev], window.Late[uev]](tap[window.Late[uev]]{&r.late}))
	return r
}

// view lists what the run's readers got, batch by batch and in order: the results (final
// ones with their positions) but the reference's of the dropped records' key, and the late
// records but the dropped ones. Partial results' positions are left out: the reference's
// windows also hold the dropped records, whose offsets they may carry.
func (r *unionRun) view() []string {
	var out []string
	for _, x := range r.results {
		if v := x.v; v.Key != dropped {
			line := fmt.Sprintf("b%d p%d %s [%v, %v) final=%v %+v", x.batch, v.Partition, v.Key, v.Start.Sub(t0), v.End.Sub(t0), v.Final, v.Value)
			if v.Final {
				line += fmt.Sprintf(" @%d", x.off)
			}
			out = append(out, line)
		}
	}
	for _, x := range r.late {
		if v := x.v; v.Value.In != 0 {
			out = append(out, fmt.Sprintf("b%d late p%d@%d %+v [%v, %v) %s", x.batch, v.Partition, v.Offset, v.Value, v.Start.Sub(t0), v.End.Sub(t0), v.Reason))
		}
	}
	return out
}

// genUnion makes random out-of-order records over three partitions (gen's), each dropped
// by both Filters with probability drop in 8, else kept by A, by B or by both, but a
// partition's first record, which one of them keeps: a window's first record sets its floor,
// which the reference's dropped records would set too.
func genUnion(rng *rand.Rand, n, drop int) []stream.Record[uev] {
	var recs []stream.Record[uev]
	for _, r := range gen(rng, 3, n, time.Second, 6*time.Second) {
		in := uint8(1 + rng.IntN(3))
		if r.Offset > 0 && rng.IntN(8) < drop {
			in = 0
		}
		recs = append(recs, stream.Record[uev]{Value: uev{Key: r.Value.Key, V: r.Value.V, In: in}, Partition: r.Partition, Offset: r.Offset, EventTime: r.EventTime})
	}
	return recs
}

// outOfOrder counts the batches in which the Union gives some partition's records out of
// offset order: a record only B keeps before one A keeps.
func outOfOrder(batches [][]stream.Record[uev]) int {
	n := 0
	for _, b := range batches {
		firstA := map[int32]int64{}
		for _, r := range b {
			if _, ok := firstA[r.Partition]; !ok && r.Value.In&1 != 0 {
				firstA[r.Partition] = r.Offset
			}
		}
		if slices.ContainsFunc(b, func(r stream.Record[uev]) bool {
			a, ok := firstA[r.Partition]
			return ok && r.Value.In == 2 && r.Offset < a
		}) {
			n++
		}
	}
	return n
}

// TestUnionOfFiltersIsUnfilteredWindow: a window behind the Union of two Filters of one
// source gets each batch's records of a partition out of offset order (those Filter A kept,
// then those of Filter B; a record both keep twice), and must judge each against the
// partition's watermark as of its offset, with SourceTimes' rises. Over random out-of-order
// records of several partitions, in random batches, it must give, batch by batch and in
// order, exactly what the window over the partition's records in offset order gives (the
// reference: records both Filters keep twice, those neither keeps under a key of their own):
// the same results, partial and final, with the same positions, and the same late records.
// Every engine, both emission modes, 40 seeds each, with batches the Union gave out of order
// among them. It failed before
// the window took its input in offset order (begin): the first record it was given (Filter
// A's first) set its floor, so the partition's older first records that only B kept were
// late; a sliding window that fired early on a record far ahead made older records after it
// late; and a window's keys came in the order the Union gave them, which depends on where
// batches end. (Since then the engines judge their records in offset order, so pwmAt's
// search for an offset before the last one judged is no longer reached from them.)
func TestUnionOfFiltersIsUnfilteredWindow(t *testing.T) {
	seeds := uint64(40)
	if testing.Short() {
		seeds = 10
	}
	for _, tc := range specs {
		for _, emit := range emits {
			t.Run(fmt.Sprintf("%s/%v", tc.name, emit), func(t *testing.T) {
				var checked, unordered int
				for seed := range seeds {
					rng := rand.New(rand.NewPCG(seed, 155))
					recs := genUnion(rng, 60+rng.IntN(200), rng.IntN(5))
					batches := split(recs, 1+rng.IntN(15), 1+rng.IntN(40), 1+rng.IntN(4))
					unordered += outOfOrder(batches)
					ref := newUnionRun(t, tc.sp, emit, false)
					feedBatches(ref.h, ref.q, batches, -1)
					got := newUnionRun(t, tc.sp, emit, true)
					feedBatches(got.h, got.q, batches, -1)
					want := ref.view()
					require.Equal(t, want, got.view(), "seed %d: batch by batch", seed)
					checked += len(want)
				}
				require.Positive(t, checked)
				require.Positive(t, unordered, "batches the Union gave out of offset order")
			})
		}
	}
}
