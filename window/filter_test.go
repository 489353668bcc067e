// Windows behind a Filter: their clock moves with every record of the partition, those the
// Filter dropped included, so they close as the same window over the unfiltered stream does.

package window_test

import (
	"errors"
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

// fev is a record that a Filter keeps unless Drop.
type fev struct {
	Key  string
	V    float64
	Drop bool
}

// dropped is the key the unfiltered reference gives the records the Filter drops: they move
// its clock, and no window of the kept keys holds them.
const dropped = "~dropped"

// seen is an element as a stateful reader got it, with the batch it came in.
type seen[T any] struct {
	batch int64
	off   int64
	v     T
}

// tap is a stateful operator that holds nothing and records what reaches it.
type tap[T any] struct{ got *[]seen[T] }

func (r tap[T]) Process(pc *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[T]) []stream.Elem[T] {
	for _, e := range in {
		*r.got = append(*r.got, seen[T]{pc.Batch, e.Offset, e.Value})
	}
	return append(out, in...)
}
func (tap[T]) Retained(int32) (int64, bool) { return 0, false }
func (tap[T]) Drop(int32)                   {}
func (tap[T]) StateSize() int               { return 0 }

// filterRun is one run of a window over records of fev: behind a Filter of the dropped
// records (filtered), or over all of them with the dropped ones under their own key (the
// reference). Its results' output fails at batch crash (0: never).
type filterRun struct {
	h       *streamtest.Harness
	q       *streamtest.Queue[fev]
	results []seen[window.Result[string, window.Summary]]
	late    []seen[window.Late[fev]]
	out     *streamtest.Collector[window.Result[string, window.Summary]]
}

func newFilterRun(t *testing.T, sp spec, emit window.Emission, filtered bool, crash int64) *filterRun {
	r := &filterRun{h: streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Duration(sp.ooo)), stream.WithIdleTimeout(0))}
	var s *stream.Stream[fev]
	r.q, s = streamtest.NewQueue[fev](r.h)
	r.q.SetPartitions(3)
	// A longer window over every record holds commits further back than the one under test
	// often, so that a replay starts that one after the committed offset (SkippedBefore).
	_, err := window.Aggregate(s, func(e fev) string { return e.Key }, func(e fev) float64 { return e.V }, window.Tumbling(30*time.Second), stats,
		window.WithPerPartitionResults())
	require.NoError(t, err)
	if filtered {
		s = s.Filter(func(e fev) bool { return !e.Drop })
	} else {
		s = stream.Map(s, func(e fev) fev {
			if e.Drop {
				e.Key = dropped
			}
			return e
		})
	}
	w, err := window.Aggregate(s, func(e fev) string { return e.Key }, func(e fev) float64 { return e.V }, sp.asg, stats,
		window.WithGrace(time.Duration(sp.grace)), window.WithEmit(emit), window.WithPerPartitionResults())
	require.NoError(t, err)
	stream.Apply(w.Results(), "tap", stream.Operator[window.Result[string, window.Summary], window.Result[string, window.Summary]](tap[window.Result[string, window.Summary]]{&r.results}))
	stream.Apply(w.Late(), "tap.late", stream.Operator[window.Late[fev], window.Late[fev]](tap[window.Late[fev]]{&r.late}))
	r.out = streamtest.Collect(w.Results())
	r.out.Fail = func(info stream.BatchInfo) error {
		if info.Batch == crash {
			return errors.New("crash")
		}
		return nil
	}
	return r
}

// feed queues batches and runs n of them (a failed one stops it), or to the end if n < 0.
func (r *filterRun) feed(batches [][]stream.Record[fev], n int) { feedBatches(r.h, r.q, batches, n) }

