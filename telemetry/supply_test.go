// Tests of the zone supply: SupplyFromCabs, SupplyFromRequests and ZoneSupplyByZone.

package telemetry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
	"github.com/fleetstream/fleetstream/window"
)

type supplyPair = stream.Pair[string, telemetry.SupplyObs]

// TestZoneSupplyRepartitioned: telemetry from one source (keyed by cab, 3 partitions) and ride
// requests from another (2 partitions) meet in a repartition by zone; each zone and window
// gets one document whose figures equal a brute-force count over the inputs, and none is late.
func TestZoneSupplyRepartitioned(t *testing.T) {
	sim, err := fleetsim.New(fleetsim.Config{Seed: 5, Cabs: 30})
	require.NoError(t, err)
	var evs []telemetry.Event
	for range 60_000 {
		evs = append(evs, sim.Next().Event)
	}
	reqs := fleetsim.Requests(evs)
	require.NotEmpty(t, reqs)
	const win = 5 * time.Minute

	h := streamtest.New(t, time.Second)
	qe, events := streamtest.NewQueue[telemetry.Event](h)
	qe.SetPartitions(3)
	qr, requests := streamtest.NewQueue[telemetry.Request](h)
	qr.SetPartitions(2)
	tr, err := telemetry.Track(events)
	require.NoError(t, err)
	cabs, err := telemetry.SupplyFromCabs(tr.Events(), 0, win)
	require.NoError(t, err)
	made, err := telemetry.SupplyFromRequests(requests, 0)
	require.NoError(t, err)
	log := streamtest.NewExchangeLog[supplyPair](4)
	_, byZone := streamtest.NewRepartition(h, cabs.Union(made), "supply", log)
	supply, err := telemetry.ZoneSupplyByZone(byZone, window.Tumbling(win))
	require.NoError(t, err)
	res, late := streamtest.Collect(supply.Results()), streamtest.Collect(supply.Late())

	feedBoth(sim, qe, qr, evs, reqs)
	h.RunUntilDone()
	require.Empty(t, late.Slice())

	// The brute force.
	type zw struct {
		zone  string
		start time.Time
	}
	type sets struct{ cabs, made, cancelled map[string]bool }
	want := map[zw]*sets{}
	get := func(k zw) *sets {
		if want[k] == nil {
			want[k] = &sets{map[string]bool{}, map[string]bool{}, map[string]bool{}}
		}
		return want[k]
	}
	for _, e := range evs {
		if e.Status == telemetry.StatusAvailable {
			get(zw{telemetry.EncodeGeohash(e.Point(), telemetry.DefaultGeohashPrecision), e.Time.Truncate(win)}).cabs[e.CabID] = true
		}
	}
	for _, r := range reqs {
		k := zw{telemetry.EncodeGeohash(r.Point(), telemetry.DefaultGeohashPrecision), r.Time.Truncate(win)}
		switch r.Status {
		case telemetry.RequestRequested:
			get(k).made[r.RequestID] = true
		case telemetry.RequestCancelled:
			get(k).cancelled[r.RequestID] = true
		}
	}
	got := map[zw]telemetry.ZoneSupply{}
	withRatio := 0
	for _, r := range res.Slice() {
		require.True(t, r.Final)
		d := telemetry.ZoneSupplyDoc(r)
		k := zw{d.Zone, d.WindowStart}
		_, dup := got[k]
		require.False(t, dup, "two documents for %v", k)
		got[k] = d
		if d.SupplyDemandRatio != nil {
			withRatio++
			require.InDelta(t, float64(d.AvailableCabs)/float64(d.Requests), *d.SupplyDemandRatio, 1e-12)
		}
		_, err := d.AppendJSON(nil)
		require.NoError(t, err)
	}
	require.Len(t, got, len(want))
	for k, w := range want {
		d := got[k]
		require.Equal(t, []int64{int64(len(w.made)), int64(len(w.cancelled)), int64(len(w.cabs))},
			[]int64{d.Requests, d.Cancelled, d.AvailableCabs}, "%v", k)
	}
	require.Positive(t, withRatio)

	// Few records travel: a cab's first event per zone and window, and the requests made or
	// cancelled; they survive the codec the Kafka exchange uses.
	codec := stream.PairCodec[string, telemetry.SupplyObs](stream.StringCodec{}, stream.JSONCodec[telemetry.SupplyObs]())
	sent, available := 0, 0
	for p := range int32(4) {
		for _, r := range log.Records(p) {
			if r.Mark {
				continue
			}
			sent++
			b, err := codec.Append(nil, r.Value)
			require.NoError(t, err)
			back, err := codec.Decode(b)
			require.NoError(t, err)
			require.Equal(t, r.Value, back)
		}
	}
	for _, e := range evs {
		if e.Status == telemetry.StatusAvailable {
			available++
		}
	}
	require.Less(t, sent, available/10, "available events %d, records sent %d", available, sent)
	t.Logf("%d zone windows, %d with requests, %d requests", len(got), withRatio, len(reqs))
}

