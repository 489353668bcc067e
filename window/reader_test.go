// Stateful operators that read window results in the same partition, across a crash: the
// windows that a replay emits for the first time must reach them.

package window_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// read is a window result as a stateful reader got it, with the batch it came in.
type read struct {
	batch int64
	res   window.Result[string, window.Summary]
}

// reader is a stateful operator that holds nothing (a dedup, or a second window, whose state
// is empty between batches): it passes its input on and records it. What reaches it in a
// replay is what it had not accounted for before the start its checkpoint records.
type reader struct{ got *[]read }

func (r reader) Process(pc *stream.PartitionContext, in []stream.Elem[window.Result[string, window.Summary]], out []stream.Elem[window.Result[string, window.Summary]]) []stream.Elem[window.Result[string, window.Summary]] {
	for _, e := range in {
		*r.got = append(*r.got, read{pc.Batch, e.Value})
	}
	return append(out, in...)
}
func (reader) Retained(int32) (int64, bool) { return 0, false }
func (reader) Drop(int32)                   {}
func (reader) StateSize() int               { return 0 }

// readerRun is one run of a window read by a reader, whose output fails at batch crash.
type readerRun struct {
	h   *streamtest.Harness
	q   *streamtest.Queue[ev]
	got []read
	out *streamtest.Collector[window.Result[string, window.Summary]]
}

func newReaderRun(t *testing.T, sp spec, crash int64) *readerRun {
	r := &readerRun{h: streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Duration(sp.ooo)), stream.WithIdleTimeout(0))}
	var s *stream.Stream[ev]
	r.q, s = streamtest.NewQueue[ev](r.h)
	r.q.SetPartitions(2)
	w, err := window.Aggregate(s, evKey, evVal, sp.asg, stats, window.WithGrace(time.Duration(sp.grace)))
	require.NoError(t, err)
	stream.Apply(w.Results(), "reader", stream.Operator[window.Result[string, window.Summary], window.Result[string, window.Summary]](reader{&r.got}))
	r.out = streamtest.Collect(w.Results())
	stream.ForEachBatch(w.Results(), func(_ context.Context, info stream.BatchInfo, _ []window.Result[string, window.Summary]) error {
		if info.Batch == crash {
			return errors.New("crash")
		}
		return nil
	})
	return r
}

// split cuts recs into batches of the sizes given, in turn.
func split[T any](recs []stream.Record[T], sizes ...int) [][]stream.Record[T] {
	var batches [][]stream.Record[T]
	for i := 0; i < len(recs); {
		n := min(sizes[len(batches)%len(sizes)], len(recs)-i)
		batches = append(batches, recs[i:i+n])
		i += n
	}
	return batches
}

// feed queues batches and runs n of them (a failed one stops it), or to the end if n < 0.
func (r *readerRun) feed(batches [][]stream.Record[ev], n int) { feedBatches(r.h, r.q, batches, n) }

// feedBatches queues batches with their offsets and runs n of them (a failed one stops it),
// or to the end if n < 0.
func feedBatches[T any](h *streamtest.Harness, q *streamtest.Queue[T], batches [][]stream.Record[T], n int) {
	for _, b := range batches {
		q.AddWithOffsets(b...)
	}
	if n < 0 {
		q.End()
		h.RunUntilDone()
		return
	}
	for range n {
		if _, err := h.TryStep(); err != nil {
			return
		}
	}
}

// readUpTo adds to counts the final results the reader got in batches before batch stop (all
// of them if stop < 0).
func (r *readerRun) readUpTo(counts map[string]int, stop int64) {
	for _, x := range r.got {
		if stop < 0 || x.batch < stop {
			counts[resultID(x.res)]++
		}
	}
}

func (r *readerRun) committed() []stream.Position { return committedOf(r.q, 2) }

// committedOf returns the committed positions of the queue's first parts partitions.
func committedOf[T any](q *streamtest.Queue[T], parts int32) []stream.Position {
	var pos []stream.Position
	for p := range parts {
		if cp, ok := q.CommittedPosition(p); ok {
			pos = append(pos, cp)
		}
	}
	return pos
}

// from returns the records at or after the positions, those a run resumed there reads.
func from[T any](recs []stream.Record[T], pos []stream.Position) []stream.Record[T] {
	next := map[int32]int64{}
	for _, p := range pos {
		next[p.Partition] = p.Offset
	}
	var rest []stream.Record[T]
	for _, rec := range recs {
		if rec.Offset >= next[rec.Partition] {
			rest = append(rest, rec)
		}
	}
	return rest
}

func resultID(x window.Result[string, window.Summary]) string {
	return fmt.Sprintf("p%d %s [%d, %d) %+v", x.Partition, x.Key, x.Start.Sub(t0)/time.Second, x.End.Sub(t0)/time.Second, x.Value)
}

// TestReaderOfWindowAfterCrash sweeps a crash over every batch of random out-of-order runs,
// both ways (the batch's output fails, or the process stops after it was acknowledged), and
// restarts from the committed positions and checkpoints: over the two runs, a stateful reader
// of the results must get every window's final result exactly once, as the uninterrupted run
// made it. A result used to carry its window's oldest record's offset, so a window first
// emitted by the replay (it had closed in the batch whose output failed) came with an offset
// before the reader's checkpointed start, and the pipeline skipped it for the reader as
// already accounted for: the reader lost it while the sink got it.
func TestReaderOfWindowAfterCrash(t *testing.T) {
	seeds := uint64(12)
	if testing.Short() {
		seeds = 4
	}
	for _, tc := range specs[:4] { // not sessions: see "Delivery and replay" in the package doc
		t.Run(tc.name, func(t *testing.T) {
			for seed := range seeds {
				rng := rand.New(rand.NewPCG(seed, 31))
				recs := gen(rng, 2, 80+rng.IntN(120), time.Second, 6*time.Second)
				batches := split(recs, 2+rng.IntN(12), 1+rng.IntN(4))
				full := newReaderRun(t, tc.sp, 0)
				full.feed(batches, -1)
				want := map[string]int{}
				for _, x := range full.out.Slice() {
					want[resultID(x)]++
				}
				wantRead := map[string]int{}
				full.readUpTo(wantRead, -1)
				require.Equal(t, want, wantRead, "seed %d: the reader gets what the sink gets", seed)
				require.NotEmpty(t, want)
				for i := 2; i < 2*(len(batches)+2); i++ {
					crash, outputFails := int64(i/2), i%2 == 0
					first := newReaderRun(t, tc.sp, 0)
					stop := int64(-1)
					if outputFails {
						first = newReaderRun(t, tc.sp, crash)
						stop = crash
					}
					first.feed(batches, int(crash))
					got := map[string]int{}
					first.readUpTo(got, stop)
					// The replay takes the records from the committed offsets on in batches of
					// its own, which straddle the end of what the first run acknowledged.
					pos := first.committed()
					rest := from(recs, pos)
					second := newReaderRun(t, tc.sp, 0)
					second.q.Resume(pos...)
					second.feed(split(rest, 3+int(crash)%7*4, 5), -1)
					second.readUpTo(got, -1)
					require.Equal(t, wantRead, got, "seed %d, crash at batch %d of %d (output fails %v): results a stateful reader got over the runs", seed, crash, len(batches), outputFails)
				}
			}
		})
	}
}
