package streamtest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// A queued batch larger than the source buffer cannot be pushed while the pipeline waits for
// it: the harness reports it instead of blocking.
func TestBatchLargerThanBuffer(t *testing.T) {
	h := streamtest.New(nil, time.Second, stream.WithBuffer(10, 0))
	q, s := streamtest.NewQueue[int](h)
	got := streamtest.Collect(s)
	q.AddValues(1, 2, 3)
	q.AddValues(make([]int, 11)...)
	h.Step()
	require.Equal(t, []int{1, 2, 3}, got.Slice())
	require.PanicsWithValue(t, "streamtest: a queued batch of 11 records does not fit in the pipeline's source buffer (10 fitted); queue smaller batches or raise stream.WithBuffer", func() { h.Step() })
}

// TestCollectorAll: All iterates the collected values in order, like Slice, and stops early.
func TestCollectorAll(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[int](h)
	c := streamtest.Collect(src)
	q.AddValues(1, 2)
	q.AddValues(3)
	h.Run(2)
	require.Equal(t, []int{1, 2, 3}, slices.Collect(c.All()))
	require.Equal(t, []int{1, 2, 3}, c.Slice())
	var first []int
	for v := range c.All() {
		first = append(first, v)
		break
	}
	require.Equal(t, []int{1}, first)
}

// offsets records the offsets of the records it reads.
type offsets struct{ seen []int64 }

func (o *offsets) Process(_ *stream.PartitionContext, in []stream.Elem[int], out []stream.Elem[int]) []stream.Elem[int] {
	for _, e := range in {
		o.seen = append(o.seen, e.Offset)
	}
	return out
}
func (*offsets) Retained(int32) (int64, bool) { return 0, false }
func (*offsets) Drop(int32)                   {}
func (*offsets) StateSize() int               { return 0 }

// TestQueueOffsets: Add numbers a batch whose offsets are all 0, from the partition's next
// offset, and keeps any other batch's offsets; AddWithOffsets keeps them, 0 included: a
// record replayed at offset 0 after Resume reaches the pipeline at offset 0, where Add
// queues it at the partition's next offset.
func TestQueueOffsets(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[int](h)
	o := &offsets{}
	stream.Apply(src, "offsets", stream.Operator[int, int](o))
	q.AddValues(1, 2)                                                            // numbered: 0, 1
	q.Add(stream.Record[int]{Value: 3, Offset: 5}, stream.Record[int]{Value: 4}) // as given: 5, 0
	q.AddValues(5)                                                               // numbered: 6
	h.Run(3)
	require.Equal(t, []int64{0, 1, 5, 0, 6}, o.seen)

	// A replay of partition 0 from offset 0, beside partition 1's first record.
	q.Resume(stream.Position{Partition: 0, Offset: 0})
	q.AddWithOffsets(stream.Record[int]{Value: 1}, stream.Record[int]{Value: 7, Partition: 1})
	q.Add(stream.Record[int]{Value: 8})
	h.Run(2)
	require.Equal(t, []int64{0, 1, 5, 0, 6, 0, 0, 7}, o.seen, "AddWithOffsets keeps offset 0; Add numbers a batch of offsets 0")
}

// TestUnfedExchange: a graph that repartitions through a streamtest Exchange the harness does
// not feed (no AddExchange) fails at the harness's first step, before any batch, naming the
// repartition and what to call. RunUntilDone ran 1,000,000 batches (4.7 s) before it said
// so. Fed (AddExchange), the same graph runs to its end.
func TestUnfedExchange(t *testing.T) {
	build := func(feed bool) (*streamtest.Harness, *streamtest.Collector[stream.Pair[bool, int]]) {
		h := streamtest.New(nil, time.Second)
		q, s := streamtest.NewQueue[int](h)
		ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[bool, int]](2))
		if feed {
			h.AddExchange(ex)
		}
		out := stream.Repartition(stream.KeyBy(s, func(v int) bool { return v%2 == 0 }), "by-parity", ex)
		q.AddValues(1, 2, 3)
		q.End()
		return h, streamtest.Collect(out)
	}
	t.Run("forgotten", func(t *testing.T) {
		h, got := build(false)
		var msg any
		func() {
			defer func() { msg = recover() }()
			h.RunUntilDone()
		}()
		require.IsType(t, "", msg, "RunUntilDone did not fail")
		require.Contains(t, msg, `repartition "by-parity"`)
		require.Contains(t, msg, "Harness.AddExchange")
		require.Contains(t, msg, "streamtest.NewRepartition")
		require.Zero(t, h.P.Stats().Batch, "batches ran before the failure")
		require.Equal(t, streamtest.Epoch.Add(time.Second), h.Clock.Now(), "the harness stepped more than once")
		require.Empty(t, got.Batches())
	})
	t.Run("fed", func(t *testing.T) {
		h, got := build(true)
		h.RunUntilDone()
		var vals []int
		for _, p := range got.Slice() {
			vals = append(vals, p.Value)
		}
		slices.Sort(vals)
		require.Equal(t, []int{1, 2, 3}, vals)
	})
}

// outputTB is a testing.TB whose Output is a buffer and whose cleanups the test runs.
type outputTB struct {
	testing.TB
	out      bytes.Buffer
	cleanups []func()
}

func (o *outputTB) Output() io.Writer { return &o.out }
func (o *outputTB) Cleanup(f func())  { o.cleanups = append(o.cleanups, f) }
func (o *outputTB) cleanup() {
	for _, f := range slices.Backward(o.cleanups) {
		f()
	}
}

// TestHarnessLogger: a harness's pipeline logs its warnings (not its info lines) to the
// test's output (shown under -v or when the test fails), not to slog.Default(), which a
// pipeline otherwise logs to; nothing after the test's cleanup, when the testing package
// would panic on it; nowhere without a test (Example functions); and WithLogger replaces it.
func TestHarnessLogger(t *testing.T) {
	tb := &outputTB{TB: t}
	h := streamtest.New(tb, time.Second)
	require.NotSame(t, slog.Default(), h.P.Logger())
	h.P.Logger().Info("stream: routine")
	h.P.Logger().Warn("stream: something to see", "partition", 3)
	require.Equal(t, "level=WARN msg=\"stream: something to see\" partition=3\n", tb.out.String())
	tb.cleanup()
	h.P.Logger().Warn("stream: after the test")
	require.NotContains(t, tb.out.String(), "after the test")

	require.False(t, streamtest.New(nil, time.Second).P.Logger().Enabled(context.Background(), slog.LevelError), "logs without a test")

	var mine bytes.Buffer
	h = streamtest.New(t, time.Second, stream.WithLogger(slog.New(slog.NewTextHandler(&mine, nil))))
	h.P.Logger().Warn("stream: to the test's own logger")
	require.Contains(t, mine.String(), "to the test's own logger", "WithLogger did not replace the harness's")
}
