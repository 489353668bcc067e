// Aggregate and its output: Result, Late, Windowed, the window operator that runs an engine
// per partition, and the key limit. Each partition's event-time clock is in clock.go, the
// elements of results and late records in results.go.

package window

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fleetstream/fleetstream/internal/recent"
	"github.com/fleetstream/fleetstream/stream"
)

// Result is the aggregate of one key over one window.
type Result[K comparable, R any] struct {
	Key K
	// Start and End bound the window: [Start, End). For sessions, End is the last record's
	// event time plus the gap.
	Start, End time.Time
	Value      R
	// Final is true for the one result emitted when the window closes, false for the partial
	// results of EveryBatch.
	Final bool
	// Partition is the source partition the window's state belongs to (see "Delivery and
	// replay" in the package documentation).
	Partition int32
}

// Late is a record that arrived after the window it belongs to had closed (its end plus the
// grace period was behind the partition's watermark) or had already been emitted, or a
// record refused by the key limit (WithMaxKeys); Reason tells which. The side stream of Late
// records is where nothing is lost: route it to a dead-letter output.
type Late[T any] struct {
	Value     T
	EventTime time.Time
	// Partition and Offset are the record's pipeline partition id and offset as the window
	// read it: after a repartition, the repartition's partition and offset.
	Partition int32
	Offset    int64
	// Upstream is, after a repartition (stream.Repartition, RepartitionBy), the input record
	// it read (stream.PartitionContext.UpstreamAt), whose topic outlives the repartition's;
	// nil elsewhere and when the window cannot tell (records of several input records with
	// one event time in one packed repartition message). DeadLetter names it.
	Upstream *stream.Upstream
	// Start and End bound the earliest window the record belonged to, clamped to the ends
	// of int64 time for a record whose window does not fit in it (see "Watermarks and
	// lateness" in the package documentation).
	Start, End time.Time
	// Reason is stream.ReasonLate for a record that came too late, or stream.ReasonKeyLimit
	// for a record refused because it would have opened state past WithMaxKeys.
	Reason string
}

// Windowed is the output of Aggregate: a stream of results and a side stream of late records.
type Windowed[K comparable, R, T any] struct {
	results *stream.Stream[Result[K, R]]
	late    *stream.Stream[Late[T]]
	lateN   *atomic.Int64
	limitN  *atomic.Int64
	splitN  *atomic.Int64
}

// Results returns the stream of window results, in order of window end and then of each
// key's first record in the window.
func (w *Windowed[K, R, T]) Results() *stream.Stream[Result[K, R]] { return w.results }

// Late returns the side stream of late records.
func (w *Windowed[K, R, T]) Late() *stream.Stream[Late[T]] { return w.late }

// SplitKeys returns how many times a key had a result of a window that overlaps one another
// partition had emitted a result of (the same window, a session at the same time), in a stream that was not repartitioned: the key's records are
// spread over partitions (the key is not the topic's message key), so each partition's
// result covers part of them, and written by key and window they overwrite each other.
// Repartition by the key first (stream.Repartition). The first one is logged at Warn.
// WithPerPartitionResults turns the check off; repartitioned partitions are not checked.
func (w *Windowed[K, R, T]) SplitKeys() int64 { return w.splitN.Load() }

// LateCount returns the number of late records so far. Safe for concurrent use.
func (w *Windowed[K, R, T]) LateCount() int64 { return w.lateN.Load() }

// KeyLimitCount returns the number of records refused by the key limit (WithMaxKeys) so far.
// Safe for concurrent use.
func (w *Windowed[K, R, T]) KeyLimitCount() int64 { return w.limitN.Load() }

// Aggregate groups the records of s by key and by the event-time windows of the assigner,
// folds value(record) into each key's window with agg, and emits a Result when the window
// closes (and, with EveryBatch, partial results as it fills). Records that arrive too late
// for their window go to the Late stream. State is kept per source partition.
//
// A bad assigner, option or aggregator parameter returns an error wrapping ErrInvalidOption.
func Aggregate[T any, K comparable, V, A, R any](s *stream.Stream[T], key func(T) K, value func(T) V, assigner Assigner, agg Aggregator[V, A, R], opts ...Option) (*Windowed[K, R, T], error) {
	return aggregate(s, key, value, nil, assigner, agg, opts)
}

