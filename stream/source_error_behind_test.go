package stream_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// endlessSource pushes records for ever (a topic with a backlog longer than the test).
type endlessSource struct{}

func (endlessSource) Run(ctx context.Context, in *stream.Input[int]) error {
	for off := int64(0); ; off++ {
		if err := in.Push(ctx, stream.Record[int]{Value: 1, Offset: off}); err != nil {
			return err
		}
	}
}

func (endlessSource) Commit(context.Context, []stream.Position) error { return nil }

// breakingSource fails once broken is closed (a Kafka Source whose cluster refused it for
// good: an unknown exactly-once outcome, an authorization error).
type breakingSource struct{ broken chan struct{} }

var errBroken = errors.New("source broke")

func (s breakingSource) Run(ctx context.Context, _ *stream.Input[int]) error {
	select {
	case <-s.broken:
		return errBroken
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (breakingSource) Commit(context.Context, []stream.Position) error { return nil }

// TestSourceErrorStopsRunWhileBehind: a source's error stops the run (Source: "Any other
// error stops the pipeline"). Run only looks at the sources' results while it waits for the
// next batch; a run that is behind the clock (a backlog whose batches take longer than the
// interval) never waits, so it went on, batch after batch, with a source that had failed:
// its partitions silent (idle, so the others' watermark closed their windows without them),
// the failure unreported until the backlog ended or the run was stopped.
func TestSourceErrorStopsRunWhileBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second, stream.WithBuffer(10, 0))
		require.NoError(t, err)
		broken := make(chan struct{})
		a := stream.From(p, stream.Source[int](endlessSource{}))
		b := stream.From(p, stream.Source[int](breakingSource{broken: broken}))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		batches, failedAt := 0, 0
		stream.ForEachBatch(a.Union(b), func(context.Context, stream.BatchInfo, []int) error {
			batches++
			if batches == 3 {
				close(broken)
				synctest.Wait() // the source has returned its error
				failedAt = batches
			}
			if batches == 30 {
				cancel() // the test's bound: the run should have stopped long before
			}
			// A slow sink: every batch takes two intervals, so the run stays behind.
			<-time.After(2 * time.Second)
			return nil
		})
		err = p.Run(ctx)
		require.ErrorIs(t, err, errBroken)
		require.NotErrorIs(t, err, context.Canceled, "the run went on until it was stopped")
		require.LessOrEqual(t, batches-failedAt, 1, "batches run after the source failed")
	})
}

// TestSourceErrorStopsRunDuringRetries: a source that fails while a batch's outputs are
// retried (an output outage) stops the run too, with the batch not acknowledged: Run waited
// only for the backoff and the context there, and retried until the outage ended or
// MaxAttempts, the source's failure unreported.
func TestSourceErrorStopsRunDuringRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second, stream.WithRetry(stream.RetryPolicy{Initial: 100 * time.Millisecond, Max: time.Second}))
		require.NoError(t, err)
		broken := make(chan struct{})
		q := stream.From(p, stream.Source[int](breakingSource{broken: broken}))
		a := stream.From(p, stream.Source[int](endlessSource{}))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errDown := errors.New("output down")
		attempts, failedAt := 0, 0
		stream.ForEachBatch(a.Union(q), func(context.Context, stream.BatchInfo, []int) error {
			attempts++
			if attempts == 3 {
				close(broken)
				synctest.Wait() // the source has returned its error
				failedAt = attempts
			}
			if attempts == 100 {
				cancel() // the test's bound: the run should have stopped long before
			}
			return errDown
		})
		err = p.Run(ctx)
		require.ErrorIs(t, err, errBroken)
		require.ErrorIs(t, err, errDown, "the error says why the batch was not written")
		require.NotErrorIs(t, err, context.Canceled, "the run went on until it was stopped")
		require.LessOrEqual(t, attempts-failedAt, 1, "attempts after the source failed")
	})
}
