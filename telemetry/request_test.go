// Tests of the ride request schema and codec.

package telemetry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []telemetry.Request{
		{RequestID: "R-1", Time: time.Date(2026, 1, 1, 0, 3, 10, 500_000_000, time.UTC), Lat: 41.15, Lon: -8.61, Status: telemetry.RequestRequested},
		{RequestID: "R-1", Time: time.Date(2026, 1, 1, 0, 4, 0, 0, time.UTC), Lat: 41.15, Lon: -8.61, Status: telemetry.RequestAssigned, CabID: "CAB-0042"},
		{RequestID: `R-"é"`, Time: time.Date(2013, 7, 1, 0, 0, 0, 0, time.UTC), Lat: -90, Lon: 180, Status: telemetry.RequestCancelled},
	} {
		b, err := telemetry.AppendRequest(nil, r)
		require.NoError(t, err)
		back, err := telemetry.RequestCodec{}.Decode(b)
		require.NoError(t, err, "%s", b)
		require.Equal(t, r, back, "%s", b)
	}
	b, err := telemetry.AppendRequest([]byte("x"), telemetry.Request{RequestID: "R-1", Time: time.Unix(0, 0).UTC(), Status: telemetry.RequestAssigned, CabID: "C"})
	require.NoError(t, err)
	require.Equal(t, `x{"request_id":"R-1","ts":"1970-01-01T00:00:00Z","lat":0,"lon":0,"status":"assigned","cab_id":"C"}`, string(b))
}

func TestRequestDecodeErrors(t *testing.T) {
	const ok = `"request_id":"R-1","ts":"2026-01-01T00:00:00Z","lat":41,"lon":-8`
	for _, c := range []struct {
		in, field, reason string
		err               error
	}{
		{``, "", "not a JSON object", telemetry.ErrMalformed},
		{`{"request_id":`, "", "unexpected end of JSON input", telemetry.ErrMalformed},
		{`[1]`, "", "not a JSON object", telemetry.ErrMalformed},
		{`null`, "", "not a JSON object", telemetry.ErrMalformed},
		{`{` + ok + `,"status":"requested"} x`, "", "after top-level value", telemetry.ErrMalformed},
		{`{"ts":"2026-01-01T00:00:00Z","lat":41,"lon":-8,"status":"requested"}`, "request_id", "missing", telemetry.ErrInvalid},
		{`{` + ok + `}`, "status", "missing", telemetry.ErrInvalid},
		{`{` + ok + `,"status":"lost"}`, "status", "unknown status (requested, assigned or cancelled)", telemetry.ErrInvalid},
		{`{` + ok + `,"status":"assigned"}`, "cab_id", "missing or empty (the request is assigned)", telemetry.ErrInvalid},
		{`{` + ok + `,"status":"requested","cab_id":"C"}`, "cab_id", "only an assigned request has a cab", telemetry.ErrInvalid},
		{`{"request_id":"R-1","ts":"yesterday","lat":41,"lon":-8,"status":"requested"}`, "ts", "not an RFC 3339 timestamp", telemetry.ErrInvalid},
		{`{"request_id":"R-1","ts":"2026-01-01T00:00:00Z","lat":"41","lon":-8,"status":"requested"}`, "lat", "not a JSON float64", telemetry.ErrInvalid},
		{`{"request_id":"R-1","ts":"2026-01-01T00:00:00Z","lat":91,"lon":-8,"status":"requested"}`, "lat", "latitude out of range [-90, 90]", telemetry.ErrInvalid},
		{`{"request_id":"R-1","ts":"2026-01-01T00:00:00Z","lat":41,"status":"requested"}`, "lon", "missing", telemetry.ErrInvalid},
	} {
		_, err := telemetry.DecodeRequest([]byte(c.in))
		var de *telemetry.DecodeError
		require.True(t, errors.As(err, &de), "%q: %v", c.in, err)
		require.ErrorIs(t, err, c.err, c.in)
		require.Equal(t, "request", de.Record, c.in)
		require.Equal(t, c.field, de.Field, c.in)
		require.Contains(t, de.Reason, c.reason, c.in)
		require.Contains(t, err.Error(), " request", "the message names a request, not an event: %v", err)
	}
}

func TestRequestAppendRefusesInvalid(t *testing.T) {
	_, err := telemetry.AppendRequest(nil, telemetry.Request{RequestID: "R-1", Time: time.Now(), Status: telemetry.RequestAssigned})
	require.ErrorIs(t, err, telemetry.ErrInvalid)
	require.EqualError(t, err, `telemetry: invalid request: field "cab_id": missing or empty (the request is assigned)`)
}