// view lists what a run's readers got in batches before stop (all if stop < 0), leaving out
// the reference's results of the dropped records' key and their late records; with
// batches, each line names its batch, and final results their offsets. Partial results'
// offsets are left out: the reference's windows also hold the dropped records, whose
// offsets they may carry.
func (r *filterRun) view(stop int64, batches bool) []string {
	var out []string
	for _, x := range r.results {
		if stop >= 0 && x.batch >= stop || x.v.Key == dropped {
			continue
		}
		v := x.v
		line := fmt.Sprintf("p%d %s [%v, %v) final=%v %+v", v.Partition, v.Key, v.Start.Sub(t0), v.End.Sub(t0), v.Final, v.Value)
		if v.Final {
			line += fmt.Sprintf(" @%d", x.off)
		}
		if batches {
			line = fmt.Sprintf("b%d ", x.batch) + line
		} else if !v.Final {
			continue // partial results depend on where batches end
		}
		out = append(out, line)
	}
	for _, x := range r.late {
		if stop >= 0 && x.batch >= stop || x.v.Value.Drop {
			continue
		}
		v := x.v
		line := fmt.Sprintf("late p%d@%d %+v [%v, %v) %s", v.Partition, v.Offset, v.Value, v.Start.Sub(t0), v.End.Sub(t0), v.Reason)
		if batches {
			line = fmt.Sprintf("b%d ", x.batch) + line
		}
		out = append(out, line)
	}
	if !batches {
		slices.Sort(out)
	}
	return out
}

// genFiltered makes random out-of-order records over three partitions (gen's), each dropped
// with probability drop in 8, but a partition's first record: a window's first record sets
// its floor (the earliest window it emits), which the reference's dropped records would set
// too.
func genFiltered(rng *rand.Rand, n, drop int) []stream.Record[fev] {
	var recs []stream.Record[fev]
	for _, r := range gen(rng, 3, n, time.Second, 6*time.Second) {
		recs = append(recs, stream.Record[fev]{
			Value:     fev{Key: r.Value.Key, V: r.Value.V, Drop: r.Offset > 0 && rng.IntN(8) < drop},
			Partition: r.Partition,
			Offset:    r.Offset,
			EventTime: r.EventTime,
		})
	}
	return recs
}

var emits = []window.Emission{window.OnClose, window.EveryBatch}

// TestFilteredWindowIsUnfilteredWindow is the oracle: over random out-of-order records of
// several partitions, a random share of them dropped by a Filter, in random batches, the
// window behind the Filter gives, batch by batch, exactly what the window over the
// unfiltered stream gives for the kept records (the dropped ones under a key of their own,
// so that they move the clock and touch no window of the kept keys): the same results,
// partial and final, with the same positions, and the same late records; and the final
// results and late records do not depend on where batches end. Every engine, both emission
// modes. A window behind a Filter used to move only with the records that passed it: its
// results came batches later than the reference's, and records late in it were not late there.
func TestFilteredWindowIsUnfilteredWindow(t *testing.T) {
	seeds := uint64(40)
	if testing.Short() {
		seeds = 10
	}
	for _, tc := range specs {
		for _, emit := range emits {
			t.Run(fmt.Sprintf("%s/%v", tc.name, emit), func(t *testing.T) {
				var checked int
				for seed := range seeds {
					rng := rand.New(rand.NewPCG(seed, 154))
					recs := genFiltered(rng, 60+rng.IntN(200), 2+rng.IntN(6))
					var byCut []string
					for cut := range 3 {
						batches := split(recs, 1+rng.IntN(15), 1+rng.IntN(4), 1+rng.IntN(40))
						ref := newFilterRun(t, tc.sp, emit, false, 0)
						ref.feed(batches, -1)
						got := newFilterRun(t, tc.sp, emit, true, 0)
						got.feed(batches, -1)
						require.Equal(t, ref.view(-1, true), got.view(-1, true), "seed %d, cut %d: batch by batch", seed, cut)
						if cut == 0 {
							byCut = got.view(-1, false)
							checked += len(byCut)
						} else {
							require.Equal(t, byCut, got.view(-1, false), "seed %d, cut %d: final results and late records by batch cuts", seed, cut)
						}
					}
				}
				require.Positive(t, checked)
			})
		}
	}
}

