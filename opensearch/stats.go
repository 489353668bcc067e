// Sink statistics: Stats and Sink.Stats, Latency with LatencyBounds, BulkResult for
// WithBulkHook, and the counters behind them.

package opensearch

import (
	"fmt"
	"sync"
	"time"
)

// LatencyBounds are the upper bounds of the latency histogram's buckets; Latency.Buckets has
// one more bucket for what is slower than the last bound.
var LatencyBounds = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
}

// Latency summarises the duration of bulk requests (one attempt each, failed ones included).
type Latency struct {
	Count           int64
	Last, Mean, Max time.Duration
	// Buckets[i] counts requests that took at most LatencyBounds[i] (and more than the bound
	// before); the last bucket counts the slower ones.
	Buckets [len(LatencyBounds) + 1]int64
}

func (l *Latency) add(d, total time.Duration) {
	l.Count++
	l.Last = d
	l.Mean = total / time.Duration(l.Count)
	l.Max = max(l.Max, d)
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	l.Buckets[i]++
}

// Stats counts what a sink did since it was created. Document counts are per item of a bulk
// response, so a document retried twice and then indexed counts once in Indexed, twice in
// Failed and twice in Retried.
type Stats struct {
	// Indexed counts documents created (result "created").
	Indexed int64
	// Updated counts documents that replaced one with the same ID (result "updated"): replays.
	Updated int64
	// Existed counts documents written with op_type create (data streams) whose ID existed
	// already (409): replays too; the stored document was kept.
	Existed int64
	// Failed counts item failures: temporary ones (429, 5xx, retried) and permanent ones
	// (dead-lettered).
	Failed int64
	// Retried counts documents sent again, in whole-request or item retries.
	Retried int64
	// RequestRetries counts bulk requests sent again after a transport error, a timeout or a
	// 408/429/5xx status.
	RequestRetries int64
	// Blocked counts item attempts (and, for a request refused whole, its documents)
	// refused by an index or cluster write block (cluster_block_exception: index.blocks.write,
	// the flood-stage read_only_allow_delete block). They are retried like 429s, and counted
	// in Failed (items) or RequestRetries (whole requests) too.
	Blocked int64
	// Split counts bulk requests refused whole (400, 413) that the sink split in halves to
	// isolate the documents OpenSearch refuses.
	Split int64
	// LongIDs counts documents whose ID was longer than 512 bytes and was replaced by its
	// stable bound (see the package doc).
	LongIDs int64
	// InvalidIDs counts documents whose ID was not valid UTF-8 and was replaced by its
	// stable form (see the package doc).
	InvalidIDs int64
	// DeadLettered counts documents handed to the dead-letter output (rejected by OpenSearch,
	// or that could not be encoded).
	DeadLettered int64
	// Superseded counts documents not sent because a later value in the same batch had the
	// same index and ID (the last one is written, or the latest that can be encoded).
	Superseded int64
	// Requests counts bulk request attempts; Bytes the request bytes they sent.
	Requests int64
	Bytes    int64
	// Latency is the bulk request latency.
	Latency Latency

	// FailingSince is when the sink's current run of failed bulk request attempts began (a
	// transport error, a timeout, a 408/429/5xx status or a write block, items of a
	// response that must be retried, or a request refused whole, such as a 401, which stops
	// the pipeline). It is cleared by an attempt that succeeds while no other request's last
	// attempt failed: another request's success beside one that keeps failing (one shard
	// down of several) leaves it, and a Write that gave up leaves it until an attempt
	// succeeds. It is the outage a status page shows: "unreachable since 10:42:13".
	FailingSince time.Time
	// FailedAttempts counts the failed attempts since FailingSince, and LastError is the
	// error of the last one (for items sent again, what OpenSearch answered for the first of
	// them); 0 and "" while FailingSince is zero.
	FailedAttempts int64
	LastError      string
	// LastAttempt is when the last bulk request attempt ended, failed or not: a sink that
	// keeps retrying is still being driven.
	LastAttempt time.Time
	// InFlightBytes is the bytes of bulk bodies held now by requests in flight or waiting
	// for a retry (bounded by WithMaxInFlightBytes): what an outage holds in memory.
	InFlightBytes int64
	// SlowSince is when the oldest bulk request attempt still waiting for its answer was
	// sent, once it has waited Config.SlowRequest (10 s by default) or longer; zero while
	// every attempt in flight is younger, or SlowRequest is off. Unlike FailingSince, it
	// shows a node that takes requests and does not answer (stopped, stalled) before the
	// request timeout fails them: "no answer from OpenSearch for 25 s".
	SlowSince time.Time
}

