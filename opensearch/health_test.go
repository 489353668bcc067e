package opensearch_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// TestSinkFailingState: Stats says since when the sink's requests fail, how many attempts
// failed and why, and clears it all once a request succeeds.
func TestSinkFailingState(t *testing.T) {
	f := newFake()
	var failing atomic.Bool
	failing.Store(true)
	f.status = func(int) int {
		if failing.Load() {
			return 503
		}
		return 200
	}
	s, _ := fakeSink(t, f, opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}))
	require.Zero(t, s.Stats().FailingSince, "a new sink is not failing")

	before := time.Now()
	require.Error(t, s.Write(t.Context(), recs(10)))
	st := s.Stats()
	require.False(t, st.FailingSince.IsZero(), "failing after three 503s")
	require.False(t, st.FailingSince.Before(before.Add(-time.Second)))
	require.Equal(t, int64(3), st.FailedAttempts)
	require.Contains(t, st.LastError, "503")
	require.False(t, st.LastAttempt.Before(st.FailingSince))
	since := st.FailingSince

	// A second failed Write (the pipeline's retry) continues the same outage.
	require.Error(t, s.Write(t.Context(), recs(10)))
	st = s.Stats()
	require.Equal(t, since, st.FailingSince, "the outage keeps its start")
	require.Equal(t, int64(6), st.FailedAttempts)

	failing.Store(false)
	require.NoError(t, s.Write(t.Context(), recs(10)))
	st = s.Stats()
	require.Zero(t, st.FailingSince)
	require.Zero(t, st.FailedAttempts)
	require.Empty(t, st.LastError)
	require.False(t, st.LastAttempt.IsZero())
}

// TestSinkFailingOnItemRetries: items that must be retried inside a 200 response (429, a
// write block) make the sink failing too, with a message that says so and what OpenSearch
// answered for the first of them. LastError once said only "4 of 4 document(s) failed
// temporarily": a status page could not tell an overloaded node from a shard that is down.
func TestSinkFailingOnItemRetries(t *testing.T) {
	f := newFake()
	f.item = func(string, int) int { return 429 }
	s, _ := fakeSink(t, f, opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	require.Error(t, s.Write(t.Context(), recs(4)))
	st := s.Stats()
	require.False(t, st.FailingSince.IsZero())
	require.Equal(t, int64(2), st.FailedAttempts)
	require.True(t, strings.HasPrefix(st.LastError, "4 of 4 document(s) failed temporarily, the first with status 429 injected_429: injected for r00000"), st.LastError)
	require.Contains(t, st.LastError, `(index "recs", id "r00000")`)
}

// TestSinkFailingWhileAnotherSucceeds: while one request keeps failing, another one's
// success leaves Stats' outage as it is (FailingSince, FailedAttempts, LastError); it
// clears once no request is failing. Any success cleared it, so a status page showing
// "failing since" started again at each failure of a request that never got through, beside
// others that did (one shard down of several). The bulk hook orders the attempts: the
// other request is answered after the first failure is recorded, and the failing request
// tries again after the other's success is recorded.
func TestSinkFailingWhileAnotherSucceeds(t *testing.T) {
	failed, succeeded := make(chan struct{}), make(chan struct{})
	var tries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"_id":"r00000"`)) && tries.Add(1) <= 2 {
			http.Error(w, `{"error":{"type":"unavailable_shards_exception","reason":"down"},"status":503}`, http.StatusServiceUnavailable)
			return
		}
		if bytes.Contains(body, []byte(`"_id":"r00001"`)) {
			<-failed
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errors":false,"items":[{"index":{"status":201,"result":"created"}}]}`))
	}))
	t.Cleanup(srv.Close)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	var s *opensearch.Sink[rec]
	var first, besideSuccess, second opensearch.Stats
	s, err = opensearch.NewSink(c, recMapping, opensearch.WithFlushBytes(1), opensearch.WithConcurrency(2),
		opensearch.WithMaxInFlightBytes(1<<20), // both requests in flight
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}),
		opensearch.WithBulkHook(func(r opensearch.BulkResult) {
			switch {
			case r.Status == 503 && r.Attempt == 1:
				first = s.Stats()
				close(failed)
				<-succeeded
			case r.Status == 503:
				second = s.Stats()
			case r.Attempt == 1:
				besideSuccess = s.Stats()
				close(succeeded)
			}
		}))
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), recs(2)))

	require.False(t, first.FailingSince.IsZero())
	require.Equal(t, first.FailingSince, besideSuccess.FailingSince, "another request's success while one fails")
	require.Equal(t, int64(1), besideSuccess.FailedAttempts)
	require.Contains(t, besideSuccess.LastError, "unavailable_shards_exception")
	require.Equal(t, first.FailingSince, second.FailingSince, "the failing request's next failure continues the outage")
	require.Equal(t, int64(2), second.FailedAttempts)
	st := s.Stats()
	require.Zero(t, st.FailingSince, "cleared once the failing request got through")
	require.Zero(t, st.FailedAttempts)
	require.Empty(t, st.LastError)
}

