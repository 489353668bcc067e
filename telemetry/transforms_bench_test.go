// Benchmarks of the ready-made transforms in a pipeline.

package telemetry_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// BenchmarkCabStats measures cab stats end to end per event: buffering, the
// partition split, the one-minute tumbling window over 10,000 cabs, results
// and documents. Each batch holds one event per cab, 15 s of event time
// after the previous batch, so every fourth batch closes a window per cab.
func BenchmarkCabStats(b *testing.B) { benchCabStats(b, 10_000, 15*time.Second) }

// BenchmarkCabStatsDense is BenchmarkCabStats with 1,000 cabs reporting every
// 2 s: 30 points per cab and window, about what the fleet job's demo data
// holds (547,304 events in 20,962 cab-minutes: 26).
func BenchmarkCabStatsDense(b *testing.B) { benchCabStats(b, 1_000, 2*time.Second) }

func benchCabStats(b *testing.B, cabs int, step time.Duration) {
	clk := streamtest.NewClock(benchBase) // the pipeline clock follows event time
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithBuffer(cabs, 0))
	if err != nil {
		b.Fatal(err)
	}
	var in *stream.Input[telemetry.Event]
	src := stream.From(p, stream.Source[telemetry.Event](binder{&in}))
	stats, err := telemetry.CabStatsStream(src, window.Tumbling(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	var docs, events int64
	stream.ForEachBatch(stats.Results(), func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, telemetry.CabStats]) error {
		for _, r := range rs {
			d := telemetry.CabStatsDoc(r)
			docs++
			events += d.Events
		}
		return nil
	})
	recs, fill := benchInputStep(cabs, step)
	ctx := context.Background()
	batch := 0
	b.ReportAllocs()
	for b.Loop() {
		fill(batch)
		batch++
		if in.TryPushBatch(recs) != cabs {
			b.Fatal("buffer full")
		}
		clk.Advance(step)
		if _, err := p.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*cabs), "ns/event")
	b.ReportMetric(0, "ns/op")
	if b.N > int(2*time.Minute/step) && docs == 0 {
		b.Fatal("no window closed")
	}
}

// BenchmarkTrackAndZones measures the cab tracker (no geofences) and zone
// demand behind it over the same 10,000 cabs, per event.
func BenchmarkTrackAndZones(b *testing.B) {
	const cabs = 10_000
	clk := streamtest.NewClock(benchBase) // the pipeline clock follows event time
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithBuffer(cabs, 0))
	if err != nil {
		b.Fatal(err)
	}
	var in *stream.Input[telemetry.Event]
	src := stream.From(p, stream.Source[telemetry.Event](binder{&in}))
	tr, err := telemetry.Track(src)
	if err != nil {
		b.Fatal(err)
	}
	zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	var docs int
	stream.ForEachBatch(zones.Results(), func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, telemetry.ZoneDemand]) error {
		docs += len(rs)
		return nil
	})
	stream.ForEachBatch(tr.Alerts(), func(context.Context, stream.BatchInfo, []telemetry.Alert) error { return nil })
	recs, fill := benchInput(cabs)
	ctx := context.Background()
	batch := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		fill(batch)
		batch++
		if in.TryPushBatch(recs) != cabs {
			b.Fatal("buffer full")
		}
		clk.Advance(15 * time.Second)
		if _, err := p.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*cabs), "cpu-ns/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*cabs), "ns/event")
	b.ReportMetric(0, "ns/op")
	if b.N > 8 && docs == 0 {
		b.Fatal("no window closed")
	}
}

// benchInput returns one record per cab and a function that moves every cab
// 15 s and about 110 m on for batch n (a few ns per event).
func benchInput(cabs int) ([]stream.Record[telemetry.Event], func(n int)) {
	return benchInputStep(cabs, 15*time.Second)
}

// benchInputStep is benchInput with batch n at n*step.
func benchInputStep(cabs int, step time.Duration) ([]stream.Record[telemetry.Event], func(n int)) {
	recs := make([]stream.Record[telemetry.Event], cabs)
	for i := range recs {
		e := telemetry.Event{
			CabID: "CAB-" + strconv.Itoa(i), Lat: 41.10 + float64(i%100)*0.001, Lon: -8.65 + float64(i/100)*0.001,
			Status: telemetry.StatusHired, SpeedKmh: 30 + float64(i%20), Has: telemetry.HasSpeed,
		}
		if i%3 == 0 {
			e.Has = 0 // derive the speed from the path
		}
		recs[i] = stream.Record[telemetry.Event]{Value: e, Partition: int32(i % 6)}
	}
	var off int64
	return recs, func(n int) {
		t0 := benchBase.Add(time.Duration(n) * step)
		for i := range recs {
			r := &recs[i]
			r.EventTime = t0.Add(time.Duration(i) * time.Millisecond)
			r.Value.Time = r.EventTime
			r.Value.Lat += 0.001
			r.Offset = off
			off++
		}
	}
}

