// Metrics, the collector fed by the pipeline's stats hook, and its options.

package prom

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/stream"
)

// Namespace prefixes every metric name.
const Namespace = "fleetstream"

// ErrInvalidOption is wrapped by the errors of New for an invalid argument or option.
var ErrInvalidOption = errors.New("prom: invalid option")

// ErrDuplicateSink is wrapped by the error of AddSink for a sink name already added.
var ErrDuplicateSink = errors.New("prom: duplicate sink")

// DefaultStaleAfter is how long /healthz waits for the next batch's stats by default.
const DefaultStaleAfter = 2 * time.Minute

// DefaultBuckets are the upper bounds, in seconds, of the batch duration histograms: 1 ms to
// 5 min, for batch intervals from sub-second to a minute and outputs that retry.
var DefaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Clock is the time source of the health checks and of the scrape-time gauges.
// stream.Clock and streamtest's manual clock satisfy it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	clock         Clock
	staleAfter    time.Duration
	maxLag        time.Duration
	buckets       []float64
	gatherer      prometheus.Gatherer
	partitionName func(int32) string
	errs          []error
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithClock sets the clock of the health checks and of the event-time lag; default the
// system clock. Give it the pipeline's clock when the pipeline runs on a fake one.
func WithClock(c Clock) Option {
	return optionFunc(func(cfg *config) {
		if c == nil {
			cfg.errs = append(cfg.errs, invalid("WithClock(nil)"))
			return
		}
		cfg.clock = c
	})
}

// WithStaleAfter sets how long after the last batch's stats (or after New, before the first
// batch) /healthz and /readyz still answer 200. Default DefaultStaleAfter. Choose it well above
// the batch interval plus the longest batch, retries included.
func WithStaleAfter(d time.Duration) Option {
	return optionFunc(func(cfg *config) {
		if d <= 0 {
			cfg.errs = append(cfg.errs, invalid("WithStaleAfter(%v): must be positive", d))
			return
		}
		cfg.staleAfter = d
	})
}

// WithMaxEventTimeLag makes /readyz answer 503 while the event-time lag (now minus the
// pipeline watermark) is above d: a long catch-up, when the results lag behind real time.
// Default 0: off, for pipelines that replay old data on purpose. Set it above the windows'
// length plus grace, which the watermark lags by design.
func WithMaxEventTimeLag(d time.Duration) Option {
	return optionFunc(func(cfg *config) {
		if d < 0 {
			cfg.errs = append(cfg.errs, invalid("WithMaxEventTimeLag(%v): negative", d))
			return
		}
		cfg.maxLag = d
	})
}

// WithPartitionName names the pipeline's partition ids (stream.Position.Partition) in the
// status page's partition table and in the partition label of the per-partition metrics,
// e.g. a kafka.Source's TopicPartition formatted "topic/3". Name them as the source names its
// lags (SourceStats.Lag) for the read lag to be known. By default the first source's ids are
// named after the lag names when they all share one topic, and other sources' ids (a
// repartition's) "source 1 partition 3".
func WithPartitionName(f func(id int32) string) Option {
	return optionFunc(func(cfg *config) { cfg.partitionName = f })
}

// WithBuckets sets the upper bounds, in seconds, of the batch duration histograms; default
// DefaultBuckets.
func WithBuckets(b ...float64) Option {
	return optionFunc(func(cfg *config) {
		for i := 1; i < len(b); i++ {
			if b[i] <= b[i-1] {
				cfg.errs = append(cfg.errs, invalid("WithBuckets(%v): bounds must increase", b))
				return
			}
		}
		if len(b) == 0 {
			cfg.errs = append(cfg.errs, invalid("WithBuckets(): no bounds"))
			return
		}
		cfg.buckets = b
	})
}

// WithGatherer sets what Handler serves at /metrics. By default it is the Registerer given to
// New when that is also a prometheus.Gatherer (a *prometheus.Registry is); a wrapped
// Registerer (prometheus.WrapRegistererWith) needs this option for /metrics to be served.
func WithGatherer(g prometheus.Gatherer) Option {
	return optionFunc(func(cfg *config) { cfg.gatherer = g })
}

