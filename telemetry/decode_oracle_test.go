package telemetry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fleetstream/fleetstream/telemetry"
)

var tsRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):\d{2})$`)

// oracleDecode is a slow reference of Decode's documented contract built on
// encoding/json, strconv and time.Parse. kind is "" (accepted), "malformed"
// or "invalid".
func oracleDecode(data []byte) (e telemetry.Event, kind string) {
	if !utf8.Valid(data) || !json.Valid(data) {
		return e, "malformed"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, _ := dec.Token()
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return e, "malformed"
	}
	seen := map[string]bool{}
	var vals []struct {
		k string
		v json.RawMessage
	}
	for dec.More() {
		kt, _ := dec.Token()
		k := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return e, "malformed"
		}
		vals = append(vals, struct {
			k string
			v json.RawMessage
		}{k, raw})
	}
	invalid := ""
	for _, kv := range vals {
		known := true
		switch kv.k {
		case "cab_id", "trip_id", "ts", "lat", "lon", "speed_kmh", "heading_deg", "status", "engine_temp_c", "fuel_pct", "battery_v", "odometer_km":
		default:
			known = false
		}
		if !known {
			continue
		}
		if seen[kv.k] || seen[kv.k+"#null"] {
			invalid = "invalid"
			continue
		}
		seen[kv.k] = true
		var v any
		d := json.NewDecoder(bytes.NewReader(kv.v))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			panic(err)
		}
		required := kv.k == "cab_id" || kv.k == "ts" || kv.k == "lat" || kv.k == "lon"
		if v == nil {
			if required {
				invalid = "invalid"
			}
			delete(seen, kv.k)
			seen[kv.k+"#null"] = true
			continue
		}
		switch kv.k {
		case "cab_id", "trip_id", "ts", "status":
			s, ok := v.(string)
			if !ok {
				invalid = "invalid"
				continue
			}
			switch kv.k {
			case "cab_id":
				if s == "" || len(s) > telemetry.MaxIDLen {
					invalid = "invalid"
				}
				e.CabID = s
			case "trip_id":
				if len(s) > telemetry.MaxIDLen {
					invalid = "invalid"
				}
				e.TripID = s
				e.Has |= telemetry.HasTripID
			case "ts":
				if !tsRe.MatchString(s) {
					invalid = "invalid"
					continue
				}
				u := []byte(s)
				u[10] = 'T'
				if u[len(u)-1] == 'z' {
					u[len(u)-1] = 'Z'
				}
				tm, err := time.Parse(time.RFC3339Nano, string(u))
				if err != nil {
					invalid = "invalid"
					continue
				}
				tm = tm.UTC()
				if tm.Before(time.Unix(0, math.MinInt64+1)) || tm.After(time.Unix(0, math.MaxInt64-1)) {
					invalid = "invalid"
				}
				e.Time = tm
			case "status":
				st, err := telemetry.ParseStatus(s)
				if err != nil {
					invalid = "invalid"
				}
				e.Status = st
			}
		default:
			n, ok := v.(json.Number)
			if !ok {
				invalid = "invalid"
				continue
			}
			f, err := strconv.ParseFloat(string(n), 64)
			if err != nil {
				invalid = "invalid"
				continue
			}
			lo, hi := -90.0, 90.0
			var p *float64
			var bit telemetry.Field
			switch kv.k {
			case "lat":
				p = &e.Lat
			case "lon":
				lo, hi, p = -180, 180, &e.Lon
			case "speed_kmh":
				lo, hi, p, bit = 0, 1000, &e.SpeedKmh, telemetry.HasSpeed
			case "heading_deg":
				lo, hi, p, bit = 0, 360, &e.HeadingDeg, telemetry.HasHeading
			case "engine_temp_c":
				lo, hi, p, bit = -100, 400, &e.EngineTempC, telemetry.HasEngineTemp
			case "fuel_pct":
				lo, hi, p, bit = 0, 100, &e.FuelPct, telemetry.HasFuel
			case "battery_v":
				lo, hi, p, bit = 0, 1500, &e.BatteryV, telemetry.HasBattery
			case "odometer_km":
				lo, hi, p, bit = 0, 1e8, &e.OdometerKm, telemetry.HasOdometer
			}
			if f < lo || f > hi {
				invalid = "invalid"
			}
			*p = f
			e.Has |= bit
		}
	}
	if invalid != "" {
		return telemetry.Event{}, invalid
	}
	for _, k := range []string{"cab_id", "ts", "lat", "lon"} {
		if !seen[k] {
			return telemetry.Event{}, "invalid"
		}
	}
	return e, ""
}

func checkOracle(t *testing.T, data []byte) {
	t.Helper()
	want, kind := oracleDecode(data)
	for _, d := range []*telemetry.Decoder{nil, {}} {
		var got telemetry.Event
		var err error
		if d == nil {
			got, err = telemetry.Decode(data)
		} else {
			got, err = d.Decode(data)
		}
		switch {
		case err == nil && kind != "":
			t.Fatalf("Decode(%q) accepted; reference says %s", data, kind)
		case err != nil && kind == "":
			t.Fatalf("Decode(%q) = %v; reference accepts %+v", data, err, want)
		case err != nil:
			var de *telemetry.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("not a DecodeError: %v", err)
			}
			if de.Reason == "nesting too deep" {
				return
			}
			if kind == "invalid" && errors.Is(err, telemetry.ErrMalformed) {
				t.Fatalf("Decode(%q) = %v; reference says %s", data, err, kind)
			}
		default:
			if got.CabID != want.CabID || got.TripID != want.TripID || !got.Time.Equal(want.Time) || got.Time != got.Time.UTC() ||
				got.Status != want.Status || got.Has != want.Has ||
				math.Float64bits(got.Lat) != math.Float64bits(want.Lat) || math.Float64bits(got.Lon) != math.Float64bits(want.Lon) ||
				math.Float64bits(got.SpeedKmh) != math.Float64bits(want.SpeedKmh) || math.Float64bits(got.HeadingDeg) != math.Float64bits(want.HeadingDeg) ||
				math.Float64bits(got.EngineTempC) != math.Float64bits(want.EngineTempC) || math.Float64bits(got.FuelPct) != math.Float64bits(want.FuelPct) ||
				math.Float64bits(got.BatteryV) != math.Float64bits(want.BatteryV) || math.Float64bits(got.OdometerKm) != math.Float64bits(want.OdometerKm) {
				t.Fatalf("Decode(%q)\n got %+v\nwant %+v", data, got, want)
			}
		}
	}
}

var oracleSeeds = []string{
	`{"cab_id":"CAB-0042","trip_id":"T-77","ts":"2026-11-25T10:00:00.123Z","lat":41.1579,"lon":-8.6291,"speed_kmh":42.5,"heading_deg":270,"status":"hired","engine_temp_c":90.1,"fuel_pct":55.0,"battery_v":12.6,"odometer_km":123456.7}`,
	`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
	`{"cab_id":"C\u00e9\ud83d\ude00","trip_id":"\ud800x","ts":"2026-11-25t11:30:00.5+01:30","lat":-0.0,"lon":1.8E2,"status":"off\u006cine"}`,
	` { "lon" : -180 , "lat" : 90.000000000000000000001 , "ts" : "1677-09-21T00:12:43.145224193Z" , "cab_id" : "\"" } `,
	`{"cab_id":"C","ts":"2262-04-11T23:47:16.854775806Z","lat":1e-30,"lon":2,"fuel_pct":null,"odometer_km":1e8,"x":[{"y":null}]}`,
	`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":-0,"lon":0.0000001,"speed_kmh":1000.0000000,"heading_deg":359.9999999,"engine_temp_c":-99.99999999}`,
	`{"cab_id":"C","ts":"2026-11-25T10:00:00.1234567891234Z","lat":12345678e-6,"lon":-1.7976931348623157e308,"battery_v":1500e0}`,
	`{"cab_id":"C","ts":"2024-02-29T23:59:59-23:59","lat":0.1,"lon":0.2,"status":null,"trip_id":null}`,
	`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2,"speed_kmh":999.9999999999999999999999,"odometer_km":0.00000000000000000000000000001e37}`,
	`{"cab_id":"\ud83d\ud83d\ude00","trip_id":"\u0000","ts":"\u0032026-11-25T10:00:00\u005a","lat":1,"lon":2,"heading_deg":3.6e2}`,
	`{"cab_id":"CAB-0042","trip_id":"T-77","ts":"2026-11-25T10:00:00.123Z","lat":41.1579,"lon":-8.6291,"speed_kmh":42.5,"heading_deg":270,"status":"hired","engine_temp_c":90.1,"fuel_pct":55.0,"battery_v":12.6,"odometer_km":123456.7,"cab_id":"D"}`,
}

func FuzzDecodeOracle(f *testing.F) {
	for _, s := range oracleSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkOracle(t, data) })
}

func TestDecodeOracleSeeds(t *testing.T) {
	for _, s := range oracleSeeds {
		checkOracle(t, []byte(s))
	}
	_ = strings.Repeat
}
