// Fuzzing of the decoder against re-encoding and encoding/json.

package telemetry_test

import (
	"encoding/json"
	"errors"
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
