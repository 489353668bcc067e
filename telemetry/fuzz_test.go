package telemetry_test

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		sample,
		`{"cab_id":"C","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
		`{"cab_id":"C\u00e9\ud83d\ude00","trip_id":"","ts":"2026-11-25t11:30:00.5+01:30","lat":-0.0,"lon":1.8E2,"status":"offline"}`,
		`{"x":{"a":[1,{"b":null}],"c":"}"},"cab_id":"C","ts":"0000-01-01T00:00:00Z","lat":90,"lon":-180,"speed_kmh":1e300}`,
		`{"cab_id":"C","ts":"9999-12-31T23:59:59.999999999Z","lat":1e-30,"lon":2,"fuel_pct":null}`,
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
		enc := telemetry.Append(nil, e)
		back, err := telemetry.Decode(enc)
		require.NoError(t, err, "re-decoding %s", enc)
		require.Equal(t, e, back)
		require.Equal(t, string(enc), string(telemetry.Append(nil, back)))

		var d telemetry.Decoder
		interned, err := d.Decode(data)
		require.NoError(t, err)
		require.Equal(t, e, interned)
	})
}
