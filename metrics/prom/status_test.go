package prom_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
)

func status(t *testing.T, srv *httptest.Server) prom.Status {
	t.Helper()
	code, body := get(t, srv, "/status.json")
	require.Equal(t, http.StatusOK, code, body)
	var st prom.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	return st
}

func TestStatusDocument(t *testing.T) {
	m, clk, srv := newMetrics(t)
	wm := t0.Add(-90 * time.Second)
	for i := range 3 {
		clk.Advance(time.Second)
		m.Observe(stream.BatchStats{
			Batch: int64(i + 1), InputRecords: 100 * (i + 1), InputBytes: 1000, Partitions: 2,
			ProcessingTime: 50 * time.Millisecond, OutputTime: 150 * time.Millisecond, CommitTime: 30 * time.Millisecond,
			CommitWait: 10 * time.Millisecond, SchedulingDelay: 5 * time.Millisecond, Attempts: 1, Watermark: wm,
			State: []stream.OperatorState{
				{Operator: "cab-stats", Entries: 7, Reported: true, OpenWindows: 2, Bytes: 4096, Late: int64(i), KeyLimit: 1, SplitKeys: 3, Unmatched: 4},
				{Operator: "dedup", Entries: 3},
			},
			Committed: []stream.Position{{Partition: 0, Offset: int64(40 * (i + 1))}, {Partition: 1, Offset: 10}},
			PartitionStats: []stream.PartitionStats{
				{Partition: 0, Next: int64(40*(i+1) + 3), Committed: int64(40 * (i + 1)), Watermark: wm},
				{Partition: 1, Next: 10, Committed: 10, Watermark: wm.Add(-time.Minute), Idle: true},
			},
			Duplicates: int64(i),
			Source:     stream.SourceStats{DeadLetters: 2, Lag: map[string]int64{"cabs/0": 5, "cabs/1": 0}},
		})
	}
	st := status(t, srv)
	require.Equal(t, "cabstats", st.Pipeline)
	require.True(t, st.Healthy)
	require.True(t, st.Ready, st.Readiness)
	require.Empty(t, st.Banner)
	require.EqualValues(t, 3, st.Batches)
	require.EqualValues(t, 600, st.Records)
	require.EqualValues(t, 3, st.LastBatch)
	require.Len(t, st.History, 3)
	require.Nil(t, st.History[0].InputRate, "the first batch has no previous one to measure from")
	require.InDelta(t, 200, *st.History[1].InputRate, 1e-9, "200 records one second after the previous batch")
	require.InDelta(t, 300/0.05, *st.History[2].ProcessRate, 1e-6)
	require.InDelta(t, 30, st.History[2].CommitMs, 1e-9)
	require.InDelta(t, 210, st.History[2].DurationMs, 1e-9, "processing, output and the wait for the commit")
	require.InDelta(t, 5, st.History[2].DelayMs, 1e-9)
	require.InDelta(t, (200+300)/2.0, st.InputRate, 1e-9)
	require.InDelta(t, 600/0.15, st.ProcessRate, 1e-6)
	require.InDelta(t, float64(93*time.Second/time.Millisecond), *st.EventTimeLagMs, 1e-6)
	// Partition 0: 123 read, 120 committed, end 125: 3 held back, 2 not read yet.
	wm1 := wm.Add(-time.Minute)
	require.Equal(t, []prom.PartitionDoc{
		{Name: "cabs/0", Read: ptr(int64(123)), Committed: ptr(int64(120)), End: ptr(int64(125)),
			ReadLag: ptr(int64(2)), CommitLag: ptr(int64(5)), HeldBack: ptr(int64(3)),
			Watermark: &wm, EventTimeLagMs: ptr(93_000.0), Idle: ptr(false)},
		{Name: "cabs/1", Read: ptr(int64(10)), Committed: ptr(int64(10)), End: ptr(int64(10)),
			ReadLag: ptr(int64(0)), CommitLag: ptr(int64(0)), HeldBack: ptr(int64(0)),
			Watermark: &wm1, EventTimeLagMs: ptr(153_000.0), Idle: ptr(true)},
	}, st.PartitionTb)
	for _, r := range st.PartitionTb {
		require.Equal(t, *r.CommitLag, *r.ReadLag+*r.HeldBack, r.Name)
		require.Equal(t, *r.End, *r.Read+*r.ReadLag, r.Name)
	}
	require.EqualValues(t, 2, st.Duplicates)
	require.Equal(t, "source", st.DeadLetters[0].Where)
	require.EqualValues(t, 2, st.DeadLetters[0].Count)
	// The operators' state as of the last batch; an operator that reports no details
	// (stream.StateReporter) has none, and no rows of set-aside records.
	require.Equal(t, []prom.OperatorDoc{
		{Operator: "cab-stats", Entries: 7, OpenWindows: ptr(2), Bytes: ptr(int64(4096)), Late: ptr(int64(2)), KeyLimit: ptr(int64(1)), SplitKeys: ptr(int64(3)), Unmatched: ptr(int64(4))},
		{Operator: "dedup", Entries: 3},
	}, st.Operators)
	require.Equal(t, []prom.CountDoc{
		{Where: "source", Reason: "decode, invalid, event_time", Count: 2},
		{Where: "operator cab-stats", Reason: "late", Count: 2},
		{Where: "operator cab-stats", Reason: "key_limit", Count: 1},
	}, st.DeadLetters)
	// Every figure of the page is reported now.
	require.Empty(t, st.Unavailable)

	code, body := get(t, srv, "/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `id="partitions"`)
	for _, col := range []string{"read", "committed", "end", "read-lag", "commit-lag", "held-back", "watermark", "event-lag", "idle"} {
		require.Contains(t, body, `col(tr, "`+col+`"`, "the page renders the %s column", col)
	}
	for _, col := range []string{"entries", "open-windows", "bytes", "late", "key-limit"} {
		require.Contains(t, body, `col(tr, "`+col+`"`, "the page renders the operators' %s column", col)
	}
	// Nothing is loaded from elsewhere (air-gapped): no src, href, import or url() that
	// names a scheme or a host.
	require.NotRegexp(t, `(?i)(src|href)\s*=\s*["']?([a-z]+:)?//|@import|url\(`, body)
	code, _ = get(t, srv, "/nope")
	require.Equal(t, http.StatusNotFound, code)
}

func ptr[T any](v T) *T { return &v }

// An outage: a sink fails and the run loop retries a batch. /healthz stays 200 (the loop
// turns), /readyz is 503 with the reason, the banner says what fails, since when, and which
// batch retries; an acknowledged batch ends it.
func TestStatusDuringOutage(t *testing.T) {
	m, clk, srv := newMetrics(t, prom.WithStaleAfter(30*time.Second))
	sink := prom.SinkStats{System: "OpenSearch", Indexed: 10}
	require.NoError(t, m.AddSink("cab-stats", func() prom.SinkStats { return sink }))
	m.Observe(stream.BatchStats{Batch: 37, Partitions: 1})
	code, _ := get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code)

	since := clk.Now().Add(time.Second)
	clk.Advance(40 * time.Second) // past the staleness: only the retries show the loop turns
	sink.FailingSince, sink.FailedAttempts, sink.LastAttempt = since, 12, clk.Now()
	sink.LastError = "dial tcp 127.0.0.1:9200: connect: connection refused"
	m.ObserveRetry(38, 3, errors.New("opensearch: bulk: giving up after 10 attempts"))

	code, body := get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "run loop turning")
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "sink cab-stats failing since")
	require.Contains(t, body, "connection refused")
	require.Contains(t, body, "batch 38 outputs failing")

	st := status(t, srv)
	require.False(t, st.Ready)
	require.Equal(t, "OpenSearch unreachable since "+since.Local().Format(time.TimeOnly)+
		" (sinks cab-stats: 12 failed requests; last error: dial tcp 127.0.0.1:9200: connect: connection refused), batch 38 retrying, attempt 3", st.Banner)
	require.Equal(t, &prom.RetryDoc{Batch: 38, Attempt: 3, Since: clk.Now(), Error: "opensearch: bulk: giving up after 10 attempts"}, st.Retry)
	require.True(t, st.Sinks[0].Failing)
	mfs := scrape(t, srv)
	require.Equal(t, 1.0, mustValue(t, mfs, "fleetstream_sink_failing", "sink", "cab-stats"))
	require.Equal(t, 3.0, mustValue(t, mfs, "fleetstream_output_retry_attempt"))

	// The loop stops turning: no retry and no request for longer than the staleness.
	clk.Advance(31 * time.Second)
	code, body = get(t, srv, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code, body)

	// Recovery: the sink succeeds and batch 38 is acknowledged.
	sink.FailingSince, sink.FailedAttempts, sink.LastError, sink.LastAttempt = time.Time{}, 0, "", clk.Now()
	m.Observe(stream.BatchStats{Batch: 38, Partitions: 1})
	for _, p := range []string{"/healthz", "/readyz"} {
		code, body = get(t, srv, p)
		require.Equal(t, http.StatusOK, code, p+": "+body)
	}
	st = status(t, srv)
	require.Empty(t, st.Banner)
	require.Nil(t, st.Retry)
	mfs = scrape(t, srv)
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_sink_failing", "sink", "cab-stats"))
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_output_retry_attempt"))

	// A retry reported after its batch was acknowledged is ignored.
	m.ObserveRetry(38, 4, errors.New("late"))
	code, _ = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code)
}

