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
		partition                 int32
		start, end                time.Time
	}{
		{"plain", "fleet", "CAB-0042", "ez3f5k", 3, start, start.Add(time.Minute)},
		{"empty names", "", "", "", 0, start, start.Add(time.Minute)},
		{"separators in names", "a|b/c", "CAB/7|x", "ez3/f", -1, start, start.Add(time.Minute)},
		{"unicode and quotes", "frota-é", `CAB-"ç"`, "é", 1, start, start.Add(time.Minute)},
		{"long key", "fleet", strings.Repeat("C", 10_000), strings.Repeat("z", 600), 2, start, start.Add(time.Hour)},
		{"not UTC", "fleet", "CAB-1", "ez3f5k", 0, start.In(lisbon), start.Add(time.Minute).In(lisbon)},
		{"nanoseconds", "fleet", "CAB-1", "ez3f5k", 0, start.Add(time.Nanosecond), start.Add(time.Minute - time.Nanosecond)},
		{"before 1970", "fleet", "CAB-1", "ez3f5k", 0, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1900, 1, 1, 0, 1, 0, 0, time.UTC)},
		{"empty window", "fleet", "CAB-1", "ez3f5k", 0, start, start},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := telemetry.CabStats{CabID: c.cab, WindowStart: c.start, WindowEnd: c.end}
			require.Equal(t, opensearch.WindowID(c.pipeline, c.cab, c.start, c.end), s.DocID(c.pipeline))

			z := telemetry.ZoneDemand{Zone: c.zone, Partition: c.partition, WindowStart: c.start, WindowEnd: c.end}
			want := opensearch.WindowID(c.pipeline, z.DocKey(), c.start, c.end)
			require.Equal(t, want, z.DocID(c.pipeline))
			require.Len(t, want, 32)
		})
	}
}
