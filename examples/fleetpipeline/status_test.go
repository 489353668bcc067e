// The job's log handler feeds the status page: a batch whose outputs fail and are retried by
// the run loop shows as "batch N retrying, attempt K" and makes /readyz not ready until the
// batch is acknowledged. Offline: a real stream.Pipeline with a small in-memory source.

package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
)

// oneShot pushes records into partition 0 and then waits for the end of Run.
type oneShot struct{ n int }

func (s oneShot) Run(ctx context.Context, in *stream.Input[int]) error {
	in.Assign(0)
	for i := range s.n {
		if err := in.Push(ctx, stream.Record[int]{Value: i, Offset: int64(i), Size: 8}); err != nil {
			return err
		}
	}
	in.Close()
	return nil
}

func (oneShot) Commit(context.Context, []stream.Position) error { return nil }

// TestRetryHookFeedsStatus: the job's retry hook shows an output retry in progress on the
// status page and /readyz while no batch is acknowledged.
func TestRetryHookFeedsStatus(t *testing.T) {
	m, err := prom.New(prometheus.NewRegistry(), "tap")
	require.NoError(t, err)
	log := logger(io.Discard, false)
	p, err := stream.New(time.Second, stream.WithName("tap"), stream.WithLogger(log), retryHook(m),
		stream.WithStatsHook(m.Observe), stream.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond}))
	require.NoError(t, err)
	calls := 0
	var seen []prom.Status // the status as each attempt starts
	stream.ForEachBatch(stream.From(p, oneShot{n: 5}), func(_ context.Context, info stream.BatchInfo, vs []int) error {
		if len(vs) == 0 {
			return nil
		}
		calls++
		seen = append(seen, m.Status())
		if calls <= 3 {
			return errors.New("injected: output down")
		}
		return nil
	})
	require.NoError(t, p.Run(t.Context()))
	require.Equal(t, 4, calls)
	require.Nil(t, seen[0].Retry, "no retry before the first failure")
	for i := 1; i < 4; i++ {
		r := seen[i].Retry
		require.NotNil(t, r, "attempt %d", i+1)
		require.Equal(t, i, r.Attempt)
		require.Contains(t, r.Error, "injected: output down")
		require.Equal(t, seen[0].LastBatch+1, r.Batch, "the batch after the last acknowledged one")
		require.False(t, seen[i].Ready)
		require.Contains(t, seen[i].Readiness, "retrying (attempt")
		require.Contains(t, seen[i].Banner, "retrying, attempt")
	}
	end := m.Status()
	require.Nil(t, end.Retry, "the acknowledged batch ends the retry")
	require.Empty(t, end.Banner)
	require.EqualValues(t, 5, end.Records)
}