// A failing sink with no pipeline retry reported: the banner names the batch after the last
// acknowledged one, and an error answer (not a connection failure) reads "failing".
func TestStatusBannerSinkOnly(t *testing.T) {
	m, _, srv := newMetrics(t)
	sink := prom.SinkStats{FailingSince: t0, FailedAttempts: 2, LastError: "bulk: 503 Service Unavailable", LastAttempt: t0}
	require.NoError(t, m.AddSink("zones", func() prom.SinkStats { return sink }))
	m.Observe(stream.BatchStats{Batch: 5})
	st := status(t, srv)
	require.True(t, strings.HasPrefix(st.Banner, "output zones failing since "), st.Banner)
	require.True(t, strings.HasSuffix(st.Banner, ", batch 6 retrying"), st.Banner)
}

// A long catch-up: with WithMaxEventTimeLag, /readyz is 503 while the watermark lags more.
func TestReadyCatchUp(t *testing.T) {
	m, clk, srv := newMetrics(t, prom.WithMaxEventTimeLag(5*time.Minute))
	m.Observe(stream.BatchStats{Batch: 1, Partitions: 1, Watermark: clk.Now().Add(-time.Hour)})
	code, body := get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "catching up: event-time lag 1h0m0s is above 5m0s")
	code, _ = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code)
	m.Observe(stream.BatchStats{Batch: 2, Partitions: 1, Watermark: clk.Now().Add(-time.Minute)})
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code, body)

	_, err := prom.New(nil, "x", prom.WithMaxEventTimeLag(-time.Second))
	require.ErrorIs(t, err, prom.ErrInvalidOption)
}

