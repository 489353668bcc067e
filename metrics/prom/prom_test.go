package prom_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// fakeClock is a settable clock, safe for the handler's goroutines.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newMetrics(t *testing.T, opts ...prom.Option) (*prom.Metrics, *fakeClock, *httptest.Server) {
	t.Helper()
	clk := &fakeClock{now: t0}
	m, err := prom.New(prometheus.NewRegistry(), "cabstats", append([]prom.Option{prom.WithClock(clk)}, opts...)...)
	require.NoError(t, err)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return m, clk, srv
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// scrape parses /metrics with the client library's text parser.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, srv, "/metrics")
	require.Equal(t, http.StatusOK, code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err, body)
	return mfs
}

// value returns the value of the metric of family name whose labels include want, and
// whether it exists. Counters, gauges and histograms (their count) are read.
func value(mfs map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	v, ok := value(mfs, name, want...)
	require.True(t, ok, "no %s%v", name, want)
	return v
}

func TestObserveCounters(t *testing.T) {
	m, _, srv := newMetrics(t)
	for i, n := range []int{100_000, 50_000, 0} {
		m.Observe(stream.BatchStats{
			Batch: int64(i + 1), InputRecords: n, InputBytes: int64(n) * 200,
			ProcessingTime: 20 * time.Millisecond, OutputTime: 300 * time.Millisecond, CommitTime: 40 * time.Millisecond, CommitWait: 5 * time.Millisecond,
			SchedulingDelay: 5 * time.Millisecond, Attempts: 1 + i, Partitions: 3,
		})
	}
	mfs := scrape(t, srv)
	require.Equal(t, 150_000.0, mustValue(t, mfs, "fleetstream_input_records_total", "pipeline", "cabstats"))
	require.Equal(t, 30_000_000.0, mustValue(t, mfs, "fleetstream_input_bytes_total"))
	require.Equal(t, 3.0, mustValue(t, mfs, "fleetstream_batches_total"))
	require.Equal(t, 6.0, mustValue(t, mfs, "fleetstream_output_attempts_total"))
	require.Equal(t, 3.0, mustValue(t, mfs, "fleetstream_output_retries_total"))
	require.Equal(t, 3.0, mustValue(t, mfs, "fleetstream_partitions"))
	for _, h := range []string{"fleetstream_batch_processing_seconds", "fleetstream_batch_output_seconds", "fleetstream_batch_commit_seconds", "fleetstream_batch_commit_wait_seconds", "fleetstream_batch_scheduling_delay_seconds"} {
		require.Equal(t, 3.0, mustValue(t, mfs, h), h)
		require.Equal(t, dto.MetricType_HISTOGRAM, mfs[h].GetType(), h)
	}
	sum := mfs["fleetstream_batch_output_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	require.InDelta(t, 0.9, sum, 1e-9)
	sum = mfs["fleetstream_batch_commit_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	require.InDelta(t, 0.12, sum, 1e-9)
	sum = mfs["fleetstream_batch_commit_wait_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	require.InDelta(t, 0.015, sum, 1e-9)
	for name, mf := range mfs {
		if strings.HasSuffix(name, "_total") {
			require.Equal(t, dto.MetricType_COUNTER, mf.GetType(), name)
		}
	}
}

func TestCommitLagAndState(t *testing.T) {
	m, clk, srv := newMetrics(t)
	m.Observe(stream.BatchStats{
		Batch: 1, Partitions: 2, Watermark: t0.Add(-30 * time.Second),
		State:  []stream.OperatorState{{Operator: "windows", Entries: 40}, {Operator: "alerts", Entries: 7}},
		Source: stream.SourceStats{Lag: map[string]int64{"telemetry/0": 41_917, "telemetry/1": 12}},
	})
	clk.Advance(10 * time.Second)
	mfs := scrape(t, srv)
	require.Equal(t, 41_917.0, mustValue(t, mfs, "fleetstream_source_commit_lag_records", "partition", "telemetry/0"))
	require.Equal(t, 12.0, mustValue(t, mfs, "fleetstream_source_commit_lag_records", "partition", "telemetry/1"))
	require.Equal(t, 40.0, mustValue(t, mfs, "fleetstream_state_entries", "operator", "windows"))
	require.Equal(t, 7.0, mustValue(t, mfs, "fleetstream_state_entries", "operator", "alerts"))
	require.Equal(t, float64(t0.Unix()-30), mustValue(t, mfs, "fleetstream_watermark_seconds"))
	// Event-time lag is taken at scrape time: 30 s behind when observed, 10 s later now.
	require.Equal(t, 40.0, mustValue(t, mfs, "fleetstream_event_time_lag_seconds"))
	require.Equal(t, float64(t0.Unix()), mustValue(t, mfs, "fleetstream_last_batch_timestamp_seconds"))

	// Partition 1 revoked, operator "alerts" gone, duplicate operator names summed.
	m.Observe(stream.BatchStats{
		Batch: 2, Partitions: 1,
		State:  []stream.OperatorState{{Operator: "windows", Entries: 5}, {Operator: "windows", Entries: 6}},
		Source: stream.SourceStats{Lag: map[string]int64{"telemetry/0": 0}},
	})
	mfs = scrape(t, srv)
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_source_commit_lag_records", "partition", "telemetry/0"))
	_, ok := value(mfs, "fleetstream_source_commit_lag_records", "partition", "telemetry/1")
	require.False(t, ok, "revoked partition still exported")
	require.Equal(t, 11.0, mustValue(t, mfs, "fleetstream_state_entries", "operator", "windows"))
	_, ok = value(mfs, "fleetstream_state_entries", "operator", "alerts")
	require.False(t, ok, "operator that left still exported")
	// No watermark in this batch (the zero time): watermark and event-time lag are absent.
	_, ok = value(mfs, "fleetstream_watermark_seconds")
	require.False(t, ok)
}

func TestEventTimeLagAtEndOfInput(t *testing.T) {
	m, _, srv := newMetrics(t)
	m.Observe(stream.BatchStats{Batch: 1, Watermark: stream.WatermarkTime(stream.EndOfTime)})
	require.Equal(t, 0.0, mustValue(t, scrape(t, srv), "fleetstream_event_time_lag_seconds"))
}

// The source's dead-letter count is cumulative. A decrease means the source restarted from
// zero, so its new value is all increase: the counter never goes backwards.
func TestDeadLettersCumulative(t *testing.T) {
	tests := []struct {
		name string
		seq  []int64
		want float64
	}{
		{"rising", []int64{0, 3, 3, 10}, 10},
		{"reset", []int64{5, 8, 2, 4}, 12}, // 8, then a new source counted 2, then 2 more
		{"reset to zero", []int64{7, 0, 1}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, srv := newMetrics(t)
			prev := 0.0
			for i, d := range tt.seq {
				m.Observe(stream.BatchStats{Batch: int64(i + 1), Source: stream.SourceStats{DeadLetters: d}})
				v := mustValue(t, scrape(t, srv), "fleetstream_source_dead_letters_total")
				require.GreaterOrEqual(t, v, prev, "counter went backwards at batch %d", i+1)
				prev = v
			}
			require.Equal(t, tt.want, prev)
		})
	}
}

// TestRepartitions: each repartition's counters are exported under its name, read at every
// scrape; a name added twice is an error.
func TestRepartitions(t *testing.T) {
	m, _, srv := newMetrics(t)
	var sent atomic.Int64
	sent.Store(5000)
	require.NoError(t, m.AddRepartition("job-zones-repartition", func() prom.RepartitionStats {
		n := sent.Load()
		return prom.RepartitionStats{Records: n, Messages: n / 2500, Bytes: 42 * n}
	}))
	require.NoError(t, m.AddRepartition("job-cabs-repartition", func() prom.RepartitionStats { return prom.RepartitionStats{Records: 1} }))
	require.ErrorIs(t, m.AddRepartition("job-cabs-repartition", func() prom.RepartitionStats { return prom.RepartitionStats{} }), prom.ErrDuplicateSink)
	require.Error(t, m.AddRepartition("x", nil))

	rep := func(mfs map[string]*dto.MetricFamily, name string) float64 {
		return mustValue(t, mfs, name, "repartition", "job-zones-repartition")
	}
	mfs := scrape(t, srv)
	require.Equal(t, 5000.0, rep(mfs, "fleetstream_repartition_sent_records_total"))
	require.Equal(t, 2.0, rep(mfs, "fleetstream_repartition_sent_messages_total"))
	require.Equal(t, 210000.0, rep(mfs, "fleetstream_repartition_sent_bytes_total"))
	require.Equal(t, 1.0, mustValue(t, mfs, "fleetstream_repartition_sent_records_total", "repartition", "job-cabs-repartition"))
	sent.Store(12500)
	mfs = scrape(t, srv)
	require.Equal(t, 12500.0, rep(mfs, "fleetstream_repartition_sent_records_total"), "read at scrape time")
	require.Equal(t, 5.0, rep(mfs, "fleetstream_repartition_sent_messages_total"))
}

func TestSinks(t *testing.T) {
	m, _, srv := newMetrics(t)
	var mu sync.Mutex
	s := prom.SinkStats{Indexed: 90, Updated: 7, Existed: 1, DeadLettered: 2, Failed: 5, Retried: 4,
		RequestRetries: 3, Blocked: 6, Split: 1, Requests: 12, Bytes: 4096, InFlightBytes: 2048,
		Latency: prom.Latency{
			Bounds:  []time.Duration{10 * time.Millisecond, 100 * time.Millisecond},
			Buckets: []int64{8, 3, 1},
			Sum:     900 * time.Millisecond,
		}}
	require.NoError(t, m.AddSink("cab-stats", func() prom.SinkStats { mu.Lock(); defer mu.Unlock(); return s }))
	require.NoError(t, m.AddSink("alerts", func() prom.SinkStats { return prom.SinkStats{Indexed: 1} }))
	require.ErrorIs(t, m.AddSink("alerts", func() prom.SinkStats { return prom.SinkStats{} }), prom.ErrDuplicateSink)

	mfs := scrape(t, srv)
	sink := func(name string, labels ...string) float64 {
		return mustValue(t, mfs, name, append([]string{"sink", "cab-stats"}, labels...)...)
	}
	require.Equal(t, 90.0, sink("fleetstream_sink_documents_total", "result", "created"))
	require.Equal(t, 7.0, sink("fleetstream_sink_documents_total", "result", "updated"))
	require.Equal(t, 1.0, sink("fleetstream_sink_documents_total", "result", "existed"))
	require.Equal(t, 2.0, sink("fleetstream_sink_documents_total", "result", "dead_lettered"))
	require.Equal(t, 5.0, sink("fleetstream_sink_item_failures_total"))
	require.Equal(t, 4.0, sink("fleetstream_sink_documents_retried_total"))
	require.Equal(t, 3.0, sink("fleetstream_sink_request_retries_total"))
	require.Equal(t, 6.0, sink("fleetstream_sink_blocked_total"))
	require.Equal(t, 1.0, sink("fleetstream_sink_split_requests_total"))
	require.Equal(t, 12.0, sink("fleetstream_sink_requests_total"))
	require.Equal(t, 4096.0, sink("fleetstream_sink_request_bytes_total"))
	require.Equal(t, 2048.0, sink("fleetstream_sink_in_flight_bytes"))
	require.Equal(t, 1.0, mustValue(t, mfs, "fleetstream_sink_documents_total", "sink", "alerts", "result", "created"))

	var h *dto.Histogram
	for _, x := range mfs["fleetstream_sink_request_duration_seconds"].GetMetric() {
		if x.GetLabel()[0].GetValue() == "cab-stats" || x.GetLabel()[1].GetValue() == "cab-stats" {
			h = x.GetHistogram()
		}
	}
	require.NotNil(t, h)
	require.Equal(t, uint64(12), h.GetSampleCount())
	require.InDelta(t, 0.9, h.GetSampleSum(), 1e-9)
	require.Len(t, h.GetBucket(), 3) // 10 ms, 100 ms, +Inf
	require.Equal(t, 0.01, h.GetBucket()[0].GetUpperBound())
	require.Equal(t, uint64(8), h.GetBucket()[0].GetCumulativeCount())
	require.Equal(t, uint64(11), h.GetBucket()[1].GetCumulativeCount())
	require.Equal(t, uint64(12), h.GetBucket()[2].GetCumulativeCount())

	// Read at scrape time.
	mu.Lock()
	s.Indexed = 150
	mu.Unlock()
	require.Equal(t, 150.0, mustValue(t, scrape(t, srv), "fleetstream_sink_documents_total", "sink", "cab-stats", "result", "created"))
}

func TestHealth(t *testing.T) {
	m, clk, srv := newMetrics(t, prom.WithStaleAfter(30*time.Second), prom.WithStartTimeout(5*time.Minute))

	code, body := get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code, body)
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no batch acknowledged yet")

	// A start (the group's join, the tables' loads) longer than the staleness is still a
	// start: a liveness probe must not restart the program in the middle of a load.
	clk.Advance(5 * time.Minute)
	code, body = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "starting")

	// Started but no batch for longer than the start timeout: stuck.
	clk.Advance(time.Second)
	code, body = get(t, srv, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no batch acknowledged in the 5m1s since start (start timeout 5m0s)")

	m.Observe(stream.BatchStats{Batch: 1, Partitions: 6})
	for _, p := range []string{"/healthz", "/readyz"} {
		code, body = get(t, srv, p)
		require.Equal(t, http.StatusOK, code, p)
		require.Contains(t, body, "batch 1", p)
	}

	clk.Advance(30 * time.Second) // at the bound: still fresh
	code, _ = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code)

	clk.Advance(time.Second) // an outage: no batch acknowledged for 31 s
	for _, p := range []string{"/healthz", "/readyz"} {
		code, body = get(t, srv, p)
		require.Equal(t, http.StatusServiceUnavailable, code, p)
		require.Contains(t, body, "last batch 1 acknowledged 31s ago", p)
	}

	m.Observe(stream.BatchStats{Batch: 2, Partitions: 6}) // recovered
	code, _ = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code)
	code, _ = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code)
}

func TestNewErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	for name, opts := range map[string][]prom.Option{
		"stale":   {prom.WithStaleAfter(0)},
		"start":   {prom.WithStartTimeout(-time.Second)},
		"buckets": {prom.WithBuckets(1, 1)},
		"clock":   {prom.WithClock(nil)},
	} {
		_, err := prom.New(reg, "p", opts...)
		require.ErrorIs(t, err, prom.ErrInvalidOption, name)
	}
	_, err := prom.New(nil, "p")
	require.ErrorIs(t, err, prom.ErrInvalidOption)

	_, err = prom.New(reg, "p")
	require.NoError(t, err)
	_, err = prom.New(reg, "q") // another pipeline in the same registry
	require.NoError(t, err)
	_, err = prom.New(reg, "p")
	require.Error(t, err, "same pipeline registered twice")
}

// A New refused for a name conflict leaves the registry as it found it: the collectors it
// had registered before the conflict would otherwise be served at /metrics, never updated,
// and refuse a later New of the same pipeline name.
func TestNewConflictLeavesRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	taken := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: prom.Namespace, Name: "source_failing",
		Help: "someone else's", ConstLabels: prometheus.Labels{"pipeline": "p"}})
	require.NoError(t, reg.Register(taken))
	_, err := prom.New(reg, "p")
	require.Error(t, err)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	require.Equal(t, []string{prom.Namespace + "_source_failing"}, names)
}

func TestWrappedRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"instance": "a"}, reg)

	m, err := prom.New(wrapped, "p")
	require.NoError(t, err)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	code, _ := get(t, srv, "/metrics")
	require.Equal(t, http.StatusNotFound, code, "no gatherer: /metrics not served")

	m2, err := prom.New(prometheus.WrapRegistererWith(prometheus.Labels{"instance": "b"}, reg), "p", prom.WithGatherer(reg))
	require.NoError(t, err)
	m2.Observe(stream.BatchStats{Batch: 1, InputRecords: 4})
	srv2 := httptest.NewServer(m2.Handler())
	defer srv2.Close()
	require.Equal(t, 4.0, mustValue(t, scrape(t, srv2), "fleetstream_input_records_total", "instance", "b"))
}

// A real pipeline, offline: records_in_total equals what was queued.
func TestPipelineOffline(t *testing.T) {
	reg := prometheus.NewRegistry()
	clk := &fakeClock{now: streamtest.Epoch}
	m, err := prom.New(reg, "offline", prom.WithClock(clk))
	require.NoError(t, err)
	h := streamtest.New(t, time.Second, stream.WithStatsHook(m.Observe))
	q, src := streamtest.NewQueue[int](h)
	out := streamtest.Collect(src.Filter(func(v int) bool { return v%2 == 0 }))
	q.AddValues(1, 2, 3, 4, 5)
	q.AddValues(6, 7)
	q.AddEmpty(1)
	q.AddValues(8, 9, 10)
	h.Run(4)
	require.Equal(t, []int{2, 4, 6, 8, 10}, out.Slice())

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	mfs := scrape(t, srv)
	require.Equal(t, 10.0, mustValue(t, mfs, "fleetstream_input_records_total", "pipeline", "offline"))
	require.Equal(t, 4.0, mustValue(t, mfs, "fleetstream_batches_total"))
	require.Equal(t, 4.0, mustValue(t, mfs, "fleetstream_output_attempts_total"))
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_output_retries_total"))
	require.Equal(t, float64(h.P.Stats().Partitions), mustValue(t, mfs, "fleetstream_partitions"))
	require.Equal(t, float64(streamtest.Epoch.Unix()), mustValue(t, mfs, "fleetstream_last_batch_timestamp_seconds"))
	code, _ := get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code)
}