// AggregateElements is Aggregate with the records themselves as the values: agg folds each
// record as it is. It saves Aggregate's call of a value function that returns its argument,
// two copies of every record, a measurable part of the window's cost for large records (a
// drain of telemetry's 160-byte events spent 1.6 % of its CPU in them). The operator is the
// same one Aggregate makes with such a function: a checkpoint of either resumes the other.
func AggregateElements[T any, K comparable, A, R any](s *stream.Stream[T], key func(T) K, assigner Assigner, agg Aggregator[T, A, R], opts ...Option) (*Windowed[K, R, T], error) {
	return aggregate(s, key, nil, agg, assigner, agg, opts)
}

// aggregate makes the operator of Aggregate (value set) and AggregateElements (elems set:
// agg itself, as an aggregator of the records).
func aggregate[T any, K comparable, V, A, R any](s *stream.Stream[T], key func(T) K, value func(T) V, elems Aggregator[T, A, R], assigner Assigner, agg Aggregator[V, A, R], opts []Option) (*Windowed[K, R, T], error) {
	cfg := config{name: "window"}
	for _, o := range opts {
		o.apply(&cfg)
	}
	errs := cfg.errs
	if err := assigner.validate(); err != nil {
		errs = append(errs, err)
	}
	if key == nil || value == nil && elems == nil || agg == nil {
		errs = append(errs, invalid("nil key, value or aggregator"))
	}
	if v, ok := agg.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	op := &operator[T, K, V, A, R]{
		cfg:   cfg,
		asg:   assigner,
		key:   key,
		value: value,
		elems: elems,
		agg:   agg,
		parts: make(map[int32]engine[T, K, V, A, R]),
	}
	if r, ok := agg.(Resetter[A]); ok {
		op.reset = r.Reset
	}
	res := stream.Apply(s, cfg.name, stream.Operator[T, Result[K, R]](op))
	late := stream.Apply(res, cfg.name+".late", stream.Operator[Result[K, R], Late[T]](&lateDrain[T, K, V, A, R]{op: op}))
	op.log = s.Pipeline().Logger()
	return &Windowed[K, R, T]{results: res, late: late, lateN: &op.lateN, limitN: &op.limitN, splitN: &op.splitN}, nil
}

// Parameters implements stream.Parameterized: the assigner, the grace and the emission mode,
// which decide what each result holds and when it is emitted. A restart under other ones stops
// with stream.ErrOperatorChanged (see "Delivery and replay" in the package documentation).
// The key limit (WithMaxKeys) is left out: it bounds memory, and raising it at a restart is
// how one gets past it.
func (op *operator[T, K, V, A, R]) Parameters() string {
	return fmt.Sprintf("%v grace=%v emit=%v", op.asg, op.cfg.grace, op.cfg.emit)
}

// add folds the value of the record *e into acc.
func (op *operator[T, K, V, A, R]) add(acc A, e *T) A {
	if op.elems != nil {
		return op.elems.Add(acc, *e)
	}
	return op.agg.Add(acc, op.value(*e))
}

// lateDrain emits the late records that the window operator set aside while processing the
// same partition: the pipeline runs a partition through every node in creation order, so it
// runs right after the operator. Keeping late records out of the operator's output keeps
// results free of a union type.
type lateDrain[T any, K comparable, V, A, R any] struct{ op *operator[T, K, V, A, R] }

func (d *lateDrain[T, K, V, A, R]) Process(pc *stream.PartitionContext, _ []stream.Elem[Result[K, R]], o []stream.Elem[Late[T]]) []stream.Elem[Late[T]] {
	op := d.op
	if op.latePart == pc.Partition && op.lateBatch == pc.Batch {
		// A replay after a resume reports again only the records after what the run that
		// committed acknowledged: it reported those before (see "Delivery and replay").
		from, replay := pc.SkippedBefore()
		for _, l := range op.late {
			switch {
			case !replay || l.Offset >= from:
				if u, ok := pc.UpstreamAt(l.Offset, l.Time); ok {
					l.Value.Upstream = &u
				}
				o = append(o, l)
			case l.Value.Reason == stream.ReasonKeyLimit:
				op.limitN.Add(-1)
			default:
				op.lateN.Add(-1)
			}
		}
	}
	clear(op.late)
	op.late = op.late[:0]
	return o
}