// Readiness follows the sources: not ready while the pipeline holds no partition (none
// assigned to this instance) or a source cannot reach its cluster, with the reason, a banner
// and source_failing 1; ready again once the source reaches it. Health is not affected: the
// run loop turns.
func TestReadySources(t *testing.T) {
	m, clk, srv := newMetrics(t)
	m.Observe(stream.BatchStats{Batch: 1})
	code, body := get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no partitions assigned to this instance")

	since := clk.Now().Add(-7 * time.Second)
	down := "kafka: client has run out of available brokers to talk to: dial tcp 127.0.0.1:9092: connect: connection refused"
	m.Observe(stream.BatchStats{Batch: 2, Partitions: 6, Source: stream.SourceStats{FailingSince: since, LastError: down}})
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "source unreachable since "+since.Format(time.RFC3339)+": "+down)
	require.NotContains(t, body, "no partitions")
	code, _ = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code)
	st := m.Status()
	require.False(t, st.Ready)
	require.Equal(t, "Source unreachable since "+since.Local().Format(time.TimeOnly)+" (last error: "+down+")", st.Banner)
	require.Equal(t, 1.0, mustValue(t, scrape(t, srv), "fleetstream_source_failing"))

	m.Observe(stream.BatchStats{Batch: 3, Partitions: 6})
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code, body)
	require.Empty(t, m.Status().Banner)
	require.Equal(t, 0.0, mustValue(t, scrape(t, srv), "fleetstream_source_failing"))
}