// Metrics turns the pipeline's BatchStats into Prometheus metrics and serves health checks.
// Feed it with stream.WithStatsHook(m.Observe). All methods are safe for concurrent use.
type Metrics struct {
	cfg     config
	name    string
	created time.Time

	recordsIn    prometheus.Counter
	bytesIn      prometheus.Counter
	batches      prometheus.Counter
	attempts     prometheus.Counter
	retries      prometheus.Counter
	deadLetters  prometheus.Counter
	duplicates   prometheus.Counter
	processing   prometheus.Histogram
	output       prometheus.Histogram
	delay        prometheus.Histogram
	partitions   prometheus.Gauge
	lastBatch    prometheus.Gauge
	state        *prometheus.GaugeVec
	openWindows  *prometheus.GaugeVec
	stateBytes   *prometheus.GaugeVec
	rejected     *prometheus.CounterVec
	deadReasons  *prometheus.CounterVec
	commitLag    *prometheus.GaugeVec
	retryAttempt prometheus.Gauge
	srcFailing   prometheus.Gauge

	mu        sync.Mutex
	seen      bool      // a batch's stats arrived
	lastAt    time.Time // when, by the clock
	last      int64     // its batch number
	watermark time.Time
	prevDead  int64
	prevDups  int64
	// prevDeadBy is the source's cumulative dead letters by reason at the last batch.
	prevDeadBy map[string]int64
	lagGauges  map[string]prometheus.Gauge // by partition, of the last batch
	lagSeen    map[string]bool             // scratch: partitions of this batch
	opSums     map[string]opSum            // scratch: state by operator name
	opGauges   map[string]*opMetrics       // by operator, of the last batch
	sinks      map[string]func() SinkStats
	sinkNames  []string // in order of AddSink
	// repartitions are the exchanges' counters, by name (AddRepartition).
	repartitions map[string]func() RepartitionStats

	// The status page's state, kept by Observe without allocating once partitions and
	// operators are known.
	hist struct {
		buf     [HistorySize]sample
		head, n int
	}
	retry    retryState
	partsNow int
	// srcSince and srcErr are the sources' outage as of the last batch (SourceStats).
	srcSince   time.Time
	srcErr     string
	records    int64
	bytesTotal int64
	batchCount int64
	committed  map[int32]int64         // last committed offset by partition id
	parts      []stream.PartitionStats // of the last batch, when the pipeline reports them
	live       map[int32]bool          // scratch: partition ids of this batch
	lagVals    map[string]int64        // commit lag by partition name, of the last batch
	readVals   map[string]int64        // the source's read offset by partition name (SourceStats.Read)
	endVals    map[string]int64        // the source's high-water mark by partition name (SourceStats.End)
	stateNow   []stream.OperatorState  // of the last batch, in graph order
}

// opSum is the state of the operators of one name in a batch (names need not be unique).
type opSum struct {
	entries, windows     int
	bytes, late, limited int64
	reported             bool
}

// opMetrics are an operator name's series.
type opMetrics struct {
	entries, windows, bytes prometheus.Gauge
	late, limited           prometheus.Counter
	reported                bool  // the windows and bytes gauges exist
	prevLate, prevLimited   int64 // the cumulative counts of the last batch
}

