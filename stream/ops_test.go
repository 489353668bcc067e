package stream_test

import (
	"cmp"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

type kv = stream.Pair[string, int]

func pairs(s ...any) []kv {
	out := make([]kv, 0, len(s)/2)
	for i := 0; i < len(s); i += 2 {
		out = append(out, kv{Key: s[i].(string), Value: s[i+1].(int)})
	}
	return out
}

// run queues the input batches (one per element), runs them all and returns each output
// batch.
func run[T, U any](t *testing.T, build func(*stream.Stream[T]) *stream.Stream[U], batches ...[]T) [][]U {
	t.Helper()
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[T](h)
	c := streamtest.Collect(build(src))
	for _, b := range batches {
		q.AddValues(b...)
	}
	h.Run(len(batches))
	return c.Batches()
}

func TestStatelessOperators(t *testing.T) {
	in := [][]string{{"a", "bb", "ccc"}, {}, {"dddd"}}
	t.Run("Map", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[int] {
			return stream.Map(s, func(v string) int { return len(v) })
		}, in...)
		require.Equal(t, [][]int{{1, 2, 3}, {}, {4}}, got)
	})
	t.Run("Filter", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[string] {
			return s.Filter(func(v string) bool { return len(v)%2 == 1 })
		}, in...)
		require.Equal(t, [][]string{{"a", "ccc"}, {}, {}}, got)
	})
	t.Run("FlatMap", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[string] {
			return stream.FlatMap(s, func(v string, emit func(string)) {
				for _, r := range v[:min(len(v), 2)] {
					emit(string(r))
				}
			})
		}, in...)
		require.Equal(t, [][]string{{"a", "b", "b", "c", "c"}, {}, {"d", "d"}}, got)
	})
	t.Run("Transform", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[string] {
			return stream.Transform(s, func(_ *stream.PartitionContext, vs []string) []string {
				if len(vs) == 0 {
					return nil
				}
				return []string{strings.Join(vs, "+")}
			})
		}, in...)
		require.Equal(t, [][]string{{"a+bb+ccc"}, {}, {"dddd"}}, got)
	})
	t.Run("Union", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[string] {
			up := stream.Map(s, strings.ToUpper)
			return s.Filter(func(v string) bool { return len(v) < 3 }).Union(up)
		}, in...)
		require.Equal(t, [][]string{{"a", "bb", "A", "BB", "CCC"}, {}, {"DDDD"}}, got)
	})
	t.Run("KeyByMapValues", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[stream.Pair[int, string]] {
			return stream.MapValues(stream.KeyBy(s, func(v string) int { return len(v) }), strings.ToUpper)
		}, []string{"x", "yy"})
		require.Equal(t, [][]stream.Pair[int, string]{{{Key: 1, Value: "X"}, {Key: 2, Value: "YY"}}}, got)
	})
}

func TestKeyedOperators(t *testing.T) {
	in := [][]kv{pairs("a", 1, "b", 2, "a", 3), pairs("b", 5), {}}
	t.Run("ReduceByKey", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[kv]) *stream.Stream[kv] {
			return stream.ReduceByKey(s, func(a, b int) int { return a + b })
		}, in...)
		require.Equal(t, [][]kv{pairs("a", 4, "b", 2), pairs("b", 5), {}}, got)
	})
	t.Run("GroupByKey", func(t *testing.T) {
		got := run(t, stream.GroupByKey[string, int], in...)
		require.Equal(t, [][]stream.Pair[string, []int]{{{Key: "a", Value: []int{1, 3}}, {Key: "b", Value: []int{2}}}, {{Key: "b", Value: []int{5}}}, {}}, got)
	})
	t.Run("CountByValue", func(t *testing.T) {
		got := run(t, stream.CountByValue[string], []string{"x", "y", "x", "x"}, []string{"y"})
		require.Equal(t, [][]stream.Pair[string, int64]{{{Key: "x", Value: 3}, {Key: "y", Value: 1}}, {{Key: "y", Value: 1}}}, got)
	})
}

func TestJoin(t *testing.T) {
	build := func(left bool) func(s *stream.Stream[kv]) *stream.Stream[stream.Pair[string, stream.Joined[int, int]]] {
		return func(s *stream.Stream[kv]) *stream.Stream[stream.Pair[string, stream.Joined[int, int]]] {
			l := s.Filter(func(p kv) bool { return p.Value < 10 })
			r := stream.MapValues(s.Filter(func(p kv) bool { return p.Value >= 10 }), func(v int) int { return v / 10 })
			if left {
				return stream.LeftJoin(l, r)
			}
			return stream.Join(l, r)
		}
	}
	in := []kv{{"a", 1}, {"b", 2}, {"a", 10}, {"a", 20}, {"c", 30}}
	type j = stream.Pair[string, stream.Joined[int, int]]
	inner := run(t, build(false), in)
	require.Equal(t, [][]j{{
		{Key: "a", Value: stream.Joined[int, int]{Left: 1, Right: 1, Matched: true}},
		{Key: "a", Value: stream.Joined[int, int]{Left: 1, Right: 2, Matched: true}},
	}}, inner)
	left := run(t, build(true), in)
	require.Equal(t, [][]j{{
		{Key: "a", Value: stream.Joined[int, int]{Left: 1, Right: 1, Matched: true}},
		{Key: "a", Value: stream.Joined[int, int]{Left: 1, Right: 2, Matched: true}},
		{Key: "b", Value: stream.Joined[int, int]{Left: 2}},
	}}, left)
}

