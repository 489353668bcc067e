// The live status: a short history of batches, the output retry in progress, health and
// readiness with their reasons, and the status document built from them (its types in
// statusdoc.go; the partition table in partitions.go).

package prom

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// HistorySize is how many batches the status page's charts show.
const HistorySize = 300

// sample is one acknowledged batch, as the charts draw it.
type sample struct {
	at                         time.Time // acknowledged, by the clock
	batch                      int64
	records                    int
	bytes                      int64
	processing, output, delay  time.Duration
	commit, commitWait         time.Duration
	attempts                   int
	watermark                  time.Time
	hasPrev                    bool
	sincePrev                  time.Duration // since the previous batch was acknowledged
	recordsTotal, batchesTotal int64
}

// retryState is the output retry the run loop is in, as ObserveRetry reported it.
type retryState struct {
	batch   int64
	attempt int
	err     string
	since   time.Time // the batch's first failed attempt
	at      time.Time // the last report
}

// ObserveRetry records that the outputs of batch failed on attempt and are retried. The
// status page shows it ("batch 38 retrying, attempt 12"), /readyz answers 503 while it lasts
// and /healthz stays 200, since the run loop is turning. The next Observe of this batch or a
// later one ends it. Call it from a retry hook or, until the core has one, from wherever the
// retry is seen (fleetpipeline reads the run loop's retry log record).
func (m *Metrics) ObserveRetry(batch int64, attempt int, err error) {
	now := m.cfg.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen && batch <= m.last {
		return // reported late: the batch was acknowledged meanwhile
	}
	m.retryAttempt.Set(float64(attempt))
	if m.retry.batch != batch || m.retry.since.IsZero() {
		m.retry = retryState{batch: batch, since: now}
	}
	m.retry.attempt, m.retry.at = attempt, now
	if err != nil {
		m.retry.err = err.Error()
	}
}

// record keeps a batch in the history; m.mu is held. It does not allocate.
func (m *Metrics) record(s sample) {
	if m.hist.n > 0 {
		prev := m.hist.buf[(m.hist.head+HistorySize-1)%HistorySize]
		s.hasPrev, s.sincePrev = true, s.at.Sub(prev.at)
	}
	m.hist.buf[m.hist.head] = s
	m.hist.head = (m.hist.head + 1) % HistorySize
	m.hist.n = min(m.hist.n+1, HistorySize)
}

// history returns the samples, oldest first; m.mu is held.
func (m *Metrics) history() []sample {
	out := make([]sample, 0, m.hist.n)
	for i := range m.hist.n {
		out = append(out, m.hist.buf[(m.hist.head+HistorySize-m.hist.n+i)%HistorySize])
	}
	return out
}

// sinkFailure is a failing sink, for health and the banner.
type sinkFailure struct {
	name string
	s    SinkStats
}

// health is what /healthz and /readyz answer, and why.
type health struct {
	alive, ready     bool
	aliveMsg, notMsg string
}

