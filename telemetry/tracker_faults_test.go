package telemetry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

// TestTrackFlagsInjectedJumps: every GPS jump the simulator injects is flagged Jump (or
// Duplicate, for its copy), also when it arrives out of order, and no other event is: zone
// demand, which leaves jumps out, counts none of them. Before out-of-order events were
// checked, 17 of the 396 jumps here arrived late and were counted.
func TestTrackFlagsInjectedJumps(t *testing.T) {
	sim, err := fleetsim.New(fleetsim.Config{Seed: 5, Cabs: 50, Interval: time.Second, StartTime: t0,
		Faults: fleetsim.Faults{GPSJump: 0.01, OutOfOrder: 0.05, MaxDelay: 10 * time.Second, Duplicate: 0.02}})
	require.NoError(t, err)
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	evs := streamtest.Collect(tr.Events())
	var faults []fleetsim.Fault
	var off int64
	for m := range sim.All() {
		if len(faults) == 40000 {
			break
		}
		if m.Malformed {
			continue
		}
		faults = append(faults, m.Faults)
		q.Add(stream.Record[telemetry.Event]{Value: m.Event, Offset: off, EventTime: m.Event.Time})
		off++
	}
	q.End()
	h.RunUntilDone()
	got := evs.Slice()
	require.Len(t, got, len(faults))
	var jumps, late int
	for i, e := range got {
		if faults[i]&fleetsim.FaultGPSJump == 0 {
			require.False(t, e.Jump, "event %d (%s at %s) is no jump", i, e.CabID, e.Time.Format(time.TimeOnly))
			continue
		}
		jumps++
		if e.OutOfOrder {
			late++
		}
		require.True(t, e.Jump || e.Duplicate, "injected jump %d (%s at %s, out of order %v) not flagged", i, e.CabID, e.Time.Format(time.TimeOnly), e.OutOfOrder)
	}
	require.Greater(t, jumps, 300)
	require.Greater(t, late, 10, "jumps that arrive out of order")
}
