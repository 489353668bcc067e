package stream_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// elems is an Operator that passes its input through and records every element it saw, with
// its event time and offset.
type elems[T any] struct{ seen []stream.Elem[T] }

func (o *elems[T]) Process(_ *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[T]) []stream.Elem[T] {
	o.seen = append(o.seen, in...)
	return append(out, in...)
}
func (*elems[T]) Retained(int32) (int64, bool) { return 0, false }
func (*elems[T]) Drop(int32)                   {}
func (*elems[T]) StateSize() int               { return 0 }

// A chain of elementwise operators runs fused into its reader; every element keeps its event
// time and offset through the chain, and each user function runs once per element.
func TestFusedChainKeepsTimesAndOffsets(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[int](h)
	var maps, keeps int
	doubled := stream.Map(src, func(v int) int { maps++; return 2 * v })
	kept := doubled.Filter(func(v int) bool { keeps++; return v%3 != 0 })
	keyed := stream.KeyBy(kept, func(v int) string { return strconv.Itoa(v % 4) })
	rec := &elems[stream.Pair[string, int]]{}
	c := streamtest.Collect(stream.Apply(keyed, "record", stream.Operator[stream.Pair[string, int], stream.Pair[string, int]](rec)))

	at := func(sec int) time.Time { return streamtest.Epoch.Add(time.Duration(sec) * time.Second) }
	q.Add(
		stream.Record[int]{Value: 1, Partition: 0, Offset: 10, EventTime: at(1)},
		stream.Record[int]{Value: 3, Partition: 1, Offset: 20, EventTime: at(2)},
		stream.Record[int]{Value: 2, Partition: 0, Offset: 11, EventTime: at(3)},
		stream.Record[int]{Value: 5, Partition: 1, Offset: 21, EventTime: at(4)},
	)
	h.Run(1)

	require.Equal(t, 4, maps)
	require.Equal(t, 4, keeps)
	type kv = stream.Pair[string, int]
	require.Equal(t, []stream.Elem[kv]{
		{Value: kv{Key: "2", Value: 2}, Time: at(1).UnixNano(), Offset: 10},
		{Value: kv{Key: "0", Value: 4}, Time: at(3).UnixNano(), Offset: 11},
		{Value: kv{Key: "2", Value: 10}, Time: at(4).UnixNano(), Offset: 21},
	}, rec.seen)
	require.Equal(t, [][]kv{{{Key: "2", Value: 2}, {Key: "0", Value: 4}, {Key: "2", Value: 10}}}, c.Batches())
}

// An operator read by two readers is materialized once, so its function runs once per element
// even though one reader is elementwise.
func TestSharedOperatorRunsOnce(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[int](h)
	var calls int
	sq := stream.Map(src, func(v int) int { calls++; return v * v })
	odd := streamtest.Collect(sq.Filter(func(v int) bool { return v%2 == 1 }))
	all := streamtest.Collect(sq)
	q.AddValues(1, 2, 3)
	q.AddValues(4)
	h.Run(2)
	require.Equal(t, 4, calls)
	require.Equal(t, [][]int{{1, 4, 9}, {16}}, all.Batches())
	require.Equal(t, [][]int{{1, 9}, {}}, odd.Batches())
}

// Adding a reader after batches ran re-plans the graph: the stream that was fused into its
// only reader is materialized for both from the next batch on.
func TestReaderAddedAfterStart(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[string](h)
	var calls int
	up := stream.Map(src, func(v string) string { calls++; return v + "!" })
	first := streamtest.Collect(up)
	q.AddValues("a", "b")
	q.AddValues("c")
	h.Run(1)
	second := streamtest.Collect(stream.Map(up, func(v string) int { return len(v) }))
	h.Run(1)
	require.Equal(t, 3, calls)
	require.Equal(t, [][]string{{"a!", "b!"}, {"c!"}}, first.Batches())
	require.Equal(t, [][]int{{2}}, second.Batches())
}

// A fused chain carries a batch through its operators in chunks: batches longer than a chunk,
// with pointer-holding values, give the same results as the operators applied one by one.
func TestFusedChainLongBatches(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[int](h)
	words := stream.Map(src, strconv.Itoa)
	long := words.Filter(func(w string) bool { return len(w) > 1 && w[len(w)-1] != '7' })
	keyed := streamtest.Collect(stream.KeyBy(long, func(w string) byte { return w[0] }))
	var want [][]stream.Pair[byte, string]
	for batch, n := range []int{1000, 3, 0, 2049} {
		var recs []stream.Record[int]
		var exp []stream.Pair[byte, string]
		for i := range n {
			v := batch*10_000 + i
			recs = append(recs, stream.Record[int]{Value: v, Partition: int32(i % 3)})
			if w := strconv.Itoa(v); len(w) > 1 && w[len(w)-1] != '7' {
				exp = append(exp, stream.Pair[byte, string]{Key: w[0], Value: w})
			}
		}
		q.Add(recs...)
		want = append(want, exp)
	}
	h.Run(len(want))
	got := keyed.Batches()
	require.Len(t, got, len(want))
	for i := range want {
		require.ElementsMatch(t, want[i], got[i], "batch %d", i+1)
	}
}