// check evaluates health and readiness at now from a consistent view.
func (m *Metrics) check(now time.Time, v view) health {
	stale := m.cfg.staleAfter
	var h health
	// Alive: batches are acknowledged, or the run loop is retrying a batch's outputs (the
	// retry was reported, or a sink attempted a request, within the staleness).
	turning := func() (time.Time, string) {
		last, what := time.Time{}, ""
		if !v.retry.at.IsZero() {
			last, what = v.retry.at, fmt.Sprintf("batch %d retrying (attempt %d)", v.retry.batch, v.retry.attempt)
		}
		for _, f := range v.failing {
			if f.s.LastAttempt.After(last) {
				last, what = f.s.LastAttempt, fmt.Sprintf("sink %s retrying (%d failed attempts)", f.name, f.s.FailedAttempts)
			}
		}
		return last, what
	}
	lastTurn, turnWhat := turning()
	switch {
	case !v.seen && now.Sub(m.created) <= m.cfg.startTimeout:
		h.alive, h.aliveMsg = true, "starting: no batch acknowledged yet"
	case v.seen && now.Sub(v.lastAt) <= stale:
		h.alive, h.aliveMsg = true, fmt.Sprintf("ok: batch %d acknowledged %v ago", v.last, now.Sub(v.lastAt).Round(time.Millisecond))
	case !lastTurn.IsZero() && now.Sub(lastTurn) <= stale:
		h.alive, h.aliveMsg = true, fmt.Sprintf("ok: run loop turning, %s, last %v ago", turnWhat, now.Sub(lastTurn).Round(time.Millisecond))
	case !v.seen:
		age := now.Sub(m.created)
		h.aliveMsg = fmt.Sprintf("no batch acknowledged in the %v since start (start timeout %v)", age.Round(time.Millisecond), m.cfg.startTimeout)
	default:
		h.aliveMsg = fmt.Sprintf("last batch %d acknowledged %v ago (stale after %v)", v.last, now.Sub(v.lastAt).Round(time.Millisecond), stale)
	}

	// Ready: alive, a batch acknowledged, partitions held, the sources reaching their system,
	// no output failing or retrying, not catching up.
	var why []string
	if !h.alive {
		why = append(why, h.aliveMsg)
	} else if !v.seen {
		why = append(why, "no batch acknowledged yet")
	} else if v.partitions == 0 {
		why = append(why, "no partitions assigned to this instance")
	}
	if !v.srcSince.IsZero() {
		why = append(why, fmt.Sprintf("source unreachable since %s: %s", v.srcSince.Format(time.RFC3339), v.srcErr))
	}
	for _, f := range v.failing {
		why = append(why, fmt.Sprintf("sink %s failing since %s (%d failed attempts): %s",
			f.name, f.s.FailingSince.Format(time.RFC3339), f.s.FailedAttempts, f.s.LastError))
	}
	// A request that waits past the sink's threshold: a node that takes requests and does
	// not answer, which FailingSince shows only once the request timeout fails it.
	for _, f := range v.slow {
		from := ""
		if f.s.System != "" {
			from = " from " + f.s.System
		}
		why = append(why, fmt.Sprintf("sink %s: no answer%s for %v", f.name, from, waited(now, f.s.SlowSince).Round(time.Second)))
	}
	if !v.retry.since.IsZero() {
		why = append(why, fmt.Sprintf("batch %d outputs failing since %s, retrying (attempt %d): %s",
			v.retry.batch, v.retry.since.Format(time.RFC3339), v.retry.attempt, v.retry.err))
	}
	if lag, ok := eventLag(now, v.watermark); ok && m.cfg.maxLag > 0 && lag > m.cfg.maxLag {
		why = append(why, fmt.Sprintf("catching up: event-time lag %v is above %v", lag.Round(time.Second), m.cfg.maxLag))
	}
	if len(why) == 0 {
		h.ready = true
		return h
	}
	h.notMsg = "not ready: " + strings.Join(why, "; ")
	return h
}

// eventLag is now minus the watermark, at least 0; false before the first event.
func eventLag(now, wm time.Time) (time.Duration, bool) {
	if wm.IsZero() {
		return 0, false
	}
	return max(0, now.Sub(wm)), true
}

// view is a consistent copy of what health and the status need.
type view struct {
	seen      bool
	lastAt    time.Time
	last      int64
	watermark time.Time
	retry     retryState
	failing   []sinkFailure
	slow      []sinkFailure // sinks whose oldest request waits past their threshold
	// partitions held, as of the last batch, and the sources' outage, as of the last batch or
	// newer from the live sources (sourceOutage).
	partitions int
	srcSince   time.Time
	srcErr     string
	sinks      []sinkFailure // every sink, in order of AddSink
}

// snapshot copies the state under the mutex and reads the sinks' and live sources' stats
// outside it; full adds the history and the partition table at now.
func (m *Metrics) snapshot(now time.Time, full bool) (view, []sample, statusCopy) {
	live := m.liveSources() // before the lock: the stats funcs may take their own
	m.mu.Lock()
	v := view{seen: m.seen, lastAt: m.lastAt, last: m.last, watermark: m.watermark, retry: m.retry,
		partitions: m.partsNow}
	v.srcSince, v.srcErr = sourceOutage(m.srcSince, m.srcErr, live)
	names := slices.Clone(m.sinkNames)
	fns := make([]func() SinkStats, len(names))
	for i, n := range names {
		fns[i] = m.sinks[n]
	}
	var hist []sample
	c := statusCopy{
		partitions: m.partsNow, records: m.records, bytes: m.bytesTotal, batches: m.batchCount,
		sourceDead: m.prevDead, duplicates: m.prevDups, state: slices.Clone(m.stateNow),
		sourceDeadBy: maps.Clone(m.prevDeadBy),
	}
	if full {
		hist = m.history()
		c.rows = m.partitionTable(now, m.sourceVals(live))
	}
	m.mu.Unlock()
	for i, n := range names {
		s := fns[i]()
		v.sinks = append(v.sinks, sinkFailure{name: n, s: s})
		if !s.FailingSince.IsZero() {
			v.failing = append(v.failing, sinkFailure{name: n, s: s})
		}
		if !s.SlowSince.IsZero() {
			v.slow = append(v.slow, sinkFailure{name: n, s: s})
		}
	}
	return v, hist, c
}

