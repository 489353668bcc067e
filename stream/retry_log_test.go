package stream_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestWrittenAfterRetriesFailingFor: the line of a batch written after retries gives how long
// it failed as failing_for, from its first failed attempt (RetryInfo.Since), as the retry
// lines do; it said "outage", which it does not measure.
func TestWrittenAfterRetriesFailingFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &lockedBuf{}
		var since time.Time
		p, err := stream.New(time.Second, stream.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
			stream.WithRetry(stream.RetryPolicy{Initial: 3 * time.Second, Max: 7 * time.Second}),
			stream.WithRetryHook(func(ri stream.RetryInfo) {
				if since.IsZero() {
					since = ri.Since
				}
			}))
		require.NoError(t, err)
		attempts := 0
		var written time.Time
		stream.ForEachBatch(stream.From(p, stream.Source[int](&sliceSource{recs: []int{1}})), func(_ context.Context, _ stream.BatchInfo, b []int) error {
			if len(b) == 0 {
				return nil // the batch that ends the input
			}
			if attempts++; attempts < 4 {
				return errDown
			}
			written = time.Now()
			return nil
		})
		require.NoError(t, p.Run(t.Context()))
		require.Equal(t, 4, attempts)
		took := written.Sub(since)
		require.Positive(t, took)
		require.Contains(t, logs.String(), fmt.Sprintf(`msg="stream: batch written after retries" batch=1 attempts=4 failing_for=%v`, took.Round(time.Millisecond)))
		require.NotContains(t, logs.String(), "outage")
	})
}
