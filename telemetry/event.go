// The event: its schema (Event, Status, Field), its limits and validation,
// and the errors of decoding (DecodeError, ErrMalformed, ErrInvalid).

package telemetry

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits of the event schema. Decode and Validate reject values outside them
// with a field error ([ErrInvalid]). The physical limits are generous: they
// pass every reading a working device sends and stop the absurd ones (a
// speed of 1.5e308 km/h) before sums and averages overflow.
const (
	// MaxIDLen bounds cab_id and trip_id, in bytes (after unescaping): IDs
	// become Kafka keys and parts of document IDs, and must not grow without
	// bound.
	MaxIDLen = 256
	// MaxSpeedKmh bounds speed_kmh: [0, MaxSpeedKmh].
	MaxSpeedKmh = 1000.0
	// MinEngineTempC and MaxEngineTempC bound engine_temp_c.
	MinEngineTempC = -100.0
	MaxEngineTempC = 400.0
	// MaxBatteryV bounds battery_v: [0, MaxBatteryV] (electric drive packs
	// run at up to about 900 V).
	MaxBatteryV = 1500.0
	// MaxOdometerKm bounds odometer_km: [0, MaxOdometerKm].
	MaxOdometerKm = 1e8
)

// Event times are those that [time.Time.UnixNano] represents, as pipelines
// need: from 1677-09-21T00:12:43.145224193Z to 2262-04-11T23:47:16.854775806Z
// (the two extreme nanoseconds are the pipeline's "no watermark" and "end of
// time"). Outside it, UnixNano wraps around: year 1000 would read as 2169.
var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64-1).UTC()
)

// Sentinel errors. Every error returned by [Decode], [Event.UnmarshalJSON] and
// [Event.Validate] is a [*DecodeError] that wraps exactly one of them.
var (
	// ErrMalformed reports input that is not a well-formed JSON object:
	// a syntax error, truncated input, invalid UTF-8 or trailing data.
	ErrMalformed = errors.New("telemetry: malformed event")
	// ErrInvalid reports well-formed JSON that violates the event schema:
	// a missing required field, a value of the wrong JSON type, a value out
	// of range, an unknown status or a duplicated field.
	ErrInvalid = errors.New("telemetry: invalid event")
	// ErrEncode reports a value that has no JSON encoding: a number that is
	// NaN or infinite, a time outside years 0000..9999. It is wrapped by the
	// errors of [Append] and of the documents' AppendJSON methods.
	ErrEncode = errors.New("telemetry: cannot encode")
)

// DecodeError describes why an event was rejected.
type DecodeError struct {
	// Record is what was decoded: "" for an event, "request" for a ride
	// request ([DecodeRequest]).
	Record string
	// Field is the JSON name of the offending field ("lat", "ts", ...), or
	// "" when the problem is not tied to one field (syntax errors).
	Field string
	// Reason says what is wrong, in a few words.
	Reason string
	// Offset is the byte offset in the input where the problem was found,
	// or -1 when the error comes from [Event.Validate].
	Offset int
	// Err is [ErrMalformed] or [ErrInvalid].
	Err error
}

