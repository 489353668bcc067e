package fleetsim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

func TestRegistry(t *testing.T) {
	ids := []string{"SIM-2", "PORTO-20000001", "SIM-1", "SIM-2"}
	v1, v2 := fleetsim.Registry(ids, 1), fleetsim.Registry(ids, 2)
	require.Len(t, v1, 3, "one per distinct cab")
	require.Equal(t, v1, fleetsim.Registry([]string{"SIM-1", "SIM-2", "PORTO-20000001"}, 1), "order does not matter")
	for i := range v1 {
		require.NoError(t, v1[i].Validate())
		require.Equal(t, v1[i].CabID, v2[i].CabID)
		require.Equal(t, v1[i].Fleet, v2[i].Fleet)
		require.Equal(t, v1[i].VehicleType, v2[i].VehicleType)
		require.NotEqual(t, v1[i].DriverID, v2[i].DriverID, "a new version changes the drivers")
	}
	require.Equal(t, "porto", v1[0].Fleet)
}
