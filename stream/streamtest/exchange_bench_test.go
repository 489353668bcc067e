package streamtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// BenchmarkExchangeBacklog reads a backlog of 20,000 records out of an in-memory exchange
// into a pipeline that takes 16 records a batch: each batch's cost must not grow with the
// backlog still unread (it did: every feed built every unread record).
func BenchmarkExchangeBacklog(b *testing.B) {
	const n, parts = 20_000, 2
	recs := make([]stream.Shuffled[int], n)
	for i := range recs {
		recs[i] = stream.Shuffled[int]{Value: i, Partition: int32(i % parts), Seq: int64(i), Time: int64(i) * int64(time.Millisecond)}
	}
	for b.Loop() {
		log := streamtest.NewExchangeLog[int](parts)
		ex := streamtest.NewExchange(log)
		if err := ex.Send(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
		p, err := stream.New(time.Millisecond, stream.WithBuffer(16, 0), stream.WithIdleTimeout(0))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := 0
		stream.ForEachBatch(stream.From[stream.Shuffled[int]](p, ex), func(_ context.Context, _ stream.BatchInfo, rs []stream.Shuffled[int]) error {
			if got += len(rs); got == n {
				cancel()
			}
			return nil
		})
		if err := p.Run(ctx); err != context.Canceled {
			b.Fatalf("run: %v after %d of %d records", err, got, n)
		}
	}
}
