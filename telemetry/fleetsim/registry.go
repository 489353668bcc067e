// The fleet registry of simulated and Porto cabs: Registry.

package fleetsim

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetstream/fleetstream/telemetry"
)

// vehicleTypes are the registry's vehicle types.
var vehicleTypes = [...]string{"sedan", "estate", "van", "ev"}

// Registry returns a registration per distinct cab ID, sorted by cab ID, the same for the
// same IDs: the fleet ("porto" for the Porto taxis, otherwise one of four simulated fleets),
// a vehicle type and a driver ID, derived from a hash of the cab ID. version (from 1) changes
// the drivers only, as a shift change does: a registry update.
func Registry(cabIDs []string, version int) []telemetry.CabRegistration {
	ids := slices.Clone(cabIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]telemetry.CabRegistration, 0, len(ids))
	for _, id := range ids {
		h := fnv.New64a()
		h.Write([]byte(id))
		sum := h.Sum64()
		fleet := "fleet-" + strconv.Itoa(int(sum%4)+1)
		if strings.HasPrefix(id, "PORTO-") {
			fleet = "porto"
		}
		out = append(out, telemetry.CabRegistration{
			CabID: id, Fleet: fleet, VehicleType: vehicleTypes[(sum>>8)%uint64(len(vehicleTypes))],
			DriverID: "D-" + strconv.FormatUint((sum>>16)%100_000+uint64(version)*100_000, 10),
		})
	}
	return out
}
