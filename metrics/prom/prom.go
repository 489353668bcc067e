// Metrics, the collector fed by the pipeline's stats hook (options in options.go, the
// scrape-time collector in scrape.go).

package prom

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// DefaultStartTimeout is how long after New /healthz waits for the first batch's stats by
// default: a start joins the consumer group and loads the tables a pipeline reads.
const DefaultStartTimeout = 10 * time.Minute

// DefaultBuckets are the upper bounds, in seconds, of the batch duration histograms: 1 ms to
// 5 min, for batch intervals from sub-second to a minute and outputs that retry.
var DefaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Metrics turns the pipeline's BatchStats into Prometheus metrics and serves health checks.
// Feed it with stream.WithStatsHook(m.Observe). All methods are safe for concurrent use.
type Metrics struct {
	cfg     config
	name    string
	created time.Time

	recordsIn   prometheus.Counter
	bytesIn     prometheus.Counter
	batches     prometheus.Counter
	attempts    prometheus.Counter
	retries     prometheus.Counter
	deadLetters prometheus.Counter
	duplicates  prometheus.Counter
	processing  prometheus.Histogram
	// outWrite and outValues are BatchStats.Outputs by output name (outputs of one name
	// summed within a batch).
	outWrite     *prometheus.HistogramVec
	outValues    *prometheus.CounterVec
	outSum       map[string]stream.OutputStats // scratch, by name
	output       prometheus.Histogram
	commit       prometheus.Histogram
	commitWait   prometheus.Histogram
	delay        prometheus.Histogram
	partitions   prometheus.Gauge
	lastBatch    prometheus.Gauge
	state        *prometheus.GaugeVec
	openWindows  *prometheus.GaugeVec
	stateBytes   *prometheus.GaugeVec
	rejected     *prometheus.CounterVec
	splitKeys    *prometheus.CounterVec
	unmatched    *prometheus.CounterVec
	deadReasons  *prometheus.CounterVec
	retryAttempt prometheus.Gauge

	mu        sync.Mutex
	seen      bool      // a batch's stats arrived
	lastAt    time.Time // when, by the clock
	last      int64     // its batch number
	watermark time.Time
	prevDead  int64
	prevDups  int64
	// prevDeadBy is the source's cumulative dead letters by reason at the last batch.
	prevDeadBy map[string]int64
	opSums     map[string]opSum      // scratch: state by operator name
	opGauges   map[string]*opMetrics // by operator, of the last batch
	sinks      map[string]func() SinkStats
	sinkNames  []string // in order of AddSink
	// sources are the live stats of the sources added with AddSource, read at scrape time.
	sources []func() stream.SourceStats
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
	// srcSince and srcErr are the sources' outage as of the last batch (SourceStats); the
	// live sources' may be newer (sourceOutage).
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
	entries, windows            int
	bytes, late, limited, split int64
	unmatched                   int64
	reported                    bool
}

// opMetrics are an operator name's series.
type opMetrics struct {
	entries, windows, bytes prometheus.Gauge
	late, limited, split    prometheus.Counter
	unmatched               prometheus.Counter
	reported                bool // the windows and bytes gauges exist
	// the cumulative counts of the last batch
	prevLate, prevLimited, prevSplit int64
	prevUnmatched                    int64
}

