package stream_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// TestRunWaitsForRepartitionSource: under Run, no batch runs before the repartition's
// source registered its partitions (Input.Assign or Resume), however late it does (a Kafka
// consumer that joins the group after the input's): its checkpoints' checks must come before
// the input's outputs and commits. The input's batches ran, and committed, before.
func TestRunWaitsForRepartitionSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second)
		require.NoError(t, err)
		src := &sliceSource{recs: []int{1, 2, 3, 4, 5, 6}}
		in := stream.From(p, stream.Source[int](src))
		ex := &lateJoin[stream.Pair[string, int]]{Exchange: streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int]](2)), after: 5 * time.Second}
		start := time.Now()
		var first time.Duration
		stream.ForEachBatch(in, func(_ context.Context, _ stream.BatchInfo, b []int) error {
			if len(b) > 0 && first == 0 {
				first = time.Since(start)
			}
			return nil
		})
		out := stream.Repartition(stream.Map(in, func(v int) stream.Pair[string, int] { return stream.KV(fmt.Sprint(v), v) }), "ints", ex)
		got := 0
		stream.ForEachBatch(out, func(_ context.Context, _ stream.BatchInfo, b []stream.Pair[string, int]) error {
			got += len(b)
			return nil
		})
		require.NoError(t, p.Run(t.Context()))
		require.Equal(t, 6, got)
		require.GreaterOrEqual(t, first, ex.after, "the input's first batch ran before the repartition's source registered")
	})
}

// lateJoin is an exchange whose source starts after a delay, as a Kafka consumer that joins
// its group late.
type lateJoin[T any] struct {
	*streamtest.Exchange[T]
	after time.Duration
}

func (e *lateJoin[T]) Run(ctx context.Context, in *stream.Input[stream.Shuffled[T]]) error {
	select {
	case <-time.After(e.after):
	case <-ctx.Done():
		return ctx.Err()
	}
	return e.Exchange.Run(ctx, in)
}
