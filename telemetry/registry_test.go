// Tests of the fleet registry's schema and of the cab stats fields it fills in.

package telemetry_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

func TestRegistrationCodec(t *testing.T) {
	for _, r := range []telemetry.CabRegistration{
		{CabID: "CAB-0042", Fleet: "north", VehicleType: "ev", DriverID: "D-17"},
		{CabID: `PORTO-"2"`},
	} {
		b, err := telemetry.AppendRegistration(nil, r)
		require.NoError(t, err)
		back, err := telemetry.DecodeRegistration(b)
		require.NoError(t, err, "%s", b)
		require.Equal(t, r, back)
	}
	for _, c := range []struct{ in, field string }{
		{`{"fleet":"north"}`, "cab_id"},
		{`{"cab_id":"C","driver_id":7}`, "driver_id"},
		{`{"cab_id":"C","fleet":"` + strings.Repeat("x", 300) + `"}`, "fleet"},
	} {
		_, err := telemetry.DecodeRegistration([]byte(c.in))
		var de *telemetry.DecodeError
		require.True(t, errors.As(err, &de), "%s: %v", c.in, err)
		require.ErrorIs(t, err, telemetry.ErrInvalid)
		require.Equal(t, c.field, de.Field, c.in)
		require.Contains(t, err.Error(), "invalid registration")
	}
	for _, in := range []string{``, `[]`, `{"cab_id":`} {
		_, err := telemetry.DecodeRegistration([]byte(in))
		require.ErrorIs(t, err, telemetry.ErrMalformed, in)
	}
}

// TestCabStatsRegistered: the registry's fields are in the document when set, absent when not.
func TestCabStatsRegistered(t *testing.T) {
	s := telemetry.CabStats{CabID: "C", WindowStart: t0, WindowEnd: t0, Timestamp: t0}
	plain, err := s.AppendJSON(nil)
	require.NoError(t, err)
	require.NotContains(t, string(plain), "fleet")
	b, err := s.Register(telemetry.CabRegistration{CabID: "C", Fleet: "north", VehicleType: "ev", DriverID: "D-1"}).AppendJSON(nil)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc), "%s", b)
	require.Equal(t, "north", doc["fleet"])
	require.Equal(t, "ev", doc["vehicle_type"])
	require.Equal(t, "D-1", doc["driver_id"])
}
