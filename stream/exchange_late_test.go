package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// lateGraph is a pipeline whose input feeds an output and a repartition through ex; first is
// when the input's first batch with records ran (-1 if none did), got counts the records
// after the repartition.
type lateGraph struct {
	p     *stream.Pipeline
	src   *sliceSource
	first time.Duration
	got   int
}

func newLateGraph(t *testing.T, ex stream.Exchange[stream.Pair[string, int]], opts ...stream.Option) *lateGraph {
	t.Helper()
	p, err := stream.New(time.Second, opts...)
	require.NoError(t, err)
	g := &lateGraph{p: p, src: &sliceSource{recs: []int{1, 2, 3, 4, 5, 6}}, first: -1}
	in := stream.From(p, stream.Source[int](g.src))
	start := time.Now()
	stream.ForEachBatch(in, func(_ context.Context, _ stream.BatchInfo, b []int) error {
		if len(b) > 0 && g.first < 0 {
			g.first = time.Since(start)
		}
		return nil
	})
	out := stream.Repartition(stream.Map(in, func(v int) stream.Pair[string, int] { return stream.KV(fmt.Sprint(v), v) }), "ints", ex)
	stream.ForEachBatch(out, func(_ context.Context, _ stream.BatchInfo, b []stream.Pair[string, int]) error {
		g.got += len(b)
		return nil
	})
	return g
}

// TestRunWaitsForRepartitionSource: under Run, no batch runs before the repartition's
// source registered its partitions (Input.Assign or Resume), however late it does (a Kafka
// consumer that joins the group after the input's), when its exchange says it registers
// (stream.PartitionRegistrar, as streamtest's and kafka's do): its checkpoints' checks must
// come before the input's outputs and commits, and the log says why nothing runs. Without
// the wait, the input's batches ran, and committed, before.
func TestRunWaitsForRepartitionSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		ex := &lateJoin[stream.Pair[string, int]]{Exchange: streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int]](2)), after: 45 * time.Second}
		g := newLateGraph(t, ex, stream.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
		require.NoError(t, g.p.Run(t.Context()))
		require.Equal(t, 6, g.got)
		require.GreaterOrEqual(t, g.first, ex.after, "the input's first batch ran before the repartition's source registered")
		require.Contains(t, log.String(), `waiting for a repartition's source to register its partitions before the first batch" repartition=ints`)
		require.Contains(t, log.String(), `still waiting for a repartition's source to register its partitions; no batch runs before" repartition=ints waited=30s`)
		require.Contains(t, log.String(), `a repartition's source registered its partitions" repartition=ints waited=45s`)
	})
}

// TestRunDoesNotWaitForExchangeThatDoesNotRegister: an exchange that does not say it
// registers its partitions (a user's own, which may never call Assign or Resume) is not
// waited for: the input's batches run at once, as before the wait existed.
func TestRunDoesNotWaitForExchangeThatDoesNotRegister(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		late := &lateJoin[stream.Pair[string, int]]{Exchange: streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int]](2)), after: 5 * time.Second}
		// Only the methods of stream.Exchange: not a PartitionRegistrar.
		ex := struct {
			stream.Exchange[stream.Pair[string, int]]
		}{late}
		g := newLateGraph(t, ex)
		require.NoError(t, g.p.Run(t.Context()))
		require.Equal(t, 6, g.got)
		require.GreaterOrEqual(t, g.first, time.Duration(0))
		require.Less(t, g.first, late.after, "the input waited for an exchange that never said it registers")
	})
}

// TestRunWaitingForRepartitionSourceStops: a stopped context or a source's error ends the
// wait at once, with nothing run or committed.
func TestRunWaitingForRepartitionSourceStops(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		timeout time.Duration // of Run's context; 0: none
		failAt  time.Duration // when the exchange's Run fails without registering; 0: never
		want    error
		at      time.Duration
	}{
		{name: "context", timeout: 2 * time.Second, want: context.DeadlineExceeded, at: 2 * time.Second},
		{name: "source error", failAt: 3 * time.Second, want: boom, at: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ex := &lateJoin[stream.Pair[string, int]]{Exchange: streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int]](2)), after: time.Hour}
				if tc.failAt > 0 {
					ex.after, ex.err = tc.failAt, boom
				}
				g := newLateGraph(t, ex)
				g.src.wait = true
				ctx := t.Context()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				start := time.Now()
				err := g.p.Run(ctx)
				require.ErrorIs(t, err, tc.want)
				require.Equal(t, tc.at, time.Since(start), "Run ended when the wait did")
				require.Equal(t, time.Duration(-1), g.first, "a batch ran")
				require.Nil(t, g.src.commits.Load(), "the input committed")
			})
		})
	}
}

// lateJoin is an exchange whose source starts after a delay, as a Kafka consumer that joins
// its group late, or, with err, fails then instead.
type lateJoin[T any] struct {
	*streamtest.Exchange[T]
	after time.Duration
	err   error
}

func (e *lateJoin[T]) Run(ctx context.Context, in *stream.Input[stream.Shuffled[T]]) error {
	select {
	case <-time.After(e.after):
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.err != nil {
		return e.err
	}
	return e.Exchange.Run(ctx, in)
}
