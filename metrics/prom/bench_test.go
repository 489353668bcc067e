package prom_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// BenchmarkObserve measures the hook once per batch: a batch of 12 partitions and 3 stateful
// operators. Its cost does not depend on the batch's record count.
func BenchmarkObserve(b *testing.B) {
	m, err := prom.New(prometheus.NewRegistry(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	lag, read, end := make(map[string]int64), make(map[string]int64), make(map[string]int64)
	for i := range 12 {
		n := fmt.Sprintf("telemetry/%d", i)
		lag[n], read[n], end[n] = int64(i*100), int64(i*1000), int64(i*1000)
	}
	st := stream.BatchStats{
		InputRecords: 100_000, InputBytes: 20_000_000, Attempts: 1, Partitions: 12,
		ProcessingTime: 40 * time.Millisecond, OutputTime: 200 * time.Millisecond, SchedulingDelay: time.Millisecond,
		Watermark: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		State: []stream.OperatorState{
			{Operator: "cab-stats", Entries: 5000, Reported: true, OpenWindows: 24, Bytes: 500_000, Late: 3},
			{Operator: "zones", Entries: 300, Reported: true, OpenWindows: 24, Bytes: 40_000},
			{Operator: "alerts", Entries: 5000, Reported: true, Bytes: 800_000, KeyLimit: 1}},
		Source: stream.SourceStats{Records: 100_000, Bytes: 20_000_000, Lag: lag, Read: read, End: end},
	}
	for i := range 12 {
		st.PartitionStats = append(st.PartitionStats, stream.PartitionStats{Partition: int32(i),
			Next: int64(i * 1000), Committed: int64(i * 900), Watermark: st.Watermark})
	}
	b.ReportAllocs()
	for b.Loop() {
		st.Batch++
		st.Source.DeadLetters++
		m.Observe(st)
	}
}

// BenchmarkPipeline is the A/B of issue 14: one offline batch of 10,000 records through
// Map -> Filter -> KeyBy, without and with the metrics hook. The difference is the cost of
// Observe, once per batch; compare with `go tool benchstat -col /metrics`.
func BenchmarkPipeline(b *testing.B) {
	vals := make([]int, 10_000)
	for i := range vals {
		vals[i] = i
	}
	for _, withMetrics := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", withMetrics), func(b *testing.B) {
			h, q := mapFilterKeyBy(b, withMetrics)
			b.ReportAllocs()
			for b.Loop() {
				q.AddValues(vals...)
				h.Step()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vals)), "ns/record")
		})
	}
}

// mapFilterKeyBy builds the benchmark's pipeline on an offline harness, with or without
// the metrics hook, and returns the harness and its input queue.
func mapFilterKeyBy(tb testing.TB, withMetrics bool) (*streamtest.Harness, *streamtest.Queue[int]) {
	var opts []stream.Option
	if withMetrics {
		m, err := prom.New(prometheus.NewRegistry(), "bench")
		if err != nil {
			tb.Fatal(err)
		}
		opts = append(opts, stream.WithStatsHook(m.Observe))
	}
	h := streamtest.New(tb, time.Second, opts...)
	q, src := streamtest.NewQueue[int](h)
	n := 0
	even := stream.Map(src, func(v int) int { return v * 3 }).Filter(func(v int) bool { return v%2 == 0 })
	keyed := stream.KeyBy(even, func(v int) int { return v % 64 })
	stream.ForEachBatch(keyed, func(_ context.Context, _ stream.BatchInfo, vs []stream.Pair[int, int]) error {
		n += len(vs)
		return nil
	})
	return h, q
}

