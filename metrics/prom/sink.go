// SinkStats and AddSink: sinks' own counters, read at scrape time.

package prom

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// SinkStats is what a sink counted since it was created, as cumulative counts. Its counts and
// failure fields are those of opensearch.Stats under the same names (opensearch.Stats has
// three more, LongIDs, InvalidIDs and Superseded, which are not exported); package
// opensearchprom fills it from an OpenSearch sink's Stats (opensearchprom.SinkStats), so that
// this package does not import opensearch. Another sink fills it itself; System is the
// caller's. Zero fields are exported as zero.
type SinkStats struct {
	// Indexed, Updated, Existed and DeadLettered count documents by outcome: created, replaced
	// (a replay), already present (create op_type, a replay), handed to the dead-letter output.
	Indexed, Updated, Existed, DeadLettered int64
	// Failed counts per-item failures, temporary and permanent; Retried documents sent again.
	Failed, Retried int64
	// RequestRetries counts whole bulk requests sent again; Blocked item attempts refused by a
	// write block; Split requests refused whole and split.
	RequestRetries, Blocked, Split int64
	// Requests and Bytes count bulk request attempts and their bytes.
	Requests, Bytes int64
	// Latency is the request latency histogram; exported when Bounds is set.
	Latency Latency
	// InFlightBytes is the bytes of requests in flight or waiting for a retry now.
	InFlightBytes int64

	// System names what the sink writes to in the failure banner, e.g. "OpenSearch".
	System string
	// FailingSince is when the sink's current outage began (its requests fail); zero while
	// it is not failing. FailedAttempts counts the failed attempts since, LastError is the
	// last one's error, and LastAttempt is when the last request ended, failed or not (a
	// sink retrying shows that the run loop turns). opensearch.Stats has the same fields.
	FailingSince   time.Time
	FailedAttempts int64
	LastError      string
	LastAttempt    time.Time
	// SlowSince is when the sink's oldest request still waiting for its answer was sent,
	// once it has waited past the sink's slow threshold (opensearch: Config.SlowRequest, 10 s
	// by default); zero otherwise. It shows a system that takes requests and does not answer
	// (a stopped or stalled node) before the request timeout makes them fail: while it is
	// set, /readyz answers 503 ("sink cab-stats: no answer from OpenSearch for 23s"), the
	// banner says so, and sink_waiting_seconds is how long the request has waited.
	SlowSince time.Time
}

// Latency is a latency histogram as a sink keeps it (opensearch.Latency with
// opensearch.LatencyBounds): Buckets[i] counts requests that took at most Bounds[i] and more
// than the bound before, and the last bucket, one more than Bounds, the slower ones.
type Latency struct {
	Bounds  []time.Duration
	Buckets []int64
	// Sum is the total duration of the requests (opensearch: Mean times Count).
	Sum time.Duration
}

type constHistogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64 // cumulative, by upper bound in seconds
}

func (l Latency) histogram() (constHistogram, bool) {
	if len(l.Bounds) == 0 || len(l.Buckets) != len(l.Bounds)+1 {
		return constHistogram{}, false
	}
	h := constHistogram{sum: l.Sum.Seconds(), buckets: make(map[float64]uint64, len(l.Bounds))}
	var cum uint64
	for i, b := range l.Bounds {
		cum += uint64(max(0, l.Buckets[i]))
		h.buckets[b.Seconds()] = cum
	}
	h.count = cum + uint64(max(0, l.Buckets[len(l.Bounds)]))
	return h, true
}

// AddSink exports the stats of one sink under the label sink=<name>. stats is called at every
// scrape, from the scraping goroutine, so it must be safe for concurrent use and fast (a
// snapshot under a mutex, as opensearch.Sink.Stats is). The values must be cumulative; they
// are exported as counters as they are.
func (m *Metrics) AddSink(name string, stats func() SinkStats) error {
	if stats == nil {
		return fmt.Errorf("prom: AddSink(%q): nil stats func", name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: AddSink(%q): the name is a label value, which must be valid UTF-8", ErrInvalidOption, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sinks[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateSink, name)
	}
	m.sinks[name] = stats
	m.sinkNames = append(m.sinkNames, name)
	return nil
}
