// Tests of the codec: decoding, its errors and bounds, round trips, and
// agreement with encoding/json.

package telemetry_test

import (
	"encoding"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

const sample = `{"cab_id":"CAB-0042","trip_id":"T-77","ts":"2026-11-25T10:00:00.123Z","lat":41.1579,"lon":-8.6291,` +
	`"speed_kmh":42.5,"heading_deg":270,"status":"hired","engine_temp_c":90.1,"fuel_pct":55.0,` +
	`"battery_v":12.6,"odometer_km":123456.7}`

func sampleEvent() telemetry.Event {
	return telemetry.Event{
		CabID:       "CAB-0042",
		TripID:      "T-77",
		Time:        time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC),
		Lat:         41.1579,
		Lon:         -8.6291,
		Status:      telemetry.StatusHired,
		SpeedKmh:    42.5,
		HeadingDeg:  270,
		EngineTempC: 90.1,
		FuelPct:     55,
		BatteryV:    12.6,
		OdometerKm:  123456.7,
		Has: telemetry.HasTripID | telemetry.HasSpeed | telemetry.HasHeading | telemetry.HasEngineTemp |
			telemetry.HasFuel | telemetry.HasBattery | telemetry.HasOdometer,
	}
}

func TestDecodeSample(t *testing.T) {
	e, err := telemetry.Decode([]byte(sample))
	require.NoError(t, err)
	require.Equal(t, sampleEvent(), e)
	require.Equal(t, time.UTC, e.Time.Location())
}

func TestAppendRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    telemetry.Event
		want string
	}{
		{
			name: "full",
			e:    sampleEvent(),
			want: `{"cab_id":"CAB-0042","trip_id":"T-77","ts":"2026-11-25T10:00:00.123Z","lat":41.1579,"lon":-8.6291,` +
				`"speed_kmh":42.5,"heading_deg":270,"status":"hired","engine_temp_c":90.1,"fuel_pct":55,` +
				`"battery_v":12.6,"odometer_km":123456.7}`,
		},
		{
			name: "required only",
			e:    telemetry.Event{CabID: "C1", Time: time.Unix(0, 0).UTC(), Lat: -90, Lon: 180},
			want: `{"cab_id":"C1","ts":"1970-01-01T00:00:00Z","lat":-90,"lon":180}`,
		},
		{
			name: "zero optional values are kept",
			e: telemetry.Event{CabID: "C1", Time: time.Date(2024, 2, 29, 23, 59, 59, 1, time.UTC),
				Lat: 0.5, Lon: -0.25, Has: telemetry.HasSpeed | telemetry.HasTripID, Status: telemetry.StatusOffline},
			want: `{"cab_id":"C1","trip_id":"","ts":"2024-02-29T23:59:59.000000001Z","lat":0.5,"lon":-0.25,"speed_kmh":0,"status":"offline"}`,
		},
		{
			name: "escapes and odd numbers",
			e: telemetry.Event{CabID: "a\"b\\c\n\x01é€😀", Time: time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC),
				Lat: 1e-7, Lon: 179.99999999999997, OdometerKm: 1e8, EngineTempC: -1e-20, Has: telemetry.HasOdometer | telemetry.HasEngineTemp},
			want: `{"cab_id":"a\"b\\c\n\u0001é€😀","ts":"1678-01-01T00:00:00Z","lat":1e-07,"lon":179.99999999999997,"engine_temp_c":-1e-20,"odometer_km":100000000}`,
		},
		{
			name: "non-UTC time is written in UTC",
			e:    telemetry.Event{CabID: "C", Time: time.Date(2026, 1, 1, 0, 30, 0, 0, time.FixedZone("x", 3600)), Lat: 1, Lon: 2},
			want: `{"cab_id":"C","ts":"2025-12-31T23:30:00Z","lat":1,"lon":2}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.e.Validate())
			got, err := telemetry.Append(nil, tt.e)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			require.True(t, json.Valid(got))
			back, err := telemetry.Decode(got)
			require.NoError(t, err)
			want := tt.e
			want.Time = want.Time.UTC()
			require.Equal(t, want, back)

			m, err := json.Marshal(tt.e)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(m))
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		input string
		want  telemetry.Event
	}{
		{"whitespace", " \t\n{ \"cab_id\" : \"C\" ,\r\n\"ts\":\"2026-11-25T10:00:00Z\" , \"lat\" : 1 , \"lon\" : 2 } \n",
			telemetry.Event{CabID: "C", Time: base, Lat: 1, Lon: 2}},
		{"unknown fields of every kind", `{"x":{"a":[1,{"b":null}],"c":"}"},"cab_id":"C","y":[[],{}],"z":true,"w":false,` +
			`"v":null,"u":-1.5e-3,"ts":"2026-11-25T10:00:00Z","lat":1,"lon":2,"t":"\"\u00e9"}`,
			telemetry.Event{CabID: "C", Time: base, Lat: 1, Lon: 2}},
		{"nulls for optional fields", `{"cab_id":"C","trip_id":null,"status":null,"speed_kmh":null,"ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
			telemetry.Event{CabID: "C", Time: base, Lat: 1, Lon: 2}},
		{"escaped strings", `{"cab_id":"C\u0041\/\"\\\t","trip_id":"\ud83d\ude00\ud800x","ts":"2026-11-25T10:00:00\u005a","status":"\u0068ired","lat":1,"lon":2}`,
			telemetry.Event{CabID: "CA/\"\\\t", TripID: "😀\uFFFDx", Time: base, Lat: 1, Lon: 2, Status: telemetry.StatusHired, Has: telemetry.HasTripID}},
		{"escaped field name", `{"cab\u005fid":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
			telemetry.Event{CabID: "C", Time: base, Lat: 1, Lon: 2}},
		{"time offsets and fractions", `{"cab_id":"C","ts":"2026-11-25t11:30:00.5+01:30","lat":1,"lon":2}`,
			telemetry.Event{CabID: "C", Time: base.Add(500 * time.Millisecond), Lat: 1, Lon: 2}},
		{"long fraction truncated", `{"cab_id":"C","ts":"2026-11-25T10:00:00.1234567891234z","lat":1,"lon":2}`,
			telemetry.Event{CabID: "C", Time: base.Add(123456789), Lat: 1, Lon: 2}},
		{"numbers", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":-0.0,"lon":1.8E2,"odometer_km":12345678901234567890123e-15,"speed_kmh":0.000000000000000000000000001}`,
			telemetry.Event{CabID: "C", Time: base, Lat: 0, Lon: 180, OdometerKm: 12345678.901234567890123, SpeedKmh: 1e-27,
				Has: telemetry.HasSpeed | telemetry.HasOdometer}},
		{"boundaries", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":90,"lon":-180,"heading_deg":360,"fuel_pct":100,` +
			`"speed_kmh":1000,"engine_temp_c":-100,"battery_v":1500,"odometer_km":1e8}`,
			telemetry.Event{CabID: "C", Time: base, Lat: 90, Lon: -180, HeadingDeg: 360, FuelPct: 100,
				SpeedKmh: 1000, EngineTempC: -100, BatteryV: 1500, OdometerKm: 1e8,
				Has: telemetry.HasHeading | telemetry.HasFuel | telemetry.HasSpeed | telemetry.HasEngineTemp | telemetry.HasBattery | telemetry.HasOdometer}},
		{"lower boundaries", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":-90,"lon":180,"heading_deg":0,"fuel_pct":0,` +
			`"speed_kmh":0,"engine_temp_c":400,"battery_v":0,"odometer_km":0}`,
			telemetry.Event{CabID: "C", Time: base, Lat: -90, Lon: 180, EngineTempC: 400,
				Has: telemetry.HasHeading | telemetry.HasFuel | telemetry.HasSpeed | telemetry.HasEngineTemp | telemetry.HasBattery | telemetry.HasOdometer}},
		{"IDs of 256 bytes", `{"cab_id":"` + strings.Repeat("c", 256) + `","trip_id":"` + strings.Repeat("é", 128) + `","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
			telemetry.Event{CabID: strings.Repeat("c", 256), TripID: strings.Repeat("é", 128), Time: base, Lat: 1, Lon: 2, Has: telemetry.HasTripID}},
		{"escaped ID of 256 bytes, longer in the input", `{"cab_id":"` + strings.Repeat(`\u0063`, 256) + `","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
			telemetry.Event{CabID: strings.Repeat("c", 256), Time: base, Lat: 1, Lon: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := telemetry.Decode([]byte(tt.input))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			var d telemetry.Decoder
			got, err = d.Decode([]byte(tt.input))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	const ok = `"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2`
	tests := []struct {
		name   string
		input  string
		field  string
		reason string
		target error
	}{
		{"empty", ``, "", "empty input", telemetry.ErrMalformed},
		{"blank", "  \n", "", "empty input", telemetry.ErrMalformed},
		{"not JSON", `hello`, "", "not a JSON object", telemetry.ErrMalformed},
		{"array", `[1]`, "", "not a JSON object", telemetry.ErrMalformed},
		{"truncated", `{` + ok, "", "unexpected end of input", telemetry.ErrMalformed},
		{"truncated string", `{"cab_id":"C`, "", "unexpected end of input", telemetry.ErrMalformed},
		{"trailing garbage", `{` + ok + `}x`, "", "trailing data after the object", telemetry.ErrMalformed},
		{"two objects", `{` + ok + `}{}`, "", "trailing data after the object", telemetry.ErrMalformed},
		{"trailing comma", `{` + ok + `,}`, "", "expected a field name", telemetry.ErrMalformed},
		{"missing colon", `{"cab_id" "C"}`, "", "expected ':' after field name", telemetry.ErrMalformed},
		{"missing comma", `{"cab_id":"C" "ts":1}`, "", "expected ',' or '}' after value", telemetry.ErrMalformed},
		{"single quotes", `{'cab_id':'C'}`, "", "expected a field name", telemetry.ErrMalformed},
		{"bad escape", `{"cab_id":"C\x"}`, "", "invalid escape in string", telemetry.ErrMalformed},
		{"bad unicode escape", `{"cab_id":"C\u12G4"}`, "", `invalid \u escape`, telemetry.ErrMalformed},
		{"control character", "{\"cab_id\":\"C\n\"}", "", "control character in string", telemetry.ErrMalformed},
		{"invalid UTF-8", "{\"cab_id\":\"C\xff\"}", "", "invalid UTF-8 in string", telemetry.ErrMalformed},
		{"leading zero", `{` + ok + `,"speed_kmh":01}`, "", "expected ',' or '}' after value", telemetry.ErrMalformed},
		{"bare minus", `{` + ok + `,"speed_kmh":-}`, "", "invalid number", telemetry.ErrMalformed},
		{"dot without digits", `{` + ok + `,"speed_kmh":1.}`, "", "invalid number", telemetry.ErrMalformed},
		{"exponent without digits", `{` + ok + `,"x":1e+}`, "", "invalid number", telemetry.ErrMalformed},
		{"NaN", `{` + ok + `,"speed_kmh":NaN}`, "", "invalid character at the start of a value", telemetry.ErrMalformed},
		{"bad literal", `{` + ok + `,"x":tru}`, "", "invalid literal", telemetry.ErrMalformed},
		{"unclosed unknown array", `{` + ok + `,"x":[1,2}`, "", "expected ',' or ']'", telemetry.ErrMalformed},
		{"too deep", `{` + ok + `,"x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, "", "nesting too deep", telemetry.ErrMalformed},
		{"syntax error inside wrongly typed value", `{"lat":[1,}`, "", "invalid character at the start of a value", telemetry.ErrMalformed},

		{"empty object", `{}`, "cab_id", "missing or empty", telemetry.ErrInvalid},
		{"missing cab_id", `{"ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`, "cab_id", "missing or empty", telemetry.ErrInvalid},
		{"empty cab_id", `{"cab_id":"","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`, "cab_id", "missing or empty", telemetry.ErrInvalid},
		{"null cab_id", `{"cab_id":null}`, "cab_id", "null for a required field", telemetry.ErrInvalid},
		{"numeric cab_id", `{"cab_id":42}`, "cab_id", "expected a string, got a number", telemetry.ErrInvalid},
		{"missing ts", `{"cab_id":"C","lat":1,"lon":2}`, "ts", "missing", telemetry.ErrInvalid},
		{"missing lat", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lon":2}`, "lat", "missing", telemetry.ErrInvalid},
		{"missing lon", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":2}`, "lon", "missing", telemetry.ErrInvalid},
		{"ts not RFC 3339", `{"cab_id":"C","ts":"25/11/2026 10:00"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{"ts without zone", `{"cab_id":"C","ts":"2026-11-25T10:00:00"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{"ts date only", `{"cab_id":"C","ts":"2026-11-25"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{"ts February 30", `{"cab_id":"C","ts":"2026-02-30T10:00:00Z"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{"ts hour 24", `{"cab_id":"C","ts":"2026-02-03T24:00:00Z"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{"ts empty fraction", `{"cab_id":"C","ts":"2026-02-03T10:00:00.Z"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{"ts bad offset", `{"cab_id":"C","ts":"2026-02-03T10:00:00+0100"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{"ts before year 0 in UTC", `{"cab_id":"C","ts":"0000-01-01T00:00:00+01:00"}`, "ts", timeRange, telemetry.ErrInvalid},
		{"zero time", `{"cab_id":"C","ts":"0001-01-01T00:00:00Z"}`, "ts", timeRange, telemetry.ErrInvalid},
		{"ts as number", `{"cab_id":"C","ts":1764064800}`, "ts", "expected a string, got a number", telemetry.ErrInvalid},
		{"latitude out of range", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":90.0001,"lon":2}`, "lat", "latitude out of range [-90, 90]", telemetry.ErrInvalid},
		{"longitude out of range", `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":9,"lon":-180.5}`, "lon", "longitude out of range [-180, 180]", telemetry.ErrInvalid},
		{"lat as string", `{"cab_id":"C","lat":"41.1"}`, "lat", "expected a number, got a string", telemetry.ErrInvalid},
		{"lat null", `{"cab_id":"C","lat":null}`, "lat", "null for a required field", telemetry.ErrInvalid},
		{"speed as bool", `{` + ok + `,"speed_kmh":true}`, "speed_kmh", "expected a number, got a boolean", telemetry.ErrInvalid},
		{"speed as object", `{` + ok + `,"speed_kmh":{}}`, "speed_kmh", "expected a number, got an object", telemetry.ErrInvalid},
		{"speed as array", `{` + ok + `,"speed_kmh":[]}`, "speed_kmh", "expected a number, got an array", telemetry.ErrInvalid},
		{"negative speed", `{` + ok + `,"speed_kmh":-1}`, "speed_kmh", "speed out of range [0, 1000]", telemetry.ErrInvalid},
		{"absurd speed", `{` + ok + `,"speed_kmh":1.5e308}`, "speed_kmh", "speed out of range [0, 1000]", telemetry.ErrInvalid},
		{"speed just above the limit", `{` + ok + `,"speed_kmh":1000.0000001}`, "speed_kmh", "speed out of range [0, 1000]", telemetry.ErrInvalid},
		{"engine too cold", `{` + ok + `,"engine_temp_c":-100.5}`, "engine_temp_c", "engine temperature out of range [-100, 400]", telemetry.ErrInvalid},
		{"engine too hot", `{` + ok + `,"engine_temp_c":1e300}`, "engine_temp_c", "engine temperature out of range [-100, 400]", telemetry.ErrInvalid},
		{"battery too high", `{` + ok + `,"battery_v":1500.5}`, "battery_v", "battery voltage out of range [0, 1500]", telemetry.ErrInvalid},
		{"odometer too high", `{` + ok + `,"odometer_km":1.5e308}`, "odometer_km", "odometer out of range [0, 1e8]", telemetry.ErrInvalid},
		{"negative heading", `{` + ok + `,"heading_deg":-0.5}`, "heading_deg", "heading out of range [0, 360]", telemetry.ErrInvalid},
		{"negative fuel", `{` + ok + `,"fuel_pct":-1e-9}`, "fuel_pct", "fuel out of range [0, 100]", telemetry.ErrInvalid},
		{"cab_id of 257 bytes", `{"cab_id":"` + strings.Repeat("c", 257) + `"}`, "cab_id", idTooLong, telemetry.ErrInvalid},
		{"cab_id of 600 bytes", `{"cab_id":"` + strings.Repeat("c", 600) + `"}`, "cab_id", idTooLong, telemetry.ErrInvalid},
		{"escaped cab_id of 257 bytes", `{"cab_id":"` + strings.Repeat(`\u00e9`, 128) + `\n"}`, "cab_id", idTooLong, telemetry.ErrInvalid},
		{"trip_id of 257 bytes", `{"cab_id":"C","trip_id":"` + strings.Repeat("t", 257) + `"}`, "trip_id", idTooLong, telemetry.ErrInvalid},
		{"heading out of range", `{` + ok + `,"heading_deg":361}`, "heading_deg", "heading out of range [0, 360]", telemetry.ErrInvalid},
		{"fuel out of range", `{` + ok + `,"fuel_pct":101}`, "fuel_pct", "fuel out of range [0, 100]", telemetry.ErrInvalid},
		{"negative battery", `{` + ok + `,"battery_v":-12}`, "battery_v", "battery voltage out of range [0, 1500]", telemetry.ErrInvalid},
		{"negative odometer", `{` + ok + `,"odometer_km":-1}`, "odometer_km", "odometer out of range [0, 1e8]", telemetry.ErrInvalid},
		{"number overflow", `{` + ok + `,"engine_temp_c":1e400}`, "engine_temp_c", "number out of range", telemetry.ErrInvalid},
		{"unknown status", `{` + ok + `,"status":"parked"}`, "status", "unknown status", telemetry.ErrInvalid},
		{"status unknown is not a status", `{` + ok + `,"status":"unknown"}`, "status", "unknown status", telemetry.ErrInvalid},
		{"status as number", `{` + ok + `,"status":1}`, "status", "expected a string, got a number", telemetry.ErrInvalid},
		{"duplicate field", `{` + ok + `,"lat":3}`, "lat", "duplicate field", telemetry.ErrInvalid},
		{"duplicate optional field", `{` + ok + `,"trip_id":"a","trip_id":"a"}`, "trip_id", "duplicate field", telemetry.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := telemetry.Decode([]byte(tt.input))
			require.Error(t, err)
			require.ErrorIs(t, err, tt.target)
			var de *telemetry.DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tt.field, de.Field)
			require.Equal(t, tt.reason, de.Reason)
			require.LessOrEqual(t, de.Offset, len(tt.input))
			require.True(t, strings.HasPrefix(err.Error(), "telemetry: "), err.Error())

			var e telemetry.Event
			require.Error(t, json.Unmarshal([]byte(tt.input), &e))
		})
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	_, err := telemetry.Decode([]byte(`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":91,"lon":2}`))
	require.EqualError(t, err, `telemetry: invalid event: field "lat": latitude out of range [-90, 90] (at byte 48)`)
	_, err = telemetry.Decode([]byte(`nope`))
	require.EqualError(t, err, `telemetry: malformed event: not a JSON object (at byte 0)`)
	err = telemetry.Event{}.Validate()
	require.EqualError(t, err, `telemetry: invalid event: field "cab_id": missing or empty`)
}

func TestValidate(t *testing.T) {
	ok := sampleEvent()
	tests := []struct {
		name  string
		edit  func(*telemetry.Event)
		field string
	}{
		{"valid", func(*telemetry.Event) {}, ""},
		{"no cab", func(e *telemetry.Event) { e.CabID = "" }, "cab_id"},
		{"bad UTF-8 cab", func(e *telemetry.Event) { e.CabID = "\xff" }, "cab_id"},
		{"bad UTF-8 trip", func(e *telemetry.Event) { e.TripID = "\xff" }, "trip_id"},
		{"bad UTF-8 trip ignored when absent", func(e *telemetry.Event) { e.TripID, e.Has = "\xff", 0 }, ""},
		{"no time", func(e *telemetry.Event) { e.Time = time.Time{} }, "ts"},
		{"year 10000", func(e *telemetry.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "ts"},
		{"year 1000", func(e *telemetry.Event) { e.Time = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC) }, "ts"},
		{"year 9999", func(e *telemetry.Event) { e.Time = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }, "ts"},
		{"first representable time", func(e *telemetry.Event) { e.Time = time.Unix(0, math.MinInt64+1) }, ""},
		{"last representable time", func(e *telemetry.Event) { e.Time = time.Unix(0, math.MaxInt64-1) }, ""},
		{"no watermark time", func(e *telemetry.Event) { e.Time = time.Unix(0, math.MinInt64) }, "ts"},
		{"end of time", func(e *telemetry.Event) { e.Time = time.Unix(0, math.MaxInt64) }, "ts"},
		{"cab of 256 bytes", func(e *telemetry.Event) { e.CabID = strings.Repeat("c", 256) }, ""},
		{"cab of 257 bytes", func(e *telemetry.Event) { e.CabID = strings.Repeat("c", 257) }, "cab_id"},
		{"trip of 257 bytes", func(e *telemetry.Event) { e.TripID = strings.Repeat("t", 257) }, "trip_id"},
		{"absurd speed", func(e *telemetry.Event) { e.SpeedKmh = 1.5e308 }, "speed_kmh"},
		{"infinite odometer", func(e *telemetry.Event) { e.OdometerKm = math.Inf(1) }, "odometer_km"},
		{"NaN lat", func(e *telemetry.Event) { e.Lat = math.NaN() }, "lat"},
		{"lat", func(e *telemetry.Event) { e.Lat = -91 }, "lat"},
		{"lon", func(e *telemetry.Event) { e.Lon = math.Inf(1) }, "lon"},
		{"status", func(e *telemetry.Event) { e.Status = 9 }, "status"},
		{"speed", func(e *telemetry.Event) { e.SpeedKmh = -1 }, "speed_kmh"},
		{"speed ignored when absent", func(e *telemetry.Event) { e.SpeedKmh, e.Has = -1, 0 }, ""},
		{"heading", func(e *telemetry.Event) { e.HeadingDeg = 400 }, "heading_deg"},
		{"engine temp", func(e *telemetry.Event) { e.EngineTempC = math.NaN() }, "engine_temp_c"},
		{"engine temp too high", func(e *telemetry.Event) { e.EngineTempC = 401 }, "engine_temp_c"},
		{"battery too high", func(e *telemetry.Event) { e.BatteryV = 1501 }, "battery_v"},
		{"odometer too high", func(e *telemetry.Event) { e.OdometerKm = 1e8 + 1 }, "odometer_km"},
		{"fuel", func(e *telemetry.Event) { e.FuelPct = -3 }, "fuel_pct"},
		{"battery", func(e *telemetry.Event) { e.BatteryV = -3 }, "battery_v"},
		{"odometer", func(e *telemetry.Event) { e.OdometerKm = -3 }, "odometer_km"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.edit(&e)
			err := e.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, telemetry.ErrInvalid)
			var de *telemetry.DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tt.field, de.Field)
			require.Equal(t, -1, de.Offset)
			_, err = json.Marshal(e)
			require.ErrorIs(t, err, telemetry.ErrInvalid)
		})
	}
}

func TestStatus(t *testing.T) {
	for _, s := range []telemetry.Status{telemetry.StatusAvailable, telemetry.StatusHired, telemetry.StatusOffline} {
		text, err := s.MarshalText()
		require.NoError(t, err)
		require.Equal(t, s.String(), string(text))
		var back telemetry.Status
		require.NoError(t, back.UnmarshalText(text))
		require.Equal(t, s, back)
		p, err := telemetry.ParseStatus(s.String())
		require.NoError(t, err)
		require.Equal(t, s, p)
	}
	require.Equal(t, "unknown", telemetry.StatusUnknown.String())
	require.Equal(t, "unknown", telemetry.Status(200).String())
	_, err := telemetry.StatusUnknown.MarshalText()
	require.Error(t, err)
	_, err = telemetry.ParseStatus("Hired")
	require.ErrorContains(t, err, "telemetry: unknown status")
	var s telemetry.Status
	require.Error(t, s.UnmarshalText([]byte("x")))
}

func TestUnmarshalJSON(t *testing.T) {
	var msg struct {
		Events []telemetry.Event `json:"events"`
		Last   telemetry.Event   `json:"last"`
	}
	msg.Last = sampleEvent()
	require.NoError(t, json.Unmarshal([]byte(`{"events":[`+sample+`, `+sample+`],"last":null}`), &msg))
	require.Equal(t, []telemetry.Event{sampleEvent(), sampleEvent()}, msg.Events)
	require.Equal(t, sampleEvent(), msg.Last)
}

func TestDecoderInterns(t *testing.T) {
	d := telemetry.Decoder{MaxIDs: 2}
	a, err := d.Decode([]byte(sample))
	require.NoError(t, err)
	b, err := d.Decode([]byte(sample))
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Equal(t, "CAB-0042", b.CabID)
	require.Equal(t, "T-77", b.TripID)
	// Overflowing the table clears it and keeps working.
	for _, id := range []string{"A", "B", "C", "D"} {
		e, err := d.Decode([]byte(`{"cab_id":"` + id + `","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`))
		require.NoError(t, err)
		require.Equal(t, id, e.CabID)
	}
}

// plainEvent is what a user of encoding/json would write for the schema.
type plainEvent struct {
	CabID       string    `json:"cab_id"`
	TripID      *string   `json:"trip_id"`
	TS          time.Time `json:"ts"`
	Lat         float64   `json:"lat"`
	Lon         float64   `json:"lon"`
	SpeedKmh    *float64  `json:"speed_kmh"`
	HeadingDeg  *float64  `json:"heading_deg"`
	Status      string    `json:"status"`
	EngineTempC *float64  `json:"engine_temp_c"`
	FuelPct     *float64  `json:"fuel_pct"`
	BatteryV    *float64  `json:"battery_v"`
	OdometerKm  *float64  `json:"odometer_km"`
}

func TestAgreesWithEncodingJSON(t *testing.T) {
	e, err := telemetry.Decode([]byte(sample))
	require.NoError(t, err)
	var p plainEvent
	require.NoError(t, json.Unmarshal([]byte(sample), &p))
	require.Equal(t, p.CabID, e.CabID)
	require.Equal(t, *p.TripID, e.TripID)
	require.True(t, p.TS.Equal(e.Time))
	require.Equal(t, []float64{p.Lat, p.Lon, *p.SpeedKmh, *p.HeadingDeg, *p.EngineTempC, *p.FuelPct, *p.BatteryV, *p.OdometerKm},
		[]float64{e.Lat, e.Lon, e.SpeedKmh, e.HeadingDeg, e.EngineTempC, e.FuelPct, e.BatteryV, e.OdometerKm})
	require.Equal(t, p.Status, e.Status.String())
}

func TestDecodeErrorUnwrap(t *testing.T) {
	err := error(&telemetry.DecodeError{Field: "lat", Reason: "x", Offset: 3, Err: telemetry.ErrInvalid})
	require.True(t, errors.Is(err, telemetry.ErrInvalid))
	require.False(t, errors.Is(err, telemetry.ErrMalformed))
}

// TestDecodeErrorInvalidRecord: Decode's errors say whether the record is well-formed but
// refused (InvalidRecord, which a kafka.Source reads as the dead-letter reason "invalid"), for
// a value out of range, and not for malformed input.
func TestDecodeErrorInvalidRecord(t *testing.T) {
	type invalidRecord interface{ InvalidRecord() bool }
	for in, want := range map[string]bool{
		`{"cab_id":"C1","ts":"2026-01-01T00:00:00Z","lat":91,"lon":0}`: true,
		`{"cab_id":"C1","ts":"2026-01-01T00:00:00Z","lat":`:            false,
	} {
		_, err := telemetry.Decode([]byte(in))
		var ir invalidRecord
		require.True(t, errors.As(err, &ir), in)
		require.Equal(t, want, ir.InvalidRecord(), in)
	}
}

var (
	_ json.Marshaler           = telemetry.Event{}
	_ json.Unmarshaler         = (*telemetry.Event)(nil)
	_ encoding.TextMarshaler   = telemetry.StatusHired
	_ encoding.TextUnmarshaler = (*telemetry.Status)(nil)
)

// Reasons of the range errors, as Decode words them.
const (
	timeRange = "timestamp outside 1677-09-21T00:12:43Z..2262-04-11T23:47:16Z (the range of time.Time.UnixNano)"
	idTooLong = "longer than 256 bytes (MaxIDLen)"
)

// TestDecodeEventTimeRange: event times that time.Time.UnixNano cannot
// represent (it wraps around: year 1000 reads as 2169, 9999 as 1816) are a
// field error, never a wrong time; the edges of the range decode to times
// that survive UnixNano.
func TestDecodeEventTimeRange(t *testing.T) {
	tests := []struct {
		ts string
		ok bool
	}{
		{"1000-01-01T00:00:00Z", false},
		{"9999-12-31T23:59:59Z", false},
		{"1677-09-21T00:12:43.145224192Z", false}, // math.MinInt64 ns: "no watermark"
		{"1677-09-21T00:12:43.145224193Z", true},
		{"1677-09-21T01:12:43.145224193+01:00", true},
		{"1677-09-21T00:12:43.145224193+00:01", false},
		{"1677-09-20T23:59:59Z", false},
		{"2262-04-11T23:47:16.854775806Z", true},
		{"2262-04-11T23:47:16.854775807Z", false}, // math.MaxInt64 ns: "end of time"
		{"2262-04-11T22:47:16.854775806-01:00", true},
		{"2262-04-12T00:00:00Z", false},
		{"2262-04-12T00:00:00+23:59", true},
		{"1970-01-01T00:00:00Z", true},
		{"2099-06-01T00:00:00Z", true}, // far future but representable: the pipeline's bound decides
	}
	for _, tt := range tests {
		t.Run(tt.ts, func(t *testing.T) {
			e, err := telemetry.Decode([]byte(`{"cab_id":"C","ts":"` + tt.ts + `","lat":1,"lon":2}`))
			if !tt.ok {
				require.ErrorIs(t, err, telemetry.ErrInvalid)
				var de *telemetry.DecodeError
				require.ErrorAs(t, err, &de)
				require.Equal(t, "ts", de.Field)
				require.Equal(t, timeRange, de.Reason)
				return
			}
			require.NoError(t, err)
			want, err := time.Parse(time.RFC3339Nano, tt.ts)
			require.NoError(t, err)
			require.True(t, want.Equal(e.Time), "%v != %v", want, e.Time)
			require.True(t, time.Unix(0, e.Time.UnixNano()).Equal(e.Time), "UnixNano wrapped %v", e.Time)
			require.NoError(t, e.Validate())
		})
	}
}

// TestAppendRefusesUnencodable: Append never writes invalid JSON; it returns
// an error wrapping ErrEncode and leaves dst as it was.
func TestAppendRefusesUnencodable(t *testing.T) {
	ok := sampleEvent()
	tests := []struct {
		name  string
		edit  func(*telemetry.Event)
		field string // in the error; "" for no error
	}{
		{"valid", func(*telemetry.Event) {}, ""},
		{"out of range but finite is written", func(e *telemetry.Event) { e.Lat, e.SpeedKmh = 91, 1.5e308 }, ""},
		{"NaN lat", func(e *telemetry.Event) { e.Lat = math.NaN() }, "lat"},
		{"infinite lon", func(e *telemetry.Event) { e.Lon = math.Inf(-1) }, "lon"},
		{"infinite speed", func(e *telemetry.Event) { e.SpeedKmh = math.Inf(1) }, "speed_kmh"},
		{"NaN speed absent", func(e *telemetry.Event) { e.SpeedKmh, e.Has = math.NaN(), 0 }, ""},
		{"NaN heading", func(e *telemetry.Event) { e.HeadingDeg = math.NaN() }, "heading_deg"},
		{"NaN engine", func(e *telemetry.Event) { e.EngineTempC = math.NaN() }, "engine_temp_c"},
		{"NaN fuel", func(e *telemetry.Event) { e.FuelPct = math.NaN() }, "fuel_pct"},
		{"NaN battery", func(e *telemetry.Event) { e.BatteryV = math.NaN() }, "battery_v"},
		{"NaN odometer", func(e *telemetry.Event) { e.OdometerKm = math.NaN() }, "odometer_km"},
		{"year 10000", func(e *telemetry.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "ts"},
		{"year -1", func(e *telemetry.Event) { e.Time = time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC) }, "ts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.edit(&e)
			got, err := telemetry.Append([]byte("prefix"), e)
			if tt.field == "" {
				require.NoError(t, err)
				require.True(t, json.Valid(got[len("prefix"):]), "%s", got)
				return
			}
			require.ErrorIs(t, err, telemetry.ErrEncode)
			require.ErrorContains(t, err, tt.field)
			require.Equal(t, "prefix", string(got))
			_, err = json.Marshal(e)
			require.Error(t, err)
		})
	}
}
