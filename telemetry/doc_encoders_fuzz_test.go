package telemetry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/telemetry"
)

// asJSONMap reads b as encoding/json does, numbers as float64 bits and
// RFC 3339 strings as instants, so two documents compare by meaning.
func asJSONMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %q", b)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return m
}

func sameMeaning(t *testing.T, got, want map[string]any, timeKeys ...string) {
	t.Helper()
	for _, k := range timeKeys {
		for _, m := range []map[string]any{got, want} {
			if s, ok := m[k].(string); ok {
				tm, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					t.Fatalf("%s: %v", k, err)
				}
				m[k] = tm.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AppendJSON %v\n encoding/json %v", got, want)
	}
}

func fuzzTime(ns int64, sec int64) time.Time {
	return time.Unix(sec, ns%1e9).UTC()
}

func FuzzDocEncoders(f *testing.F) {
	f.Add("C\x00\x7f\xff\"\\\u2028<>&", "Z", int64(0), int64(1700000000), 1.5, math.Copysign(0, -1), 41.1, -8.6, int64(-1))
	f.Add("é", "", int64(999999999), int64(-62135596800), 1e21, 1e-7, 90.0, 180.0, int64(math.MinInt64))
	f.Add("\xed\xa0\x80", "x", int64(1), int64(253402300799), 5e-324, math.MaxFloat64, 0.1, 0.2, int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, s1, s2 string, ns, sec int64, a, b, lat, lon float64, n int64) {
		tm := fuzzTime(ns, sec)
		cs := telemetry.CabStats{CabID: s1, WindowStart: tm, WindowEnd: tm.Add(time.Minute), Timestamp: tm, Events: n,
			DistanceKm: a, AvgSpeedKmh: b, MaxSpeedKmh: a, LastLocation: telemetry.Location{Lat: lat, Lon: lon},
			LastStatus: telemetry.Status(n & 7), Fleet: s2, DriverID: s1}
		got, err := cs.AppendJSON([]byte("x"))
		cs2 := cs
		if cs2.LastStatus > telemetry.StatusOffline {
			cs2.LastStatus = 0
		}
		want, jerr := json.Marshal(cs2)
		if err != nil {
			if !errors.Is(err, telemetry.ErrEncode) || string(got) != "x" {
				t.Fatalf("error %v, dst %q", err, got)
			}
			if jerr == nil {
				// encoding/json writes times outside 0000..9999 in the UTC check only via year of location; here UTC.
				t.Fatalf("AppendJSON refused %+v (%v); encoding/json wrote %s", cs, err, want)
			}
			return
		}
		if jerr != nil {
			t.Fatalf("AppendJSON wrote %s; encoding/json: %v", got, jerr)
		}
		sameMeaning(t, asJSONMap(t, got[1:]), asJSONMap(t, want), "window_start", "window_end", "@timestamp")

		zd := telemetry.ZoneDemand{Zone: s1, WindowStart: tm, WindowEnd: tm, Timestamp: tm, Events: n, Cabs: -n, Pickups: n / 3,
			AvgSpeedKmh: a, SpeedSamples: n, SpeedSumKmh: b, Location: telemetry.Location{Lat: lat, Lon: lon}}
		got, err = zd.AppendJSON(nil)
		want, jerr = json.Marshal(zd)
		if (err != nil) != (jerr != nil) {
			t.Fatalf("AppendJSON %v; encoding/json %v", err, jerr)
		}
		if err == nil {
			sameMeaning(t, asJSONMap(t, got), asJSONMap(t, want), "window_start", "window_end", "@timestamp")
		}
		al := telemetry.Alert{ID: s1, Type: telemetry.AlertType(s2), CabID: s2, Time: tm, Location: telemetry.Location{Lat: lat, Lon: lon},
			Severity: s1, Details: telemetry.AlertDetails{Value: a, Limit: b, DurationS: lat, Fence: s2}}
		got, err = al.AppendJSON(nil)
		want, jerr = json.Marshal(al)
		if (err != nil) != (jerr != nil) {
			t.Fatalf("AppendJSON %v; encoding/json %v", err, jerr)
		}
		if err == nil {
			sameMeaning(t, asJSONMap(t, got), asJSONMap(t, want), "@timestamp")
		}
	})
}
