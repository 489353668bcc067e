package streamtest_test

import (
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
	require.Equal(t, []int{1, 2, 3}, got.All())
	require.PanicsWithValue(t, "streamtest: a queued batch of 11 records does not fit in the pipeline's source buffer (10 fitted); queue smaller batches or raise stream.WithBuffer", func() { h.Step() })
}
