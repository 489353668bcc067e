// Helpers the transform tests share: events and records.

package telemetry_test

import (
	"math"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
)

// t0 is the start of the test windows.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// kmPerDeg is the length of one degree of a meridian on the Haversine
// sphere: points on one meridian are lat-difference × kmPerDeg apart.
const kmPerDeg = telemetry.EarthRadiusKm * math.Pi / 180

const lon0 = -8.61

// ev builds an event of cab at t0+sec, on meridian lon0 at lat. speed < 0
// means no reading.
func ev(cab string, sec float64, lat, speed float64, st telemetry.Status) telemetry.Event {
	e := telemetry.Event{CabID: cab, Time: t0.Add(time.Duration(sec * float64(time.Second))), Lat: lat, Lon: lon0, Status: st}
	if speed >= 0 {
		e.SpeedKmh, e.Has = speed, telemetry.HasSpeed
	}
	return e
}

// rec wraps an event as a record of partition 0 with its event time.
func rec(e telemetry.Event) stream.Record[telemetry.Event] {
	return stream.Record[telemetry.Event]{Value: e, EventTime: e.Time}
}

func recs(es ...telemetry.Event) []stream.Record[telemetry.Event] {
	out := make([]stream.Record[telemetry.Event], len(es))
	for i, e := range es {
		out[i] = rec(e)
	}
	return out
}

const (
	avail   = telemetry.StatusAvailable
	hired   = telemetry.StatusHired
	offline = telemetry.StatusOffline
	none    = telemetry.StatusUnknown
)
