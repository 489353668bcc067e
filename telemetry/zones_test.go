// Tests of zone demand and its document.

package telemetry_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
	"github.com/fleetstream/fleetstream/window"
)

// zoneInput queues the hand-computed input: one cell, two partitions.
func zoneInput(q *streamtest.Queue[telemetry.Event]) {
	x := 41.1579 // every event but the jump is in x's cell
	on := func(p int32, e telemetry.Event) stream.Record[telemetry.Event] {
		r := rec(e)
		r.Partition = p
		return r
	}
	q.Add(
		on(0, ev("P", 0, x, 10, avail)),
		on(0, ev("Q", 5, x, 20, hired)),
		on(1, ev("R", 5, x, -1, avail)),
	)
	q.Add(
		on(0, ev("P", 10, x, 0, hired)),  // pickup
		on(0, ev("Q", 5, x, 20, hired)),  // duplicate: left out
		on(1, ev("R", 12, x, 30, hired)), // pickup
	)
	q.Add(
		on(0, ev("P", 20, x, -1, hired)),
		on(0, ev("Q", 25, x+1, 20, hired)), // GPS jump: left out
	)
	q.End()
}

// TestZoneDemandPerPartition: without a repartition, each partition emits
// its partial of the zone, and the partials share one document ID (the
// reason the fleet job repartitions by zone).
func TestZoneDemandPerPartition(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(time.Minute))
	require.NoError(t, err)
	res := streamtest.Collect(zones.Results())
	zoneInput(q)
	h.RunUntilDone()

	zone, centre := zoneCell(t)
	var docs []telemetry.ZoneDemand
	var parts []int32
	for _, r := range res.Slice() {
		docs = append(docs, telemetry.ZoneDemandDoc(r))
		parts = append(parts, r.Partition)
	}
	require.Equal(t, []int32{0, 1}, parts)
	require.Equal(t, []telemetry.ZoneDemand{{
		Zone: zone, WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0,
		Events: 4, Cabs: 2, Pickups: 1, AvgSpeedKmh: (10 + 20 + 0) / 3.0, SpeedSamples: 3, SpeedSumKmh: 30, Location: centre,
	}, {
		Zone: zone, WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0,
		Events: 2, Cabs: 1, Pickups: 1, AvgSpeedKmh: 30, SpeedSamples: 1, SpeedSumKmh: 30, Location: centre,
	}}, docs)
	require.Equal(t, docs[0].DocID("p"), docs[1].DocID("p"))
}

// TestZoneDemandRepartitioned: KeyByZone, a repartition (through the binary
// codec, as the Kafka exchange carries it) and ZoneDemandByZone give one
// document per zone and window with the global figures.
func TestZoneDemandRepartitioned(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	keyed, err := telemetry.KeyByZone(tr.Events(), 0)
	require.NoError(t, err)
	log := streamtest.NewExchangeLog[stream.Pair[string, telemetry.ZoneSample]](3)
	_, shuffled := streamtest.NewRepartition(h, keyed, "zones", log)
	codec := stream.PairCodec[string, telemetry.ZoneSample](stream.StringCodec{}, telemetry.ZoneSampleCodec{})
	var buf []byte
	decoded := stream.Map(shuffled, func(p stream.Pair[string, telemetry.ZoneSample]) stream.Pair[string, telemetry.ZoneSample] {
		var err error
		buf, err = codec.Append(buf[:0], p)
		require.NoError(t, err)
		back, err := codec.Decode(buf)
		require.NoError(t, err)
		return back
	})
	byZone, err := telemetry.ZoneDemandByZone(decoded, window.Tumbling(time.Minute))
	require.NoError(t, err)
	res := streamtest.Collect(byZone.Results())
	zoneInput(q)
	h.RunUntilDone()

	zone, centre := zoneCell(t)
	want := telemetry.ZoneDemand{
		Zone: zone, WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0,
		Events: 6, Cabs: 3, Pickups: 2, AvgSpeedKmh: (10 + 20 + 0 + 30) / 4.0, SpeedSamples: 4, SpeedSumKmh: 60, Location: centre,
	}
	rs := res.Slice()
	require.Len(t, rs, 1)
	require.True(t, rs[0].Final)
	require.Equal(t, want, telemetry.ZoneDemandDoc(rs[0]))
	// Duplicates and jumps do not travel: 6 events sent, not 8.
	sent := 0
	for p := range int32(3) {
		for _, r := range log.Records(p) {
			if !r.Mark {
				sent++
			}
		}
	}
	require.Equal(t, 6, sent)

	doc := telemetry.ZoneDemandDoc(res.Slice()[0])
	require.Equal(t, zone, doc.DocKey())
	require.Equal(t, opensearch.WindowID("p", zone, t0, t0.Add(time.Minute)), doc.DocID("p"))
	var got, std map[string]any
	b, err := doc.AppendJSON(nil)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &got))
	sb, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(sb, &std))
	require.Equal(t, std, got)
	require.NotContains(t, got, "partition")
	require.Equal(t, float64(4), got["speed_samples"])
	require.Equal(t, float64(60), got["speed_sum_kmh"])
}

