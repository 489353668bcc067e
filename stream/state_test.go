package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

func TestUpdateStateByKey(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[kv](h)
	var calls []string
	// A running sum that is removed once it reaches 10 or more.
	st := stream.UpdateStateByKey(src, func(k string, vals []int, sum int, exists bool) (int, bool) {
		if !exists {
			calls = append(calls, "new:"+k)
		}
		for _, v := range vals {
			sum += v
		}
		return sum, sum < 10
	})
	c := streamtest.Collect(st)
	q.AddValues(pairs("a", 1, "b", 2, "a", 3)...)
	q.AddValues(pairs("b", 9)...)
	q.AddValues()
	q.AddValues(pairs("b", 1)...)
	h.Run(4)
	require.Equal(t, [][]kv{pairs("a", 4, "b", 2), pairs("a", 4), pairs("a", 4), pairs("a", 4, "b", 1)}, c.Batches())
	require.Equal(t, []string{"new:a", "new:b", "new:b"}, calls)
	// a's state still needs offset 0 (its first record), so nothing past it is committed.
	require.Equal(t, int64(0), q.Committed(0))
}

func TestMapWithStateTimeout(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[kv](h)
	type out struct {
		Key     string
		Total   int
		Timeout bool
	}
	mapped, snaps := stream.MapWithState(src, func(k string, v int, ok bool, s *stream.State[int]) (out, bool) {
		total, _ := s.Get()
		if !ok {
			require.True(t, s.IsTimingOut())
			return out{k, total, true}, true
		}
		total += v
		s.Update(total)
		return out{k, total, false}, true
	}, 2*time.Second)
	c := streamtest.Collect(mapped)
	sc := streamtest.Collect(snaps)
	q.AddValues(pairs("a", 1, "b", 5)...)
	q.AddValues(pairs("a", 2)...)
	q.AddValues()
	q.AddValues()
	q.AddValues()
	h.Run(5)
	require.Equal(t, [][]out{
		{{"a", 1, false}, {"b", 5, false}},
		{{"a", 3, false}},
		{{"b", 5, true}}, // b idle for 2 s
		{{"a", 3, true}},
		{},
	}, c.Batches())
	require.Equal(t, [][]kv{pairs("a", 1, "b", 5), pairs("a", 3, "b", 5), pairs("a", 3), {}, {}}, sc.Batches())
	require.Equal(t, int64(3), q.Committed(0), "all state timed out: everything committed")
}