func (d *lateDrain[T, K, V, A, R]) Retained(int32) (int64, bool) { return 0, false }
func (d *lateDrain[T, K, V, A, R]) Drop(int32)                   {}
func (d *lateDrain[T, K, V, A, R]) StateSize() int               { return 0 }

type out[K comparable, R any] = []stream.Elem[Result[K, R]]

// engine is one partition's window state.
type engine[T any, K comparable, V, A, R any] interface {
	process(pc *stream.PartitionContext, in []stream.Elem[T], o out[K, R]) out[K, R]
	// retained returns the offset replay must start from to rebuild the partition's state.
	retained() (int64, bool)
	entries() int
	// usage returns the windows open and an estimate of the bytes held (see ReportState).
	usage() (windows int, bytes int64)
	// fired returns the watermark the partition's windows last fired on.
	fired() int64
}

type operator[T any, K comparable, V, A, R any] struct {
	cfg   config
	asg   Assigner
	key   func(T) K
	value func(T) V           // nil with elems
	elems Aggregator[T, A, R] // agg, when the values are the records (AggregateElements)
	agg   Aggregator[V, A, R]
	reset func(A) A // the aggregator's Reset (Resetter), nil without one
	parts map[int32]engine[T, K, V, A, R]
	lateN atomic.Int64
	// The key limit (WithMaxKeys): held counts the entries of open state, recounted at the
	// first partition of each batch and raised by every entry opened since.
	limitN    atomic.Int64
	held      int
	heldBatch int64
	log       *slog.Logger
	warned    bool
	// merged holds the firings of repartitioned partitions (see Process)
	merged map[int32]*firedHolds
	// late records of the partition being processed, for lateDrain
	late      []stream.Elem[Late[T]]
	latePart  int32
	lateBatch int64
	// split finds keys with results of one window from several partitions (SplitKeys).
	split  splitCheck[K]
	splitN atomic.Int64
}

// splitCheck remembers, for the keys of recent results, the partition and window of the last
// one (in a recent.Map, so that its memory stays bounded whatever the keys).
type splitCheck[K comparable] struct {
	last   recent.Map[K, splitSeen]
	warned bool
}

type splitSeen struct {
	part       int32
	start, end int64
}

// seen records a result of key k for the window [start, end) from partition part, and reports
// the other partition that had a result of an overlapping window (the same one, a session of
// the same time), if any.
func (c *splitCheck[K]) seen(k K, part int32, start, end int64) (int32, bool) {
	s, ok := c.last.Swap(k, splitSeen{part, start, end})
	return s.part, ok && s.part != part && s.start < end && start < s.end
}

var (
	_ stream.Operator[int, Result[int, int64]]       = (*operator[int, int, int, int64, int64])(nil)
	_ stream.StateReporter                           = (*operator[int, int, int, int64, int64])(nil)
	_ stream.Operator[Result[int, int64], Late[int]] = (*lateDrain[int, int, int, int64, int64])(nil)
)