// New registers the metrics of the pipeline named pipeline with reg, each with a constant
// label pipeline=<name>, and returns the collector to hand to stream.WithStatsHook. The same
// reg may hold the metrics of several pipelines of different names.
func New(reg prometheus.Registerer, pipeline string, opts ...Option) (*Metrics, error) {
	cfg := config{clock: systemClock{}, staleAfter: DefaultStaleAfter, buckets: DefaultBuckets}
	if reg == nil {
		cfg.errs = append(cfg.errs, invalid("nil Registerer"))
	}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if cfg.gatherer == nil {
		cfg.gatherer, _ = reg.(prometheus.Gatherer)
	}
	cl := prometheus.Labels{"pipeline": pipeline}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: cl})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: cl})
	}
	hist := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: cl, Buckets: cfg.buckets})
	}
	m := &Metrics{
		cfg:         cfg,
		name:        pipeline,
		created:     cfg.clock.Now(),
		recordsIn:   counter("input_records_total", "Records of acknowledged batches."),
		bytesIn:     counter("input_bytes_total", "Bytes of the records of acknowledged batches."),
		batches:     counter("batches_total", "Acknowledged batches."),
		attempts:    counter("output_attempts_total", "Output attempts of acknowledged batches (one per batch when nothing failed)."),
		retries:     counter("output_retries_total", "Output attempts after the first of acknowledged batches."),
		deadLetters: counter("source_dead_letters_total", "Records the source sent to its dead-letter output (undecodable or invalid)."),
		duplicates:  counter("repartition_duplicates_total", "Replayed records the repartitions dropped as already seen (after a crash or rebalance)."),
		processing:  hist("batch_processing_seconds", "Time a batch spent in transforms, excluding outputs."),
		output:      hist("batch_output_seconds", "Time a batch spent in output operations, retries included."),
		delay:       hist("batch_scheduling_delay_seconds", "Time from a batch's scheduled time to the start of its processing."),
		partitions:  gauge("partitions", "Source partitions the pipeline holds."),
		lastBatch:   gauge("last_batch_timestamp_seconds", "When the last batch was acknowledged, by the collector's clock, in seconds since the epoch."),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "state_entries",
			Help: "Entries held by a stateful operator (keys, keys in open windows, sessions).", ConstLabels: cl}, []string{"operator"}),
		openWindows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "state_open_windows",
			Help:        "Event-time windows of an operator that hold data and were not emitted yet, counted once per partition (a session is one window).",
			ConstLabels: cl}, []string{"operator"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "state_bytes",
			Help:        "Estimated bytes of an operator's state, as the operator estimates them (see its package documentation).",
			ConstLabels: cl}, []string{"operator"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "operator_rejected_records_total",
			Help:        "Records an operator did not take into its state and sent to its late or dead-letter stream instead, by reason: late, key_limit.",
			ConstLabels: cl}, []string{"operator", "reason"}),
		deadReasons: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "source_dead_letters_by_reason_total",
			Help:        "source_dead_letters_total by reason: decode, invalid, event_time (from sources that split them).",
			ConstLabels: cl}, []string{"reason"}),
		commitLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "source_commit_lag_records",
			Help:        "High-water mark minus committed offset of a source partition; open windows hold the commit back, so it is not the read lag.",
			ConstLabels: cl}, []string{"partition"}),
		retryAttempt: gauge("output_retry_attempt", "Attempt number of the batch whose outputs are being retried; 0 when none is."),
		srcFailing:   gauge("source_failing", "1 while a source cannot reach its system (a Kafka cluster), as of the last batch; else 0."),
		committed:    make(map[int32]int64),
		live:         make(map[int32]bool),
		lagVals:      make(map[string]int64),
		readVals:     make(map[string]int64),
		endVals:      make(map[string]int64),
		lagGauges:    make(map[string]prometheus.Gauge),
		lagSeen:      make(map[string]bool),
		opSums:       make(map[string]opSum),
		prevDeadBy:   make(map[string]int64),
		opGauges:     make(map[string]*opMetrics),
		sinks:        make(map[string]func() SinkStats),
		repartitions: make(map[string]func() RepartitionStats),
	}
	cs := []prometheus.Collector{m.recordsIn, m.bytesIn, m.batches, m.attempts, m.retries, m.deadLetters, m.duplicates,
		m.processing, m.output, m.delay, m.partitions, m.lastBatch, m.state, m.openWindows, m.stateBytes, m.rejected, m.deadReasons,
		m.commitLag, m.retryAttempt, m.srcFailing,
		&scrapeCollector{m: m, descs: newScrapeDescs(cl), reps: newRepartitionDescs(cl)}}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("prom: register: %w", err)
		}
	}
	return m, nil
}