// Per-partition figures: read offset, held back, read lag = commit lag - held back (0 once
// caught up), each partition's watermark, event-time lag and idleness, and the repartition
// duplicates counter; a revoked partition's series all go.
func TestPartitionMetrics(t *testing.T) {
	m, clk, srv := newMetrics(t)
	m.Observe(stream.BatchStats{
		Batch: 1, Partitions: 3, Duplicates: 4,
		PartitionStats: []stream.PartitionStats{
			{Partition: 0, Next: 1000, Committed: 600, Watermark: t0.Add(-30 * time.Second)},
			{Partition: 1, Next: 50, Committed: 50, Watermark: t0.Add(-2 * time.Minute), Idle: true},
			{Partition: 2, Next: -1, Committed: -1}, // nothing read yet
		},
		Source: stream.SourceStats{Lag: map[string]int64{"telemetry/0": 900, "telemetry/1": 0, "telemetry/2": 0}},
	})
	clk.Advance(10 * time.Second)
	mfs := scrape(t, srv)
	part := func(name, p string) float64 { return mustValue(t, mfs, name, "partition", p) }
	absent := func(name, p string) {
		t.Helper()
		_, ok := value(mfs, name, "partition", p)
		require.False(t, ok, "%s{partition=%q} exported", name, p)
	}
	require.Equal(t, 1000.0, part("fleetstream_source_read_offset", "telemetry/0"))
	require.Equal(t, 600.0, part("fleetstream_source_committed_offset", "telemetry/0"))
	require.Equal(t, 400.0, part("fleetstream_source_held_back_records", "telemetry/0"))
	require.Equal(t, 900.0, part("fleetstream_source_commit_lag_records", "telemetry/0"))
	require.Equal(t, 500.0, part("fleetstream_source_read_lag_records", "telemetry/0"), "commit lag 900 - held back 400")
	require.Equal(t, float64(t0.Unix()-30), part("fleetstream_partition_watermark_seconds", "telemetry/0"))
	require.Equal(t, 40.0, part("fleetstream_partition_event_time_lag_seconds", "telemetry/0"), "taken at scrape time")
	require.Equal(t, 0.0, part("fleetstream_partition_idle", "telemetry/0"))

	require.Equal(t, 0.0, part("fleetstream_source_read_lag_records", "telemetry/1"))
	require.Equal(t, 0.0, part("fleetstream_source_held_back_records", "telemetry/1"))
	require.Equal(t, 130.0, part("fleetstream_partition_event_time_lag_seconds", "telemetry/1"))
	require.Equal(t, 1.0, part("fleetstream_partition_idle", "telemetry/1"))

	// Nothing read or committed on partition 2: no offsets, no held back, no read lag, no
	// watermark; its idleness and commit lag are known.
	for _, name := range []string{"fleetstream_source_read_offset", "fleetstream_source_committed_offset",
		"fleetstream_source_held_back_records", "fleetstream_source_read_lag_records",
		"fleetstream_partition_watermark_seconds", "fleetstream_partition_event_time_lag_seconds"} {
		absent(name, "telemetry/2")
	}
	require.Equal(t, 0.0, part("fleetstream_partition_idle", "telemetry/2"))
	require.Equal(t, 4.0, mustValue(t, mfs, "fleetstream_repartition_duplicates_total"))

	// Caught up: the high-water mark of partition 0 is 1500 and everything is read; the
	// windows still hold 400 records back, so the commit lag stays 400 and the read lag is 0.
	m.Observe(stream.BatchStats{
		Batch: 2, Partitions: 3, Duplicates: 10,
		PartitionStats: []stream.PartitionStats{
			{Partition: 0, Next: 1500, Committed: 1100, Watermark: t0},
			{Partition: 1, Next: 50, Committed: 50, Watermark: t0.Add(-2 * time.Minute), Idle: true},
			{Partition: 2, Next: 7, Committed: 0, Watermark: t0},
		},
		Source: stream.SourceStats{Lag: map[string]int64{"telemetry/0": 400, "telemetry/1": 0, "telemetry/2": 7}},
	})
	mfs = scrape(t, srv)
	require.Equal(t, 400.0, part("fleetstream_source_commit_lag_records", "telemetry/0"))
	require.Equal(t, 400.0, part("fleetstream_source_held_back_records", "telemetry/0"))
	require.Equal(t, 0.0, part("fleetstream_source_read_lag_records", "telemetry/0"))
	require.Equal(t, 0.0, part("fleetstream_source_read_lag_records", "telemetry/2"))
	require.Equal(t, 7.0, part("fleetstream_source_held_back_records", "telemetry/2"))
	require.Equal(t, 10.0, part("fleetstream_partition_event_time_lag_seconds", "telemetry/0"))
	require.Equal(t, 10.0, mustValue(t, mfs, "fleetstream_repartition_duplicates_total"))

	// Partition 1 revoked: every series of it goes. The duplicate count went down, so the
	// pipeline restarted from zero: its 3 are all new.
	m.Observe(stream.BatchStats{
		Batch: 3, Partitions: 2, Duplicates: 3,
		PartitionStats: []stream.PartitionStats{
			{Partition: 0, Next: 1500, Committed: 1500, Watermark: t0},
			{Partition: 2, Next: 7, Committed: 7, Watermark: t0},
		},
		Committed: []stream.Position{{Partition: 0, Offset: 1500}, {Partition: 2, Offset: 7}},
		Source:    stream.SourceStats{Lag: map[string]int64{"telemetry/0": 0, "telemetry/2": 0}},
	})
	mfs = scrape(t, srv)
	for name, mf := range mfs {
		for _, x := range mf.GetMetric() {
			for _, l := range x.GetLabel() {
				require.False(t, l.GetName() == "partition" && l.GetValue() == "telemetry/1", "%s still exports the revoked partition", name)
			}
		}
	}
	require.Equal(t, 0.0, part("fleetstream_source_held_back_records", "telemetry/0"))
	require.Equal(t, 0.0, part("fleetstream_source_read_lag_records", "telemetry/0"))
	require.Equal(t, 13.0, mustValue(t, mfs, "fleetstream_repartition_duplicates_total"))
	st := status(t, srv)
	require.Len(t, st.PartitionTb, 2)
	require.Equal(t, "telemetry/2", st.PartitionTb[1].Name)
	require.EqualValues(t, 3, st.Duplicates)
}

