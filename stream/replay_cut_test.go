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

// trickle pushes one record every gap, and says each time that it read to its end
// (Input.ReadToEnd), as a Kafka source tailing a topic does.
type trickle struct {
	n   int
	gap time.Duration
}

func (s *trickle) Run(ctx context.Context, in *stream.Input[int]) error {
	for i := range s.n {
		time.Sleep(s.gap)
		if err := in.Push(ctx, stream.Record[int]{Value: i, Offset: int64(i), Size: 8}); err != nil {
			return err
		}
		in.ReadToEnd()
	}
	<-ctx.Done()
	return ctx.Err()
}
func (s *trickle) Commit(context.Context, []stream.Position) error { return nil }

// bounded pushes its records and ends (returns nil).
type bounded struct{ n int }

func (s *bounded) Run(ctx context.Context, in *stream.Input[int]) error {
	for i := range s.n {
		if err := in.Push(ctx, stream.Record[int]{Value: -1 - i, Offset: int64(i), Size: 8}); err != nil {
			return err
		}
	}
	return nil
}
func (s *bounded) Commit(context.Context, []stream.Position) error { return nil }

// TestEndedSourceKeepsTheInterval: a pipeline of two sources, one bounded (it ended at the
// start) and one that trickles a record every 300 ms, each time read to its end. The
// pipeline is not behind (a record a batch, a buffer of 100), so batches must keep the
// 1 s interval ("outside a catch-up, batches keep the interval whatever the sources say";
// the "not behind" case of TestReadToEndStartsLastBatch). The control run is the same
// trickle alone.
func TestEndedSourceKeepsTheInterval(t *testing.T) {
	run := func(t *testing.T, withBounded bool) (sizes []int, at []time.Duration) {
		synctest.Test(t, func(t *testing.T) {
			p, err := stream.New(time.Second, stream.WithBuffer(100, 0))
			require.NoError(t, err)
			s := stream.From(p, stream.Source[int](&trickle{n: 9, gap: 300 * time.Millisecond}))
			if withBounded {
				s = s.Union(stream.From(p, stream.Source[int](&bounded{n: 1})))
			}
			ctx, cancel := context.WithCancel(t.Context())
			start := time.Now()
			got := 0
			stream.ForEachBatch(s, func(_ context.Context, _ stream.BatchInfo, b []int) error {
				n := 0
				for _, v := range b {
					if v >= 0 {
						n++
					}
				}
				if n == 0 {
					return nil
				}
				sizes = append(sizes, n)
				at = append(at, time.Since(start))
				if got += n; got == 9 {
					cancel()
				}
				return nil
			})
			require.ErrorIs(t, p.Run(ctx), context.Canceled)
		})
		return sizes, at
	}
	alone, aloneAt := run(t, false)
	t.Logf("trickle alone: sizes %v at %v", alone, aloneAt)
	both, bothAt := run(t, true)
	t.Logf("trickle beside an ended source: sizes %v at %v", both, bothAt)
	require.Len(t, alone, 3, "alone: one batch a tick")
	require.Len(t, both, len(alone), "an ended source must not make every ReadToEnd start a batch")
}

// TestWindowSkipsReplayedRecords: as TestResumeFromCheckpointReplaysExactly, with a
// processing-time Window in place of the group sums. An UpdateStateByKey holds the commit
// at offset 2 for ever; the window's own start is in the checkpoint. On resume the window
// must skip the replayed records before its own start ("each operator skips the replayed
// records it had already accounted for").
func TestWindowSkipsReplayedRecords(t *testing.T) {
	build := func() (*streamtest.Harness, *streamtest.Queue[int64], *streamtest.Collector[int64]) {
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[int64](h)
		keyed := stream.KeyBy(src, func(v int64) bool { return v >= 2 })
		stream.UpdateStateByKey(keyed, func(big bool, _ []int64, n int, _ bool) (int, bool) { return n + 1, big })
		w := streamtest.Collect(stream.Window(src, 2*time.Second, 2*time.Second))
		return h, q, w
	}
	h, q, w := build()
	q.Add(recs(0, 3)...)   // batch 1
	q.Add(recs(3, 6)...)   // batch 2: window {0..5}
	q.Add(recs(6, 8)...)   // batch 3
	q.Add(recs(8, 10)...)  // batch 4: window {6..9}
	q.Add(recs(10, 12)...) // batch 5
	q.Add(recs(12, 14)...) // batch 6: window {10..13}
	h.Run(6)
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, w.Slice())
	pos, ok := q.CommittedPosition(0)
	require.True(t, ok)
	require.Equal(t, int64(2), pos.Offset)
	t.Logf("checkpoint %q", pos.Meta)

	h2, q2, w2 := build()
	q2.Resume(pos)
	q2.Add(recs(2, 16)...)
	q2.End()
	h2.RunUntilDone()
	t.Logf("windows after the restart: %v", w2.Batches())
	for _, v := range w2.Slice() {
		require.GreaterOrEqual(t, v, int64(10), "offset %d was in a window emitted before the commit, behind the window's checkpointed start", v)
	}
}