// Stats returns a snapshot of the sink's counters.
func (s *Sink[T]) Stats() Stats {
	st := s.stats.snapshot()
	st.InFlightBytes = s.inFl.inUse()
	st.SlowSince = s.reqs.slowSince(time.Now(), s.c.slow)
	return st
}

// BulkResult describes one bulk request attempt, for WithBulkHook.
type BulkResult struct {
	Docs    int
	Bytes   int
	Attempt int // 1 for the first attempt of these documents
	Status  int // HTTP status; 0 when no response came
	Latency time.Duration
	// Err is the request's error: a transport error or an error status. Nil when a
	// response with per-item results came back.
	Err error
	// Per-item outcomes of a response.
	Created, Updated, Existed, Retry, Rejected int
	// Blocked counts the documents refused by a write block (items, or the whole request's).
	Blocked int
	// retryWhy is what OpenSearch answered for the first item sent again, for LastError.
	retryWhy string
	// raced counts the items of Retry sent again once because they lost a race to map a
	// field (mappingRace): no failure of the cluster, and no attempt of the retry policy.
	raced int
}

type statsBox struct {
	mu    sync.Mutex
	s     Stats
	total time.Duration // sum of latencies, for the mean
	// failing counts the requests being sent (a chunk, or a half of one split) whose last
	// attempt failed: FailingSince stays while it is not zero.
	failing int
}

func (b *statsBox) snapshot() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}

// record counts the attempt r of the request whose last attempt's failure *failing holds,
// which it updates, and returns Stats.FailingSince as it leaves it: the start of the run of
// failures r belongs to, or zero after a success while no other request is failing.
func (b *statsBox) record(r *BulkResult, requestRetry bool, failing *bool) (failingSince time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &b.s
	s.Requests++
	s.Bytes += int64(r.Bytes)
	b.total += r.Latency
	s.Latency.add(r.Latency, b.total)
	s.Indexed += int64(r.Created)
	s.Updated += int64(r.Updated)
	s.Existed += int64(r.Existed)
	s.Failed += int64(r.Retry + r.Rejected)
	if r.Attempt > 1 {
		s.Retried += int64(r.Docs)
	}
	s.Blocked += int64(r.Blocked)
	if requestRetry {
		s.RequestRetries++
	}
	now := time.Now()
	s.LastAttempt = now
	// r.Err without a retry: the request was refused whole (a 401, a 403 that is not a
	// write block, a 400), which stops the pipeline, or split to isolate a document (a
	// 413), whose halves' responses clear it again.
	failed := requestRetry || r.Retry > r.raced || r.Err != nil
	b.setFailing(failing, failed)
	switch {
	case failed:
		if s.FailingSince.IsZero() {
			s.FailingSince = now.Add(-r.Latency)
		}
		s.FailedAttempts++
		switch {
		case r.Err != nil:
			s.LastError = r.Err.Error()
		case r.Blocked > 0:
			s.LastError = fmt.Sprintf("%d of %d document(s) refused by a write block, the first with %s", r.Blocked, r.Docs, r.retryWhy)
		default:
			s.LastError = fmt.Sprintf("%d of %d document(s) failed temporarily, the first with %s", r.Retry, r.Docs, r.retryWhy)
		}
	case b.failing == 0: // a response came back, nothing is retried, and no request fails
		s.FailingSince, s.FailedAttempts, s.LastError = time.Time{}, 0, ""
	}
	return s.FailingSince
}

// ended notes that the request whose last attempt's failure *failing holds is no longer
// sent (it succeeded, gave up, stopped, or was split in halves that are sent on their
// own). FailingSince stays: an attempt that succeeds clears it.
func (b *statsBox) ended(failing *bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setFailing(failing, false)
}

func (b *statsBox) setFailing(failing *bool, now bool) {
	switch {
	case now && !*failing:
		b.failing++
	case !now && *failing:
		b.failing--
	}
	*failing = now
}

func (b *statsBox) deadLettered(n int) {
	b.mu.Lock()
	b.s.DeadLettered += int64(n)
	b.mu.Unlock()
}

func (b *statsBox) superseded(n int) {
	b.mu.Lock()
	b.s.Superseded += int64(n)
	b.mu.Unlock()
}

func (b *statsBox) split() {
	b.mu.Lock()
	b.s.Split++
	b.mu.Unlock()
}

func (b *statsBox) replacedIDs(long, invalid int) {
	b.mu.Lock()
	b.s.LongIDs += int64(long)
	b.s.InvalidIDs += int64(invalid)
	b.mu.Unlock()
}
