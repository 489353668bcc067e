// The fleet job's /metrics, offline: what newMetrics registers.

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestMetricsHaveProcessAndRuntime: the job's /metrics served its pipeline's metrics only,
// on a registry of its own without the process and Go runtime collectors that the default
// registry has, so its resident memory, CPU, goroutines and GC (the memory the design keeps
// bounded) could not be watched or alerted on from Prometheus.
func TestMetricsHaveProcessAndRuntime(t *testing.T) {
	m, err := newMetrics("fleet", &partitionNames{})
	require.NoError(t, err)
	m.Observe(stream.BatchStats{Batch: 1})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	for _, name := range []string{"fleetstream_batches_total", "process_resident_memory_bytes", "process_cpu_seconds_total",
		"go_goroutines", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds"} {
		require.Contains(t, families, name)
	}
}