// statusCopy is the rest of the state the status document shows.
type statusCopy struct {
	partitions              int
	records, bytes, batches int64
	sourceDead, duplicates  int64
	sourceDeadBy            map[string]int64
	rows                    []PartitionDoc
	state                   []stream.OperatorState
}

// rateWindow is how many recent batches the headline rates average over.
const rateWindow = 10

// Status returns the pipeline's live status, as /status.json serves it.
func (m *Metrics) Status() Status {
	now := m.cfg.clock.Now()
	v, hist, c := m.snapshot(now, true)
	h := m.check(now, v)
	st := Status{
		Pipeline: m.name, Now: now, Started: m.created,
		Healthy: h.alive, Health: h.aliveMsg, Ready: h.ready, Readiness: "ready",
		Batches: c.batches, LastBatch: v.last, Records: c.records, Bytes: c.bytes, Partitions: c.partitions,
		History:    make([]BatchDoc, 0, len(hist)),
		Duplicates: c.duplicates, Unavailable: []string{},
	}
	if !h.ready {
		st.Readiness = h.notMsg
	}
	if v.seen {
		at := v.lastAt
		st.LastBatchAt = &at
	}
	if !v.watermark.IsZero() {
		wm := v.watermark
		st.Watermark = &wm
		lag, _ := eventLag(now, wm)
		ms := float64(lag) / float64(time.Millisecond)
		st.EventTimeLagMs = &ms
	}
	if !v.retry.since.IsZero() {
		st.Retry = &RetryDoc{Batch: v.retry.batch, Attempt: v.retry.attempt, Since: v.retry.since, Error: v.retry.err}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var inRecs, procRecs int
	var inTime, procTime time.Duration
	for i, s := range hist {
		d := BatchDoc{At: s.at, Batch: s.batch, Records: s.records, ProcessingMs: ms(s.processing), OutputMs: ms(s.output),
			CommitMs: ms(s.commit), DurationMs: ms(s.processing + s.output + s.commitWait), DelayMs: ms(s.delay), Attempts: s.attempts}
		if s.hasPrev && s.sincePrev > 0 {
			r := float64(s.records) / s.sincePrev.Seconds()
			d.InputRate = &r
		}
		if s.processing > 0 {
			r := float64(s.records) / s.processing.Seconds()
			d.ProcessRate = &r
		}
		st.History = append(st.History, d)
		if i >= len(hist)-rateWindow {
			if s.hasPrev {
				inRecs += s.records
				inTime += s.sincePrev
			}
			procRecs += s.records
			procTime += s.processing
		}
	}
	if inTime > 0 {
		st.InputRate = float64(inRecs) / inTime.Seconds()
	}
	if procTime > 0 {
		st.ProcessRate = float64(procRecs) / procTime.Seconds()
	}
	st.PartitionTb = c.rows
	// The source's dead letters by reason when it splits them (any rest under "other"),
	// else one row.
	if len(c.sourceDeadBy) == 0 {
		st.DeadLetters = append(st.DeadLetters, CountDoc{Where: "source", Reason: "decode, invalid, event_time", Count: c.sourceDead})
	} else {
		rest := c.sourceDead
		for _, r := range slices.Sorted(maps.Keys(c.sourceDeadBy)) {
			st.DeadLetters = append(st.DeadLetters, CountDoc{Where: "source", Reason: r, Count: c.sourceDeadBy[r]})
			rest -= c.sourceDeadBy[r]
		}
		if rest > 0 {
			st.DeadLetters = append(st.DeadLetters, CountDoc{Where: "source", Reason: "other", Count: rest})
		}
	}
	for _, o := range c.state {
		d := OperatorDoc{Operator: o.Operator, Entries: o.Entries}
		if o.Reported {
			w, b, l, k, sk, u := o.OpenWindows, o.Bytes, o.Late, o.KeyLimit, o.SplitKeys, o.Unmatched
			d.OpenWindows, d.Bytes, d.Late, d.KeyLimit, d.SplitKeys, d.Unmatched = &w, &b, &l, &k, &sk, &u
			st.DeadLetters = append(st.DeadLetters,
				CountDoc{Where: "operator " + o.Operator, Reason: stream.ReasonLate, Count: l},
				CountDoc{Where: "operator " + o.Operator, Reason: stream.ReasonKeyLimit, Count: k})
		}
		st.Operators = append(st.Operators, d)
	}
	for _, s := range v.sinks {
		d := SinkDoc{Name: s.name, System: s.s.System, FailedAttempts: s.s.FailedAttempts, LastError: s.s.LastError,
			Indexed: s.s.Indexed, Updated: s.s.Updated, Existed: s.s.Existed, DeadLettered: s.s.DeadLettered,
			Retried: s.s.Retried, RequestRetries: s.s.RequestRetries, Blocked: s.s.Blocked, Requests: s.s.Requests,
			InFlightBytes: s.s.InFlightBytes}
		if !s.s.FailingSince.IsZero() {
			since := s.s.FailingSince
			d.Failing, d.FailingSince = true, &since
		}
		if !s.s.SlowSince.IsZero() {
			since, ms := s.s.SlowSince, float64(waited(now, s.s.SlowSince))/float64(time.Millisecond)
			d.SlowSince, d.WaitingMs = &since, &ms
		}
		st.Sinks = append(st.Sinks, d)
		st.DeadLetters = append(st.DeadLetters, CountDoc{Where: "sink " + s.name, Reason: "rejected", Count: s.s.DeadLettered})
	}
	st.Banner = banner(now, v)
	return st
}

// banner says what fails or does not answer, since when, and which batch is retrying or
// waiting; "" when nothing fails.
func banner(now time.Time, v view) string {
	var parts []string
	if !v.srcSince.IsZero() {
		parts = append(parts, fmt.Sprintf("Source unreachable since %s (last error: %s)",
			v.srcSince.Local().Format(time.TimeOnly), v.srcErr))
	}
	if len(v.failing) > 0 {
		first := v.failing[0]
		for _, f := range v.failing[1:] {
			if f.s.FailingSince.Before(first.s.FailingSince) {
				first = f
			}
		}
		system := first.s.System
		if system == "" {
			system = "output " + first.name
		}
		verb := "failing"
		if unreachable(first.s.LastError) {
			verb = "unreachable"
		}
		names := make([]string, 0, len(v.failing))
		var attempts int64
		for _, f := range v.failing {
			names = append(names, f.name)
			attempts += f.s.FailedAttempts
		}
		parts = append(parts, fmt.Sprintf("%s %s since %s (sinks %s: %d failed requests; last error: %s)",
			system, verb, first.s.FailingSince.Local().Format(time.TimeOnly), strings.Join(names, ", "), attempts, first.s.LastError))
	}
	if len(v.slow) > 0 {
		parts = append(parts, slowBanner(now, v.slow))
	}
	switch {
	case !v.retry.since.IsZero():
		parts = append(parts, fmt.Sprintf("batch %d retrying, attempt %d", v.retry.batch, v.retry.attempt))
	case len(v.failing) > 0:
		parts = append(parts, fmt.Sprintf("batch %d retrying", v.last+1))
	case len(v.slow) > 0:
		parts = append(parts, fmt.Sprintf("batch %d waiting", v.last+1))
	}
	return strings.Join(parts, ", ")
}

// slowBanner names the system of the sink that has waited longest for an answer, how long,
// and the sinks that wait: "No answer from OpenSearch for 23s (sinks cab-stats: oldest request
// sent at 10:42:13)".
func slowBanner(now time.Time, slow []sinkFailure) string {
	first := slow[0]
	for _, f := range slow[1:] {
		if f.s.SlowSince.Before(first.s.SlowSince) {
			first = f
		}
	}
	system := first.s.System
	if system == "" {
		system = "output " + first.name
	}
	names := make([]string, 0, len(slow))
	for _, f := range slow {
		names = append(names, f.name)
	}
	return fmt.Sprintf("No answer from %s for %v (sinks %s: oldest request sent at %s)", system,
		waited(now, first.s.SlowSince).Round(time.Second), strings.Join(names, ", "), first.s.SlowSince.Local().Format(time.TimeOnly))
}

// unreachable tells a connection failure from an error answer.
func unreachable(err string) bool {
	for _, s := range []string{"connection refused", "no such host", "timeout", "deadline exceeded", "EOF", "connection reset", "unreachable"} {
		if strings.Contains(err, s) {
			return true
		}
	}
	return false
}

// waited is how long a request sent at slowSince has waited at now, at least 0; 0 for the
// zero time (no request waits past the threshold).
func waited(now, slowSince time.Time) time.Duration {
	if slowSince.IsZero() {
		return 0
	}
	return max(0, now.Sub(slowSince))
}