// Observe records one batch's stats. Pass it to stream.WithStatsHook; it runs once per batch,
// never per record, and does not block beyond a short mutex.
//
// SourceStats.DeadLetters is cumulative since the source started; the counter adds its
// increase. When it goes down (a new source, after a restart of Run), the source restarted
// from zero, so the new value is all increase: the counter never goes backwards, as
// Prometheus's own counter-reset handling assumes.
func (m *Metrics) Observe(st stream.BatchStats) {
	m.recordsIn.Add(float64(st.InputRecords))
	m.bytesIn.Add(float64(st.InputBytes))
	m.batches.Inc()
	m.attempts.Add(float64(st.Attempts))
	if st.Attempts > 1 {
		m.retries.Add(float64(st.Attempts - 1))
	}
	m.processing.Observe(st.ProcessingTime.Seconds())
	m.output.Observe(st.OutputTime.Seconds())
	m.delay.Observe(st.SchedulingDelay.Seconds())
	m.partitions.Set(float64(st.Partitions))

	now := m.cfg.clock.Now()
	m.lastBatch.Set(float64(now.UnixNano()) / 1e9)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen, m.lastAt, m.last, m.watermark = true, now, st.Batch, st.Watermark
	if !m.retry.since.IsZero() && st.Batch >= m.retry.batch {
		m.retry = retryState{}
		m.retryAttempt.Set(0)
	}
	m.partsNow = st.Partitions
	m.srcSince, m.srcErr = st.Source.FailingSince, st.Source.LastError
	if m.srcSince.IsZero() {
		m.srcFailing.Set(0)
	} else {
		m.srcFailing.Set(1)
	}
	m.records += int64(st.InputRecords)
	m.bytesTotal += st.InputBytes
	m.batchCount++
	m.record(sample{at: now, batch: st.Batch, records: st.InputRecords, bytes: st.InputBytes,
		processing: st.ProcessingTime, output: st.OutputTime, delay: st.SchedulingDelay, attempts: st.Attempts,
		watermark: st.Watermark, recordsTotal: m.records, batchesTotal: m.batchCount})
	for _, p := range st.Committed {
		m.committed[p.Partition] = p.Offset
	}
	// The live partitions' positions; when the pipeline reports them, the committed offsets
	// of partitions that left (revoked) are dropped with them.
	m.parts = append(m.parts[:0], st.PartitionStats...)
	if st.PartitionStats != nil {
		clear(m.live)
		for _, p := range st.PartitionStats {
			m.live[p.Partition] = true
			if p.Committed >= 0 {
				m.committed[p.Partition] = p.Committed
			}
		}
		for id := range m.committed {
			if !m.live[id] {
				delete(m.committed, id)
			}
		}
	}
	m.stateNow = append(m.stateNow[:0], st.State...)

	m.deadLetters.Add(float64(increase(st.Source.DeadLetters, m.prevDead)))
	m.prevDead = st.Source.DeadLetters
	for r, n := range st.Source.DeadLettersByReason {
		if d := increase(n, m.prevDeadBy[r]); d > 0 || !m.hasReason(r) {
			m.deadReasons.WithLabelValues(r).Add(float64(d))
		}
		m.prevDeadBy[r] = n
	}
	// Duplicates is cumulative since the pipeline started, like DeadLetters.
	m.duplicates.Add(float64(increase(st.Duplicates, m.prevDups)))
	m.prevDups = st.Duplicates

	m.observeOperators(st.State)

	// Commit lag by partition; a partition that is no longer reported (revoked) is removed.
	clear(m.lagSeen)
	for part, lag := range st.Source.Lag {
		g, ok := m.lagGauges[part]
		if !ok {
			g = m.commitLag.WithLabelValues(part)
			m.lagGauges[part] = g
		}
		g.Set(float64(lag))
		m.lagSeen[part] = true
		m.lagVals[part] = lag
	}
	for part := range m.lagGauges {
		if !m.lagSeen[part] {
			m.commitLag.DeleteLabelValues(part)
			delete(m.lagGauges, part)
			delete(m.lagVals, part)
		}
	}
	// The source's own read offsets and ends, of the partitions it reports now.
	keepNamed(m.readVals, st.Source.Read)
	keepNamed(m.endVals, st.Source.End)
}

// keepNamed makes dst a copy of src without allocating once its names are known.
func keepNamed(dst, src map[string]int64) {
	for n := range dst {
		if _, ok := src[n]; !ok {
			delete(dst, n)
		}
	}
	for n, v := range src {
		dst[n] = v
	}
}

// observeOperators sets the operators' series: the state summed by name (names need not be
// unique), the windows and bytes of operators that report them, and the increase of their
// cumulative set-aside counts. The series of operators that left are deleted; m.mu is held.
func (m *Metrics) observeOperators(state []stream.OperatorState) {
	clear(m.opSums)
	for _, o := range state {
		s := m.opSums[o.Operator]
		s.entries += o.Entries
		if o.Reported {
			s.reported = true
			s.windows += o.OpenWindows
			s.bytes += o.Bytes
			s.late += o.Late
			s.limited += o.KeyLimit
		}
		m.opSums[o.Operator] = s
	}
	for name, s := range m.opSums {
		g, ok := m.opGauges[name]
		if !ok {
			g = &opMetrics{entries: m.state.WithLabelValues(name)}
			m.opGauges[name] = g
		}
		g.entries.Set(float64(s.entries))
		if !s.reported {
			continue
		}
		if !g.reported {
			g.reported = true
			g.windows, g.bytes = m.openWindows.WithLabelValues(name), m.stateBytes.WithLabelValues(name)
			g.late = m.rejected.WithLabelValues(name, stream.ReasonLate)
			g.limited = m.rejected.WithLabelValues(name, stream.ReasonKeyLimit)
		}
		g.windows.Set(float64(s.windows))
		g.bytes.Set(float64(s.bytes))
		g.late.Add(float64(increase(s.late, g.prevLate)))
		g.limited.Add(float64(increase(s.limited, g.prevLimited)))
		g.prevLate, g.prevLimited = s.late, s.limited
	}
	for name, g := range m.opGauges {
		if _, ok := m.opSums[name]; !ok {
			m.state.DeleteLabelValues(name)
			if g.reported {
				m.openWindows.DeleteLabelValues(name)
				m.stateBytes.DeleteLabelValues(name)
				m.rejected.DeleteLabelValues(name, stream.ReasonLate)
				m.rejected.DeleteLabelValues(name, stream.ReasonKeyLimit)
			}
			delete(m.opGauges, name)
		}
	}
}

