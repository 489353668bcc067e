package opensearchprom_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/metrics/prom/opensearchprom"
	"github.com/fleetstream/fleetstream/opensearch"
)

// TestSinkStatsCopiesEveryField: each field of prom.SinkStats but Latency and System has its
// namesake in opensearch.Stats, and SinkStats copies it: a field added to both and not to the
// adapter fails here.
func TestSinkStatsCopiesEveryField(t *testing.T) {
	var in opensearch.Stats
	iv := reflect.ValueOf(&in).Elem()
	want := map[string]any{}
	pt := reflect.TypeFor[prom.SinkStats]()
	for i := range pt.NumField() {
		f := pt.Field(i)
		if f.Name == "Latency" || f.Name == "System" {
			continue
		}
		src := iv.FieldByName(f.Name)
		require.True(t, src.IsValid(), "opensearch.Stats has no %s", f.Name)
		require.Equal(t, f.Type, src.Type(), "type of %s", f.Name)
		switch v := src.Addr().Interface().(type) {
		case *int64:
			*v = int64(100 + i)
		case *string:
			*v = "error " + f.Name
		case *time.Time:
			*v = time.Date(2026, 12, 6, 10, i, 0, 0, time.UTC)
		default:
			t.Fatalf("field %s of type %v: teach the test its values", f.Name, f.Type)
		}
		want[f.Name] = src.Interface()
	}
	in.Latency.Count, in.Latency.Mean = 4, 250*time.Millisecond
	in.Latency.Buckets[2], in.Latency.Buckets[len(opensearch.LatencyBounds)] = 3, 1

	out := opensearchprom.SinkStats(func() opensearch.Stats { return in })()
	ov := reflect.ValueOf(out)
	for name, v := range want {
		require.Equal(t, v, ov.FieldByName(name).Interface(), name)
	}
	require.Equal(t, "OpenSearch", out.System)
	require.Equal(t, opensearch.LatencyBounds[:], out.Latency.Bounds)
	require.Equal(t, in.Latency.Buckets[:], out.Latency.Buckets)
	require.Equal(t, time.Second, out.Latency.Sum)
}

// TestSinkStatsReadsAtEveryCall: the stats are read at each call (each scrape), not once.
func TestSinkStatsReadsAtEveryCall(t *testing.T) {
	var n int64
	f := opensearchprom.SinkStats(func() opensearch.Stats { n++; return opensearch.Stats{Indexed: n} })
	require.EqualValues(t, 1, f().Indexed)
	require.EqualValues(t, 2, f().Indexed)
}