func (e *DecodeError) Error() string {
	what := e.Record
	if what == "" {
		what = "event"
	}
	kind := "invalid " + what
	if e.Err == ErrMalformed {
		kind = "malformed " + what
	}
	var b []byte
	b = append(b, "telemetry: "...)
	b = append(b, kind...)
	if e.Field != "" {
		b = append(b, ": field "...)
		b = strconv.AppendQuote(b, e.Field)
	}
	b = append(b, ": "...)
	b = append(b, e.Reason...)
	if e.Offset >= 0 {
		b = append(b, " (at byte "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
		b = append(b, ')')
	}
	return string(b)
}

// Unwrap returns [ErrMalformed] or [ErrInvalid].
func (e *DecodeError) Unwrap() error { return e.Err }

// InvalidRecord reports whether the error is [ErrInvalid]'s: the record is well-formed but
// its content is refused. A kafka.Source dead-letters such a record with the reason
// "invalid" rather than "decode" (kafka.InvalidError), so a codec may return Decode's error
// as it is.
func (e *DecodeError) InvalidRecord() bool { return errors.Is(e.Err, ErrInvalid) }

// Status is the service state a cab reports.
type Status uint8

// Status values. StatusUnknown is the zero value and means the event carried
// no status; it is never written to JSON.
const (
	StatusUnknown Status = iota
	StatusAvailable
	StatusHired
	StatusOffline
)

var statusNames = [...]string{"unknown", "available", "hired", "offline"}

// String returns the JSON name of s ("available", "hired", "offline"), or
// "unknown" for StatusUnknown and out-of-range values.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// ParseStatus returns the Status whose JSON name is name. It accepts only
// "available", "hired" and "offline".
func ParseStatus(name string) (Status, error) {
	if s := parseStatus([]byte(name)); s != StatusUnknown {
		return s, nil
	}
	return StatusUnknown, fmt.Errorf("telemetry: unknown status %q", name)
}

// MarshalText implements [encoding.TextMarshaler]. It fails for
// StatusUnknown, which has no JSON name.
func (s Status) MarshalText() ([]byte, error) {
	if s == StatusUnknown || int(s) >= len(statusNames) {
		return nil, fmt.Errorf("telemetry: status %d has no JSON name", uint8(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseStatus].
func (s *Status) UnmarshalText(text []byte) error {
	v, err := ParseStatus(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Field is a bit set naming the optional fields present in an [Event].
type Field uint16

// Optional fields. Status needs no bit: StatusUnknown means absent.
const (
	HasTripID Field = 1 << iota
	HasSpeed
	HasHeading
	HasEngineTemp
	HasFuel
	HasBattery
	HasOdometer
)

// Event is one cab telemetry reading.
//
// CabID, Time, Lat and Lon are required. The float fields after Lon are
// optional: each is meaningful only when its bit is set in Has, so a
// reading of 0 km/h is told apart from no reading without pointers or
// allocation. TripID is optional too (HasTripID), and Status is absent when
// it is StatusUnknown.
//
// Events produced by [Decode] hold Time in UTC without a monotonic reading,
// so two decodings of the same bytes compare equal with ==.
type Event struct {
	CabID  string    // "cab_id", required, non-empty, at most MaxIDLen bytes
	TripID string    // "trip_id", optional (HasTripID), at most MaxIDLen bytes
	Time   time.Time // "ts", required, RFC 3339, years 1678..2262 (see Decode)
	Lat    float64   // "lat", required, degrees in [-90, 90]
	Lon    float64   // "lon", required, degrees in [-180, 180]
	Status Status    // "status", optional (absent when StatusUnknown)

	SpeedKmh    float64 // "speed_kmh", optional (HasSpeed), in [0, MaxSpeedKmh]
	HeadingDeg  float64 // "heading_deg", optional (HasHeading), in [0, 360]
	EngineTempC float64 // "engine_temp_c", optional (HasEngineTemp), in [MinEngineTempC, MaxEngineTempC]
	FuelPct     float64 // "fuel_pct", optional (HasFuel), in [0, 100]
	BatteryV    float64 // "battery_v", optional (HasBattery), in [0, MaxBatteryV]
	OdometerKm  float64 // "odometer_km", optional (HasOdometer), in [0, MaxOdometerKm]

	Has Field // optional fields present
}

// Point returns the position of the event.
func (e Event) Point() Point { return Point{Lat: e.Lat, Lon: e.Lon} }

// Validate reports whether e satisfies the schema that [Decode] enforces.
// The error is a [*DecodeError] wrapping [ErrInvalid], with Offset -1.
func (e Event) Validate() error {
	fail := func(field, reason string) error {
		return &DecodeError{Field: field, Reason: reason, Offset: -1, Err: ErrInvalid}
	}
	if e.CabID == "" {
		return fail("cab_id", "missing or empty")
	}
	if r := checkString(e.CabID); r != "" {
		return fail("cab_id", r)
	}
	if e.Has&HasTripID != 0 {
		if r := checkString(e.TripID); r != "" {
			return fail("trip_id", r)
		}
	}
	if e.Time.IsZero() {
		return fail("ts", "missing")
	}
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		return fail("ts", timeRangeReason)
	}
	if r := checkFloat(fLat, e.Lat); r != "" {
		return fail("lat", r)
	}
	if r := checkFloat(fLon, e.Lon); r != "" {
		return fail("lon", r)
	}
	if e.Status > StatusOffline {
		return fail("status", "unknown status")
	}
	opt := [...]struct {
		bit Field
		id  fieldID
		v   float64
	}{
		{HasSpeed, fSpeed, e.SpeedKmh},
		{HasHeading, fHeading, e.HeadingDeg},
		{HasEngineTemp, fEngineTemp, e.EngineTempC},
		{HasFuel, fFuel, e.FuelPct},
		{HasBattery, fBattery, e.BatteryV},
		{HasOdometer, fOdometer, e.OdometerKm},
	}
	for _, o := range opt {
		if e.Has&o.bit == 0 {
			continue
		}
		if r := checkFloat(o.id, o.v); r != "" {
			return fail(fieldNames[o.id], r)
		}
	}
	return nil
}

func checkString(s string) string {
	if len(s) > MaxIDLen {
		return idTooLong
	}
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	return ""
}

// Reasons shared by Decode and Validate.
const (
	idTooLong       = "longer than 256 bytes (MaxIDLen)"
	timeRangeReason = "timestamp outside 1677-09-21T00:12:43Z..2262-04-11T23:47:16Z (the range of time.Time.UnixNano)"
)

// fieldID identifies a schema field; it indexes fieldNames.
type fieldID uint8

const (
	fNone fieldID = iota
	fCabID
	fTripID
	fTS
	fLat
	fLon
	fSpeed
	fHeading
	fStatus
	fEngineTemp
	fFuel
	fBattery
	fOdometer
	numFields
)

var fieldNames = [numFields]string{
	"", "cab_id", "trip_id", "ts", "lat", "lon", "speed_kmh", "heading_deg", "status",
	"engine_temp_c", "fuel_pct", "battery_v", "odometer_km",
}

// checkFloat returns why v is not acceptable for field f, or "".
func checkFloat(f fieldID, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "not a finite number"
	}
	if b := &bounds[f]; v < b.lo || v > b.hi {
		return b.reason
	}
	return ""
}

// inBounds reports whether checkFloat accepts v, without the reason: the
// bounds are finite, so the comparisons refuse NaN and infinities too.
func inBounds(f fieldID, v float64) bool {
	b := &bounds[f]
	return v >= b.lo && v <= b.hi
}

// bounds are the ranges of the numeric fields, with the reason a value
// outside is refused for.
var bounds = [numFields]struct {
	lo, hi float64
	reason string
}{
	fLat:        {-90, 90, "latitude out of range [-90, 90]"},
	fLon:        {-180, 180, "longitude out of range [-180, 180]"},
	fSpeed:      {0, MaxSpeedKmh, "speed out of range [0, 1000]"},
	fHeading:    {0, 360, "heading out of range [0, 360]"},
	fFuel:       {0, 100, "fuel out of range [0, 100]"},
	fEngineTemp: {MinEngineTempC, MaxEngineTempC, "engine temperature out of range [-100, 400]"},
	fBattery:    {0, MaxBatteryV, "battery voltage out of range [0, 1500]"},
	fOdometer:   {0, MaxOdometerKm, "odometer out of range [0, 1e8]"},
}
