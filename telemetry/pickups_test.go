// Tests of the time to pickup (TimeToPickup).

package telemetry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

// wantPickups is the independent computation of TimeToPickup's rows for the requests derived
// from evs (fleetsim.Requests): each assigned request with its trip's pickup, but for trips
// that begin with their cab's first event (which the tracker cannot tell from the middle of
// a trip), by request ID.
func wantPickups(evs []telemetry.Event) map[string]telemetry.RidePickup {
	first := map[string]time.Time{}
	for _, e := range evs {
		if f, ok := first[e.CabID]; !ok || e.Time.Before(f) {
			first[e.CabID] = e.Time
		}
	}
	pickups := fleetsim.Pickups(evs)
	want := map[string]telemetry.RidePickup{}
	for _, r := range fleetsim.Requests(evs) {
		if r.Status != telemetry.RequestAssigned {
			continue
		}
		for _, p := range pickups {
			if p.CabID == r.CabID && p.At == r.Point() && !p.Time.Before(r.Time) && p.Time.Sub(r.Time) < 5*time.Minute {
				if p.Time.Equal(first[p.CabID]) {
					break
				}
				want[r.RequestID] = telemetry.RidePickup{RequestID: r.RequestID, CabID: r.CabID, TripID: p.TripID,
					AssignedAt: r.Time, PickupAt: p.Time, Timestamp: p.Time, WaitS: p.Time.Sub(r.Time).Seconds(),
					Location: telemetry.Location(p.At)}
				break
			}
		}
	}
	return want
}

// TestTimeToPickup: telemetry (3 partitions, keyed by cab) and ride requests (2 partitions)
// from two sources meet in the join's repartition by cab; every assigned request gets one row
// with its trip's pickup, as the independent computation says, and nothing is late.
func TestTimeToPickup(t *testing.T) {
	sim, err := fleetsim.New(fleetsim.Config{Seed: 9, Cabs: 25})
	require.NoError(t, err)
	var evs []telemetry.Event
	for range 50_000 {
		evs = append(evs, sim.Next().Event)
	}
	reqs := fleetsim.Requests(evs)
	want := wantPickups(evs)
	require.Greater(t, len(want), 20)

	h := streamtest.New(t, time.Second)
	qe, events := streamtest.NewQueue[telemetry.Event](h)
	qe.SetPartitions(3)
	qr, requests := streamtest.NewQueue[telemetry.Request](h)
	qr.SetPartitions(2)
	tr, err := telemetry.Track(events)
	require.NoError(t, err)
	ex := streamtest.NewExchange(streamtest.NewExchangeLog[telemetry.PickupSide](4))
	h.AddExchange(ex)
	out, rows, err := telemetry.TimeToPickup(requests, tr.Events(), ex, 15*time.Minute)
	require.NoError(t, err)
	got, late := streamtest.Collect(rows), streamtest.Collect(out.Late())

	feedBoth(sim, qe, qr, evs, reqs)
	h.RunUntilDone()

	require.Empty(t, late.Slice())
	byID := map[string]telemetry.RidePickup{}
	for _, p := range got.Slice() {
		_, dup := byID[p.RequestID]
		require.False(t, dup, "two rows for %s", p.RequestID)
		byID[p.RequestID] = p
		_, err := p.AppendJSON(nil)
		require.NoError(t, err)
	}
	require.Equal(t, want, byID)
}
