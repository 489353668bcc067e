package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// endBinder is a source for Step that hands its input to the test and keeps every commit.
type endBinder struct {
	in      **stream.Input[int]
	commits *[][]stream.Position
}

func (e endBinder) Bind(in *stream.Input[int]) { *e.in = in }
func (endBinder) Run(ctx context.Context, _ *stream.Input[int]) error {
	<-ctx.Done()
	return ctx.Err()
}

func (e endBinder) Commit(_ context.Context, pos []stream.Position) error {
	*e.commits = append(*e.commits, pos)
	return nil
}

// holdToEnd counts each partition's records and holds the commit back to its first one
// until the partition's input ends, when it emits the count: a window open until the end.
type holdToEnd struct {
	first, count map[int32]int64
}

func (h *holdToEnd) Process(pc *stream.PartitionContext, in []stream.Elem[int], out []stream.Elem[int64]) []stream.Elem[int64] {
	for _, e := range in {
		if _, ok := h.first[pc.Partition]; !ok {
			h.first[pc.Partition] = e.Offset
		}
		h.count[pc.Partition]++
	}
	if pc.EndOfInput {
		if c, ok := h.count[pc.Partition]; ok {
			out = append(out, stream.Elem[int64]{Value: int64(pc.Partition)<<32 | c, Offset: h.first[pc.Partition]})
			delete(h.count, pc.Partition)
			delete(h.first, pc.Partition)
		}
	}
	return out
}

func (h *holdToEnd) Retained(part int32) (int64, bool) {
	off, ok := h.first[part]
	return off, ok
}

func (h *holdToEnd) Drop(part int32) { delete(h.first, part); delete(h.count, part) }
func (h *holdToEnd) StateSize() int  { return len(h.first) }

// TestInputEndsOnePartition: Input.End ends one partition's input while the others go on.
// The end counts once the partition's records pushed before it are processed (the batch
// after theirs), closes the partition's state then (EndOfInput), and the positions
// committed after that batch carry Ended, once; the other partition's state stays open and
// holds its commit back.
func TestInputEndsOnePartition(t *testing.T) {
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithIdleTimeout(0))
	require.NoError(t, err)
	var in *stream.Input[int]
	var commits [][]stream.Position
	op := &holdToEnd{first: map[int32]int64{}, count: map[int32]int64{}}
	var emitted []int64
	stream.ForEachBatch(stream.Apply(stream.From(p, stream.Source[int](endBinder{&in, &commits})), "hold",
		stream.Operator[int, int64](op)), func(_ context.Context, _ stream.BatchInfo, vs []int64) error {
		emitted = append(emitted, vs...)
		return nil
	})
	step := func() {
		t.Helper()
		clk.Advance(time.Second)
		done, err := p.Step(context.Background())
		require.NoError(t, err)
		require.False(t, done, "the input as a whole goes on")
	}
	ts := streamtest.Epoch.Add(-time.Minute)
	for off := range int64(3) {
		for _, part := range []int32{0, 1} {
			require.True(t, in.TryPush(stream.Record[int]{Value: 1, Partition: part, Offset: 10 + off, EventTime: ts, Size: 8}))
		}
	}
	in.End(0)

	step() // partition 0's records: its end comes with the next batch
	require.Empty(t, emitted)
	require.Equal(t, [][]stream.Position{{{Partition: 0, Offset: 10}, {Partition: 1, Offset: 10}}}, commits)

	step() // the end of partition 0 closes its state; partition 1 holds its commit back
	require.Equal(t, []int64{3}, emitted, "partition 0's count, at its end")
	require.Len(t, commits, 2)
	require.Equal(t, []stream.Position{{Partition: 0, Offset: 13, Ended: true}}, commits[1])

	require.True(t, in.TryPush(stream.Record[int]{Value: 1, Partition: 1, Offset: 13, EventTime: ts, Size: 8}))
	step() // partition 1 goes on; partition 0's end was committed: not again
	require.Equal(t, []int64{3}, emitted)
	require.Len(t, commits, 2, "nothing moved: no commit")
}