// New registers the metrics of the pipeline named pipeline with reg, each with a constant
// label pipeline=<name>, and returns the collector to hand to stream.WithStatsHook. The same
// reg may hold the metrics of several pipelines of different names.
func New(reg prometheus.Registerer, pipeline string, opts ...Option) (*Metrics, error) {
	// DefaultBuckets copied: the histograms keep the slice they are given, and it is exported.
	cfg := config{clock: systemClock{}, staleAfter: DefaultStaleAfter, startTimeout: DefaultStartTimeout, buckets: slices.Clone(DefaultBuckets)}
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
		deadLetters: counter("source_dead_letters_total", "Records the source sent to its dead-letter output (undecodable, invalid, or an event time out of bounds; by reason in source_dead_letters_by_reason_total). Late records, records past a key limit and documents an index refused are dead-lettered downstream and count in output_values_total and the sinks' dead-lettered counts, not here."),
		duplicates:  counter("repartition_duplicates_total", "Replayed records the repartitions dropped as already seen (after a crash or rebalance)."),
		processing:  hist("batch_processing_seconds", "Time a batch spent in transforms, excluding outputs."),
		output:      hist("batch_output_seconds", "Time a batch spent in output operations, retries included."),
		commit:      hist("batch_commit_seconds", "Duration of a batch's commit of its positions to the sources (it runs while the next batch is processed and written)."),
		commitWait:  hist("batch_commit_wait_seconds", "Time a batch waited for the previous batch's commit to end, beyond its own processing and outputs."),
		delay:       hist("batch_scheduling_delay_seconds", "Time from a batch's scheduled time to the start of its processing."),
		partitions:  gauge("partitions", "Source partitions the pipeline holds."),
		lastBatch:   gauge("last_batch_timestamp_seconds", "When the last batch was acknowledged, by the collector's clock, in seconds since the epoch."),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "state_entries",
			Help: "Entries held by a stateful operator (keys, keys in open windows, keys with sessions).", ConstLabels: cl}, []string{"operator"}),
		openWindows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "state_open_windows",
			Help:        "Event-time windows of an operator that hold data and were not emitted yet, counted once per partition (a session is one window).",
			ConstLabels: cl}, []string{"operator"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "state_bytes",
			Help:        "Estimated bytes of an operator's state, as the operator estimates them (see its package documentation).",
			ConstLabels: cl}, []string{"operator"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "operator_rejected_records_total",
			Help:        "Records an operator did not take into its state and sent to its late or dead-letter stream instead, by reason: late, key_limit.",
			ConstLabels: cl}, []string{"operator", "reason"}),
		splitKeys: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "operator_split_keys_total",
			Help: "Times a key of an operator that needs each key in one partition (a window, a co-partitioned enrichment) turned up in " +
				"another partition: its input is not partitioned by the operator's key, and its results are split or wrong. Should stay 0.",
			ConstLabels: cl}, []string{"operator"}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "operator_unmatched_records_total",
			Help:        "Records an inner join dropped for want of a match (join.Enrich with WithKind(Inner): no table value for the key); stream.OperatorState.Unmatched.",
			ConstLabels: cl}, []string{"operator"}),
		deadReasons: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "source_dead_letters_by_reason_total",
			Help:        "source_dead_letters_total by reason: decode, invalid, event_time (from sources that split them).",
			ConstLabels: cl}, []string{"reason"}),
		outWrite: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "output_write_seconds",
			Help:        "Time a batch's writes to one output took, every attempt together (BatchStats.Outputs; stream.OutputName names the output).",
			ConstLabels: cl, Buckets: cfg.buckets}, []string{"output"}),
		outValues: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "output_values_total",
			Help:        "Values acknowledged batches handed to one output (a repartition's: the records it sent, marks included).",
			ConstLabels: cl}, []string{"output"}),
		outSum:       make(map[string]stream.OutputStats),
		retryAttempt: gauge("output_retry_attempt", "Attempt number of the batch whose outputs are being retried; 0 when none is."),
		committed:    make(map[int32]int64),
		live:         make(map[int32]bool),
		lagVals:      make(map[string]int64),
		readVals:     make(map[string]int64),
		endVals:      make(map[string]int64),
		opSums:       make(map[string]opSum),
		prevDeadBy:   make(map[string]int64),
		opGauges:     make(map[string]*opMetrics),
		sinks:        make(map[string]func() SinkStats),
		repartitions: make(map[string]func() RepartitionStats),
	}
	cs := []prometheus.Collector{m.recordsIn, m.bytesIn, m.batches, m.attempts, m.retries, m.deadLetters, m.duplicates,
		m.processing, m.output, m.outWrite, m.outValues, m.commit, m.commitWait, m.delay, m.partitions, m.lastBatch, m.state, m.openWindows, m.stateBytes, m.rejected, m.splitKeys, m.unmatched, m.deadReasons,
		m.retryAttempt,
		&scrapeCollector{m: m, descs: newScrapeDescs(cl), reps: newRepartitionDescs(cl)}}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			// Leave reg as it was: a caller that fixes the conflict (another pipeline name)
			// and calls New again must not find this attempt's collectors in the way.
			for _, r := range cs[:i] {
				reg.Unregister(r)
			}
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
	m.observeOutputs(st.Outputs)
	if st.CommitTime > 0 {
		m.commit.Observe(st.CommitTime.Seconds()) // a batch during which no commit ended has none
	}
	m.commitWait.Observe(st.CommitWait.Seconds())
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
	m.records += int64(st.InputRecords)
	m.bytesTotal += st.InputBytes
	m.batchCount++
	m.record(sample{at: now, batch: st.Batch, records: st.InputRecords, bytes: st.InputBytes,
		processing: st.ProcessingTime, output: st.OutputTime, commit: st.CommitTime, commitWait: st.CommitWait, delay: st.SchedulingDelay, attempts: st.Attempts,
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
	// A reason the source reports no more has restarted from zero with it (a new source
	// reports none until its first dead letter), as the total above does.
	for r := range m.prevDeadBy {
		if _, ok := st.Source.DeadLettersByReason[r]; !ok {
			m.prevDeadBy[r] = 0
		}
	}
	for r, n := range st.Source.DeadLettersByReason {
		if d := increase(n, m.prevDeadBy[r]); d > 0 || !m.hasReason(r) {
			m.deadReasons.WithLabelValues(labelValue(r)).Add(float64(d))
		}
		m.prevDeadBy[r] = n
	}
	// Duplicates is cumulative since the pipeline started, like DeadLetters.
	m.duplicates.Add(float64(increase(st.Duplicates, m.prevDups)))
	m.prevDups = st.Duplicates

	m.observeOperators(st.State)

	// The source's commit lags, read offsets and ends, of the partitions it reports now (a
	// partition no longer reported, revoked, goes); the scrapes export them (scrape.go),
	// unless a source added with AddSource reports the partition live.
	keepNamed(m.lagVals, st.Source.Lag)
	keepNamed(m.readVals, st.Source.Read)
	keepNamed(m.endVals, st.Source.End)
}

// labelValue is s as a label value: Prometheus refuses label values that are not valid
// UTF-8 (the client library panics, in Observe or in a scrape, which ends the process), so
// each invalid byte becomes U+FFFD. Valid names, all in practice, are returned as they are.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// keepNamed makes dst a copy of src without allocating once its names are known.
func keepNamed(dst, src map[string]int64) {
	clear(dst)
	for n, v := range src {
		dst[labelValue(n)] = v // as the partition rows are named (partitionTable)
	}
}

// observeOperators sets the operators' series: the state summed by name (names need not be
// unique), the windows and bytes of operators that report them, and the increase of their
// cumulative set-aside counts. The series of operators that left are deleted; m.mu is held.
// observeOutputs records each output's write time and values, those of one name summed.
func (m *Metrics) observeOutputs(outs []stream.OutputStats) {
	if len(outs) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.outSum)
	for _, o := range outs {
		s := m.outSum[o.Output]
		s.Time += o.Time
		s.Values += o.Values
		m.outSum[o.Output] = s
	}
	for name, s := range m.outSum {
		m.outWrite.WithLabelValues(name).Observe(s.Time.Seconds())
		m.outValues.WithLabelValues(name).Add(float64(s.Values))
	}
}

