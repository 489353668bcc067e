// BenchmarkStatePerKey: the fleet job's heap per idle cab.

package telemetry_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// BenchmarkStatePerKey measures the memory the bundled job's state holds per
// idle cab: the graph of examples/fleetpipeline (tracker, one-minute cab stats,
// five-minute zone demand, 30 s grace and out-of-orderness) reads one event
// from each of 1,000,000 distinct cabs, then one later event per partition
// closes every window. The tracker keeps each cab (WithSilentAfter is one hour here,
// so that no device-silent alert forgets them) and no window is open: what
// the heap holds beyond the empty pipeline, after GC, divided by the number of
// cabs, is the per-key cost (bytes/key; runtime.ReadMemStats HeapAlloc).
//
// Run it alone, once: go test -run='^$' -bench=StatePerKey -benchtime=1x ./telemetry
func BenchmarkStatePerKey(b *testing.B) {
	const (
		cabs  = 1_000_000
		parts = 6
		chunk = 10_000
	)
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()

		base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		clk := streamtest.NewClock(base) // event times must not run far ahead of the pipeline clock
		p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithBuffer(chunk, 0),
			stream.WithMaxOutOfOrderness(30*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		var in *stream.Input[telemetry.Event]
		events := stream.From(p, stream.Source[telemetry.Event](binder{&in}))
		grace := telemetry.WithWindowOptions(window.WithGrace(30 * time.Second))
		tr, err := telemetry.Track(events, telemetry.WithSilentAfter(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		stats, err := telemetry.CabStatsStream(events, window.Tumbling(time.Minute), grace)
		if err != nil {
			b.Fatal(err)
		}
		zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(5*time.Minute), grace)
		if err != nil {
			b.Fatal(err)
		}
		var cabDocs, zoneEvents, alerts int64
		stream.ForEachBatch(stats.Results(), func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, telemetry.CabStats]) error {
			cabDocs += int64(len(rs))
			return nil
		})
		stream.ForEachBatch(zones.Results(), func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, telemetry.ZoneDemand]) error {
			for _, r := range rs {
				zoneEvents += r.Value.Events
			}
			return nil
		})
		stream.ForEachBatch(tr.Alerts(), func(_ context.Context, _ stream.BatchInfo, as []telemetry.Alert) error {
			alerts += int64(len(as))
			return nil
		})
		ctx := context.Background()
		step := func() {
			clk.Advance(time.Second)
			if _, err := p.Step(ctx); err != nil {
				b.Fatal(err)
			}
		}

		recs := make([]stream.Record[telemetry.Event], chunk)
		var off [parts]int64
		for n := 0; n < cabs; n += chunk {
			for i := range recs {
				id := n + i
				e := telemetry.Event{
					CabID: "CAB-" + strconv.Itoa(1_000_000+id), // 11 bytes, like a real fleet's ids
					Time:  base.Add(time.Duration(id) * 50 * time.Microsecond),
					Lat:   41.10 + float64(id%1000)*0.0001, Lon: -8.65 + float64(id/1000%1000)*0.0001,
					Status: telemetry.StatusHired, SpeedKmh: 30, Has: telemetry.HasSpeed,
				}
				part := int32(id % parts)
				recs[i] = stream.Record[telemetry.Event]{Value: e, EventTime: e.Time, Partition: part, Offset: off[part]}
				off[part]++
			}
			if in.TryPushBatch(recs) != chunk {
				b.Fatal("buffer full")
			}
			step()
		}
		// One event per partition, six minutes on, closes every window.
		late := base.Add(6 * time.Minute)
		for part := range int32(parts) {
			e := telemetry.Event{CabID: "TICK-" + strconv.Itoa(int(part)), Time: late, Lat: 41, Lon: -8}
			if in.TryPushBatch([]stream.Record[telemetry.Event]{{Value: e, EventTime: late, Partition: part, Offset: off[part]}}) != 1 {
				b.Fatal("buffer full")
			}
		}
		step()
		step()
		clear(recs)

		b.StopTimer()
		if cabDocs != cabs || zoneEvents != cabs || alerts != 0 {
			b.Fatalf("cab stats %d, zone events %d, alerts %d: want %d, %d, 0", cabDocs, zoneEvents, alerts, cabs, cabs)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/cabs, "bytes/key")
		runtime.KeepAlive(p)
		b.StartTimer()
	}
	b.ReportMetric(0, "ns/op")
}
