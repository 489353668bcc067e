// Runnable examples of the simulator and the Porto reader.

package fleetsim_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

func ExampleNew() {
	sim, err := fleetsim.New(fleetsim.Config{
		Seed:      42,
		Cabs:      3,
		StartTime: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Interval:  3 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	for range 4 {
		m := sim.Next()
		fmt.Println(m.Key, m.Event.Time.Format(time.TimeOnly), m.Event.Status)
	}
	// Output:
	// CAB-0001 10:00:00 available
	// CAB-0002 10:00:01 hired
	// CAB-0003 10:00:02 hired
	// CAB-0001 10:00:03 available
}

func ExampleFaults() {
	sim, err := fleetsim.New(fleetsim.Config{
		Seed: 1,
		Cabs: 50,
		Faults: fleetsim.Faults{
			GPSJump:    0.01,
			OutOfOrder: 0.01,
			MaxDelay:   10 * time.Second,
			Duplicate:  0.01,
			Malformed:  0.01,
		},
	})
	if err != nil {
		panic(err)
	}
	var bad int
	for m := range sim.All() {
		if _, err := telemetry.Decode(m.Value); err != nil {
			bad++ // only the messages flagged Malformed fail
		}
		if sim.Stats().Messages == 10000 {
			break
		}
	}
	st := sim.Stats()
	fmt.Println(bad == st.Malformed, st.GPSJumps > 0, st.Late > 0, st.Duplicates > 0)
	// Output: true true true true
}

func ExampleReadPorto() {
	const csv = `"TRIP_ID","CALL_TYPE","ORIGIN_CALL","ORIGIN_STAND","TAXI_ID","TIMESTAMP","DAY_TYPE","MISSING_DATA","POLYLINE"
"T2","B","","7","20000596","1372636900","A","False","[[-8.639847,41.159826],[-8.640351,41.159871]]"
"T1","C","","","20000589","1372636858","A","False","[[-8.618643,41.141412]]"
`
	events, stats, err := fleetsim.ReadPorto(strings.NewReader(csv), fleetsim.PortoOptions{
		Start:   time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Speedup: 2,
	})
	if err != nil {
		panic(err)
	}
	for _, e := range events {
		fmt.Println(e.Time.Format(time.TimeOnly), e.CabID, e.TripID, e.Lat, e.Lon)
	}
	fmt.Println(stats.Trips, stats.Points, stats.RowsOutOfOrder)
	// Output:
	// 10:00:00 PORTO-20000589 T1 41.141412 -8.618643
	// 10:00:21 PORTO-20000596 T2 41.159826 -8.639847
	// 10:00:28 PORTO-20000596 T2 41.159871 -8.640351
	// 2 3 1
}
