package prom_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
			ProcessingTime: 20 * time.Millisecond, OutputTime: 300 * time.Millisecond,
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
	for _, h := range []string{"fleetstream_batch_processing_seconds", "fleetstream_batch_output_seconds", "fleetstream_batch_scheduling_delay_seconds"} {
		require.Equal(t, 3.0, mustValue(t, mfs, h), h)
		require.Equal(t, dto.MetricType_HISTOGRAM, mfs[h].GetType(), h)
	}
	sum := mfs["fleetstream_batch_output_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	require.InDelta(t, 0.9, sum, 1e-9)
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

func TestSinks(t *testing.T) {
	m, _, srv := newMetrics(t)
	var mu sync.Mutex
	s := prom.SinkStats{Indexed: 90, Updated: 7, Existed: 1, DeadLettered: 2, Failed: 5, Retried: 4,
		RequestRetries: 3, Blocked: 6, Split: 1, Requests: 12, Bytes: 4096,
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
	m, clk, srv := newMetrics(t, prom.WithStaleAfter(30*time.Second))

	code, body := get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code, body)
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no batch acknowledged yet")

	// Started but no batch for longer than the staleness: the loop is stuck.
	clk.Advance(31 * time.Second)
	code, body = get(t, srv, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "since start")

	m.Observe(stream.BatchStats{Batch: 1})
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

	m.Observe(stream.BatchStats{Batch: 2}) // recovered
	code, _ = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code)
	code, _ = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code)
}

func TestNewErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	for name, opts := range map[string][]prom.Option{
		"stale":   {prom.WithStaleAfter(0)},
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
