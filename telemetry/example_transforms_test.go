// Runnable examples of the ready-made transforms.

package telemetry_test

import (
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// porto returns a cab's events every 15 s, north along a meridian, 0.001°
// (111 m) apart.
func porto(cab string, n int, speed float64, st telemetry.Status) []stream.Record[telemetry.Event] {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var rs []stream.Record[telemetry.Event]
	for i := range n {
		e := telemetry.Event{CabID: cab, Time: start.Add(time.Duration(i) * 15 * time.Second),
			Lat: float64(41150+i) / 1000, Lon: -8.61, SpeedKmh: speed, Status: st, Has: telemetry.HasSpeed}
		rs = append(rs, stream.Record[telemetry.Event]{Value: e, EventTime: e.Time})
	}
	return rs
}

func ExampleCabStatsStream() {
	h := streamtest.New(nil, time.Second) // a pipeline on a manual clock
	q, events := streamtest.NewQueue[telemetry.Event](h)

	stats, err := telemetry.CabStatsStream(events, window.Tumbling(time.Minute))
	if err != nil {
		panic(err)
	}
	docs := stream.Map(stats.Results(), telemetry.CabStatsDoc)
	out := streamtest.Collect(docs)

	q.Add(porto("CAB-7", 5, 27, telemetry.StatusHired)...)
	q.End()
	h.RunUntilDone()
	for _, d := range out.Slice() {
		doc, err := d.AppendJSON(nil)
		if err != nil {
			panic(err)
		}
		fmt.Println(string(doc))
	}
	// Output:
	// {"cab_id":"CAB-7","window_start":"2026-11-25T10:00:00Z","window_end":"2026-11-25T10:01:00Z","@timestamp":"2026-11-25T10:00:00Z","events":4,"distance_km":0.3335852407006113,"avg_speed_kmh":27,"max_speed_kmh":27,"last_location":{"lat":41.153,"lon":-8.61},"last_status":"hired"}
	// {"cab_id":"CAB-7","window_start":"2026-11-25T10:01:00Z","window_end":"2026-11-25T10:02:00Z","@timestamp":"2026-11-25T10:01:00Z","events":1,"distance_km":0,"avg_speed_kmh":27,"max_speed_kmh":27,"last_location":{"lat":41.154,"lon":-8.61},"last_status":"hired"}
}

func ExampleTrack() {
	h := streamtest.New(nil, time.Second)
	q, events := streamtest.NewQueue[telemetry.Event](h)

	tr, err := telemetry.Track(events, telemetry.WithSpeedLimit(100, 30*time.Second), telemetry.WithSilentAfter(time.Minute))
	if err != nil {
		panic(err)
	}
	alerts := streamtest.Collect(tr.Alerts())

	q.Add(porto("CAB-7", 1, 60, telemetry.StatusHired)...)           // below the limit
	q.Add(porto("CAB-7", 6, 120, telemetry.StatusHired)[1:]...)      // 15 s to 75 s above it
	q.Add(porto("CAB-8", 12, 30, telemetry.StatusAvailable)[10:]...) // CAB-7 silent by 150 s
	q.End()
	h.RunUntilDone()
	for _, a := range alerts.Slice() {
		doc, err := a.AppendJSON(nil)
		if err != nil {
			panic(err)
		}
		fmt.Println(string(doc))
	}
	// Output:
	// {"alert_id":"CAB-7/speeding/2026-11-25T10:00:15Z","type":"speeding","cab_id":"CAB-7","@timestamp":"2026-11-25T10:00:15Z","location":{"lat":41.153,"lon":-8.61},"severity":"medium","details":{"value":120,"limit":100,"duration_s":30}}
	// {"alert_id":"CAB-7/device_silent/2026-11-25T10:01:15Z","type":"device_silent","cab_id":"CAB-7","@timestamp":"2026-11-25T10:01:15Z","location":{"lat":41.155,"lon":-8.61},"severity":"medium","details":{"limit":60,"duration_s":60}}
}

func ExampleZoneDemandStream() {
	h := streamtest.New(nil, time.Second)
	q, events := streamtest.NewQueue[telemetry.Event](h)

	tr, err := telemetry.Track(events)
	if err != nil {
		panic(err)
	}
	zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(5*time.Minute), telemetry.WithGeohashPrecision(5))
	if err != nil {
		panic(err)
	}
	out := streamtest.Collect(stream.Map(zones.Results(), telemetry.ZoneDemandDoc))

	q.Add(porto("CAB-7", 2, 0, telemetry.StatusAvailable)...)
	q.Add(porto("CAB-7", 4, 20, telemetry.StatusHired)[2:]...) // a pickup at 30 s
	q.Add(porto("CAB-8", 3, 40, telemetry.StatusHired)...)
	q.End()
	h.RunUntilDone()
	for _, z := range out.Slice() {
		doc, err := z.AppendJSON(nil)
		if err != nil {
			panic(err)
		}
		fmt.Println(string(doc))
		fmt.Println("id key:", z.DocKey())
	}
	// Output:
	// {"zone":"ez3fh","window_start":"2026-11-25T10:00:00Z","window_end":"2026-11-25T10:05:00Z","@timestamp":"2026-11-25T10:00:00Z","events":7,"cabs":2,"pickups":1,"avg_speed_kmh":22.857142857142858,"speed_samples":7,"speed_sum_kmh":160,"location":{"lat":41.15478515625,"lon":-8.59130859375}}
	// id key: ez3fh
}

// Zone demand over two partitions keyed by cab: a repartition by zone makes
// one document per zone and window. A Kafka job passes kafka's exchange
// with stream.PairCodec(stream.StringCodec{}, telemetry.ZoneSampleCodec{}).
func ExampleKeyByZone() {
	h := streamtest.New(nil, time.Second)
	q, events := streamtest.NewQueue[telemetry.Event](h)

	tr, err := telemetry.Track(events)
	if err != nil {
		panic(err)
	}
	keyed, err := telemetry.KeyByZone(tr.Events(), 5)
	if err != nil {
		panic(err)
	}
	_, byZone := streamtest.NewRepartition(h, keyed, "zones", streamtest.NewExchangeLog[stream.Pair[string, telemetry.ZoneSample]](2))
	zones, err := telemetry.ZoneDemandByZone(byZone, window.Tumbling(5*time.Minute))
	if err != nil {
		panic(err)
	}
	out := streamtest.Collect(stream.Map(zones.Results(), telemetry.ZoneDemandDoc))

	onPartition := func(p int32, rs []stream.Record[telemetry.Event]) []stream.Record[telemetry.Event] {
		for i := range rs {
			rs[i].Partition = p
		}
		return rs
	}
	q.Add(onPartition(0, porto("CAB-7", 2, 0, telemetry.StatusAvailable))...)
	q.Add(onPartition(0, porto("CAB-7", 4, 20, telemetry.StatusHired)[2:])...) // a pickup at 30 s
	q.Add(onPartition(1, porto("CAB-8", 3, 40, telemetry.StatusHired))...)
	q.End()
	h.RunUntilDone()
	for _, z := range out.Slice() {
		fmt.Printf("%s %s: %d events, %d cabs, %d pickups, %.1f km/h over %d readings\n",
			z.DocKey(), z.WindowStart.Format(time.TimeOnly), z.Events, z.Cabs, z.Pickups, z.AvgSpeedKmh, z.SpeedSamples)
	}
	// Output:
	// ez3fh 10:00:00: 7 events, 2 cabs, 1 pickups, 22.9 km/h over 7 readings
}
