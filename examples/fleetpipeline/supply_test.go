package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestZoneSupplyAfterCrash: the replay writes telemetry (Porto and simulated cabs, no faults)
// and the ride requests of its trips to a second topic; fleetpipeline -requests-topic reads
// both, is killed (SIGKILL) once every request is committed, and a second run finishes.
// The zone-supply documents then equal an independent count over the replay's own events
// and requests: per geohash-6 cell and 5-minute window, the requests made and cancelled, the
// distinct cabs seen available, and their ratio; one document per zone and window. And the
// ride-pickups documents give each assigned request's time to pickup, as the independent
// computation does.
func TestZoneSupplyAfterCrash(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "supply")
	requests := testenv.UniqueName(t, "supply-requests")
	r := newRun(t, s, topic, "supply")
	ensureTopic(t, s, requests)
	o := feed.Options{Sources: "porto,sim", Porto: portoCSV(t), SimEvents: 60_000, SimCabs: 200, Seed: 1}
	start(t, "replay", replayBin, "-brokers", s.brokers, "-topic", topic, "-porto", o.Porto, "-quiet",
		"-source", o.Sources, "-sim-events", fmt.Sprint(o.SimEvents), "-sim-cabs", fmt.Sprint(o.SimCabs),
		"-seed", fmt.Sprint(o.Seed), "-faults=false", "-requests-topic", requests).succeed(t, time.Minute)

	// The independent count's inputs: the replay's messages and their requests.
	msgs, err := feed.Messages(o, io.Discard)
	require.NoError(t, err)
	evs := make([]telemetry.Event, 0, len(msgs))
	for _, m := range msgs {
		evs = append(evs, m.Event)
	}
	reqs := fleetsim.Requests(evs)

	// The crash comes once every request is committed, so the second run has none to read
	// (its request partitions resume at their end, yet must end the repartition).
	args := r.args(s, "-requests-topic", requests)
	p := start(t, "fleetpipeline (crash)", pipelineBin, append(args, "-exit-when-idle", "0")...)
	waitFor(t, 2*time.Minute, 50*time.Millisecond, "every request committed", func() bool {
		require.False(t, p.exited(), "fleetpipeline ended before the crash:\n%s", tail(p.out.String(), 3000))
		_, _, sum := groupOffsets(t, s, requests, r.group)
		return sum == int64(len(reqs))
	})
	p.kill(t)
	out := start(t, "fleetpipeline (last)", pipelineBin, args...).succeed(t, 3*time.Minute)
	require.Contains(t, out, "zone-supply created")

	// The independent count.
	const win = 5 * time.Minute
	type counts struct{ made, cancelled, cabs map[string]bool }
	want := map[string]*counts{}
	get := func(p telemetry.Point, at time.Time) *counts {
		z := telemetry.ZoneSupply{Zone: telemetry.EncodeGeohash(p, telemetry.DefaultGeohashPrecision),
			WindowStart: at.Truncate(win), WindowEnd: at.Truncate(win).Add(win)}
		id := z.DocID(r.name)
		if want[id] == nil {
			want[id] = &counts{map[string]bool{}, map[string]bool{}, map[string]bool{}}
		}
		return want[id]
	}
	for _, e := range evs {
		if e.Status == telemetry.StatusAvailable {
			get(e.Point(), e.Time).cabs[e.CabID] = true
		}
	}
	for _, q := range reqs {
		switch q.Status {
		case telemetry.RequestRequested:
			get(q.Point(), q.Time).made[q.RequestID] = true
		case telemetry.RequestCancelled:
			get(q.Point(), q.Time).cancelled[q.RequestID] = true
		}
	}

	got := byID(t, newOS(t, s).docs(r.index("zone-supply")))
	require.Len(t, got, len(want), "zone-supply documents")
	withRequests := 0
	for id, w := range want {
		d, ok := got[id]
		require.True(t, ok, "no document %s", id)
		var z telemetry.ZoneSupply
		require.NoError(t, json.Unmarshal(d.Source, &z))
		require.Equal(t, []int64{int64(len(w.made)), int64(len(w.cancelled)), int64(len(w.cabs))},
			[]int64{z.Requests, z.Cancelled, z.AvailableCabs}, "%s: %s", id, d.Source)
		if len(w.made) > 0 {
			withRequests++
			require.NotNil(t, z.SupplyDemandRatio, id)
			require.InDelta(t, float64(len(w.cabs))/float64(len(w.made)), *z.SupplyDemandRatio, 1e-9, id)
		} else {
			require.Nil(t, z.SupplyDemandRatio, id)
		}
	}
	require.Positive(t, withRequests)
	t.Logf("%d zone-supply documents, %d with requests, %d requests", len(got), withRequests, len(reqs))

	// Time to pickup: each assigned request with its trip's pickup (the trip's first event, at
	// the requested place), but for trips that begin with their cab's first event, which the
	// tracker cannot tell from the middle of a trip.
	first := map[string]time.Time{}
	for _, e := range evs {
		if f, ok := first[e.CabID]; !ok || e.Time.Before(f) {
			first[e.CabID] = e.Time
		}
	}
	type cabAt struct {
		cab string
		at  telemetry.Point
	}
	pickupAt := map[cabAt][]fleetsim.Pickup{}
	for _, pk := range fleetsim.Pickups(evs) {
		k := cabAt{pk.CabID, pk.At}
		pickupAt[k] = append(pickupAt[k], pk)
	}
	wantWait := map[string]float64{}
	for _, q := range reqs {
		if q.Status != telemetry.RequestAssigned {
			continue
		}
		for _, pk := range pickupAt[cabAt{q.CabID, q.Point()}] {
			if d := pk.Time.Sub(q.Time); d >= 0 && d < 5*time.Minute && !pk.Time.Equal(first[pk.CabID]) {
				wantWait[q.RequestID] = d.Seconds()
			}
		}
	}
	// The simulated cabs report all along, one trip at a time: their documents are exactly
	// those. The Porto sample has only the trips' points: a taxi is silent between trips, the
	// tracker forgets it (device silent), and its next trip starts with what is again its
	// first event, which no TripStart marks (nor do overlapping trips make sense of it); so
	// the Porto documents are only checked for sense, and are fewer.
	gotWait := map[string]float64{}
	portoWant, portoGot := 0, 0
	for id, d := range byID(t, newOS(t, s).docs(r.index("ride-pickups"))) {
		var p telemetry.RidePickup
		require.NoError(t, json.Unmarshal(d.Source, &p))
		require.Equal(t, id, p.RequestID)
		require.LessOrEqual(t, p.DistanceM, telemetry.MaxPickupDistanceM, id)
		require.True(t, p.WaitS >= 0 && p.WaitS <= (15*time.Minute).Seconds(), "%s: wait %v s", id, p.WaitS)
		if strings.HasPrefix(p.CabID, "PORTO-") {
			portoGot++
			continue
		}
		require.Zero(t, p.DistanceM, id)
		gotWait[id] = p.WaitS
	}
	for _, q := range reqs {
		if _, ok := wantWait[q.RequestID]; ok && q.Status == telemetry.RequestAssigned && strings.HasPrefix(q.CabID, "PORTO-") {
			portoWant++
			delete(wantWait, q.RequestID)
		}
	}
	require.NotEmpty(t, wantWait)
	require.Equal(t, wantWait, gotWait, "time to pickup by request of the simulated cabs")
	require.Positive(t, portoGot)
	require.LessOrEqual(t, portoGot, portoWant, "Porto requests with a pickup")
	t.Logf("ride-pickups documents: %d of simulated cabs, %d of Porto taxis (%d expected)", len(gotWait), portoGot, portoWant)
}