// hasReason reports whether the source's dead letters of reason have a series; m.mu is held.
func (m *Metrics) hasReason(r string) bool {
	_, ok := m.prevDeadBy[r]
	return ok
}

// increase is what a cumulative count added since prev: all of it when it went down (it
// restarted from zero), so that counters never go backwards.
func increase(now, prev int64) int64 {
	if now >= prev {
		return now - prev
	}
	return now
}

// seconds is t in seconds since the epoch, also for times whose UnixNano overflows (the
// watermark at the end of input).
func seconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

// health reports whether the run loop turns and whether the pipeline is ready, each with
// the reason /healthz and /readyz answer.
func (m *Metrics) health() (alive bool, aliveMsg string, ready bool, readyMsg string) {
	now := m.cfg.clock.Now()
	v, _, _ := m.snapshot(now, false)
	h := m.check(now, v)
	if h.ready {
		return h.alive, h.aliveMsg, true, h.aliveMsg
	}
	return h.alive, h.aliveMsg, false, h.notMsg
}

// scrapeCollector computes the values that depend on the time of the scrape, and reads the
// sinks' stats.
type scrapeCollector struct {
	m     *Metrics
	descs scrapeDescs
	reps  repartitionDescs
}

type scrapeDescs struct {
	watermark, eventLag                               *prometheus.Desc
	readOffset, committedOffset, readLag, heldBack    *prometheus.Desc
	partWatermark, partEventLag, partIdle             *prometheus.Desc
	docs, failed, retried, reqRetries, blocked, split *prometheus.Desc
	requests, reqBytes, latency                       *prometheus.Desc
	failing, failingSince, failedAttempts, inFlight   *prometheus.Desc
}