// TestMetricsAllocateNothingPerRecord: the hook adds no allocation to a batch, whatever its
// size, and Observe allocates nothing once the partitions and operators are known.
func TestMetricsAllocateNothingPerRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over a few hundred batches")
	}
	perBatch := func(withMetrics bool, records int) float64 {
		vals := make([]int, records)
		h, q := mapFilterKeyBy(t, withMetrics)
		return testing.AllocsPerRun(50, func() {
			q.AddValues(vals...)
			h.Step()
		})
	}
	for _, n := range []int{100, 10_000} {
		without, with := perBatch(false, n), perBatch(true, n)
		t.Logf("%d records a batch: %.1f allocations a batch without metrics, %.1f with", n, without, with)
		if with > without {
			t.Errorf("%d records a batch: %.1f allocations a batch with the metrics hook, %.1f without", n, with, without)
		}
	}

	m, err := prom.New(prometheus.NewRegistry(), "allocs")
	if err != nil {
		t.Fatal(err)
	}
	st := stream.BatchStats{InputRecords: 1000, Partitions: 2, Watermark: time.Now(),
		State: []stream.OperatorState{{Operator: "a", Entries: 1},
			{Operator: "w", Entries: 2, Reported: true, OpenWindows: 1, Bytes: 100}},
		Committed: []stream.Position{{Partition: 0, Offset: 5}, {Partition: 1, Offset: 7}},
		PartitionStats: []stream.PartitionStats{{Partition: 0, Next: 6, Committed: 5, Watermark: time.Now()},
			{Partition: 1, Next: 9, Committed: 7, Idle: true}},
		Source: stream.SourceStats{Lag: map[string]int64{"t/0": 1, "t/1": 2},
			Read: map[string]int64{"t/0": 6, "t/1": 9}, End: map[string]int64{"t/0": 6, "t/1": 9}}}
	m.Observe(st)
	if a := testing.AllocsPerRun(100, func() {
		st.Batch++
		st.Duplicates++
		st.State[1].Late++
		st.State[1].KeyLimit++
		m.Observe(st)
	}); a != 0 {
		t.Errorf("Observe: %.1f allocations a batch, want 0", a)
	}
}

// BenchmarkCabStats is the A/B of issue 14 for the cab-stats per-event cost: telemetry's
// BenchmarkCabStats graph (10,000 cabs over 6 partitions, a one-minute tumbling window, one
// event per cab a batch, 15 s of event time apart, documents built from the results),
// without and with the metrics hook. Run the two interleaved and compare with
// `go tool benchstat -col /metrics`.
func BenchmarkCabStats(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", withMetrics), func(b *testing.B) {
			const cabs = 10_000
			base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			clk := streamtest.NewClock(base) // the pipeline clock follows event time
			opts := []stream.Option{stream.WithClock(clk), stream.WithBuffer(cabs, 0)}
			if withMetrics {
				m, err := prom.New(prometheus.NewRegistry(), "bench", prom.WithClock(clk))
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, stream.WithStatsHook(m.Observe))
			}
			p, err := stream.New(time.Second, opts...)
			if err != nil {
				b.Fatal(err)
			}
			var in *stream.Input[telemetry.Event]
			src := stream.From(p, stream.Source[telemetry.Event](binder{&in}))
			stats, err := telemetry.CabStatsStream(src, window.Tumbling(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			var docs int64
			stream.ForEachBatch(stats.Results(), func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, telemetry.CabStats]) error {
				for _, r := range rs {
					docs += telemetry.CabStatsDoc(r).Events
				}
				return nil
			})
			recs := make([]stream.Record[telemetry.Event], cabs)
			for i := range recs {
				recs[i] = stream.Record[telemetry.Event]{Partition: int32(i % 6), Value: telemetry.Event{
					CabID: "CAB-" + strconv.Itoa(i), Lat: 41.10 + float64(i%100)*0.001, Lon: -8.65 + float64(i/100)*0.001,
					Status: telemetry.StatusHired, SpeedKmh: 30 + float64(i%20), Has: telemetry.HasSpeed,
				}}
			}
			var off int64
			batch := 0
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				t0 := base.Add(time.Duration(batch) * 15 * time.Second)
				batch++
				for i := range recs {
					r := &recs[i]
					r.EventTime = t0.Add(time.Duration(i) * time.Millisecond)
					r.Value.Time = r.EventTime
					r.Value.Lat += 0.001
					r.Offset = off
					off++
				}
				if in.TryPushBatch(recs) != cabs {
					b.Fatal("buffer full")
				}
				clk.Advance(15 * time.Second)
				if _, err := p.Step(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*cabs), "ns/event")
			b.ReportMetric(0, "ns/op")
			if b.N > 8 && docs == 0 {
				b.Fatal("no window closed")
			}
		})
	}
}

// binder is a source fed from the benchmark through its Input.
type binder struct {
	in **stream.Input[telemetry.Event]
}

func (e binder) Bind(in *stream.Input[telemetry.Event]) { *e.in = in }
func (binder) Run(ctx context.Context, _ *stream.Input[telemetry.Event]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (binder) Commit(context.Context, []stream.Position) error { return nil }