// Partitions of further sources (a repartition's exchange) are not named after the first
// source's topic.
func TestPartitionNamesOfFurtherSources(t *testing.T) {
	m, _, srv := newMetrics(t)
	down := int32(1<<26 | 3) // source 1 (the exchange), partition 3
	if src, p := stream.PartitionSource(down); src != 1 || p != 3 {
		t.Fatalf("PartitionSource(%d) = %d, %d", down, src, p)
	}
	m.Observe(stream.BatchStats{
		Batch: 1, Partitions: 2,
		PartitionStats: []stream.PartitionStats{{Partition: 0, Next: 5, Committed: 5}, {Partition: down, Next: 9, Committed: 4}},
		Source:         stream.SourceStats{Lag: map[string]int64{"telemetry/0": 2}},
	})
	mfs := scrape(t, srv)
	require.Equal(t, 2.0, mustValue(t, mfs, "fleetstream_source_read_lag_records", "partition", "telemetry/0"))
	require.Equal(t, 5.0, mustValue(t, mfs, "fleetstream_source_held_back_records", "partition", "source 1 partition 3"))
}

// A real pipeline, offline, with an event-time window that holds commits back: the read
// offset is what was queued, held back is the read offset minus the committed one while the
// window is open, and it shrinks when the window fires.
func TestPartitionStatsOffline(t *testing.T) {
	clk := &fakeClock{now: streamtest.Epoch}
	m, err := prom.New(prometheus.NewRegistry(), "offline", prom.WithClock(clk))
	require.NoError(t, err)
	h := streamtest.New(t, time.Second, stream.WithStatsHook(m.Observe))
	q, src := streamtest.NewQueue[int](h)
	sums, err := window.Aggregate(src, func(int) string { return "k" }, func(v int) int64 { return int64(v) },
		window.Tumbling(time.Minute), window.Sum[int64]())
	require.NoError(t, err)
	out := streamtest.Collect(sums.Results())
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	at := func(s int) time.Time { return streamtest.Epoch.Add(time.Duration(s) * time.Second) }
	recs := make([]stream.Record[int], 10)
	for i := range recs {
		recs[i] = stream.Record[int]{Value: i, EventTime: at(i)}
	}
	q.Add(recs...) // one batch
	h.Step()
	mfs := scrape(t, srv)
	read := mustValue(t, mfs, "fleetstream_source_read_offset", "partition", "partition 0")
	held := mustValue(t, mfs, "fleetstream_source_held_back_records", "partition", "partition 0")
	committed := mustValue(t, mfs, "fleetstream_source_committed_offset", "partition", "partition 0")
	require.Equal(t, 10.0, read)
	require.Equal(t, 10.0, held, "the open window needs every record on a replay")
	require.Equal(t, read-committed, held)
	require.Equal(t, float64(at(9).Unix()), mustValue(t, mfs, "fleetstream_partition_watermark_seconds", "partition", "partition 0"))
	require.Empty(t, out.Slice())

	// A record a minute later closes the first window: only it is held back now.
	q.Add(stream.Record[int]{Value: 100, EventTime: at(70)})
	h.Step()
	require.Len(t, out.Slice(), 1)
	mfs = scrape(t, srv)
	require.Equal(t, 11.0, mustValue(t, mfs, "fleetstream_source_read_offset", "partition", "partition 0"))
	require.Equal(t, 1.0, mustValue(t, mfs, "fleetstream_source_held_back_records", "partition", "partition 0"))
	st := status(t, srv)
	require.Len(t, st.PartitionTb, 1)
	require.Equal(t, int64(11), *st.PartitionTb[0].Read)
	require.Equal(t, int64(10), *st.PartitionTb[0].Committed)
	require.Equal(t, int64(1), *st.PartitionTb[0].HeldBack)
	require.False(t, *st.PartitionTb[0].Idle)
	require.Nil(t, st.PartitionTb[0].ReadLag, "the queue reports no lag")
}