// A hung OpenSearch node (stopped): a request waits past the sink's slow threshold while no
// request has failed yet. /readyz is 503 with the reason, the banner and the sink's row say
// so, sink_waiting_seconds is how long it has waited; once the request is answered, all is
// back to normal. /healthz stays 200: the last batch is fresh.
func TestReadySlowSink(t *testing.T) {
	m, clk, srv := newMetrics(t)
	var mu sync.Mutex
	sink := prom.SinkStats{System: "OpenSearch", Indexed: 10}
	require.NoError(t, m.AddSink("cab-stats", func() prom.SinkStats { mu.Lock(); defer mu.Unlock(); return sink }))
	require.NoError(t, m.AddSink("alerts", func() prom.SinkStats { return prom.SinkStats{} }))
	m.Observe(stream.BatchStats{Batch: 7, Partitions: 1})
	require.Equal(t, 0.0, mustValue(t, scrape(t, srv), "fleetstream_sink_waiting_seconds", "sink", "cab-stats"))

	sent := clk.Now().Add(time.Second)
	clk.Advance(24 * time.Second)
	mu.Lock()
	sink.SlowSince = sent
	mu.Unlock()

	code, body := get(t, srv, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Equal(t, "not ready: sink cab-stats: no answer from OpenSearch for 23s\n", body)
	code, body = get(t, srv, "/healthz")
	require.Equal(t, http.StatusOK, code, body)
	mfs := scrape(t, srv)
	require.Equal(t, 23.0, mustValue(t, mfs, "fleetstream_sink_waiting_seconds", "sink", "cab-stats"))
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_sink_waiting_seconds", "sink", "alerts"))
	require.Equal(t, 0.0, mustValue(t, mfs, "fleetstream_sink_failing", "sink", "cab-stats"), "nothing failed yet")
	st := status(t, srv)
	require.False(t, st.Ready)
	require.Equal(t, "No answer from OpenSearch for 23s (sinks cab-stats: oldest request sent at "+
		sent.Local().Format(time.TimeOnly)+"), batch 8 waiting", st.Banner)
	require.Equal(t, "cab-stats", st.Sinks[0].Name)
	require.NotNil(t, st.Sinks[0].SlowSince)
	require.True(t, sent.Equal(*st.Sinks[0].SlowSince))
	require.Equal(t, ptr(23_000.0), st.Sinks[0].WaitingMs)
	require.Nil(t, st.Sinks[1].SlowSince)

	// The reason follows the clock.
	clk.Advance(10 * time.Second)
	_, body = get(t, srv, "/readyz")
	require.Contains(t, body, "sink cab-stats: no answer from OpenSearch for 33s")

	// Answered: nothing waits past the threshold any more.
	mu.Lock()
	sink.SlowSince = time.Time{}
	mu.Unlock()
	code, body = get(t, srv, "/readyz")
	require.Equal(t, http.StatusOK, code, body)
	require.Empty(t, status(t, srv).Banner)
	require.Equal(t, 0.0, mustValue(t, scrape(t, srv), "fleetstream_sink_waiting_seconds", "sink", "cab-stats"))
}
