// Tests of the ride requests derived from the cabs' trips.

package fleetsim_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

// simEvents returns the events of a faulty simulated run (duplicates and late events
// included), leaving out the malformed messages as a pipeline would.
func simEvents(t *testing.T, n int) []telemetry.Event {
	t.Helper()
	s, err := fleetsim.New(fleetsim.Config{Seed: 3, Cabs: 40, Faults: fleetsim.Faults{OutOfOrder: 0.01, Duplicate: 0.01, Malformed: 0.01}})
	require.NoError(t, err)
	var evs []telemetry.Event
	for range n {
		if m := s.Next(); !m.Malformed {
			evs = append(evs, m.Event)
		}
	}
	return evs
}

// TestRequestsFollowTrips: every trip has one request, made 1 to 5 minutes before its pickup
// at the pickup location and assigned to the trip's cab after a quarter of the wait; one trip
// in about five also has a request cancelled 2 minutes after it was made; every request is
// valid, the list is in time order, and it does not depend on the events' order.
func TestRequestsFollowTrips(t *testing.T) {
	evs := simEvents(t, 200_000)
	pickups := fleetsim.Pickups(evs)
	require.Greater(t, len(pickups), 100)
	reqs := fleetsim.Requests(evs)
	require.True(t, slices.IsSortedFunc(reqs, func(a, b telemetry.Request) int { return a.Time.Compare(b.Time) }))

	byID := map[string][]telemetry.Request{}
	for _, r := range reqs {
		require.NoError(t, r.Validate())
		byID[r.RequestID] = append(byID[r.RequestID], r)
	}
	byCab := map[string][]fleetsim.Pickup{}
	for _, p := range pickups {
		byCab[p.CabID] = append(byCab[p.CabID], p)
	}
	assigned, cancelled := 0, 0
	for id, rs := range byID {
		require.Len(t, rs, 2, id)
		made, then := rs[0], rs[1]
		require.Equal(t, telemetry.RequestRequested, made.Status, id)
		switch then.Status {
		case telemetry.RequestAssigned:
			assigned++
			// The cab has a pickup at the request's place, 1-5 minutes after it was made.
			i := slices.IndexFunc(byCab[then.CabID], func(p fleetsim.Pickup) bool {
				return p.At == made.Point() && p.Time.Sub(made.Time) >= time.Minute && p.Time.Sub(made.Time) < 5*time.Minute
			})
			require.GreaterOrEqual(t, i, 0, "%s: no pickup of %s after it", id, then.CabID)
			wait := byCab[then.CabID][i].Time.Sub(made.Time)
			require.Equal(t, wait/4, then.Time.Sub(made.Time), id)
		case telemetry.RequestCancelled:
			cancelled++
			require.Equal(t, 2*time.Minute, then.Time.Sub(made.Time), id)
			require.Empty(t, then.CabID)
		default:
			t.Fatalf("%s: status %q after requested", id, then.Status)
		}
	}
	require.Equal(t, len(pickups), assigned, "one assigned request per trip")
	require.InDelta(t, float64(len(pickups))/5, float64(cancelled), float64(len(pickups))/10+3, "one trip in five has a cancelled request")

	// The events in another order (a topic's partitions read in any interleaving): the same.
	rng := rand.New(rand.NewPCG(1, 1))
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	require.Equal(t, reqs, fleetsim.Requests(evs))
}