func (op *operator[T, K, V, A, R]) Process(pc *stream.PartitionContext, in []stream.Elem[T], o out[K, R]) out[K, R] {
	clear(op.late)
	op.late, op.latePart, op.lateBatch = op.late[:0], pc.Partition, pc.Batch
	eng, ok := op.parts[pc.Partition]
	if !ok {
		if len(in) == 0 && !pc.Merged && !sourceHasRecords(pc) {
			return o
		}
		// A repartition's partition gets its engine in its first batch, records or not, so
		// that the engine starts at the watermark the partition starts at.
		eng = op.newEngine(pc)
		op.parts[pc.Partition] = eng
	}
	if !pc.Merged && !op.cfg.perPartition {
		n := len(o)
		o = eng.process(pc, in, o)
		op.checkSplit(o[n:])
		return o
	}
	if !pc.Merged || op.asg.kind != kindSession && pc.KeepsFired {
		// Tumbling and sliding windows in a repartition's partition replay from their oldest
		// open window's first record, and skip the windows fired before the commit
		// (PartitionContext.ResumeFired).
		return eng.process(pc, in, o)
	}
	// A repartition's partition interleaves upstream partitions, so a window that fires may
	// hold records older than the oldest open window's: remember, batch by batch, the oldest
	// record any window that fired in it could hold (the hold before the batch) and where the
	// batch ended; Retained keeps a replay from starting after such a record when it would
	// replay the firing. (Sessions, and windows that read a stateful operator's output; the
	// others do without, above.)
	h := op.merged[pc.Partition]
	if h == nil {
		h = &firedHolds{}
		if op.merged == nil {
			op.merged = map[int32]*firedHolds{}
		}
		op.merged[pc.Partition] = h
	}
	before, ok := eng.retained()
	if !ok && len(in) > 0 {
		// Nothing was held before the batch: a window that fires in it opened in it.
		before, ok = in[0].Offset, true
	}
	o = eng.process(pc, in, o)
	for i := range in {
		h.pos = max(h.pos, in[i].Offset)
	}
	if ok {
		if n := len(h.fired); n > 0 && h.fired[n-1].hold == before {
			h.fired[n-1].pos = h.pos
		} else {
			h.fired = append(h.fired, firedAt{pos: h.pos, hold: before})
		}
	}
	return o
}

// sourceHasRecords reports whether, for an operator that follows its source (see begin), the
// partition has records in the batch: its clock starts at the first, whether or not an
// operator before it dropped it, as it would over the unfiltered stream.
func sourceHasRecords(pc *stream.PartitionContext) bool {
	if times, ok := pc.SourceTimes(); ok {
		for range times {
			return true
		}
	}
	return false
}

// checkSplit counts (and warns once of) results whose key had a result of the same window
// from another partition (see Windowed.SplitKeys).
func (op *operator[T, K, V, A, R]) checkSplit(rs out[K, R]) {
	for i := range rs {
		r := &rs[i].Value
		other, split := op.split.seen(r.Key, r.Partition, r.Start.UnixNano(), r.End.UnixNano())
		if !split {
			continue
		}
		op.splitN.Add(1)
		if !op.split.warned {
			op.split.warned = true
			op.log.Warn("window: a key has results of one window from several partitions: its records are spread over "+
				"partitions (it is not the input's message key), so each result covers part of them and, written by key and "+
				"window, they overwrite each other; repartition by the key first (stream.Repartition), or pass "+
				"window.WithPerPartitionResults if per-partition results are meant",
				"operator", op.cfg.name, "key", r.Key, "window_start", r.Start, "partition", r.Partition, "other_partition", other)
		}
	}
}

// firedHolds is a merged partition's record of firings (see Process).
type firedHolds struct {
	pos   int64 // the newest offset seen
	fired []firedAt
}

// firedAt says that windows that fired in the batch that ended at offset pos held no record
// before hold.
type firedAt struct{ pos, hold int64 }

// hold lowers a replay start r until no firing after r had records before it, and forgets
// the firings before the result (starts only move forward).
func (h *firedHolds) hold(r int64) int64 {
	for changed := true; changed; {
		changed = false
		for _, f := range h.fired {
			if f.pos >= r && f.hold < r {
				r, changed = f.hold, true
			}
		}
	}
	h.fired = slices.DeleteFunc(h.fired, func(f firedAt) bool { return f.pos < r })
	return r
}

