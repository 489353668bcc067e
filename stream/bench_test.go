package stream_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/internal/cputime"
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

// wideEvent is as large as the fleet job's events (telemetry.Event, 136 bytes), with strings.
type wideEvent struct {
	Cab, Trip string
	Time      time.Time
	Vals      [10]float64
}

// BenchmarkFilterWide measures a Filter of large values, fused (into a KeyBy and an output)
// and materialized (read by two outputs), in runs of 128 per partition; 7 in 100 values are
// dropped, in runs of 7, as duplicates and jumps are in the fleet job's zone demand.
func BenchmarkFilterWide(b *testing.B) {
	b.Run("fused", func(b *testing.B) { benchFilterWide(b, false) })
	b.Run("materialized", func(b *testing.B) { benchFilterWide(b, true) })
}

func benchFilterWide(b *testing.B, shared bool) {
	cabs := make([]string, 1000)
	for i := range cabs {
		cabs[i] = "cab-" + strconv.Itoa(i)
	}
	var n int
	pushBench(b, func(src *stream.Stream[wideEvent]) {
		kept := src.Filter(func(e wideEvent) bool { return e.Vals[0] >= 7 })
		count := func(_ context.Context, _ stream.BatchInfo, vs []stream.Pair[string, wideEvent]) error {
			n += len(vs)
			return nil
		}
		stream.ForEachBatch(stream.KeyBy(kept, func(e wideEvent) string { return e.Cab }), count)
		if shared {
			stream.ForEachBatch(stream.KeyBy(kept, func(e wideEvent) string { return e.Trip }), count)
		}
	}, func(i int) stream.Record[wideEvent] {
		e := wideEvent{Cab: cabs[i%1000], Trip: cabs[i%997], Time: streamtest.Epoch}
		e.Vals[0] = float64(i % 100)
		return stream.Record[wideEvent]{Value: e, Partition: int32(i / 128 % 6), Offset: int64(i)}
	})
	if n == 0 {
		b.Fatal("nothing passed the filter")
	}
}

// pushBench runs batches of 10,000 records, record(i) for each i, through the graph that
// build makes on the pipeline's source, and reports CPU and elapsed time per record.
func pushBench[T any](b *testing.B, build func(src *stream.Stream[T]), record func(i int) stream.Record[T]) {
	const batch = 10_000
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithBuffer(batch, 0))
	if err != nil {
		b.Fatal(err)
	}
	var in *stream.Input[T]
	build(stream.From(p, stream.Source[T](pushBinder[T]{&in})))
	recs := make([]stream.Record[T], batch)
	for i := range recs {
		recs[i] = record(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0, cpuOK := cputime.Used()
	for b.Loop() {
		if in.TryPushBatch(recs) != batch {
			b.Fatal("buffer full")
		}
		clk.Advance(time.Second)
		if _, err := p.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if cpu1, ok := cputime.Used(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N*batch), "cpu-ns/record")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
	b.ReportMetric(0, "ns/op")
}

// pushBinder binds a pipeline's Input for a benchmark that pushes records itself.
type pushBinder[T any] struct{ in **stream.Input[T] }

func (e pushBinder[T]) Bind(in *stream.Input[T]) { *e.in = in }
func (pushBinder[T]) Run(ctx context.Context, _ *stream.Input[T]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (pushBinder[T]) Commit(context.Context, []stream.Position) error { return nil }

func benchMapFilterKeyBy(b *testing.B, run int, flat bool) {
	var n int
	pushBench(b, func(src *stream.Stream[benchEvent]) {
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
		stream.ForEachBatch(keyed, func(_ context.Context, _ stream.BatchInfo, vs []stream.Pair[int, benchEvent]) error {
			n += len(vs)
			return nil
		})
	}, func(i int) stream.Record[benchEvent] {
		return stream.Record[benchEvent]{Value: benchEvent{Cab: i % 1000, Speed: float64(i % 100)}, Partition: int32(i / run % 6), Offset: int64(i)}
	})
	if n == 0 {
		b.Fatal("nothing passed the filter")
	}
}

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
