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
func BenchmarkMapFilterKeyBy(b *testing.B) {
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
	keyed := stream.KeyBy(fast, func(e benchEvent) int { return e.Cab })
	var n int
	stream.ForEachBatch(keyed, func(_ context.Context, _ stream.BatchInfo, vs []stream.Pair[int, benchEvent]) error {
		n += len(vs)
		return nil
	})
	recs := make([]stream.Record[benchEvent], batch)
	for i := range recs {
		recs[i] = stream.Record[benchEvent]{Value: benchEvent{Cab: i % 1000, Speed: float64(i % 100)}, Partition: int32(i % 6), Offset: int64(i)}
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

// TestTryPushBatchBounds checks the bulk push against the buffer's record and byte bounds:
// records are taken while the buffer is under both bounds, and one record larger than the
// byte bound still enters an empty buffer.
func TestTryPushBatchBounds(t *testing.T) {
	sized := func(sizes ...int) []stream.Record[benchEvent] {
		recs := make([]stream.Record[benchEvent], len(sizes))
		for i, s := range sizes {
			recs[i] = stream.Record[benchEvent]{Value: benchEvent{Cab: i}, Offset: int64(i), Size: s}
		}
		return recs
	}
	for _, tc := range []struct {
		name     string
		records  int
		bytes    int64
		pushes   [][]stream.Record[benchEvent]
		accepted []int
	}{
		{"record bound", 5, 0, [][]stream.Record[benchEvent]{sized(1, 1, 1), sized(1, 1, 1), sized(1)}, []int{3, 2, 0}},
		{"byte bound", 100, 100, [][]stream.Record[benchEvent]{sized(60), sized(30, 20, 10), sized(1)}, []int{1, 2, 0}},
		{"big record into an empty buffer", 100, 100, [][]stream.Record[benchEvent]{sized(500, 1), sized(1)}, []int{1, 0}},
		{"empty push", 5, 10, [][]stream.Record[benchEvent]{nil, sized(3)}, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := stream.New(time.Second, stream.WithBuffer(tc.records, tc.bytes))
			if err != nil {
				t.Fatal(err)
			}
			var in *stream.Input[benchEvent]
			stream.From(p, stream.Source[benchEvent](evBinder{&in}))
			for i, recs := range tc.pushes {
				if got := in.TryPushBatch(recs); got != tc.accepted[i] {
					t.Fatalf("push %d: accepted %d of %d records, want %d", i+1, got, len(recs), tc.accepted[i])
				}
			}
			last := len(tc.pushes) - 1
			if full := tc.accepted[last] < len(tc.pushes[last]); in.Full() != full {
				t.Fatalf("Full() = %v after the last push, want %v", in.Full(), full)
			}
		})
	}
}