// TestSinkFailingOnRefusal: a request refused whole (a 401: wrong credentials) fails the
// Write for good and leaves the sink failing with the refusal as LastError, so that the
// status page and /readyz say why the pipeline stopped.
func TestSinkFailingOnRefusal(t *testing.T) {
	f := newFake()
	f.status = func(int) int { return 401 }
	s, _ := fakeSink(t, f)
	err := s.Write(t.Context(), recs(4))
	require.True(t, stream.IsPermanent(err), "a 401 is permanent: %v", err)
	st := s.Stats()
	require.False(t, st.FailingSince.IsZero(), "failing after a refusal")
	require.Equal(t, int64(1), st.FailedAttempts)
	require.Contains(t, st.LastError, "401")
}

// TestSinkInFlightBytes: while a bulk request is in flight (seen from the server handling
// it), Stats counts its body in InFlightBytes; once Write returns, nothing is held.
func TestSinkInFlightBytes(t *testing.T) {
	f := newFake()
	var s *opensearch.Sink[rec]
	var seen atomic.Int64
	f.status = func(int) int {
		seen.Store(s.Stats().InFlightBytes)
		return 200
	}
	s, _ = fakeSink(t, f)
	require.NoError(t, s.Write(t.Context(), recs(50)))
	st := s.Stats()
	require.Positive(t, seen.Load(), "the request's body while it was in flight")
	require.LessOrEqual(t, seen.Load(), st.Bytes, "at most the bytes sent")
	require.Zero(t, st.InFlightBytes, "nothing held after Write")
}

// TestSinkRetryLogIsRateLimited: every failed request is counted, but an outage logs only
// the first few retries within 30 s, so a long outage does not flood the log.
func TestSinkRetryLogIsRateLimited(t *testing.T) {
	f := newFake()
	f.status = func(int) int { return 503 }
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s, _ := fakeSink(t, f, opensearch.WithLogger(log),
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 10}))
	for range 3 {
		require.Error(t, s.Write(t.Context(), recs(4)))
	}
	st := s.Stats()
	require.Equal(t, int64(30), st.FailedAttempts, "every failed request counted")
	require.Positive(t, st.RequestRetries)
	lines := strings.Count(logs.String(), "bulk request failed, retrying")
	require.Equal(t, 5, lines, "the first five retries of the 30 s logged, the rest counted:\n%s", logs.String())
}

// TestRetryLogFailingForBesideSuccess: a request that fails while another one of the sink
// succeeds (one node of several down, a shard's 503) logs how long the sink has been failing
// as its own failure saw it. The log line read Stats.FailingSince after the attempt was
// recorded, and the other request's success cleared it in between: the line said
// failing_for 2562047h47m16.854775807s (the time since year 1, clamped). The bulk hook, which
// runs between the two, holds the failed request until the other one's success is recorded.
func TestRetryLogFailingForBesideSuccess(t *testing.T) {
	failed, succeeded := make(chan struct{}), make(chan struct{})
	var tries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"_id":"r00000"`)) && tries.Add(1) == 1 {
			http.Error(w, `{"error":{"type":"unavailable_shards_exception","reason":"down"},"status":503}`, http.StatusServiceUnavailable)
			return
		}
		if bytes.Contains(body, []byte(`"_id":"r00001"`)) {
			<-failed // answered once the other request's failure is recorded
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errors":false,"items":[{"index":{"status":201,"result":"created"}}]}`))
	}))
	t.Cleanup(srv.Close)
	logs := &logRecords{}
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}, Logger: slog.New(logs)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s, err := opensearch.NewSink(c, recMapping, opensearch.WithFlushBytes(1), opensearch.WithConcurrency(2),
		opensearch.WithMaxInFlightBytes(1<<20), // both requests in flight
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}),
		opensearch.WithBulkHook(func(r opensearch.BulkResult) {
			switch {
			case r.Status == 503:
				close(failed)
				<-succeeded
			case r.Attempt == 1 && r.Err == nil:
				close(succeeded) // the other request's success, recorded after the failure
			}
		}))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, s.Write(t.Context(), recs(2)))
	elapsed := time.Since(start)

	logs.mu.Lock()
	defer logs.mu.Unlock()
	var lines int
	for _, r := range logs.recs {
		if r.Message != "opensearch: bulk request failed, retrying" {
			continue
		}
		lines++
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "failing_for" {
				require.LessOrEqual(t, a.Value.Duration(), elapsed, "failing_for")
			}
			return true
		})
	}
	require.Equal(t, 1, lines)
}
