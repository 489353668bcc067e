// Random-sequence tests of the cab tracker: replays from every committed
// position against one uninterrupted run.

package telemetry_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
)

// randomTrackInput is a random faulty stream of a few cabs on one partition,
// in random batches: duplicates, out-of-order events, GPS jumps, missing
// speeds and statuses, standing still, fence crossings and silences.
func randomTrackInput(seed uint64, n int) [][]stream.Record[telemetry.Event] {
	rng := rand.New(rand.NewPCG(seed, 1))
	cabs := []string{"A", "B", "C"}
	type cab struct {
		t        float64
		lat, lon float64
		last     telemetry.Event
		has      bool
		late     telemetry.Event // the last out-of-order event
		hasLate  bool
	}
	st := map[string]*cab{}
	for i, c := range cabs {
		st[c] = &cab{lat: 41.10 + 0.01*float64(i), lon: -8.61}
	}
	var all []stream.Record[telemetry.Event]
	for off := 0; off < n; off++ {
		id := cabs[rng.IntN(len(cabs))]
		c := st[id]
		var e telemetry.Event
		switch r := rng.IntN(20); {
		case r == 0 && c.has: // duplicate
			e = c.last
		case r == 1 && c.has: // out of order
			e = c.last
			e.Time = e.Time.Add(-time.Duration(1+rng.IntN(10)) * time.Second)
			e.Lat += 0.0001
			c.late, c.hasLate = e, true
		case r == 2 && c.hasLate: // the last out-of-order event again (a redelivery, or later)
			e = c.late
		default:
			switch r := rng.IntN(30); {
			case r == 0:
				c.t += 200 // silence
			case r < 3:
				c.t += 0.5
			default:
				c.t += float64(1 + rng.IntN(15))
			}
			switch r := rng.IntN(12); {
			case r < 4: // stand still
			case r == 4:
				c.lat += 0.05 // a trip across the fence's edge, or a jump
			case r == 5:
				c.lat -= 0.05
			default:
				c.lat += (rng.Float64() - 0.5) * 0.002
				c.lon += (rng.Float64() - 0.5) * 0.002
			}
			lat := c.lat
			if rng.IntN(25) == 0 {
				lat += 0.2 // one-off GPS jump
			}
			e = telemetry.Event{CabID: id, Time: t0.Add(time.Duration(c.t * float64(time.Second))), Lat: lat, Lon: c.lon}
			switch rng.IntN(5) {
			case 0:
				e.Status = telemetry.StatusAvailable
			case 1:
				e.Status = telemetry.StatusUnknown
			default:
				e.Status = telemetry.StatusHired
			}
			if e.Status == telemetry.StatusHired && rng.IntN(3) > 0 {
				e.TripID, e.Has = fmt.Sprintf("T%d", rng.IntN(3)), e.Has|telemetry.HasTripID
			}
			if rng.IntN(4) > 0 {
				speeds := []float64{0, 0.5, 20, 60, 95, 105, 130}
				e.SpeedKmh, e.Has = speeds[rng.IntN(len(speeds))], e.Has|telemetry.HasSpeed
			}
			c.last, c.has = e, true
		}
		all = append(all, stream.Record[telemetry.Event]{Value: e, Offset: int64(off), EventTime: e.Time})
	}
	var batches [][]stream.Record[telemetry.Event]
	for len(all) > 0 {
		k := min(len(all), 1+rng.IntN(6))
		batches = append(batches, all[:k])
		all = all[k:]
	}
	return batches
}

var randomTrackOpts = []telemetry.TrackOption{
	telemetry.WithSpeedLimit(100, 5*time.Second), telemetry.WithIdleAfter(20 * time.Second),
	telemetry.WithSilentAfter(60 * time.Second),
	telemetry.WithGeofences(telemetry.Geofence{Name: "north", Area: square(41.20, -8.61, 0.08)}),
}

type randomTrackOut struct {
	alerts map[string]telemetry.Alert
	events map[int64]telemetry.Tracked // by offset
	n      int                         // alerts written, copies included
}

func runRandomTrack(t *testing.T, batches [][]stream.Record[telemetry.Event], from int64, crashAfter int) (randomTrackOut, int64) {
	r := newTrackRun(t, randomTrackOpts...)
	fed := 0
	for _, b := range batches {
		var rest []stream.Record[telemetry.Event]
		for _, x := range b {
			if x.Offset >= from {
				rest = append(rest, x)
			}
		}
		if len(rest) > 0 {
			r.q.Add(rest...)
			fed++
		}
	}
	if crashAfter > 0 {
		r.h.Run(crashAfter)
	} else {
		r.q.End()
		r.h.RunUntilDone()
	}
	out := randomTrackOut{alerts: map[string]telemetry.Alert{}, events: map[int64]telemetry.Tracked{}}
	for _, a := range r.alerts.Slice() {
		out.alerts[a.ID] = a
		out.n++
	}
	// The tracker's events in arrival order: offsets as fed.
	var offs []int64
	for _, b := range batches {
		for _, x := range b {
			if x.Offset >= from {
				offs = append(offs, x.Offset)
			}
		}
	}
	for i, e := range r.events.Slice() {
		out.events[offs[i]] = e
	}
	return out, r.q.Committed(0)
}

// TestTrackRandomReplay: over random faulty sequences, a crash after any batch
// and a replay from the committed offset write the alerts of one uninterrupted
// run (by ID, replayed copies overwriting) and annotate every replayed event
// as that run did.
func TestTrackRandomReplay(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		batches := randomTrackInput(seed, 150)
		full, _ := runRandomTrack(t, batches, 0, 0)
		require.Equal(t, full.n, len(full.alerts), "seed %d: one run writes each alert once", seed)
		for k := 1; k < len(batches); k++ {
			first, committed := runRandomTrack(t, batches, 0, k)
			from := max(committed, 0)
			second, _ := runRandomTrack(t, batches, from, 0)
			got := map[string]telemetry.Alert{}
			for id, a := range first.alerts {
				got[id] = a
			}
			for id, a := range second.alerts {
				got[id] = a
			}
			require.Equal(t, full.alerts, got, "seed %d: crash after %d batches, replay from %d", seed, k, from)
			for off, e := range second.events {
				require.Equal(t, full.events[off], e, "seed %d: crash after %d batches, replay from %d: event %d", seed, k, from, off)
			}
		}
	}
}
