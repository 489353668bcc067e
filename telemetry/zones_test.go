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
	"github.com/fleetstream/fleetstream/window"
)

func TestZoneDemandHandComputed(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(time.Minute))
	require.NoError(t, err)
	res := streamtest.Collect(zones.Results())

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
	h.RunUntilDone()

	zone := telemetry.EncodeGeohash(telemetry.Point{Lat: x, Lon: lon0}, 6)
	cell, err := telemetry.DecodeGeohash(zone)
	require.NoError(t, err)
	centre := telemetry.Location(cell.Center())
	var docs []telemetry.ZoneDemand
	for _, r := range res.Slice() {
		docs = append(docs, telemetry.ZoneDemandDoc(r))
	}
	require.Equal(t, []telemetry.ZoneDemand{{
		Zone: zone, Partition: 0, WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0,
		Events: 4, Cabs: 2, Pickups: 1, AvgSpeedKmh: (10 + 20 + 0) / 3.0, SpeedSamples: 3, Location: centre,
	}, {
		Zone: zone, Partition: 1, WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0,
		Events: 2, Cabs: 1, Pickups: 1, AvgSpeedKmh: 30, SpeedSamples: 1, Location: centre,
	}}, docs)

	// Partials of one zone from two partitions get two IDs.
	require.Equal(t, opensearch.WindowID("p", zone+"/0", t0, t0.Add(time.Minute)), docs[0].DocID("p"))
	require.NotEqual(t, docs[0].DocID("p"), docs[1].DocID("p"))

	var got, want map[string]any
	doc, err := docs[0].AppendJSON(nil)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(doc, &got))
	std, err := json.Marshal(docs[0])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(std, &want))
	require.Equal(t, want, got)
	require.Equal(t, float64(0), got["partition"])
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