func (op *operator[T, K, V, A, R]) newEngine(pc *stream.PartitionContext) engine[T, K, V, A, R] {
	c := partClock{
		part:  pc.Partition,
		ooo:   int64(pc.MaxOutOfOrderness),
		grace: int64(op.cfg.grace),
		maxT:  stream.NoWatermark,
		hi:    -1,
		pwm:   stream.NoWatermark,
		fwm:   stream.NoWatermark,
		// emitted: see newEngine's merged case
		emitted: stream.NoWatermark,
	}
	if pc.Merged {
		// The windows that closed on the watermark the partition starts at were emitted
		// before (a resume) or never existed (a fresh start): their records are late.
		c.fwm, c.merged = pc.PartitionWatermark, true
		c.emitted, c.keepsFired = pc.ResumeFired, pc.KeepsFired
	}
	switch op.asg.kind {
	case kindTumbling:
		return &tumbling[T, K, V, A, R]{op: op, partClock: c, size: int64(op.asg.size)}
	case kindSliding:
		return newSliding(op, c)
	default:
		return &sessions[T, K, V, A, R]{op: op, partClock: c, gap: int64(op.asg.gap), idx: make(map[K]int32)}
	}
}

// HeldWatermark implements stream.WatermarkHolder: the watermark the partition's windows
// last fired on. The windows still to be emitted end, plus the grace, after it; it is behind
// the partition's own watermark when the operator reads a stateful operator's output, since
// it fires on what it saw (behind stateless ones it follows every record of the partition).
func (op *operator[T, K, V, A, R]) HeldWatermark(part int32) (int64, bool) {
	if eng, ok := op.parts[part]; ok {
		return eng.fired(), true
	}
	return 0, false
}

func (op *operator[T, K, V, A, R]) Retained(part int32) (int64, bool) {
	if eng, ok := op.parts[part]; ok {
		r, ok := eng.retained()
		if h := op.merged[part]; h != nil && ok {
			r = h.hold(r)
		}
		return r, ok
	}
	return 0, false
}

func (op *operator[T, K, V, A, R]) Drop(part int32) {
	delete(op.parts, part)
	delete(op.merged, part)
}

func (op *operator[T, K, V, A, R]) StateSize() int {
	n := 0
	for _, eng := range op.parts {
		n += eng.entries()
	}
	return n
}

// ReportState reports the windows open in every partition, an estimate of the bytes they (and
// the split check's memory of recent keys) hold, the records set aside so far and the split keys (see "Stats" in the package documentation). Its cost is a
// pass over each partition's windows (sessions: over its keys, as StateSize), not over the
// records.
func (op *operator[T, K, V, A, R]) ReportState(st *stream.OperatorState) {
	bytes := int64(unsafe.Sizeof(*op)) + int64(cap(op.late))*int64(unsafe.Sizeof(stream.Elem[Late[T]]{}))
	for _, eng := range op.parts {
		w, b := eng.usage()
		st.OpenWindows += w
		bytes += b
	}
	for _, h := range op.merged {
		bytes += int64(unsafe.Sizeof(*h)) + int64(cap(h.fired))*int64(unsafe.Sizeof(firedAt{}))
	}
	st.Bytes = bytes + op.split.last.Bytes()
	st.Late, st.KeyLimit, st.SplitKeys = op.lateN.Load(), op.limitN.Load(), op.splitN.Load()
}

// mapBytes estimates the bytes of a map of n entries of key and value sizes k and v: Go's
// maps keep each entry's key and value and a control byte in a slot, and are at most 7/8
// full. What keys and values point to (a string's bytes) is not counted.
func mapBytes(n int, k, v uintptr) int64 { return int64(n) * int64(k+v+1) * 8 / 7 }

// admit reports whether a record may open a new entry of state (a key in a window, a series,
// a session key) under the key limit. Engines call it where they would open one; a refused
// record goes to the Late stream with stream.ReasonKeyLimit.
func (op *operator[T, K, V, A, R]) admit(pc *stream.PartitionContext) bool {
	max := op.cfg.maxKeys
	if max <= 0 {
		return true
	}
	if op.heldBatch != pc.Batch {
		op.held, op.heldBatch = op.StateSize(), pc.Batch
	}
	if op.held >= max {
		if !op.warned {
			op.warned = true
			op.log.Warn("window: key limit reached; records of new keys go to the late side stream (reason key_limit) until state frees up",
				"operator", op.cfg.name, "max_keys", max)
		}
		return false
	}
	op.held++
	return true
}

var _ stream.Parameterized = (*operator[int, string, int, int, int])(nil)
