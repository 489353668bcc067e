package prom_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// BenchmarkObserve measures the hook once per batch: a batch of 12 partitions and 3 stateful
// operators. Its cost does not depend on the batch's record count.
func BenchmarkObserve(b *testing.B) {
	m, err := prom.New(prometheus.NewRegistry(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	lag := make(map[string]int64)
	for i := range 12 {
		lag[fmt.Sprintf("telemetry/%d", i)] = int64(i * 100)
	}
	st := stream.BatchStats{
		InputRecords: 100_000, InputBytes: 20_000_000, Attempts: 1, Partitions: 12,
		ProcessingTime: 40 * time.Millisecond, OutputTime: 200 * time.Millisecond, SchedulingDelay: time.Millisecond,
		Watermark: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		State:     []stream.OperatorState{{Operator: "cab-stats", Entries: 5000}, {Operator: "zones", Entries: 300}, {Operator: "alerts", Entries: 5000}},
		Source:    stream.SourceStats{Records: 100_000, Bytes: 20_000_000, Lag: lag},
	}
	b.ReportAllocs()
	for b.Loop() {
		st.Batch++
		st.Source.DeadLetters++
		m.Observe(st)
	}
}

// BenchmarkPipeline is the A/B: one offline batch of 10,000 records through Map -> Filter,
// without and with the metrics hook. The difference is the per-batch cost of Observe.
func BenchmarkPipeline(b *testing.B) {
	vals := make([]int, 10_000)
	for i := range vals {
		vals[i] = i
	}
	for _, withMetrics := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", withMetrics), func(b *testing.B) {
			var opts []stream.Option
			if withMetrics {
				m, err := prom.New(prometheus.NewRegistry(), "bench")
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, stream.WithStatsHook(m.Observe))
			}
			h := streamtest.New(b, time.Second, opts...)
			q, src := streamtest.NewQueue[int](h)
			n := 0
			even := stream.Map(src, func(v int) int { return v * 3 }).Filter(func(v int) bool { return v%2 == 0 })
			stream.ForEachBatch(even, func(_ context.Context, _ stream.BatchInfo, vs []int) error { n += len(vs); return nil })
			b.ReportAllocs()
			for b.Loop() {
				q.AddValues(vals...)
				h.Step()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vals)), "ns/record")
		})
	}
}