// feedBoth queues the simulated events (partition by cab, 3 partitions) and the requests
// (2 partitions) in time order, a minute of event time per batch, and ends both queues.
func feedBoth(sim *fleetsim.Sim, qe *streamtest.Queue[telemetry.Event], qr *streamtest.Queue[telemetry.Request], evs []telemetry.Event, reqs []telemetry.Request) {
	cabPart := map[string]int32{}
	for i, id := range sim.CabIDs() {
		cabPart[id] = int32(i % 3)
	}
	ei, ri := 0, 0
	for until := evs[0].Time.Add(time.Minute); ei < len(evs) || ri < len(reqs); until = until.Add(time.Minute) {
		var be []stream.Record[telemetry.Event]
		for ; ei < len(evs) && evs[ei].Time.Before(until); ei++ {
			be = append(be, stream.Record[telemetry.Event]{Value: evs[ei], Partition: cabPart[evs[ei].CabID], EventTime: evs[ei].Time})
		}
		var br []stream.Record[telemetry.Request]
		for ; ri < len(reqs) && reqs[ri].Time.Before(until); ri++ {
			br = append(br, stream.Record[telemetry.Request]{Value: reqs[ri], Partition: int32(len(reqs[ri].RequestID) % 2), EventTime: reqs[ri].Time})
		}
		qe.Add(be...)
		qr.Add(br...)
	}
	qe.End()
	qr.End()
}

// TestSupplyFromCabsSlotsFollowWindows: the slots SupplyFromCabs deduplicates a cab's events in
// are the supply windows, aligned to the Unix epoch as windows are. A window size that does not
// divide the time from year 1 to 1970 (7 minutes does not) once gave slots that straddled two
// windows, and a cab available on both sides of a window boundary was left out of the second.
func TestSupplyFromCabsSlotsFollowWindows(t *testing.T) {
	for _, win := range []time.Duration{7 * time.Minute, 5 * time.Minute, 7 * time.Second} {
		h := streamtest.New(t, time.Second)
		q, s := streamtest.NewQueue[telemetry.Tracked](h)
		cabs, err := telemetry.SupplyFromCabs(s, 0, win)
		require.NoError(t, err)
		supply, err := telemetry.ZoneSupplyByZone(cabs, window.Tumbling(win))
		require.NoError(t, err)
		res := streamtest.Collect(supply.Results())

		edge := time.Unix(0, (t0.UnixNano()/int64(win)+1)*int64(win)).UTC() // a window boundary
		var in []stream.Record[telemetry.Tracked]
		for _, d := range []time.Duration{-time.Second, time.Second} {
			e := ev("A", 0, 41.15, 10, avail)
			e.Time = edge.Add(d)
			in = append(in, stream.Record[telemetry.Tracked]{Value: telemetry.Tracked{Event: e}, EventTime: e.Time})
		}
		q.Add(in...)
		q.End()
		h.RunUntilDone()

		got := map[time.Time]int64{}
		for _, r := range res.Slice() {
			if r.Final {
				got[r.Start] = telemetry.ZoneSupplyDoc(r).AvailableCabs
			}
		}
		require.Equal(t, map[time.Time]int64{edge.Add(-win): 1, edge: 1}, got, "window %v", win)
	}
}
