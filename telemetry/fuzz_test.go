// Fuzzing of the decoder against re-encoding and encoding/json.

package telemetry_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		sample,
		`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
		`{"cab_id":"C\u00e9\ud83d\ude00","trip_id":"","ts":"2026-11-25t11:30:00.5+01:30","lat":-0.0,"lon":1.8E2,"status":"offline"}`,
		`{"x":{"a":[1,{"b":null}],"c":"}"},"cab_id":"C","ts":"1677-09-21T00:12:43.145224193Z","lat":90,"lon":-180,"speed_kmh":1e3}`,
		`{"cab_id":"C","ts":"2262-04-11T23:47:16.854775806Z","lat":1e-30,"lon":2,"fuel_pct":null,"odometer_km":1e8}`,
		`{"cab_id":"C","ts":"0000-01-01T00:00:00Z","lat":90,"lon":-180,"speed_kmh":1e300}`,
		`{"cab_id":"C","ts":"9999-12-31T23:59:59.999999999Z","lat":1,"lon":2,"engine_temp_c":-1e300}`,
		`{"cab_id":"C","lat":[1,}`,
		`{}`, ``, `null`, `[]`, `{"cab_id":"C"}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := telemetry.Decode(data)
		if err != nil {
			var de *telemetry.DecodeError
			require.ErrorAs(t, err, &de)
			require.True(t, errors.Is(err, telemetry.ErrMalformed) != errors.Is(err, telemetry.ErrInvalid))
			// Differential check: what we call malformed, encoding/json
			// must reject too (it skips UTF-8 checks and nests deeper).
			if errors.Is(err, telemetry.ErrMalformed) && de.Reason != "nesting too deep" && de.Reason != "not a JSON object" &&
				utf8.Valid(data) {
				require.False(t, json.Valid(data), "valid JSON rejected: %v", err)
			}
			return
		}
		require.True(t, json.Valid(data), "accepted invalid JSON")
		requireFieldsAsJSON(t, data, e)
		require.NoError(t, e.Validate())
		require.True(t, time.Unix(0, e.Time.UnixNano()).Equal(e.Time), "event time %v does not survive UnixNano", e.Time)
		require.LessOrEqual(t, len(e.CabID), telemetry.MaxIDLen)
		require.LessOrEqual(t, len(e.TripID), telemetry.MaxIDLen)
		enc, err := telemetry.Append(nil, e)
		require.NoError(t, err)
		back, err := telemetry.Decode(enc)
		require.NoError(t, err, "re-decoding %s", enc)
		require.Equal(t, e, back)
		again, err := telemetry.Append(nil, back)
		require.NoError(t, err)
		require.Equal(t, string(enc), string(again))

		var d telemetry.Decoder
		interned, err := d.Decode(data)
		require.NoError(t, err)
		require.Equal(t, e, interned)
	})
}

// FuzzEventCodec: arbitrary bytes never panic either binary codec; what
// decodes is a valid event whose re-encoding is the same bytes (the layout
// is canonical); and an event built from the fuzzed fields round-trips when
// Validate accepts it and is refused with ErrEncode when it does not.
func FuzzEventCodec(f *testing.F) {
	e := sampleEvent()
	for _, tr := range []telemetry.Tracked{{Event: e}, {Event: e, Pickup: true, OutOfOrder: true}} {
		b, err := telemetry.EventCodec{}.Append(nil, tr.Event)
		require.NoError(f, err)
		f.Add(b, e.CabID, e.TripID, e.Time.UnixNano(), e.Lat, e.Lon, e.SpeedKmh, uint16(e.Has), uint8(e.Status), uint8(0))
		b, err = telemetry.TrackedCodec{}.Append(nil, tr)
		require.NoError(f, err)
		f.Add(b, "", "\xff", int64(0), 91.0, 0.0, -1.0, uint16(0xffff), uint8(9), uint8(0xff))
	}
	f.Add([]byte{}, "C", "", int64(-1), -90.0, 180.0, 1000.0, uint16(telemetry.HasSpeed), uint8(0), uint8(5))
	f.Add([]byte{0x01, 0x00, 0x00, 0x80, 0x00}, "C", "", int64(math.MaxInt64), 0.0, 0.0, math.NaN(), uint16(0), uint8(1), uint8(15))
	f.Fuzz(func(t *testing.T, data []byte, cab, trip string, ns int64, lat, lon, speed float64, has uint16, status, flags uint8) {
		var ec telemetry.EventCodec
		var tc telemetry.TrackedCodec
		if e, err := ec.Decode(data); err != nil {
			var de *telemetry.DecodeError
			require.ErrorAs(t, err, &de)
			require.True(t, errors.Is(err, telemetry.ErrMalformed) != errors.Is(err, telemetry.ErrInvalid))
		} else {
			require.NoError(t, e.Validate())
			again, err := ec.Append(nil, e)
			require.NoError(t, err)
			require.Equal(t, data, again)
		}
		if tr, err := tc.Decode(data); err != nil {
			var de *telemetry.DecodeError
			require.ErrorAs(t, err, &de)
		} else {
			require.NoError(t, tr.Validate())
			again, err := tc.Append(nil, tr)
			require.NoError(t, err)
			require.Equal(t, data, again)
		}

		// Build an event from the fields; only what its bits say is carried.
		e := telemetry.Event{CabID: cab, Time: time.Unix(0, ns).UTC(), Lat: lat, Lon: lon,
			Status: telemetry.Status(status), Has: telemetry.Field(has)}
		if e.Has&telemetry.HasTripID != 0 {
			e.TripID = trip
		}
		if e.Has&telemetry.HasSpeed != 0 {
			e.SpeedKmh = speed
		}
		if e.Has&telemetry.HasOdometer != 0 {
			e.OdometerKm = speed * 1000
		}
		tr := telemetry.Tracked{Event: e, Pickup: flags&1 != 0, Jump: flags&2 != 0, Duplicate: flags&4 != 0, OutOfOrder: flags&8 != 0}
		known := telemetry.HasTripID | telemetry.HasSpeed | telemetry.HasHeading | telemetry.HasEngineTemp |
			telemetry.HasFuel | telemetry.HasBattery | telemetry.HasOdometer
		b, err := ec.Append([]byte("x"), e)
		tb, terr := tc.Append(nil, tr)
		if e.Validate() != nil || e.Has&^known != 0 {
			require.ErrorIs(t, err, telemetry.ErrEncode)
			require.Equal(t, "x", string(b))
			require.ErrorIs(t, terr, telemetry.ErrEncode)
			return
		}
		require.NoError(t, err)
		back, err := ec.Decode(b[1:])
		require.NoError(t, err)
		require.Equal(t, e, back)
		require.NoError(t, terr)
		tback, err := tc.Decode(tb)
		require.NoError(t, err)
		require.Equal(t, tr, tback)
	})
}