func newScrapeDescs(cl prometheus.Labels) scrapeDescs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, cl)
	}
	return scrapeDescs{
		watermark: d("watermark_seconds", "Pipeline watermark after the last batch, in seconds since the epoch; absent before the first event."),
		eventLag:  d("event_time_lag_seconds", "Now minus the pipeline watermark at scrape time, at least 0; absent before the first event."),
		readOffset: d("source_read_offset",
			"Offset after the newest record read from a source partition, by the pipeline or by the source (dead letters count as read); absent before the first record.", "partition"),
		committedOffset: d("source_committed_offset",
			"Offset a source partition resumes from after a restart (the last committed); absent before the first commit.", "partition"),
		readLag: d("source_read_lag_records",
			"High-water mark minus the read offset of a source partition (commit lag minus held back): 0 when the pipeline keeps up.", "partition"),
		heldBack: d("source_held_back_records",
			"Offsets of a source partition read but not committed, because open state (windows) still needs them on a replay.", "partition"),
		partWatermark: d("partition_watermark_seconds",
			"A partition's own watermark, in seconds since the epoch; absent before its first event.", "partition"),
		partEventLag: d("partition_event_time_lag_seconds",
			"Now minus a partition's own watermark at scrape time, at least 0; absent before its first event.", "partition"),
		partIdle: d("partition_idle",
			"1 while a partition is idle: no record for the idle timeout, its watermark left out of the pipeline's; else 0.", "partition"),
		docs:    d("sink_documents_total", "Documents a sink finished with, by result: created, updated, existed (replays), dead_lettered.", "sink", "result"),
		failed:  d("sink_item_failures_total", "Per-item failures of bulk responses, temporary (retried) and permanent.", "sink"),
		retried: d("sink_documents_retried_total", "Documents a sink sent again.", "sink"),
		reqRetries: d("sink_request_retries_total",
			"Bulk requests sent again after a transport error, a timeout or a 408/429/5xx status.", "sink"),
		blocked:  d("sink_blocked_total", "Item attempts refused by a write block (flood stage, index.blocks.write); retried.", "sink"),
		split:    d("sink_split_requests_total", "Bulk requests refused whole and split to isolate bad documents.", "sink"),
		requests: d("sink_requests_total", "Bulk request attempts.", "sink"),
		reqBytes: d("sink_request_bytes_total", "Bytes of bulk request attempts.", "sink"),
		latency:  d("sink_request_duration_seconds", "Duration of bulk request attempts.", "sink"),
		failing:  d("sink_failing", "1 while the sink's requests fail (its outage), else 0.", "sink"),
		failingSince: d("sink_failing_since_seconds",
			"When the sink's current outage began, in seconds since the epoch; absent while it is not failing.", "sink"),
		failedAttempts: d("sink_failed_attempts", "Failed request attempts of the sink's current outage; 0 while it is not failing.", "sink"),
		inFlight:       d("sink_in_flight_bytes", "Bytes of bulk requests in flight or waiting for a retry.", "sink"),
	}
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs
	for _, x := range []*prometheus.Desc{d.watermark, d.eventLag, d.readOffset, d.committedOffset, d.readLag, d.heldBack,
		d.partWatermark, d.partEventLag, d.partIdle, d.docs, d.failed, d.retried, d.reqRetries,
		d.blocked, d.split, d.requests, d.reqBytes, d.latency, d.failing, d.failingSince, d.failedAttempts, d.inFlight,
		c.reps.records, c.reps.messages, c.reps.bytes} {
		ch <- x
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	m, d := c.m, c.descs
	now := m.cfg.clock.Now()
	m.mu.Lock()
	wm := m.watermark
	sinks := maps.Clone(m.sinks)
	names := append([]string(nil), m.sinkNames...)
	rows := m.partitionTable(now)
	m.mu.Unlock()
	if !wm.IsZero() {
		ch <- prometheus.MustNewConstMetric(d.watermark, prometheus.GaugeValue, seconds(wm))
		ch <- prometheus.MustNewConstMetric(d.eventLag, prometheus.GaugeValue, max(0, now.Sub(wm).Seconds()))
	}
	// Per partition, from the status page's table, so that both show the same figures. The
	// commit lag is the GaugeVec set by Observe.
	for _, r := range rows {
		gauge := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, r.Name)
		}
		if r.Read != nil {
			gauge(d.readOffset, float64(*r.Read))
		}
		if r.Committed != nil {
			gauge(d.committedOffset, float64(*r.Committed))
		}
		if r.ReadLag != nil {
			gauge(d.readLag, float64(*r.ReadLag))
		}
		if r.HeldBack != nil {
			gauge(d.heldBack, float64(*r.HeldBack))
		}
		if r.Watermark != nil {
			gauge(d.partWatermark, seconds(*r.Watermark))
			gauge(d.partEventLag, *r.EventTimeLagMs/1e3)
		}
		if r.Idle != nil {
			idle := 0.0
			if *r.Idle {
				idle = 1
			}
			gauge(d.partIdle, idle)
		}
	}
	for _, name := range names {
		s := sinks[name]()
		counter := func(desc *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		counter(d.docs, s.Indexed, "created")
		counter(d.docs, s.Updated, "updated")
		counter(d.docs, s.Existed, "existed")
		counter(d.docs, s.DeadLettered, "dead_lettered")
		counter(d.failed, s.Failed)
		counter(d.retried, s.Retried)
		counter(d.reqRetries, s.RequestRetries)
		counter(d.blocked, s.Blocked)
		counter(d.split, s.Split)
		counter(d.requests, s.Requests)
		counter(d.reqBytes, s.Bytes)
		failing := 0.0
		if !s.FailingSince.IsZero() {
			failing = 1
			ch <- prometheus.MustNewConstMetric(d.failingSince, prometheus.GaugeValue,
				float64(s.FailingSince.UnixNano())/1e9, name)
		}
		ch <- prometheus.MustNewConstMetric(d.failing, prometheus.GaugeValue, failing, name)
		ch <- prometheus.MustNewConstMetric(d.failedAttempts, prometheus.GaugeValue, float64(s.FailedAttempts), name)
		ch <- prometheus.MustNewConstMetric(d.inFlight, prometheus.GaugeValue, float64(s.InFlightBytes), name)
		if h, ok := s.Latency.histogram(); ok {
			ch <- prometheus.MustNewConstHistogram(d.latency, h.count, h.sum, h.buckets, name)
		}
	}
	m.collectRepartitions(c.reps, ch)
}
