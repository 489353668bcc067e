package telemetry_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
)

// TestDecoderInternsManyIDs: a Decoder gives back every ID as the data holds
// it, whatever IDs it saw before: IDs of every length around the 8, 16 and
// 24 bytes its cache keeps in words, IDs that are prefixes of others, more
// IDs than its cache has slots, and with a table that overflows and is
// cleared.
func TestDecoderInternsManyIDs(t *testing.T) {
	var ids []string
	for n := 1; n <= 28; n++ {
		ids = append(ids, strings.Repeat("C", n), strings.Repeat("C", n-1)+"D")
	}
	for i := range 2000 {
		ids = append(ids, fmt.Sprintf("CAB-%04d", i), fmt.Sprintf("PORTO-2000%04d", i), fmt.Sprintf("T-%d", i))
	}
	for _, maxIDs := range []int{0, 100} {
		d := telemetry.Decoder{MaxIDs: maxIDs}
		for round := range 3 {
			for i, id := range ids {
				trip := ids[(i+round)%len(ids)]
				e, err := d.Decode([]byte(`{"cab_id":"` + id + `","trip_id":"` + trip + `","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`))
				require.NoError(t, err)
				require.Equal(t, id, e.CabID, "MaxIDs %d, round %d", maxIDs, round)
				require.Equal(t, trip, e.TripID, "MaxIDs %d, round %d", maxIDs, round)
			}
		}
	}
}