// TestLabelValuesNotUTF8: Prometheus label values must be valid UTF-8, and the client
// library panics on one that is not, in Observe (the pipeline's goroutine) or in a scrape
// (a goroutine of Gather): either ends the process. Names given to AddSink and
// AddRepartition are refused; names that come with a batch's stats (operators, partitions,
// dead-letter reasons) have each invalid byte replaced by U+FFFD.
func TestLabelValuesNotUTF8(t *testing.T) {
	m, _, srv := newMetrics(t)
	stats := func() prom.SinkStats { return prom.SinkStats{} }
	require.ErrorIs(t, m.AddSink("cab\xffstats", stats), prom.ErrInvalidOption)
	require.ErrorIs(t, m.AddRepartition("zones\xff", func() prom.RepartitionStats { return prom.RepartitionStats{} }), prom.ErrInvalidOption)
	require.NoError(t, m.AddSink("cab-stats", stats))
	m.Observe(stream.BatchStats{Batch: 1, Partitions: 1,
		State: []stream.OperatorState{{Operator: "win\xffdow", Entries: 4, Reported: true, Late: 2}},
		Source: stream.SourceStats{Lag: map[string]int64{"t\xff/0": 7},
			DeadLettersByReason: map[string]int64{"bad\xff": 3}},
		PartitionStats: []stream.PartitionStats{{Partition: 0, Next: 10, Committed: 3}},
	})
	mfs := scrape(t, srv)
	require.Equal(t, 4.0, mustValue(t, mfs, "fleetstream_state_entries", "operator", "win\uFFFDdow"))
	require.Equal(t, 2.0, mustValue(t, mfs, "fleetstream_operator_rejected_records_total", "operator", "win\uFFFDdow", "reason", "late"))
	require.Equal(t, 7.0, mustValue(t, mfs, "fleetstream_source_commit_lag_records", "partition", "t\uFFFD/0"))
	require.Equal(t, 3.0, mustValue(t, mfs, "fleetstream_source_dead_letters_by_reason_total", "reason", "bad\uFFFD"))
	require.Equal(t, 3.0, mustValue(t, mfs, "fleetstream_source_committed_offset", "partition", "t\uFFFD/0"))
}

// TestOperatorMetrics: the windows, bytes, set-aside records and split keys of the operators that report
// them (stream.StateReporter), summed by name; cumulative counts become counters that never go
// backwards; an operator that reports nothing has only its entries; an operator that left
// has no series.
func TestOperatorMetrics(t *testing.T) {
	m, _, srv := newMetrics(t)
	m.Observe(stream.BatchStats{Batch: 1, State: []stream.OperatorState{
		{Operator: "cab-stats", Entries: 10, Reported: true, OpenWindows: 2, Bytes: 1000, Late: 3, KeyLimit: 1, SplitKeys: 2},
		{Operator: "cab-stats", Entries: 5, Reported: true, OpenWindows: 1, Bytes: 500, Late: 2, SplitKeys: 1},
		{Operator: "cab-tracker", Entries: 7, Reported: true, Bytes: 900, KeyLimit: 4},
		{Operator: "dedup", Entries: 3},
		{Operator: "registry", Entries: 2, Reported: true, Unmatched: 7},
	}})
	mfs := scrape(t, srv)
	op := func(name, operator string) float64 { return mustValue(t, mfs, name, "operator", operator) }
	rejected := func(operator, reason string) float64 {
		return mustValue(t, mfs, "fleetstream_operator_rejected_records_total", "operator", operator, "reason", reason)
	}
	require.Equal(t, 15.0, op("fleetstream_state_entries", "cab-stats"))
	require.Equal(t, 3.0, op("fleetstream_state_open_windows", "cab-stats"))
	require.Equal(t, 1500.0, op("fleetstream_state_bytes", "cab-stats"))
	require.Equal(t, 5.0, rejected("cab-stats", "late"))
	require.Equal(t, 1.0, rejected("cab-stats", "key_limit"))
	require.Equal(t, 3.0, op("fleetstream_operator_split_keys_total", "cab-stats"))
	require.Equal(t, 0.0, op("fleetstream_operator_split_keys_total", "cab-tracker"))
	require.Equal(t, 0.0, op("fleetstream_state_open_windows", "cab-tracker"))
	require.Equal(t, 900.0, op("fleetstream_state_bytes", "cab-tracker"))
	require.Equal(t, 4.0, rejected("cab-tracker", "key_limit"))
	require.Equal(t, 3.0, op("fleetstream_state_entries", "dedup"))
	require.Equal(t, 7.0, op("fleetstream_operator_unmatched_records_total", "registry"))
	require.Equal(t, 0.0, op("fleetstream_operator_unmatched_records_total", "cab-stats"))
	for _, name := range []string{"fleetstream_state_open_windows", "fleetstream_state_bytes", "fleetstream_operator_rejected_records_total",
		"fleetstream_operator_split_keys_total", "fleetstream_operator_unmatched_records_total"} {
		_, ok := value(mfs, name, "operator", "dedup")
		require.False(t, ok, "%s exported for an operator that does not report it", name)
	}

	// The tracker restarted (its counts went down: all increase); dedup left.
	m.Observe(stream.BatchStats{Batch: 2, State: []stream.OperatorState{
		{Operator: "cab-stats", Entries: 1, Reported: true, OpenWindows: 1, Bytes: 100, Late: 6, KeyLimit: 1, SplitKeys: 4},
		{Operator: "cab-stats", Entries: 1, Reported: true, Bytes: 100, Late: 2, SplitKeys: 1},
		{Operator: "cab-tracker", Entries: 1, Reported: true, Bytes: 200, KeyLimit: 2},
		{Operator: "registry", Entries: 2, Reported: true, Unmatched: 9},
	}})
	mfs = scrape(t, srv)
	require.Equal(t, 1.0, op("fleetstream_state_open_windows", "cab-stats"))
	require.Equal(t, 200.0, op("fleetstream_state_bytes", "cab-stats"))
	require.Equal(t, 8.0, rejected("cab-stats", "late"))
	require.Equal(t, 1.0, rejected("cab-stats", "key_limit"))
	require.Equal(t, 6.0, rejected("cab-tracker", "key_limit"), "4, then 2 from a restarted tracker")
	require.Equal(t, 5.0, op("fleetstream_operator_split_keys_total", "cab-stats"))
	require.Equal(t, 9.0, op("fleetstream_operator_unmatched_records_total", "registry"), "7, then 9 in all")
	_, ok := value(mfs, "fleetstream_state_entries", "operator", "dedup")
	require.False(t, ok, "operator that left still exported")

	m.Observe(stream.BatchStats{Batch: 3})
	mfs = scrape(t, srv)
	for _, name := range []string{"fleetstream_state_entries", "fleetstream_state_open_windows", "fleetstream_state_bytes", "fleetstream_operator_rejected_records_total",
		"fleetstream_operator_split_keys_total", "fleetstream_operator_unmatched_records_total"} {
		_, ok := value(mfs, name, "operator", "cab-stats")
		require.False(t, ok, "%s still exported for an operator that left", name)
	}
}

