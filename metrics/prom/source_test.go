package prom_test

import (
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
)

// fakeSource is a source's live stats that a test moves.
type fakeSource struct {
	mu sync.Mutex
	st stream.SourceStats
}

func (f *fakeSource) Stats() stream.SourceStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return stream.SourceStats{Lag: maps.Clone(f.st.Lag), Read: maps.Clone(f.st.Read), End: maps.Clone(f.st.End),
		FailingSince: f.st.FailingSince, LastError: f.st.LastError}
}

func (f *fakeSource) fail(since time.Time, err string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.FailingSince, f.st.LastError = since, err
}

func (f *fakeSource) set(lag, read, end map[string]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = stream.SourceStats{Lag: lag, Read: read, End: end}
}

// An output outage: no batch is acknowledged, so Observe does not run, while the source's
// backlog grows. The lag gauges of a source added with AddSource follow its live stats; a
// partition it does not report keeps the last batch's figures.
func TestAddSourceLagMovesWithoutBatches(t *testing.T) {
	m, _, srv := newMetrics(t)
	src := &fakeSource{}
	require.NoError(t, m.AddSource(src.Stats))
	require.Error(t, m.AddSource(nil))

	// The last batch: both partitions read and committed to their ends.
	src.set(map[string]int64{"t/0": 0}, map[string]int64{"t/0": 1000}, map[string]int64{"t/0": 1000})
	m.Observe(stream.BatchStats{
		Batch: 1, Partitions: 2,
		PartitionStats: []stream.PartitionStats{{Partition: 0, Next: 1000, Committed: 1000}, {Partition: 1, Next: 500, Committed: 500}},
		Source: stream.SourceStats{
			Lag:  map[string]int64{"t/0": 0, "t/1": 0},
			Read: map[string]int64{"t/0": 1000, "t/1": 500},
			End:  map[string]int64{"t/0": 1000, "t/1": 500},
		},
	})
	mfs := scrape(t, srv)
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_source_read_lag_records", "partition", "t/0"))
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_source_commit_lag_records", "partition", "t/0"))

	// The outage: the source read 200 more records into the blocked pipeline's input, and
	// the partition's end moved on; no batch since.
	for _, end := range []int64{3000, 7000} {
		src.set(map[string]int64{"t/0": end - 1000}, map[string]int64{"t/0": 1200}, map[string]int64{"t/0": end})
		mfs = scrape(t, srv)
		require.Equal(t, float64(end-1200), mustValue(t, mfs, "fleetstream_source_read_lag_records", "partition", "t/0"), "end %d", end)
		require.Equal(t, float64(end-1000), mustValue(t, mfs, "fleetstream_source_commit_lag_records", "partition", "t/0"), "end %d", end)
		require.Equal(t, 1200.0, mustValue(t, mfs, "fleetstream_source_read_offset", "partition", "t/0"))
		require.Equal(t, 200.0, mustValue(t, mfs, "fleetstream_source_held_back_records", "partition", "t/0"))
		// Partition 1 is not reported live: the last batch's figures.
		require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_source_read_lag_records", "partition", "t/1"))
		require.Equal(t, 500.0, mustValue(t, mfs, "fleetstream_source_read_offset", "partition", "t/1"))

		// The status page shows the same.
		rows := map[string]prom.PartitionDoc{}
		for _, r := range m.Status().PartitionTb {
			rows[r.Name] = r
		}
		require.Contains(t, rows, "t/0")
		require.NotNil(t, rows["t/0"].End)
		require.Equal(t, end, *rows["t/0"].End)
		require.NotNil(t, rows["t/0"].ReadLag)
		require.Equal(t, end-1200, *rows["t/0"].ReadLag)
	}

	// A partition the source reports that no batch had yet is exported too.
	src.set(map[string]int64{"t/0": 6000, "t/2": 40}, map[string]int64{"t/0": 1200, "t/2": 10}, map[string]int64{"t/0": 7000, "t/2": 40})
	mfs = scrape(t, srv)
	require.Equal(t, 40.0, mustValue(t, mfs, "fleetstream_source_commit_lag_records", "partition", "t/2"))
	require.Equal(t, 30.0, mustValue(t, mfs, "fleetstream_source_read_lag_records", "partition", "t/2"))
}

// A Kafka outage while the outputs fail too (OpenSearch down): no batch is acknowledged, so
// no batch reports the source's failure. source_failing, /readyz and the banner take it from
// the live stats of a source added with AddSource, and its latest error; a live source that
// reports no failure does not clear the last batch's (sources not added are not read live).
func TestAddSourceFailingWithoutBatches(t *testing.T) {
	m, clk, srv := newMetrics(t)
	src := &fakeSource{}
	require.NoError(t, m.AddSource(src.Stats))
	m.Observe(stream.BatchStats{Batch: 1, Partitions: 1})
	require.Equal(t, 0.0, mustValue(t, scrape(t, srv), "fleetstream_source_failing"))

	clk.Advance(5 * time.Second)
	since := clk.Now()
	refused := "kafka: dial tcp 127.0.0.1:9092: connect: connection refused"
	src.fail(since, refused)
	clk.Advance(10 * time.Second)
	require.Equal(t, 1.0, mustValue(t, scrape(t, srv), "fleetstream_source_failing"))
	code, body := get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "not ready: source unreachable since "+since.Format(time.RFC3339)+": "+refused+"\n", body)
	require.Equal(t, "Source unreachable since "+since.Local().Format(time.TimeOnly)+" (last error: "+refused+")", m.Status().Banner)

	// The same outage with a newer error than the last batch's: the live error.
	m.Observe(stream.BatchStats{Batch: 2, Partitions: 1, Source: stream.SourceStats{FailingSince: since, LastError: refused}})
	timeout := "kafka: metadata: i/o timeout"
	src.fail(since, timeout)
	_, body = get(t, srv, "/readyz")
	require.Contains(t, body, "source unreachable since "+since.Format(time.RFC3339)+": "+timeout)

	// The live source recovered: the last batch's outage stays until a batch clears it.
	src.fail(time.Time{}, "")
	require.Equal(t, 1.0, mustValue(t, scrape(t, srv), "fleetstream_source_failing"))
	_, body = get(t, srv, "/readyz")
	require.Contains(t, body, "source unreachable since "+since.Format(time.RFC3339)+": "+refused)
	m.Observe(stream.BatchStats{Batch: 3, Partitions: 1})
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 0.0, mustValue(t, scrape(t, srv), "fleetstream_source_failing"))
	require.Empty(t, m.Status().Banner)
}