func (m *Metrics) observeOperators(state []stream.OperatorState) {
	clear(m.opSums)
	for _, o := range state {
		name := labelValue(o.Operator)
		s := m.opSums[name]
		s.entries += o.Entries
		if o.Reported {
			s.reported = true
			s.windows += o.OpenWindows
			s.bytes += o.Bytes
			s.late += o.Late
			s.limited += o.KeyLimit
			s.split += o.SplitKeys
			s.unmatched += o.Unmatched
		}
		m.opSums[name] = s
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
			g.split = m.splitKeys.WithLabelValues(name)
			g.unmatched = m.unmatched.WithLabelValues(name)
		}
		g.windows.Set(float64(s.windows))
		g.bytes.Set(float64(s.bytes))
		g.late.Add(float64(increase(s.late, g.prevLate)))
		g.limited.Add(float64(increase(s.limited, g.prevLimited)))
		g.split.Add(float64(increase(s.split, g.prevSplit)))
		g.unmatched.Add(float64(increase(s.unmatched, g.prevUnmatched)))
		g.prevLate, g.prevLimited, g.prevSplit, g.prevUnmatched = s.late, s.limited, s.split, s.unmatched
	}
	for name, g := range m.opGauges {
		if _, ok := m.opSums[name]; !ok {
			m.state.DeleteLabelValues(name)
			if g.reported {
				m.openWindows.DeleteLabelValues(name)
				m.stateBytes.DeleteLabelValues(name)
				m.rejected.DeleteLabelValues(name, stream.ReasonLate)
				m.rejected.DeleteLabelValues(name, stream.ReasonKeyLimit)
				m.splitKeys.DeleteLabelValues(name)
				m.unmatched.DeleteLabelValues(name)
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
