// The event's JSON encoding: Append, which checks that the event can be
// written as JSON, and the writer it shares with MarshalJSON (codec.go).

package telemetry

import (
	"fmt"
	"math"
	"time"
)

// Append appends the JSON encoding of e to dst and returns the extended
// slice. Fields come in schema order, absent optional fields are omitted and
// ts is written in RFC 3339 with nanoseconds, in UTC. Append does not
// validate e (a simulator may write events that [Decode] rejects), but it
// never writes invalid JSON: a number that is NaN or infinite, or a time
// outside years 0000..9999, is an error wrapping [ErrEncode], and dst is then
// returned as it was. Append does not allocate when dst has room.
func Append(dst []byte, e Event) ([]byte, error) {
	var c encCheck
	c.time("ts", e.Time)
	c.num("lat", e.Lat)
	c.num("lon", e.Lon)
	if e.Has&(HasSpeed|HasHeading|HasEngineTemp|HasFuel|HasBattery|HasOdometer) != 0 {
		c.opt(e.Has, HasSpeed, "speed_kmh", e.SpeedKmh)
		c.opt(e.Has, HasHeading, "heading_deg", e.HeadingDeg)
		c.opt(e.Has, HasEngineTemp, "engine_temp_c", e.EngineTempC)
		c.opt(e.Has, HasFuel, "fuel_pct", e.FuelPct)
		c.opt(e.Has, HasBattery, "battery_v", e.BatteryV)
		c.opt(e.Has, HasOdometer, "odometer_km", e.OdometerKm)
	}
	if c.err != nil {
		return dst, c.err
	}
	return appendEvent(dst, e), nil
}

// encCheck finds the first value an encoder cannot write as JSON.
type encCheck struct{ err error }

func (c *encCheck) num(name string, v float64) {
	if c.err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		c.err = fmt.Errorf("%w: %s is %v, not a finite number", ErrEncode, name, v)
	}
}

func (c *encCheck) opt(has, bit Field, name string, v float64) {
	if has&bit != 0 {
		c.num(name, v)
	}
}

// time checks that t has a four-digit year in UTC, as RFC 3339 requires.
func (c *encCheck) time(name string, t time.Time) {
	if u := t.Unix(); c.err == nil && (u < minEncUnix || u > maxEncUnix) {
		c.err = fmt.Errorf("%w: %s %v is outside years 0000..9999", ErrEncode, name, t.UTC())
	}
}

func appendEvent(dst []byte, e Event) []byte {
	dst = append(dst, `{"cab_id":`...)
	dst = appendString(dst, e.CabID)
	if e.Has&HasTripID != 0 {
		dst = append(dst, `,"trip_id":`...)
		dst = appendString(dst, e.TripID)
	}
	dst = append(dst, `,"ts":"`...)
	dst = appendTime(dst, e.Time)
	dst = append(dst, `","lat":`...)
	dst = appendFloat(dst, e.Lat)
	dst = append(dst, `,"lon":`...)
	dst = appendFloat(dst, e.Lon)
	if e.Has&HasSpeed != 0 {
		dst = append(dst, `,"speed_kmh":`...)
		dst = appendFloat(dst, e.SpeedKmh)
	}
	if e.Has&HasHeading != 0 {
		dst = append(dst, `,"heading_deg":`...)
		dst = appendFloat(dst, e.HeadingDeg)
	}
	if e.Status != StatusUnknown {
		dst = append(dst, `,"status":"`...)
		dst = append(dst, e.Status.String()...)
		dst = append(dst, '"')
	}
	if e.Has&HasEngineTemp != 0 {
		dst = append(dst, `,"engine_temp_c":`...)
		dst = appendFloat(dst, e.EngineTempC)
	}
	if e.Has&HasFuel != 0 {
		dst = append(dst, `,"fuel_pct":`...)
		dst = appendFloat(dst, e.FuelPct)
	}
	if e.Has&HasBattery != 0 {
		dst = append(dst, `,"battery_v":`...)
		dst = appendFloat(dst, e.BatteryV)
	}
	if e.Has&HasOdometer != 0 {
		dst = append(dst, `,"odometer_km":`...)
		dst = appendFloat(dst, e.OdometerKm)
	}
	return append(dst, '}')
}