// TestInvWindowSkipsReplayedRecords: TestWindowSkipsReplayedRecords for
// ReduceByKeyAndWindowInv: its checkpointed start must cut the replay too.
func TestInvWindowSkipsReplayedRecords(t *testing.T) {
	build := func() (*streamtest.Harness, *streamtest.Queue[int64], *streamtest.Collector[stream.Pair[int, int64]]) {
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[int64](h)
		keyed := stream.KeyBy(src, func(v int64) bool { return v >= 2 })
		stream.UpdateStateByKey(keyed, func(big bool, _ []int64, n int, _ bool) (int, bool) { return n + 1, big })
		one := stream.KeyBy(src, func(int64) int { return 0 })
		w := streamtest.Collect(stream.ReduceByKeyAndWindowInv(one, func(a, b int64) int64 { return a + b },
			func(a, b int64) int64 { return a - b }, nil, 2*time.Second, 2*time.Second))
		return h, q, w
	}
	h, q, w := build()
	for from := int64(0); from < 14; from += 2 {
		q.Add(recs(from, from+2)...)
	}
	h.Run(7)
	require.Len(t, w.Batches(), 3)
	pos, ok := q.CommittedPosition(0)
	require.True(t, ok)
	require.Equal(t, int64(2), pos.Offset)
	t.Logf("checkpoint %q", pos.Meta)

	h2, q2, w2 := build()
	q2.Resume(pos)
	q2.Add(recs(2, 16)...)
	q2.End()
	h2.RunUntilDone()
	t.Logf("windows after the restart: %v", w2.Batches())
	require.NotEmpty(t, w2.Slice())
	// The window's own start is 10 (batches 6..7 of the first run, offsets 10..13, which it
	// retains at the commit: "5@10" in the checkpoint): its first window after the restart
	// sums offsets 10..15, not the replay's 2..15 (2..9 were in windows emitted before).
	require.Equal(t, int64(10+11+12+13+14+15), w2.Slice()[0].Value)
}

// TestInvWindowsMatchRecomputation: CountByValueAndWindow (incremental, with the filter
// that drops zero counts) and ReduceByKeyAndWindowInv with a nil filter against the plain
// recomputation (ReduceByKeyAndWindow), random batches over two partitions, random length
// and slide.
func TestInvWindowsMatchRecomputation(t *testing.T) {
	for seed := range uint64(200) {
		rng := newRng(seed)
		lb := 1 + rng.intn(5)
		sb := 1 + rng.intn(lb)
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[int](h)
		L, S := time.Duration(lb)*time.Second, time.Duration(sb)*time.Second
		counts := streamtest.Collect(stream.CountByValueAndWindow(src, L, S))
		ones := stream.Map(src, func(v int) stream.Pair[int, int64] { return stream.Pair[int, int64]{Key: v, Value: 1} })
		plain := streamtest.Collect(stream.ReduceByKeyAndWindow(ones, func(a, b int64) int64 { return a + b }, L, S))
		inv := streamtest.Collect(stream.ReduceByKeyAndWindowInv(ones, func(a, b int64) int64 { return a + b },
			func(a, b int64) int64 { return a - b }, nil, L, S))
		batches := 20 + rng.intn(10)
		for range batches {
			var rs []stream.Record[int]
			for range rng.intn(5) {
				rs = append(rs, stream.Record[int]{Value: rng.intn(4), Partition: int32(rng.intn(2))})
			}
			q.Add(rs...)
		}
		h.Run(batches)
		sum := func(b []stream.Pair[int, int64], dropZero bool) map[int]int64 {
			m := map[int]int64{}
			for _, p := range b {
				if dropZero && p.Value == 0 {
					continue
				}
				m[p.Key] += p.Value
			}
			return m
		}
		pb, cb, ib := plain.Batches(), counts.Batches(), inv.Batches()
		require.Equal(t, len(pb), len(cb), "seed %d", seed)
		require.Equal(t, len(pb), len(ib), "seed %d", seed)
		for i := range pb {
			want := sum(pb[i], false)
			require.Equal(t, want, sum(cb[i], false), "seed %d L=%d S=%d window %d: CountByValueAndWindow", seed, lb, sb, i)
			for _, p := range cb[i] {
				require.NotZero(t, p.Value, "seed %d: a zero count passed the filter", seed)
			}
			require.Equal(t, want, sum(ib[i], true), "seed %d L=%d S=%d window %d: ReduceByKeyAndWindowInv", seed, lb, sb, i)
		}
	}
}

type rng struct{ s uint64 }

func newRng(seed uint64) *rng { return &rng{s: seed*0x9e3779b97f4a7c15 + 1} }
func (r *rng) intn(n int) int {
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	return int(r.s % uint64(n))
}