// TestFilteredWindowAfterCrash sweeps a crash over every batch of random runs of a window
// behind a Filter, both ways (the batch's output fails, or the process stops after it was
// acknowledged), and restarts from the committed positions and checkpoints, in other
// batches: over the two runs, a stateful reader of the results gets every final result
// exactly once, at the position the uninterrupted run gave it, and of the late records every
// one exactly once; the sink gets every final result as the uninterrupted run made it. Not
// sessions, which are not replayed exactly with or without a Filter (see "Delivery and
// replay" in the package documentation). The
// replay's clock must start where the original's stood at the replay start, with the
// records the Filter dropped before it left out.
func TestFilteredWindowAfterCrash(t *testing.T) {
	seeds := uint64(8)
	if testing.Short() {
		seeds = 3
	}
	for _, tc := range specs[:4] {
		for _, emit := range emits {
			t.Run(fmt.Sprintf("%s/%v", tc.name, emit), func(t *testing.T) {
				for seed := range seeds {
					rng := rand.New(rand.NewPCG(seed, 1540))
					recs := genFiltered(rng, 60+rng.IntN(100), 1+rng.IntN(7))
					batches := split(recs, 2+rng.IntN(12), 1+rng.IntN(4))
					full := newFilterRun(t, tc.sp, emit, true, 0)
					full.feed(batches, -1)
					want := full.view(-1, false)
					wantSink := sinkFinals(full.out)
					for i := 2; i < 2*(len(batches)+2); i++ {
						crash, outputFails := int64(i/2), i%2 == 0
						stop := int64(-1)
						first := newFilterRun(t, tc.sp, emit, true, 0)
						if outputFails {
							first, stop = newFilterRun(t, tc.sp, emit, true, crash), crash
						}
						first.feed(batches, int(crash))
						got := first.view(stop, false)
						sink := sinkFinals(first.out)
						pos := committedOf(first.q, 3)
						rest := from(recs, pos)
						second := newFilterRun(t, tc.sp, emit, true, 0)
						second.q.Resume(pos...)
						second.feed(split(rest, 3+int(crash)%7*4, 5), -1)
						got = append(got, second.view(-1, false)...)
						slices.Sort(got)
						msg := fmt.Sprintf("seed %d, crash at batch %d of %d (output fails %v)", seed, crash, len(batches), outputFails)
						require.Equal(t, want, got, "%s: what the readers got over the runs", msg)
						for k, v := range sinkFinals(second.out) {
							if old, ok := sink[k]; ok {
								require.Equal(t, old, v, "%s: replay changed %s", msg, k)
							}
							sink[k] = v
						}
						require.Equal(t, wantSink, sink, "%s: final results at the sink", msg)
					}
				}
			})
		}
	}
}

// sinkFinals returns the final results a collector got, by partition, key and window.
func sinkFinals(c *streamtest.Collector[window.Result[string, window.Summary]]) map[string]window.Summary {
	m := map[string]window.Summary{}
	for _, r := range c.Slice() {
		if r.Final {
			m[fmt.Sprintf("p%d %s [%v, %v)", r.Partition, r.Key, r.Start.Sub(t0), r.End.Sub(t0))] = r.Value
		}
	}
	return m
}

// TestFilteredWindowClosesOnDroppedRecords is the motivating case: speeding records are rare
// on a busy topic, and a cab's minute must be emitted in the batch whose records, dropped by
// the Filter, move the partition's watermark past the minute's end, not when the next
// speeding record comes (hours later) or the partition idles.
func TestFilteredWindowClosesOnDroppedRecords(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(5*time.Second), stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[fev](h)
	fast := s.Filter(func(e fev) bool { return e.V > 120 })
	w, err := window.Aggregate(fast, func(e fev) string { return e.Key }, func(e fev) float64 { return e.V }, window.Tumbling(time.Minute), stats)
	require.NoError(t, err)
	c := streamtest.Collect(w.Results())
	rec := func(d time.Duration, v float64) stream.Record[fev] {
		return stream.Record[fev]{Value: fev{Key: "CAB-1", V: v}, EventTime: t0.Add(d)}
	}
	q.Add(rec(10*time.Second, 130), rec(20*time.Second, 50))
	q.Add(rec(40*time.Second, 60), rec(64*time.Second, 70)) // the watermark reaches 59 s
	q.Add(rec(66*time.Second, 40))                          // 61 s: past the minute's end
	q.Add(rec(80*time.Second, 30))
	h.Run(4)
	b := c.Batches()
	require.Len(t, b, 4)
	require.Empty(t, b[0])
	require.Empty(t, b[1], "the watermark is not past the minute's end yet")
	require.Len(t, b[2], 1, "emitted in the batch of the dropped record that closed the minute")
	r := b[2][0]
	require.True(t, r.Final)
	require.Equal(t, "CAB-1", r.Key)
	require.Equal(t, t0, r.Start)
	require.Equal(t, int64(1), r.Value.Count)
	require.Empty(t, b[3])
}
