package streamtest_test

import (
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
