// Package telemetry defines the cab telemetry event of fleetstream, its
// JSON codec, and the geographic helpers the transforms build on.
//
// # Event schema
//
// An [Event] travels as one JSON object, keyed in Kafka by its cab_id:
//
//	{"cab_id":"CAB-0042","trip_id":"T-77","ts":"2026-11-25T10:00:00.123Z",
//	 "lat":41.1579,"lon":-8.6291,"speed_kmh":42.5,"heading_deg":270,
//	 "status":"hired","engine_temp_c":90.1,"fuel_pct":55.0,"battery_v":12.6,
//	 "odometer_km":123456.7}
//
// cab_id (non-empty), ts (RFC 3339), lat in [-90, 90] and lon in
// [-180, 180] are required. The other fields are optional; a present
// optional field sets its bit in [Event.Has] (status uses [StatusUnknown]
// for absent), so zero readings are told apart from missing ones without
// pointers. A JSON null in an optional field means absent. Unknown fields
// are ignored, whatever their value. Field names match exactly (unlike
// encoding/json, which also accepts other letter cases).
//
// # Decoding
//
// [Decode] is a single-pass scanner written for this schema: several times
// faster than encoding/json and one allocation per event (the two ID
// strings, in one block). A [Decoder] interns IDs and so decodes a stream
// from a known fleet without allocating. Timestamps are parsed without
// allocation and returned in UTC, so decoded events compare with ==.
//
// Decoding is strict: input must be exactly one JSON object, optionally
// surrounded by whitespace, in valid UTF-8; numbers must follow the JSON
// grammar; optional fields are range-checked too (speed, odometer and
// battery non-negative, heading in [0, 360], fuel in [0, 100]); a known
// field may appear only once.
//
// # Encoding
//
// [Append] writes fields in schema order, omits absent optional fields,
// writes ts in UTC with up to nanosecond precision (the time.RFC3339Nano
// layout) and writes numbers that decode back to exactly the same float64.
// Everything [Decode] accepts re-encodes and decodes to an equal Event.
// [Event.MarshalJSON] and [Event.UnmarshalJSON] plug the codec into
// encoding/json.
//
// # Errors
//
// Decoding and validation errors are [*DecodeError] values that name the
// field, the reason and the byte offset, and wrap [ErrMalformed] (not JSON,
// syntax, truncation, trailing data) or [ErrInvalid] (schema violations).
// Test with errors.Is; dead-letter queues can record the Field and Reason.
//
// # Geography
//
// [Haversine] gives great-circle distances in km on a sphere of radius
// [EarthRadiusKm]; [EncodeGeohash], [AppendGeohash] and [DecodeGeohash]
// convert between positions and geohash cells for zone aggregation;
// [Polygon] tests geofence membership. All are pure functions, safe for
// concurrent use.
//
// # Concurrency
//
// Functions and Event methods are safe for concurrent use. A [Decoder] is
// not; use one per goroutine.
package telemetry