// requireFieldsAsJSON holds a decoded event to encoding/json's reading of the same object,
// key by exact name (encoding/json's struct matching would fold case): each schema field
// has the value of its key, and a field whose key is absent or null is unset. It is the
// oracle for how Decode finds its keys (the guess of the next key in codec.go).
func requireFieldsAsJSON(t *testing.T, data []byte, e telemetry.Event) {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	str := func(k string) (string, bool) {
		v, ok := m[k].(string)
		return v, ok
	}
	cab, _ := str("cab_id")
	require.Equal(t, cab, e.CabID, "cab_id")
	trip, hasTrip := str("trip_id")
	require.Equal(t, hasTrip, e.Has&telemetry.HasTripID != 0, "trip_id present")
	require.Equal(t, trip, e.TripID, "trip_id")
	status, _ := str("status")
	if e.Status == telemetry.StatusUnknown {
		require.Empty(t, status, "status")
	} else {
		require.Equal(t, status, e.Status.String(), "status")
	}
	_, hasTS := str("ts")
	require.True(t, hasTS, "ts")
	for _, f := range []struct {
		key string
		has telemetry.Field // 0: required
		got float64
	}{
		{"lat", 0, e.Lat}, {"lon", 0, e.Lon},
		{"speed_kmh", telemetry.HasSpeed, e.SpeedKmh}, {"heading_deg", telemetry.HasHeading, e.HeadingDeg},
		{"engine_temp_c", telemetry.HasEngineTemp, e.EngineTempC}, {"fuel_pct", telemetry.HasFuel, e.FuelPct},
		{"battery_v", telemetry.HasBattery, e.BatteryV}, {"odometer_km", telemetry.HasOdometer, e.OdometerKm},
	} {
		v, ok := m[f.key].(float64)
		if f.has != 0 {
			require.Equal(t, ok, e.Has&f.has != 0, "%s present", f.key)
		} else {
			require.True(t, ok, "%s present", f.key)
		}
		if ok {
			require.Equal(t, math.Float64bits(v), math.Float64bits(f.got), "%s: encoding/json %v, Decode %v", f.key, v, f.got)
		} else {
			require.Zero(t, f.got, f.key)
		}
	}
}

// TestDecodeKeyGuess: Decode guesses that each key is the schema's next field (the order
// Append writes). Keys in any other order, absent fields, keys that only start like the
// guess, escaped names and repeated keys must decode exactly as encoding/json reads them.
func TestDecodeKeyGuess(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		err        string // a DecodeError's reason, or "" to decode
	}{
		{"schema order", sample, ""},
		{"reversed", `{"odometer_km":1,"battery_v":12,"fuel_pct":5,"engine_temp_c":90,"status":"hired","heading_deg":3,` +
			`"speed_kmh":4,"lon":2,"lat":1,"ts":"2026-11-25T10:00:00Z","trip_id":"T","cab_id":"C"}`, ""},
		{"optional fields absent", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2,"fuel_pct":7}`, ""},
		{"longer key than the guess", `{"cab_id":"C","trip_idx":"X","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2,"lon2":9}`, ""},
		{"shorter key than the guess", `{"cab_id":"C","trip_i":"X","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`, ""},
		{"escaped name", `{"cab_id":"C","trip_\u0069d":"T","ts":"2026-11-25T10:00:00Z","l\u0061t":1,"lon":2}`, ""},
		{"unknown key first", `{"x":{"cab_id":"Y"},"cab_id":"C","trip_id":"T","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`, ""},
		{"guess after an unknown key", `{"cab_id":"C","x":1,"trip_id":"T","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`, ""},
		{"whitespace around colons", "{\"cab_id\" : \"C\",\"trip_id\"\t:\"T\" ,\"ts\": \"2026-11-25T10:00:00Z\",\"lat\" :1,\"lon\":2}", ""},
		{"repeated guessed key", `{"cab_id":"C","trip_id":"T","trip_id":"U","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`, "duplicate field"},
		{"repeated first key", `{"cab_id":"C","cab_id":"D","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`, "duplicate field"},
		{"guess then no colon", `{"cab_id":"C","trip_id""T"}`, "expected ':' after field name"},
		{"input ends in the guessed key", `{"cab_id":"C","trip_id`, "unexpected end of input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := telemetry.Decode([]byte(tc.json))
			if tc.err != "" {
				var de *telemetry.DecodeError
				require.ErrorAs(t, err, &de)
				require.Equal(t, tc.err, de.Reason)
				return
			}
			require.NoError(t, err)
			requireFieldsAsJSON(t, []byte(tc.json), e)
		})
	}
}