type bindOnly[T any] struct{ in *stream.Input[T] }

func (b *bindOnly[T]) Bind(in *stream.Input[T]) { b.in = in }
func (*bindOnly[T]) Run(ctx context.Context, _ *stream.Input[T]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (*bindOnly[T]) Commit(context.Context, []stream.Position) error { return nil }

// TestInputBoundsRandom: random TryPush / TryPushBatch / Revoke sequences, records of unique
// offsets, several partitions: no batch holds more than the record bound, nor more bytes than
// the byte bound plus one record (a push is accepted while the buffer is below its bounds),
// and nothing accepted is lost or duplicated.
func TestInputBoundsRandom(t *testing.T) {
	for seed := range uint64(300) {
		r := newRng(seed)
		maxRecs := 1 + r.intn(40)
		maxBytes := int64(0)
		if r.intn(3) > 0 {
			maxBytes = int64(1 + r.intn(400))
		}
		h := streamtest.New(t, time.Second, stream.WithBuffer(maxRecs, maxBytes))
		src := &bindOnly[int]{}
		s := stream.From(h.P, stream.Source[int](src))
		got := streamtest.Collect(s)
		next := map[int32]int64{}
		accepted := map[[2]int64]bool{}
		var statsErr []string
		for range 30 {
			for range r.intn(4) {
				n := r.intn(60)
				recs := make([]stream.Record[int], n)
				runLen := 1 + r.intn(20)
				part := int32(r.intn(3))
				for i := range recs {
					if i%runLen == 0 {
						part = int32(r.intn(3))
						if r.intn(2) == 0 {
							part += 5000 // beyond the direct slots
						}
					}
					off := next[part]
					next[part]++
					recs[i] = stream.Record[int]{Value: int(part)*1_000_000 + int(off), Partition: part, Offset: off, Size: 1 + r.intn(50)}
				}
				var k int
				if r.intn(4) == 0 {
					for k < len(recs) && src.in.TryPush(recs[k]) {
						k++
					}
				} else {
					k = src.in.TryPushBatch(recs)
				}
				for _, rec := range recs[:k] {
					accepted[[2]int64{int64(rec.Partition), rec.Offset}] = true
				}
				// what was not accepted is pushed again next time (offsets reused)
				for _, rec := range recs[k:] {
					next[rec.Partition] = min(next[rec.Partition], rec.Offset)
				}
			}
			h.Step()
			st := h.P.Stats()
			if st.InputRecords > maxRecs {
				statsErr = append(statsErr, "records")
			}
			if maxBytes > 0 && st.InputBytes >= maxBytes+50 {
				statsErr = append(statsErr, "bytes")
			}
		}
		require.Empty(t, statsErr, "seed %d bounds %d/%d", seed, maxRecs, maxBytes)
		seen := map[int]bool{}
		for _, v := range got.Slice() {
			require.False(t, seen[v], "seed %d: %d twice", seed, v)
			seen[v] = true
		}
		require.Len(t, seen, len(accepted), "seed %d", seed)
	}
}

// TestSecondSourceResumesExactly: the group sums of TestResumeFromCheckpointReplaysExactly read
// a second source (pipeline partition ids with the source in the high bits): its commits
// carry its own partition ids, and its checkpoint resumes exactly.
func TestSecondSourceResumesExactly(t *testing.T) {
	build := func() (*streamtest.Harness, *streamtest.Queue[int64], *streamtest.Queue[int64], *streamtest.Collector[int64]) {
		h := streamtest.New(t, time.Second)
		q0, src0 := streamtest.NewQueue[int64](h)
		q1, src1 := streamtest.NewQueue[int64](h)
		src := src0.Union(src1)
		keyed := stream.KeyBy(src, func(v int64) bool { return v >= 2 })
		stream.UpdateStateByKey(keyed, func(big bool, _ []int64, n int, _ bool) (int, bool) { return n + 1, big })
		sums := streamtest.Collect(stream.Apply(src, "groupSum", stream.Operator[int64, int64](&groupSum{sum: map[int64]int64{}, first: map[int64]int64{}})))
		return h, q0, q1, sums
	}
	h, _, q1, sums := build()
	q1.Add(recs(0, 3)...)
	q1.Add(recs(3, 6)...)
	q1.Add(recs(6, 8)...)
	h.Run(3)
	require.Equal(t, []int64{0 + 1 + 2 + 3, 4 + 5 + 6 + 7}, sums.Slice())
	pos, ok := q1.CommittedPosition(0)
	require.True(t, ok, "the second source commits its partition 0 under its own id")
	require.Equal(t, int64(2), pos.Offset)

	h2, q20, q21, sums2 := build()
	q21.Resume(pos)
	q21.Add(recs(2, 10)...)
	q21.End()
	q20.End()
	h2.RunUntilDone()
	require.Equal(t, []int64{8 + 9}, sums2.Slice())
}
