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

// holdRun is a pipeline on a manual clock whose Step source (in, commits) feeds a holdToEnd
// operator (op) whose output goes to emitted.
type holdRun struct {
	t       *testing.T
	p       *stream.Pipeline
	clk     *streamtest.Clock
	in      *stream.Input[int]
	commits [][]stream.Position
	op      *holdToEnd
	emitted []int64
}

func newHoldRun(t *testing.T) *holdRun {
	h := &holdRun{t: t, clk: streamtest.NewClock(streamtest.Epoch), op: &holdToEnd{first: map[int32]int64{}, count: map[int32]int64{}}}
	var err error
	h.p, err = stream.New(time.Second, stream.WithClock(h.clk), stream.WithIdleTimeout(0))
	require.NoError(t, err)
	stream.ForEachBatch(stream.Apply(stream.From(h.p, stream.Source[int](endBinder{&h.in, &h.commits})), "hold",
		stream.Operator[int, int64](h.op)), func(_ context.Context, _ stream.BatchInfo, vs []int64) error {
		h.emitted = append(h.emitted, vs...)
		return nil
	})
	return h
}

// step runs a batch a second later; the input as a whole goes on.
func (h *holdRun) step() {
	h.t.Helper()
	h.clk.Advance(time.Second)
	done, err := h.p.Step(context.Background())
	require.NoError(h.t, err)
	require.False(h.t, done, "the input as a whole goes on")
}

// push pushes a record of part at each of offs.
func (h *holdRun) push(part int32, offs ...int64) {
	h.t.Helper()
	for _, off := range offs {
		require.True(h.t, h.in.TryPush(stream.Record[int]{Value: 1, Partition: part, Offset: off, EventTime: streamtest.Epoch.Add(-time.Minute), Size: 8}))
	}
}

// TestInputEndsOnePartition: Input.End ends one partition's input while the others go on.
// The end counts once the partition's records pushed before it are processed (the batch
// after theirs), closes the partition's state then (EndOfInput), and the positions
// committed after that batch carry Ended, once; the other partition's state stays open and
// holds its commit back.
func TestInputEndsOnePartition(t *testing.T) {
	h := newHoldRun(t)
	for off := range int64(3) {
		for _, part := range []int32{0, 1} {
			h.push(part, 10+off)
		}
	}
	h.in.End(0)

	h.step() // partition 0's records: its end comes with the next batch
	require.Empty(t, h.emitted)
	require.Equal(t, [][]stream.Position{{{Partition: 0, Offset: 10}, {Partition: 1, Offset: 10}}}, h.commits)

	h.step() // the end of partition 0 closes its state; partition 1 holds its commit back
	require.Equal(t, []int64{3}, h.emitted, "partition 0's count, at its end")
	require.Len(t, h.commits, 2)
	require.Equal(t, []stream.Position{{Partition: 0, Offset: 13, Ended: true}}, h.commits[1])

	h.push(1, 13)
	h.step() // partition 1 goes on; partition 0's end was committed: not again
	require.Equal(t, []int64{3}, h.emitted)
	require.Len(t, h.commits, 2, "nothing moved: no commit")
}

// TestPartitionEndNeverCommitsBackwards: the commit that carries a partition's end
// (Position.Ended) is sent even when the position did not move, but never behind the
// offset already committed, whatever an operator's Retained says then: the records behind
// the commit are not replayed anyway, and a Kafka source would move the group's offset back.
// Before, the end's commit went back to the operator's offset (5, after 10 was committed).
func TestPartitionEndNeverCommitsBackwards(t *testing.T) {
	h := newHoldRun(t)
	h.push(0, 10, 11, 12)
	h.step()
	require.Len(t, h.commits, 1)
	require.Equal(t, int64(10), h.commits[0][0].Offset, "held at the partition's first record")

	// At the partition's end the operator says it needs a record behind the commit, and
	// keeps it (no count: it emits nothing).
	h.op.first[0] = 5
	delete(h.op.count, 0)
	h.in.End(0)
	h.step()
	require.Len(t, h.commits, 2, "the end is committed")
	require.Len(t, h.commits[1], 1)
	got := h.commits[1][0]
	require.True(t, got.Ended)
	require.Equal(t, int64(10), got.Offset, "a commit never goes back")
	require.Equal(t, h.commits[0][0].Meta, got.Meta, "with the checkpoint committed there")

	h.step()
	require.Len(t, h.commits, 2, "the end was committed: nothing more")
}
