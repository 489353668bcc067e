package prom_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/stream"
)

// TestDeadLettersByReasonAfterSourceRestart: the doc promises
// source_dead_letters_by_reason_total is "the same by reason" as source_dead_letters_total and
// that a cumulative count that goes down is a source restarted from zero. A restarted
// kafka.Source reports DeadLettersByReason nil until its first dead letter (it builds the map
// lazily), so the by-reason counters never see the reset that the total sees.
func TestDeadLettersByReasonAfterSourceRestart(t *testing.T) {
	m, _, srv := newMetrics(t)
	// First source: 4 decode errors.
	m.Observe(stream.BatchStats{Batch: 1, Source: stream.SourceStats{DeadLetters: 4,
		DeadLettersByReason: map[string]int64{stream.ReasonDecode: 4}}})
	// Run restarted with a new source: nothing dead-lettered yet (nil map, as kafka.Source).
	m.Observe(stream.BatchStats{Batch: 2, Source: stream.SourceStats{DeadLetters: 0}})
	// The new source dead-letters 6 records.
	m.Observe(stream.BatchStats{Batch: 3, Source: stream.SourceStats{DeadLetters: 6,
		DeadLettersByReason: map[string]int64{stream.ReasonDecode: 6}}})
	mfs := scrape(t, srv)
	total := mustValue(t, mfs, "fleetstream_source_dead_letters_total")
	byReason := mustValue(t, mfs, "fleetstream_source_dead_letters_by_reason_total", "reason", stream.ReasonDecode)
	require.Equal(t, 10.0, total)
	require.Equal(t, total, byReason, "by-reason counter must equal the total when the source splits every dead letter")
}

// TestStatusDeadLettersByReasonAfterSourceRestart: the status page keeps the old
// source's per-reason counts after the new source reports none, while its total is 0.
func TestStatusDeadLettersByReasonAfterSourceRestart(t *testing.T) {
	m, _, _ := newMetrics(t)
	m.Observe(stream.BatchStats{Batch: 1, Source: stream.SourceStats{DeadLetters: 4,
		DeadLettersByReason: map[string]int64{stream.ReasonDecode: 4}}})
	m.Observe(stream.BatchStats{Batch: 2, Source: stream.SourceStats{DeadLetters: 0}})
	var rows []string
	sum := int64(0)
	for _, d := range m.Status().DeadLetters {
		if d.Where == "source" {
			rows = append(rows, d.Reason)
			sum += d.Count
		}
	}
	require.Equal(t, int64(0), sum, "status rows %v: the source reports 0 dead letters", rows)
}

// TestSourceReadEndWithInvalidUTF8Name: labelValue is applied to the lag names and row
// names but not to the keys of SourceStats.Read/End, so those are not joined with the row.
func TestSourceReadEndWithInvalidUTF8Name(t *testing.T) {
	m, _, srv := newMetrics(t)
	m.Observe(stream.BatchStats{Batch: 1, Partitions: 1,
		PartitionStats: []stream.PartitionStats{{Partition: 0, Next: 97, Committed: 60}},
		Source: stream.SourceStats{Lag: map[string]int64{"t\xff/0": 40},
			Read: map[string]int64{"t\xff/0": 100}, End: map[string]int64{"t\xff/0": 100}},
	})
	st := status(t, srv)
	require.Len(t, st.PartitionTb, 1)
	r := st.PartitionTb[0]
	require.Equal(t, "t\uFFFD/0", r.Name)
	require.NotNil(t, r.Read)
	require.Equal(t, int64(100), *r.Read, "the source's read offset (dead letters at the end count as read)")
	require.NotNil(t, r.ReadLag)
	require.Equal(t, int64(0), *r.ReadLag)
}

// Concurrent scrapes, status requests, health checks, AddSink and ObserveRetry while batches
// are observed: run with -race. Every answer must be well formed.
func TestConcurrentHandlers(t *testing.T) {
	m, clk, srv := newMetrics(t)
	var wg sync.WaitGroup
	const n = 50
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			clk.Advance(time.Second)
			m.Observe(stream.BatchStats{Batch: int64(i + 1), InputRecords: 10, Partitions: 2, Attempts: 1, Watermark: t0,
				PartitionStats: []stream.PartitionStats{{Partition: 0, Next: int64(i), Committed: 0}, {Partition: int32(i%2 + 1), Next: 3, Committed: 1}},
				State:          []stream.OperatorState{{Operator: "w", Entries: i, Reported: true, Late: int64(i)}},
				Source: stream.SourceStats{Lag: map[string]int64{"t/0": int64(i)}, DeadLetters: int64(i),
					DeadLettersByReason: map[string]int64{"decode": int64(i)}}})
			m.ObserveRetry(int64(i+2), 1, nil)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 5 {
			require.NoError(t, m.AddSink("s"+string(rune('a'+i)), func() prom.SinkStats { return prom.SinkStats{Indexed: 1} }))
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 5 {
				for _, p := range []string{"/status.json", "/metrics", "/healthz", "/readyz", "/"} {
					resp, err := srv.Client().Get(srv.URL + p)
					if err != nil {
						t.Error(err)
						return
					}
					if p == "/status.json" {
						var st prom.Status
						if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
							t.Error(err)
						}
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
						t.Errorf("%s: %d", p, resp.StatusCode)
					}
				}
			}
		}()
	}
	wg.Wait()
	mfs := scrape(t, srv)
	require.Equal(t, float64(n), mustValue(t, mfs, "fleetstream_batches_total"))
	require.Equal(t, float64(n-1), mustValue(t, mfs, "fleetstream_source_dead_letters_total"))
}

// Before any batch: the status document is valid JSON, /readyz is 503, /healthz 200, and the
// content types are right; the page builds its DOM with textContent only (no markup
// injected from names such as an index or topic with '<').
func TestHandlersBeforeFirstBatch(t *testing.T) {
	m, _, srv := newMetrics(t)
	require.NoError(t, m.AddSink("<img src=x onerror=alert(1)>", func() prom.SinkStats { return prom.SinkStats{} }))
	for _, c := range []struct {
		path, ctype string
		code        int
	}{
		{"/", "text/html; charset=utf-8", 200},
		{"/status.json", "application/json", 200},
		{"/healthz", "text/plain; charset=utf-8", 200},
		{"/readyz", "text/plain; charset=utf-8", 503},
	} {
		resp, err := srv.Client().Get(srv.URL + c.path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, c.code, resp.StatusCode, c.path)
		require.Equal(t, c.ctype, resp.Header.Get("Content-Type"), c.path)
	}
	st := status(t, srv)
	require.False(t, st.Ready)
	require.True(t, st.Healthy)
	require.Nil(t, st.LastBatchAt)
	require.Nil(t, st.Watermark)
	require.Equal(t, "<img src=x onerror=alert(1)>", st.Sinks[0].Name)
	_, page := get(t, srv, "/")
	require.NotContains(t, page, "innerHTML")
	require.NotContains(t, page, "insertAdjacentHTML")
	require.NotContains(t, page, "document.write")
	require.True(t, strings.Contains(page, "textContent"))
}
