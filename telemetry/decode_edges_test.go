package telemetry_test

import (
	"strings"
	"testing"
)

func TestDecodeEdgesMatchOracle(t *testing.T) {
	ev := func(k, v string) string {
		return `{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2,"` + k + `":` + v + `}`
	}
	nums := []string{
		strings.Repeat("9", 400), "0." + strings.Repeat("0", 400) + "1", "1" + strings.Repeat("0", 30) + "e-30",
		"0." + strings.Repeat("0", 300) + "1e300", "1e-99999999999999999999", "0e99999999999999999999", "-0e-0",
		"99.99999999999999999999999", "100.00000000000000000000001", "1000.0000000000000001", "1e3", "1E+3", "10e2",
		"359.99999999999999999999", "360.00000000000000001", "0.0000000000000000000000000000001", "-0.0000000000000000001",
		"9007199254740993", "9007199254740993e-14", "1234567.1234567", "12345678.1", "1.12345678", "0000", "1.0e", "-", "+1",
		"1.5E-1", "1e22", "1e23", "4.9406564584124654e-324", "12345678901234567890e-17", "123456789012345678901e-19",
	}
	for _, k := range []string{"speed_kmh", "heading_deg", "odometer_km", "engine_temp_c", "fuel_pct"} {
		for _, n := range nums {
			checkOracle(t, []byte(ev(k, n)))
			checkOracle(t, []byte(ev(k, "-"+n)))
		}
	}
	// lengths around the fast path's limit
	for n := 150; n <= 260; n++ {
		for _, tail := range []string{"", ",\"odometer_km\":1.5"} {
			s := `{"cab_id":"` + strings.Repeat("C", n) + `","trip_id":"` + strings.Repeat("T", n) + `","ts":"2026-11-25T10:00:00.123456789Z","lat":1.1234567,"lon":2` + tail + `}`
			checkOracle(t, []byte(s))
		}
	}
	for _, id := range []string{`\u00e9`, `\ud83d\ude00`, `\ud83d`, `\ude00\ud83d`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`, `\u0000`, `\/`, `\"`, "é", "\u2028",
		strings.Repeat(`\u00e9`, 128), strings.Repeat(`\u00e9`, 129), strings.Repeat("é", 128), strings.Repeat("é", 129) + "x", strings.Repeat(`\ud83d`, 86), strings.Repeat(`\ud83d`, 85) + "x"} {
		checkOracle(t, []byte(`{"cab_id":"`+id+`","trip_id":"`+id+`","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`))
	}
	for _, ts := range []string{"1677-09-21T00:12:43.145224193Z", "1677-09-21T00:12:43.145224192Z", "2262-04-11T23:47:16.854775806Z", "2262-04-11T23:47:16.854775807Z",
		"2262-04-12T00:47:16.854775806+01:00", "1677-09-20T23:12:43.145224193-01:00", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-30T00:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
		"2026-11-25T10:00:00.0000000000000000000001Z", "2026-11-25T23:59:60Z", "2026-11-25T24:00:00Z", "2026-11-25T10:00:00+24:00", "2026-11-25T10:00:00+0100", "2026-11-25 10:00:00Z", "2026-11-25T10:00:00\u005a", "\u0032026-11-25T10:00:00Z"} {
		checkOracle(t, []byte(`{"cab_id":"C","ts":"`+ts+`","lat":1,"lon":2}`))
	}
}