// Window semantics follow Spark DStreams with a 1 s batch: a windowed stream has data only at
// multiples of its slide, and the first windows hold the batches there are.
func TestWindowSparkSemantics(t *testing.T) {
	in := [][]int{{1}, {2}, {3}, {4}, {5}, {6}}
	t.Run("Window3s2s", func(t *testing.T) {
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[int](h)
		c := streamtest.Collect(stream.Window(src, 3*time.Second, 2*time.Second))
		for _, b := range in {
			q.AddValues(b...)
		}
		h.Run(len(in))
		require.Equal(t, [][]int{{1, 2}, {2, 3, 4}, {4, 5, 6}}, c.Batches())
		var batches []int64
		for _, i := range c.Infos() {
			batches = append(batches, i.Batch)
		}
		require.Equal(t, []int64{2, 4, 6}, batches, "outputs of a windowed stream run every slide")
	})
	t.Run("ReduceByWindow", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[int]) *stream.Stream[int] {
			return stream.ReduceByWindow(s, func(a, b int) int { return a + b }, 2*time.Second, time.Second)
		}, []int{1, 2}, []int{3}, []int{}, []int{}, []int{4})
		require.Equal(t, [][]int{{3}, {6}, {3}, {}, {4}}, got, "empty windows yield nothing")
	})
	t.Run("CountByWindowKeepsZero", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[int64] {
			return stream.CountByWindow(s, 2*time.Second, time.Second)
		}, []string{}, []string{"a", "b"}, []string{"c"}, []string{}, []string{}, []string{})
		require.Equal(t, [][]int64{{}, {2}, {3}, {1}, {0}, {0}}, got)
	})
	t.Run("ReduceByKeyAndWindow", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[kv]) *stream.Stream[kv] {
			return stream.ReduceByKeyAndWindow(s, func(a, b int) int { return a + b }, 3*time.Second, time.Second)
		}, pairs("a", 1), pairs("a", 2, "b", 1), pairs("b", 1), []kv{}, []kv{})
		require.Equal(t, [][]kv{pairs("a", 1), pairs("a", 3, "b", 1), pairs("a", 3, "b", 2), pairs("a", 2, "b", 2), pairs("b", 1)}, got)
	})
	t.Run("ReduceByKeyAndWindowInvKeepsZero", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[kv]) *stream.Stream[kv] {
			return stream.ReduceByKeyAndWindowInv(s, func(a, b int) int { return a + b }, func(a, b int) int { return a - b }, nil, 2*time.Second, time.Second)
		}, pairs("a", 1), pairs("a", 2, "b", 1), pairs("b", 5), []kv{}, []kv{})
		require.Equal(t, [][]kv{pairs("a", 1), pairs("a", 3, "b", 1), pairs("a", 2, "b", 6), pairs("a", 0, "b", 5), pairs("a", 0, "b", 0)}, got)
	})
	t.Run("ReduceByKeyAndWindowInvSlide2", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[kv]) *stream.Stream[kv] {
			return stream.ReduceByKeyAndWindowInv(s, func(a, b int) int { return a + b }, func(a, b int) int { return a - b },
				func(p kv) bool { return p.Value > 0 }, 4*time.Second, 2*time.Second)
		}, pairs("a", 1), pairs("b", 1), pairs("a", 1), []kv{}, []kv{}, []kv{}, []kv{})
		// windows: b2 {1,2}: a1 b1; b4 {1..4}: a2 b1; b6 {3..6}: a1 (b filtered at 0); b8 would drop a.
		require.Equal(t, [][]kv{pairs("a", 1, "b", 1), pairs("a", 2, "b", 1), pairs("a", 1)}, got)
	})
	t.Run("CountByValueAndWindowDropsZero", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[string]) *stream.Stream[stream.Pair[string, int64]] {
			return stream.CountByValueAndWindow(s, 2*time.Second, time.Second)
		}, []string{"x", "y", "x"}, []string{"y"}, []string{}, []string{})
		require.Equal(t, [][]stream.Pair[string, int64]{
			{{Key: "x", Value: 2}, {Key: "y", Value: 1}},
			{{Key: "x", Value: 2}, {Key: "y", Value: 2}},
			{{Key: "y", Value: 1}},
			{},
		}, got)
	})
	t.Run("GroupByKeyAndWindow", func(t *testing.T) {
		got := run(t, func(s *stream.Stream[kv]) *stream.Stream[stream.Pair[string, []int]] {
			return stream.GroupByKeyAndWindow(s, 2*time.Second, 2*time.Second)
		}, pairs("a", 1), pairs("a", 2, "b", 3), pairs("b", 4), []kv{})
		require.Equal(t, [][]stream.Pair[string, []int]{
			{{Key: "a", Value: []int{1, 2}}, {Key: "b", Value: []int{3}}},
			{{Key: "b", Value: []int{4}}},
		}, got)
	})
}

func TestConstructionErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(*stream.Stream[int])
		want  string
		kind  error // ErrInvalidOption unless set
	}{
		{"length not multiple", func(s *stream.Stream[int]) { stream.Window(s, 1500*time.Millisecond, time.Second) }, "multiples of the batch interval", nil},
		{"slide not multiple", func(s *stream.Stream[int]) { stream.CountByWindow(s, 2*time.Second, 500*time.Millisecond) }, "multiples of the batch interval", nil},
		{"zero length", func(s *stream.Stream[int]) { stream.Window(s, 0, time.Second) }, "must be positive", nil},
		{"window of window", func(s *stream.Stream[int]) {
			stream.Window(stream.Window(s, 4*time.Second, 2*time.Second), 3*time.Second, 3*time.Second)
		}, "parent stream's slide", nil},
		{"union of slides", func(s *stream.Stream[int]) { s.Union(stream.Window(s, 2*time.Second, 2*time.Second)) }, "slides differ", stream.ErrGraph},
		{"inverse slide > length", func(s *stream.Stream[int]) {
			stream.ReduceByKeyAndWindowInv(stream.KeyBy(s, func(int) int { return 0 }), func(a, b int) int { return a + b }, func(a, b int) int { return a - b }, nil, time.Second, 2*time.Second)
		}, "slide longer", nil},
		// A *kafka.Exchange left nil beside NewExchange's error is not a nil interface: it
		// panicked in the exchange's Bind (helper-100).
		{"nil exchange pointer", func(s *stream.Stream[int]) {
			var ex *streamtest.Exchange[int]
			stream.RepartitionBy(s, "r", ex, func(v int) uint64 { return uint64(v) })
		}, "needs a name, an exchange and a hash", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second)
			_, src := streamtest.NewQueue[int](h)
			tc.build(src)
			kind := cmp.Or(tc.kind, stream.ErrInvalidOption)
			err := h.P.Err()
			require.ErrorIs(t, err, kind)
			require.ErrorContains(t, err, tc.want)
			_, err = h.TryStep()
			require.ErrorIs(t, err, kind, "Step refuses a pipeline with construction errors")
		})
	}
	_, err := stream.New(0)
	require.ErrorIs(t, err, stream.ErrInvalidOption)
	_, err = stream.New(time.Second, stream.WithBuffer(0, 0))
	require.ErrorIs(t, err, stream.ErrInvalidOption)
	_, err = stream.New(time.Second, stream.WithShutdownTimeout(-time.Second))
	require.ErrorIs(t, err, stream.ErrInvalidOption)
	require.ErrorContains(t, err, "WithShutdownTimeout(-1s): negative")
}

// TestPartitionsInterleaved splits batches whose records alternate between partitions, with
// partition numbers below and above the engine's direct index and negative ones, and checks
// that every partition sees exactly its own records in order, batch after batch.
func TestPartitionsInterleaved(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[int](h)
	out := streamtest.Collect(stream.Transform(s, func(pc *stream.PartitionContext, vs []int) []string {
		return []string{fmt.Sprint(pc.Partition, vs)}
	}))
	parts := []int32{0, 5000, 3, -1, 70000, 3}
	for batch := range 3 {
		var recs []stream.Record[int]
		for i := range 12 {
			p := parts[(i+batch)%len(parts)]
			recs = append(recs, stream.Record[int]{Value: batch*100 + i, Partition: p, Offset: int64(batch*100 + i)})
		}
		q.Add(recs...)
		if batch == 1 {
			q.AddEmpty(1) // a batch without records between two with them
		}
	}
	q.End()
	h.RunUntilDone()
	want := [][]string{
		{"0 [0 6]", "5000 [1 7]", "3 [2 5 8 11]", "-1 [3 9]", "70000 [4 10]"},
		{"5000 [100 106]", "3 [101 104 107 110]", "-1 [102 108]", "70000 [103 109]", "0 [105 111]"},
		{"0 []", "5000 []", "3 []", "-1 []", "70000 []"}, // every known partition runs
		{"3 [200 203 206 209]", "-1 [201 207]", "70000 [202 208]", "0 [204 210]", "5000 [205 211]"},
	}
	got := out.Batches()
	require.GreaterOrEqual(t, len(got), len(want))
	for i, w := range want {
		require.ElementsMatch(t, w, got[i], "batch %d", i+1)
	}
}