// TestReadLagOfDeadLettersAtEnd is issue 14's read lag with dead letters: a Kafka source
// dead-lettered the last 3 offsets of partition 0 (97..99 of end 100), after the last record
// it pushed (the pipeline read up to 97). The source reports its own read offset and end
// (SourceStats.Read, End), so the partition is read to its end: read lag 0.
func TestReadLagOfDeadLettersAtEnd(t *testing.T) {
	row := func(t *testing.T, st prom.Status, name string) prom.PartitionDoc {
		t.Helper()
		for _, r := range st.PartitionTb {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("no row %s in %+v", name, st.PartitionTb)
		return prom.PartitionDoc{}
	}
	tests := []struct {
		name                            string
		committed, srcCommitted         int64 // the pipeline's, and the source's (its lag)
		read, end                       map[string]int64
		wantRead, wantReadLag, wantHeld int64
	}{
		// Open windows hold the commit at 60: the dead letters are read and held back with
		// the records before them.
		{"held back by open state", 60, 60, map[string]int64{"cabs/0": 100}, map[string]int64{"cabs/0": 100}, 100, 0, 40},
		// Nothing held: the source committed the dead letters itself, past the pipeline's 97.
		{"committed by the source", 97, 100, map[string]int64{"cabs/0": 100}, map[string]int64{"cabs/0": 100}, 100, 0, 0},
		// Behind: 20 more records arrived; the read lag counts them, not the dead letters.
		{"behind", 97, 100, map[string]int64{"cabs/0": 100}, map[string]int64{"cabs/0": 120}, 100, 20, 0},
		// A source that reports its read offset but not its end: end = committed + lag.
		{"read without end", 60, 60, map[string]int64{"cabs/0": 100}, nil, 100, 0, 40},
		// A source that reports neither: the pipeline's read offset, as before.
		{"pipeline only", 60, 60, nil, nil, 97, 3, 37},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, srv := newMetrics(t)
			end := int64(100)
			if e, ok := tt.end["cabs/0"]; ok {
				end = e
			}
			m.Observe(stream.BatchStats{
				Batch: 1, Partitions: 1,
				PartitionStats: []stream.PartitionStats{{Partition: 0, Next: 97, Committed: tt.committed, Watermark: t0}},
				Source: stream.SourceStats{DeadLetters: 3, Lag: map[string]int64{"cabs/0": end - tt.srcCommitted},
					Read: tt.read, End: tt.end},
			})
			r := row(t, status(t, srv), "cabs/0")
			require.Equal(t, tt.wantRead, *r.Read)
			require.Equal(t, tt.wantReadLag, *r.ReadLag)
			require.Equal(t, tt.wantHeld, *r.HeldBack)
			require.Equal(t, *r.CommitLag, *r.ReadLag+*r.HeldBack, "commit lag = read lag + held back")
			require.Equal(t, *r.End, *r.Read+*r.ReadLag)
			mfs := scrape(t, srv)
			part := func(name string) float64 { return mustValue(t, mfs, name, "partition", "cabs/0") }
			require.Equal(t, float64(tt.wantRead), part("fleetstream_source_read_offset"))
			require.Equal(t, float64(tt.wantReadLag), part("fleetstream_source_read_lag_records"))
			require.Equal(t, float64(tt.wantHeld), part("fleetstream_source_held_back_records"))
		})
	}
}