// benchBase is the event time of the first benchmark batch. Pipelines of the
// benchmarks run their clock along with it: event times far ahead of the
// clock would not move watermarks (stream.WithMaxFutureEventTime).
var benchBase = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

type binder struct {
	in **stream.Input[telemetry.Event]
}

func (e binder) Bind(in *stream.Input[telemetry.Event]) { *e.in = in }
func (binder) Run(ctx context.Context, _ *stream.Input[telemetry.Event]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (binder) Commit(context.Context, []stream.Position) error { return nil }

// BenchmarkZoneDemandRepartition: zone demand of 10,000 cabs over 6 partitions through an
// in-memory repartition, per event, in one phase (KeyByZone, a sample per event through the
// exchange, ZoneDemandByZone) and in two (ZoneDemandLocal, a partial per zone, window and
// partition through the exchange, ZoneDemandMerge). Each batch moves every cab 15 s on;
// the windows are a minute. The exchange is the in-memory log, so the figures leave out what
// Kafka costs per record, which two phases save too.
func BenchmarkZoneDemandRepartition(b *testing.B) {
	for _, two := range []bool{false, true} {
		name := "one-phase"
		if two {
			name = "two-phase"
		}
		b.Run(name, func(b *testing.B) {
			const cabs = 10_000
			h := streamtest.New(b, 15*time.Second, stream.WithBuffer(cabs, 0), stream.WithIdleTimeout(0))
			q, src := streamtest.NewQueue[telemetry.Event](h)
			q.SetPartitions(6)
			tr, err := telemetry.Track(src)
			if err != nil {
				b.Fatal(err)
			}
			w := window.Tumbling(time.Minute)
			var results *stream.Stream[window.Result[string, telemetry.ZoneDemand]]
			var sent func() int
			if two {
				local, err := telemetry.ZoneDemandLocal(tr.Events(), w)
				if err != nil {
					b.Fatal(err)
				}
				log := streamtest.NewExchangeLog[telemetry.ZonePartial](6)
				ex := streamtest.NewExchange(log)
				h.AddExchange(ex)
				merged, err := telemetry.ZoneDemandMerge(stream.RepartitionByTime(telemetry.ZonePartials(local), "zones", ex, telemetry.ZonePartialHash, stream.WithRevisions()), w)
				if err != nil {
					b.Fatal(err)
				}
				results, sent = merged.Results(), func() int { return countValues(log, 6) }
			} else {
				keyed, err := telemetry.KeyByZone(tr.Events(), 0)
				if err != nil {
					b.Fatal(err)
				}
				log := streamtest.NewExchangeLog[stream.Pair[string, telemetry.ZoneSample]](6)
				_, shuffled := streamtest.NewRepartition(h, keyed, "zones", log)
				byZone, err := telemetry.ZoneDemandByZone(shuffled, w)
				if err != nil {
					b.Fatal(err)
				}
				results, sent = byZone.Results(), func() int { return countValues(log, 6) }
			}
			var docs int
			stream.ForEachBatch(results, func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, telemetry.ZoneDemand]) error {
				docs += len(rs)
				return nil
			})
			recs, _ := benchInput(cabs)
			var off [6]int64
			batch := 0
			b.ReportAllocs()
			for b.Loop() {
				t0 := h.Clock.Now()
				for i := range recs {
					r := &recs[i]
					r.EventTime = t0.Add(time.Duration(i) * time.Millisecond)
					r.Value.Time = r.EventTime
					r.Value.Lat += 0.001 * float64(batch%2*2-1) // back and forth: the cabs stay in a few zones
					r.Offset = off[r.Partition]
					off[r.Partition]++
				}
				batch++
				q.Add(recs...)
				h.Step()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*cabs), "ns/event")
			b.ReportMetric(float64(sent())/float64(b.N*cabs), "exchanged/event")
			b.ReportMetric(0, "ns/op")
			if b.N > 8 && docs == 0 {
				b.Fatal("no window closed")
			}
		})
	}
}
