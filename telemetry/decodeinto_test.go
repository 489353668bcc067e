package telemetry_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

// TestDecoderDecodeInto: DecodeInto overwrites the whole of *e, optional fields included,
// whatever it held: an event without trip, status or readings decodes into a full one as
// into a zero one; and its errors are Decode's.
func TestDecoderDecodeInto(t *testing.T) {
	var d telemetry.Decoder
	bare := []byte(`{"cab_id":"A","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`)
	for _, data := range [][]byte{bare, []byte(sample), []byte(` {"lat":1,"lon":2,"cab_id":"A","ts":"2026-11-25T10:00:00Z"}`)} {
		want, err := d.Decode(data)
		require.NoError(t, err)
		e := sampleEvent()
		require.NoError(t, d.DecodeInto(data, &e))
		require.Equal(t, want, e, "%s", data)
	}
	for _, bad := range []string{`{"cab_id":"A"}`, `{"cab_id":"A","ts":"2026-11-25T10:00:00Z","lat":100,"lon":2}`, `{`} {
		_, want := d.Decode([]byte(bad))
		e := sampleEvent()
		require.Equal(t, want, d.DecodeInto([]byte(bad), &e), bad)
	}
}
