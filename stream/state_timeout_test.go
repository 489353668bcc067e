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

// keySource pushes its keys, one record each, then waits to be stopped (a topic's backlog).
type keySource struct{ keys []string }

func (s keySource) Run(ctx context.Context, in *stream.Input[string]) error {
	for i, k := range s.keys {
		if err := in.Push(ctx, stream.Record[string]{Value: k, Offset: int64(i)}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (keySource) Commit(context.Context, []stream.Position) error { return nil }

// timeouts is a MapWithState over keyed strings that emits "<key> timed out" at each
// timeout call and nothing else.
func timeouts(s *stream.Stream[string], timeout time.Duration) *stream.Stream[string] {
	keyed := stream.Map(s, func(k string) stream.Pair[string, int] { return stream.Pair[string, int]{Key: k, Value: 1} })
	out, _ := stream.MapWithState(keyed, func(k string, _ int, ok bool, st *stream.State[int]) (string, bool) {
		if !ok {
			return k + " timed out", true
		}
		st.Update(1)
		return "", false
	}, timeout)
	return out
}

// TestStateTimeoutKeepsBatchTimes: the same backlog, batch by batch (a buffer of two
// records), gives the same MapWithState results whether its batches ran at the interval or
// back to back. "Batch times are the processing times the batches started at;
// processing-time windows count batches, so their results do not change" (Backpressure):
// MapWithState's timeout is judged on batch times instead, and a catch-up whose batches run
// back to back (or a replay after a crash, which catches up) compresses them: a key idle for
// three batches of one second timed out at the interval, and never back to back. Spark's
// timeout counts batch time, which is logical there (one interval per batch, however late
// a batch runs).
func TestStateTimeoutKeepsBatchTimes(t *testing.T) {
	keys := []string{"a", "b", "b", "b", "b", "b", "b", "b", "a"} // batches: a b | b b | b b | b b | a

	// At the interval: the harness runs one batch per interval.
	h := streamtest.New(t, time.Second, stream.WithBuffer(2, 0))
	q, src := streamtest.NewQueue[string](h)
	atInterval := streamtest.Collect(timeouts(src, 3*time.Second))
	for i := 0; i < len(keys); i += 2 {
		q.AddValues(keys[i:min(i+2, len(keys))]...)
	}
	h.Run(5)
	require.Equal(t, []string{"a timed out"}, atInterval.Slice(), "at the interval")

	// Back to back: the backlog is in the source's buffer when Run starts.
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second, stream.WithBuffer(2, 0))
		require.NoError(t, err)
		s := stream.From(p, stream.Source[string](keySource{keys: keys}))
		ctx, cancel := context.WithCancel(t.Context())
		var got []string
		var sizes []int
		seen := 0
		stream.ForEachBatch(timeouts(s, 3*time.Second), func(_ context.Context, _ stream.BatchInfo, b []string) error {
			got = append(got, b...)
			sizes = append(sizes, len(b))
			if seen++; seen == 5 {
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, p.Run(ctx), context.Canceled)
		require.Len(t, sizes, 5)
		require.Equal(t, []string{"a timed out"}, got, "back to back: the same batches, other results")
	})
}
