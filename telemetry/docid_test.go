// The document IDs of the telemetry documents against opensearch.WindowID:
// both come from internal/docid, and this test keeps them in step.

package telemetry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/telemetry"
)

func TestDocIDsAgreeWithOpenSearchWindowID(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	lisbon := time.FixedZone("WET+1", 3600)
	for _, c := range []struct {
		name, pipeline, cab, zone string
		start, end                time.Time
	}{
		{"plain", "fleet", "CAB-0042", "ez3f5k", start, start.Add(time.Minute)},
		{"empty names", "", "", "", start, start.Add(time.Minute)},
		{"separators in names", "a|b/c", "CAB/7|x", "ez3/f", start, start.Add(time.Minute)},
		{"unicode and quotes", "frota-é", `CAB-"ç"`, "é", start, start.Add(time.Minute)},
		{"long key", "fleet", strings.Repeat("C", 10_000), strings.Repeat("z", 600), start, start.Add(time.Hour)},
		{"not UTC", "fleet", "CAB-1", "ez3f5k", start.In(lisbon), start.Add(time.Minute).In(lisbon)},
		{"nanoseconds", "fleet", "CAB-1", "ez3f5k", start.Add(time.Nanosecond), start.Add(time.Minute - time.Nanosecond)},
		{"before 1970", "fleet", "CAB-1", "ez3f5k", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1900, 1, 1, 0, 1, 0, 0, time.UTC)},
		{"empty window", "fleet", "CAB-1", "ez3f5k", start, start},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := telemetry.CabStats{CabID: c.cab, WindowStart: c.start, WindowEnd: c.end}
			require.Equal(t, opensearch.WindowID(c.pipeline, c.cab, c.start, c.end), s.DocID(c.pipeline))

			z := telemetry.ZoneDemand{Zone: c.zone, WindowStart: c.start, WindowEnd: c.end}
			require.Equal(t, c.zone, z.DocKey())
			want := opensearch.WindowID(c.pipeline, c.zone, c.start, c.end)
			require.Equal(t, want, z.DocID(c.pipeline))
			require.Len(t, want, 32)
		})
	}
}