// TestExitWhenIdleEndsInputsTogether: one instance with -exit-when-idle follows the replay
// while it produces, and a second run reads the topics afterwards. The replay writes each
// part's ride requests after its telemetry, so the requests topic is quiet for longer than
// the idle time while telemetry still flows. Both inputs must end together: the zone-supply
// and ride-pickups documents of the run that followed equal those of the run that read
// everything at once. When each input ended by itself, the requests input ended while the
// telemetry flowed, and the run that followed missed the later requests: 633 of 1,207
// zone-supply documents and 37 of 106 ride pickups, with nothing counted as late.
func TestExitWhenIdleEndsInputsTogether(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "together")
	requests := testenv.UniqueName(t, "together-requests")
	ensureTopic(t, s, requests)
	live := newRun(t, s, topic, "together")
	ref := newRun(t, s, topic, "together-ref")
	produce := func(part ...string) *proc {
		args := []string{"-brokers", s.brokers, "-topic", topic, "-porto", portoCSV(t), "-quiet",
			"-source", "porto,sim", "-sim-events", fmt.Sprint(scaleOutSimEvents), "-requests-topic", requests}
		return start(t, "replay", replayBin, append(args, part...)...)
	}
	produce("-limit", fmt.Sprint(scaleOutFirstPart)).succeed(t, time.Minute)
	// 5 s of idle: longer than a pause of the replay on busy cores, shorter than the second
	// part's telemetry (about 17 s at 4,000 events/s) that comes before its requests.
	following := start(t, "fleetpipeline (following)", pipelineBin,
		append(live.args(s, "-requests-topic", requests), "-exit-when-idle", "5s")...)
	produce("-skip", fmt.Sprint(scaleOutFirstPart), "-rate", "4000").succeed(t, 2*time.Minute)
	out := following.succeed(t, 2*time.Minute)
	recs, _, _ := summary(t, out)
	require.EqualValues(t, scaleOutTotal, recs, "telemetry read by the run that followed")
	start(t, "fleetpipeline (reference)", pipelineBin, ref.args(s, "-requests-topic", requests)...).succeed(t, 2*time.Minute)

	cl := newOS(t, s)
	keys := map[string]func(map[string]any) string{
		"zone-supply":  func(d map[string]any) string { return fmt.Sprint(d["zone"], "@", d["window_start"]) },
		"ride-pickups": func(d map[string]any) string { return fmt.Sprint(d["request_id"]) },
	}
	for _, base := range []string{"zone-supply", "ride-pickups"} {
		want := byContent(t, cl, ref.index(base), keys[base])
		got := byContent(t, cl, live.index(base), keys[base])
		require.NotEmpty(t, want, base)
		t.Logf("%s: %d documents read at once, %d following the replay", base, len(want), len(got))
		requireSameContent(t, base, want, got)
	}
}
