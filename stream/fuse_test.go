package stream_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
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

// A Filter passes long runs of kept elements on uncopied when fused and copies runs when
// materialized: over random batches whose kept runs are around the length where it stops
// copying (and across chunks), both give every kept element once, in order, with its time and
// offset, as the predicate applied element by element does.
func TestFilterRunsMatchOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 39))
	for round := range 20 {
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[string](h)
		keep := func(v string) bool { return v[0] != 'x' }
		// Fused: the Filter's only reader is a Map into an operator that records what it saw.
		fusedRec := &elems[string]{}
		stream.Apply(stream.Map(src.Filter(keep), strings.Clone), "fused", stream.Operator[string, string](fusedRec))
		// Materialized: the Filter has two readers.
		kept := src.Filter(keep)
		matRec := &elems[string]{}
		stream.Apply(kept, "materialized", stream.Operator[string, string](matRec))
		streamtest.Collect(kept)

		var want []stream.Elem[string]
		off := make([]int64, 2)
		for range 3 {
			var recs []stream.Record[string]
			for range rng.IntN(1200) {
				part := int32(rng.IntN(2))
				// Runs of kept and dropped values of random lengths around directRun.
				n := 1 + rng.IntN(40)
				drop := rng.IntN(3) == 0
				for range n {
					v := "v" + strconv.Itoa(int(off[part]))
					if drop {
						v = "x" + v
					}
					at := streamtest.Epoch.Add(time.Duration(part)*time.Hour + time.Duration(off[part])*time.Millisecond)
					recs = append(recs, stream.Record[string]{Value: v, Partition: part, Offset: off[part], EventTime: at})
					off[part]++
				}
			}
			q.Add(recs...)
			for _, r := range recs {
				if keep(r.Value) {
					want = append(want, stream.Elem[string]{Value: r.Value, Time: r.EventTime.UnixNano(), Offset: r.Offset})
				}
			}
		}
		h.Run(3)
		// Each partition's elements in the order seen (the operators see a batch partition by
		// partition); a partition is told by its hour.
		byPart := func(es []stream.Elem[string]) [2][]stream.Elem[string] {
			var out [2][]stream.Elem[string]
			for _, e := range es {
				part := 0
				if e.Time >= streamtest.Epoch.Add(time.Hour).UnixNano() {
					part = 1
				}
				out[part] = append(out[part], e)
			}
			return out
		}
		require.Equal(t, len(want), len(fusedRec.seen), "round %d: fused", round)
		require.Equal(t, byPart(want), byPart(fusedRec.seen), "round %d: fused", round)
		require.Equal(t, byPart(want), byPart(matRec.seen), "round %d: materialized", round)
	}
}