// An empty partition that nothing was read from (the source reports no read offset, the
// pipeline -1, nothing committed, its end 0) has a read lag of 0, not 0 - (-1).
func TestReadLagOfEmptyPartition(t *testing.T) {
	m, _, srv := newMetrics(t)
	m.Observe(stream.BatchStats{
		Batch: 1, Partitions: 2,
		PartitionStats: []stream.PartitionStats{{Partition: 0, Next: 10, Committed: 10, Watermark: t0}, {Partition: 1, Next: -1, Committed: -1}},
		Source: stream.SourceStats{Lag: map[string]int64{"cabs/0": 0, "cabs/1": 0},
			Read: map[string]int64{"cabs/0": 10, "cabs/1": -1}, End: map[string]int64{"cabs/0": 10, "cabs/1": 0}},
	})
	st := status(t, srv)
	require.Len(t, st.PartitionTb, 2)
	empty := st.PartitionTb[1]
	require.Equal(t, "cabs/1", empty.Name)
	require.Nil(t, empty.Read, "nothing read")
	require.Equal(t, int64(0), *empty.ReadLag)
	require.Equal(t, int64(0), *empty.HeldBack)
	require.Equal(t, 0.0, mustValue(t, scrape(t, srv), "fleetstream_source_read_lag_records", "partition", "cabs/1"))
}

// TestSourceDeadLettersByReason: the source's cumulative dead letters by reason become one
// counter per reason that only goes up, and the status page lists them by reason (what the
// source did not split, under "other").
func TestSourceDeadLettersByReason(t *testing.T) {
	m, _, srv := newMetrics(t)
	for i, src := range []stream.SourceStats{
		{DeadLetters: 5, DeadLettersByReason: map[string]int64{stream.ReasonDecode: 3, stream.ReasonInvalid: 2}},
		{DeadLetters: 7, DeadLettersByReason: map[string]int64{stream.ReasonDecode: 4, stream.ReasonInvalid: 2, stream.ReasonEventTime: 1}},
	} {
		m.Observe(stream.BatchStats{Batch: int64(i + 1), Source: src})
	}
	mfs := scrape(t, srv)
	reason := func(r string) float64 {
		return mustValue(t, mfs, "fleetstream_source_dead_letters_by_reason_total", "reason", r)
	}
	require.Equal(t, 4.0, reason(stream.ReasonDecode))
	require.Equal(t, 2.0, reason(stream.ReasonInvalid))
	require.Equal(t, 1.0, reason(stream.ReasonEventTime))
	require.Equal(t, 7.0, mustValue(t, mfs, "fleetstream_source_dead_letters_total"))

	m.Observe(stream.BatchStats{Batch: 3, Source: stream.SourceStats{DeadLetters: 9,
		DeadLettersByReason: map[string]int64{stream.ReasonDecode: 4, stream.ReasonInvalid: 2, stream.ReasonEventTime: 1}}})
	var rows []string
	for _, d := range m.Status().DeadLetters {
		if d.Where == "source" {
			rows = append(rows, fmt.Sprintf("%s=%d", d.Reason, d.Count))
		}
	}
	require.Equal(t, []string{"decode=4", "event_time=1", "invalid=2", "other=2"}, rows)
}

// TestBucketsCheckedAndCopied: WithBuckets accepted NaN bounds (NaN compares false, so the
// order check passed) and exported a bucket le="NaN"; and the histograms kept the caller's
// slice (and DefaultBuckets itself) as their bounds, so a later change to it reordered the
// buckets of a running pipeline's histograms: le="5" before le="2", counts wrong.
func TestBucketsCheckedAndCopied(t *testing.T) {
	for _, b := range [][]float64{{math.NaN()}, {.1, math.NaN(), 1}, {math.NaN(), 1}} {
		_, err := prom.New(prometheus.NewRegistry(), "p", prom.WithBuckets(b...))
		require.ErrorIs(t, err, prom.ErrInvalidOption, "%v", b)
	}

	b := []float64{1, 2}
	m, _, srv := newMetrics(t, prom.WithBuckets(b...))
	b[0] = 5
	d, _, dsrv := newMetrics(t)
	saved := prom.DefaultBuckets[0]
	prom.DefaultBuckets[0] = 0.5 // no test runs in parallel with this one
	t.Cleanup(func() { prom.DefaultBuckets[0] = saved })
	for _, x := range []*prom.Metrics{m, d} {
		x.Observe(stream.BatchStats{Batch: 1, ProcessingTime: 1500 * time.Millisecond})
	}
	var bounds []float64
	var counts []uint64
	for _, bk := range scrape(t, srv)["fleetstream_batch_processing_seconds"].GetMetric()[0].GetHistogram().GetBucket() {
		bounds, counts = append(bounds, bk.GetUpperBound()), append(counts, bk.GetCumulativeCount())
	}
	require.Equal(t, []float64{1, 2, math.Inf(1)}, bounds)
	require.Equal(t, []uint64{0, 1, 1}, counts)
	first := scrape(t, dsrv)["fleetstream_batch_processing_seconds"].GetMetric()[0].GetHistogram().GetBucket()[0]
	require.Equal(t, saved, first.GetUpperBound(), "the defaults as they were at New")
}
