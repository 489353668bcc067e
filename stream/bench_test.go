package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

type benchEvent struct {
	Cab   int
	Speed float64
}

// BenchmarkMapFilterKeyBy measures the engine's overhead per record for a stateless chain:
// buffering the record, splitting the batch by partition, three operators and an output.
// "runs" pushes each partition's records in runs of 128, as the Kafka source pushes a fetch
// of one partition; "interleaved" alternates the partition record by record, the worst case
// for the split.
func BenchmarkMapFilterKeyBy(b *testing.B) {
	b.Run("runs", func(b *testing.B) { benchMapFilterKeyBy(b, 128, false) })
	b.Run("interleaved", func(b *testing.B) { benchMapFilterKeyBy(b, 1, false) })
	// The same with one FlatMap for the Map and the Filter.
	b.Run("flatMap", func(b *testing.B) { benchMapFilterKeyBy(b, 128, true) })
}

func benchMapFilterKeyBy(b *testing.B, run int, flat bool) {
	const batch = 10_000
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithBuffer(batch, 0))
	if err != nil {
		b.Fatal(err)
	}
	var in *stream.Input[benchEvent]
	src := stream.From(p, stream.Source[benchEvent](evBinder{&in}))
	fast := stream.Map(src, func(e benchEvent) benchEvent { e.Speed *= 1.609; return e }).
		Filter(func(e benchEvent) bool { return e.Speed > 10 })
	if flat {
		fast = stream.FlatMap(src, func(e benchEvent, emit func(benchEvent)) {
			if e.Speed *= 1.609; e.Speed > 10 {
				emit(e)
			}
		})
	}
	keyed := stream.KeyBy(fast, func(e benchEvent) int { return e.Cab })
	var n int
	stream.ForEachBatch(keyed, func(_ context.Context, _ stream.BatchInfo, vs []stream.Pair[int, benchEvent]) error {
		n += len(vs)
		return nil
	})
	recs := make([]stream.Record[benchEvent], batch)
	for i := range recs {
		recs[i] = stream.Record[benchEvent]{Value: benchEvent{Cab: i % 1000, Speed: float64(i % 100)}, Partition: int32(i / run % 6), Offset: int64(i)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if in.TryPushBatch(recs) != batch {
			b.Fatal("buffer full")
		}
		clk.Advance(time.Second)
		if _, err := p.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
	b.ReportMetric(0, "ns/op")
	if n == 0 {
		b.Fatal("nothing passed the filter")
	}
}

type evBinder struct{ in **stream.Input[benchEvent] }

func (e evBinder) Bind(in *stream.Input[benchEvent]) { *e.in = in }
func (evBinder) Run(ctx context.Context, _ *stream.Input[benchEvent]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (evBinder) Commit(context.Context, []stream.Position) error { return nil }

// BenchmarkCheckEventTime is what a source pays per record to check its event time against
// the pipeline's clock (the system clock, the default bound of an hour).
func BenchmarkCheckEventTime(b *testing.B) {
	p, err := stream.New(time.Second)
	if err != nil {
		b.Fatal(err)
	}
	var in *stream.Input[int]
	stream.From(p, stream.Source[int](binder(func(i *stream.Input[int]) { in = i })))
	ts := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := in.CheckEventTime(ts.Add(time.Duration(i&1023) * time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
}