func TestZoneDemandOptions(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	for _, p := range []int{-1, 13} {
		_, err := telemetry.KeyByZone(tr.Events(), p)
		require.ErrorIs(t, err, telemetry.ErrInvalidOption)
	}
	keyed, err := telemetry.KeyByZone(tr.Events(), 5)
	require.NoError(t, err)
	_, err = telemetry.ZoneDemandByZone(keyed, window.Tumbling(time.Minute), telemetry.WithGeohashPrecision(5))
	require.ErrorIs(t, err, telemetry.ErrInvalidOption)
	require.Panics(t, func() { telemetry.ZoneOf(0) })

	zoneOf := telemetry.ZoneOf(7)
	p := telemetry.Tracked{Event: ev("P", 0, 41.1579, -1, none)}
	require.Equal(t, telemetry.EncodeGeohash(p.Point(), 7), zoneOf(p))
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = zoneOf(p) }))
}

func zoneCell(t *testing.T) (string, telemetry.Location) {
	zone := telemetry.EncodeGeohash(telemetry.Point{Lat: 41.1579, Lon: lon0}, 6)
	cell, err := telemetry.DecodeGeohash(zone)
	require.NoError(t, err)
	return zone, telemetry.Location(cell.Center())
}

func TestZoneDemandManyCabsAndMerge(t *testing.T) {
	agg := telemetry.ZoneDemandAgg{}
	a, b := agg.Zero(), agg.Zero()
	for i := range 40 {
		e := telemetry.Tracked{Event: ev(string(rune('A'+i%26))+string(rune('a'+i/26)), float64(i), 41.1, -1, hired)}
		if i < 25 {
			a = agg.Add(a, e)
		} else {
			b = agg.Add(b, e)
		}
		a = agg.Add(a, e) // every cab twice in a
	}
	m := agg.Merge(a, b)
	require.EqualValues(t, 40, agg.Result(m).Cabs)
	require.EqualValues(t, 25+40+15, agg.Result(m).Events)
	require.EqualValues(t, 40, agg.Result(a).Cabs)
	require.EqualValues(t, 15, agg.Result(b).Cabs)
}

// TestZoneDemandRedeliveriesCountOnce: a late event redelivered right after
// itself (the simulator's duplicates of out-of-order events, as at-least-once
// devices send them) is a duplicate, so zone demand over the simulator's
// stream equals zone demand over the same stream without the copies, for
// several seeds. Before, only copies of a cab's latest event were duplicates,
// and the copies of late events were counted twice.
func TestZoneDemandRedeliveriesCountOnce(t *testing.T) {
	run := func(es []telemetry.Event) []telemetry.ZoneDemand {
		h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(30*time.Second))
		q, s := streamtest.NewQueue[telemetry.Event](h)
		tr, err := telemetry.Track(s)
		require.NoError(t, err)
		zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(time.Minute))
		require.NoError(t, err)
		res := streamtest.Collect(zones.Results())
		for i := 0; i < len(es); i += 500 {
			q.Add(recs(es[i:min(i+500, len(es))]...)...)
		}
		q.End()
		h.RunUntilDone()
		var docs []telemetry.ZoneDemand
		for _, r := range res.Slice() {
			docs = append(docs, telemetry.ZoneDemandDoc(r))
		}
		return docs
	}
	for seed := uint64(1); seed <= 4; seed++ {
		sim, err := fleetsim.New(fleetsim.Config{Seed: seed, Cabs: 20, Faults: fleetsim.Faults{OutOfOrder: 0.1, Duplicate: 0.1, GPSJump: 0.01}})
		require.NoError(t, err)
		var all, once []telemetry.Event
		lateCopies := 0
		for range 6000 {
			m := sim.Next()
			all = append(all, m.Event)
			if m.Faults&fleetsim.FaultDuplicate == 0 {
				once = append(once, m.Event)
			} else if m.Faults&fleetsim.FaultLate != 0 {
				lateCopies++
			}
		}
		require.Positive(t, lateCopies, "seed %d: the stream redelivers late events", seed)
		require.Equal(t, run(once), run(all), "seed %d", seed)
	}
}
