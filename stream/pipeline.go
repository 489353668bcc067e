// Pipeline: construction, options applied, the contexts operators and outputs see, stats.

package stream

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/internal/lograte"
)

// Watermark values at the ends of time, in Unix nanoseconds.
const (
	// NoWatermark is the watermark before any event was seen.
	NoWatermark int64 = math.MinInt64
	// EndOfTime is the watermark once the input ended: every window closes.
	EndOfTime int64 = math.MaxInt64
)

// Pipeline owns a graph of streams and runs it in micro-batches, like Spark's
// StreamingContext. Build the graph with From, the operators and the outputs, then call Run.
// A Pipeline runs once.
type Pipeline struct {
	cfg      config
	interval time.Duration
	errs     []error
	nodes    []node
	outputs  []output
	srcs     []sourceNode
	wake     chan struct{} // a source's buffer filled up (see Input.signalFullLocked)
	shuffles []shuffleNode // the repartitions (see Repartition)
	running  atomic.Bool
	ran      atomic.Bool // Run returned
	soon     bool        // the next batch need not wait for the tick (set by step)
	behind   bool        // the last batch was catching up (set by step)

	// run state, owned by the goroutine in Run or Step.
	batch    int64
	parts    map[int32]*partState
	live     []int32
	wm       int64
	pending  *pendingBatch
	finished bool
	// ctlErr stops the pipeline before its batch's outputs: a partition assigned with a
	// checkpoint it must not resume from (ErrInputChanged, ErrOperatorChanged).
	ctlErr error
	// inflight is the last batch's commit while it runs beside the next batch (see ack);
	// commitCtx gives a commit its context (Run's, not cancelled with the batch's).
	inflight  *inflightCommit
	commitCtx func() (context.Context, func())
	// stopCtx is Run's or Step's context, the operators' PartitionContext.Context.
	stopCtx context.Context
	// the batch's commit figures so far (BatchStats.CommitTime, CommitWait), set by settle
	commitTook, commitWait time.Duration
	// commitErr is what the last commit settle waited for returned, by source (nil if it
	// succeeded): a later commit sends its positions again, but a failed last commit of a run
	// is the run's error (see Run's stop).
	commitErr error

	held   []heldAt
	lin    *lineage // the stateful operators and their readers (see replayStarts)
	starts []int64  // scratch for replayStarts
	fired  []int64  // scratch for replayStarts

	// the plan of the graph (see fuse): the operators that run in their own pass, and the
	// graph's size when it was made.
	active  []node
	planned [2]int
	// fp is the graph fingerprint of checkpoints, computed for fpNodes operators.
	fp      string
	fpNodes int
	// params are the stateful operators' parameters by node index, and paramSection their
	// hashes as checkpoints record them, computed for paramsNodes operators.
	params       map[int]string
	paramSection string
	paramsNodes  int
	// idents are the stateful operators' identities by node index (what a checkpoint of
	// another graph matches them by), and identSection the checkpoint's section of them,
	// computed for identsNodes operators.
	idents       map[int]string
	identSection string
	identsNodes  int

	stop stopState // the shutdown timeout's account (WithShutdownTimeout)

	statsMu  sync.Mutex
	stats    BatchStats
	retrying *RetryInfo // the batch being retried, nil when none
	retryLog *lograte.Limiter
}

type partState struct {
	// skip maps an operator (index in nodes) to the offset its replay starts at, after a
	// Resume (see Input.Resume); nil once every operator is past it.
	skip map[int]int64
	eff  map[int]int64 // where each operator's input is cut during the replay (effectiveSkip)
	// fired maps an operator to the watermark its state had fired on at the checkpoint the
	// partition resumed from (PartitionContext.ResumeFired), for the partition's whole run;
	// partFired is the lowest of them, kept with the marks, for the operators it lacks.
	fired     map[int]int64
	partFired int64
	meta      string // the checkpoint last committed
	// restamp is, for a partition resumed with WithColdStartChanged, its committed offset
	// with the checkpoint it resumed from under the parameters now (restampCheckpoint):
	// committed while the partition reads no record, so that the next restart finds the
	// parameters unchanged even on a partition with nothing more to read.
	restamp Position
	// hist keeps, by position in lineage.stateful, the past replay starts of operators that
	// stateful operators read (see replayStarts).
	hist      [][]startAt
	trust     []int64 // by the same position: the offset from which this run's starts are exact
	base      int64   // the offset the partition started at in this run, -1 until known
	maxEvent  int64
	next      int64 // next offset after the newest record seen (acknowledged or pending)
	committed int64 // last offset handed to Source.Commit, -1 before any
	lastSeen  time.Time
	ended     bool // the partition's input ended (its source's, or every upstream one's)
	// selfEnded: the source ended this partition's input alone (Input.End); endAcked: a
	// commit with Position.Ended went through since.
	selfEnded, endAcked bool
	// marked is set for the downstream partitions of a repartition: their watermark, idle
	// state and end come from the marks of the upstream partitions (see Repartition).
	marked            bool
	markWM            int64
	markIdle, markEnd bool
	// held is the checkpoint the last batch before a repartition's partition ended computed
	// (heldOff, heldMeta; see ack), if hasHeld.
	heldOff  int64
	heldMeta string
	hasHeld  bool
}

// PartitionContext is what an operator sees while it processes one partition of a batch.
type PartitionContext struct {
	Partition int32
	// Batch is the batch number, from 1.
	Batch int64
	// BatchTime is the processing time the batch was scheduled for.
	BatchTime time.Time
	// Watermark is the pipeline watermark in Unix nanoseconds: the minimum over partitions
	// that are not idle of their newest event time minus the maximum out-of-orderness.
	// NoWatermark before any event; EndOfTime once the input has ended. It includes this
	// batch's records. It never moves back.
	Watermark int64
	// PartitionWatermark is the watermark that state of this partition should fire on: the
	// partition's own watermark (its newest event time so far minus MaxOutOfOrderness) while
	// the partition is active, and the pipeline Watermark when it is higher and the
	// partition is idle. Firing per-partition state on it makes results depend only on the
	// partition's record order (so a replay gives the same windows), keeps an idle partition
	// from stalling its windows, and keeps a partition that was just assigned and is
	// replaying behind the others from closing its windows early. EndOfTime once the input
	// has ended.
	PartitionWatermark int64
	// Idle reports whether the partition is idle (no records within WithIdleTimeout).
	Idle bool
	// MaxOutOfOrderness is the pipeline's configured bound (WithMaxOutOfOrderness).
	MaxOutOfOrderness time.Duration
	// ceiling is the furthest event time that may move a watermark in this batch (see
	// CapEventTime); 0 means no bound.
	ceiling int64
	// EndOfInput is true once the partition's input ended (its source's; for a repartition,
	// every upstream partition's); the pipeline's last batch has it on every partition.
	EndOfInput bool
	// Merged is true for the partitions of a repartition (Repartition): they interleave the
	// records of several upstream partitions, so their event times are not in the order of
	// one producer, and PartitionWatermark comes from the upstream partitions' marks.
	// Operators must judge lateness and fire on PartitionWatermark there, not on a watermark
	// of their own derived from the records they see.
	Merged bool
	// ResumeFired is, for a Merged partition resumed from a checkpoint, the watermark this
	// operator's state had fired on (WatermarkHolder) when the checkpoint was committed, and
	// NoWatermark otherwise. A window whose end plus the grace is at or behind it was emitted
	// before the commit, with each of its records that WatermarkAt does not make late: a
	// replay must not emit it again, and leaves those records out. With it, a window's
	// Retained need only cover the windows still open (see "Watermark through a repartition"
	// in the package documentation).
	ResumeFired int64
	// KeepsFired reports, for a Merged partition, that the pipeline keeps this operator's
	// fire watermark in its commits and gives it back as ResumeFired: the operator reads the
	// source through stateless operators only, so its input comes in offset order. An
	// operator that reads another stateful one's output gets neither, and must hold its
	// commits back as if no replay knew what it had fired.
	KeepsFired bool

	skip      map[int]int64
	fired     map[int]int64
	partFired int64
	// marks are, for a Merged partition, the watermarks from the marks read in this batch:
	// from offset from on, the partition's watermark is wm (see WatermarkAt).
	marks []markPoint
	// startMark is a Merged partition's watermark before this batch's marks.
	startMark int64
	// cutAt is where the running operator's input is cut in a replay after a resume, if cut
	// (see SkippedBefore).
	cutAt int64
	cut   bool
	// up is the repartition a Merged partition belongs to (see Upstream), nil elsewhere.
	up upstreamer
	op opAt // the running operator, for SourceTimes
	// ctx is Context's.
	ctx context.Context
}

// Context returns a context that ends when the pipeline is asked to stop (Run's or Step's
// context ends). The batch in flight still runs to its end, its outputs and its commit: an
// operator that waits (for a table partition to load, say) should stop waiting when it ends,
// and then hold back with Retained whatever it could not process, so that the next run
// replays it. Never nil.
func (pc *PartitionContext) Context() context.Context {
	if pc.ctx == nil {
		return context.Background()
	}
	return pc.ctx
}

type markPoint struct{ from, wm int64 }

// SkippedBefore returns, while the partition replays after a resume from a checkpoint, the
// offset before which this operator had accounted for the partition's records before the
// commit, and true: the pipeline leaves those records out of the operator's input. It is
// the operator's own replay start from the checkpoint: for an operator that holds nothing
// (Retained false), the end of the last batch acknowledged before the commit, so every
// output it made from the records before it was written. An operator that emits what it
// takes from elsewhere than its input (a side stream that another operator set aside, as
// package window's and join's late records) leaves out what came from those records too.
// false outside such a replay.
func (pc *PartitionContext) SkippedBefore() (offset int64, ok bool) {
	return pc.cutAt, pc.cut
}

// WatermarkAt returns, for a Merged partition, its watermark as of the record at offset: from
// the marks before that record in the partition, so that it depends only on the partition's
// record order, not on where batches begin and end. A record behind it was late in its
// upstream partition too. For other partitions it returns PartitionWatermark.
func (pc *PartitionContext) WatermarkAt(offset int64) int64 {
	if !pc.Merged {
		return pc.PartitionWatermark
	}
	// The last point from at or before offset. Points are in offset order, and there may be
	// one per upstream partition's mark in the batch (hundreds for a repartition of large
	// topics), for each record: search, do not scan.
	i := sort.Search(len(pc.marks), func(i int) bool { return pc.marks[i].from > offset })
	if i == 0 {
		return pc.startMark
	}
	return pc.marks[i-1].wm
}

// Marks returns, for a Merged partition, the marks read in this batch, in order: from offset
// from on, the partition's watermark is wm. (WatermarkAt(x) is the wm of the last mark with
// from <= x, or the watermark before the batch.) An operator whose output depends on the
// watermark (expiries, timers) can move its own at each mark, between the records before and
// after it, and label what a mark makes it emit with the mark's from: then what it emits, and
// the offsets its outputs carry, depend only on the partition's record order, never on where
// batches begin and end, so a replay reproduces them (package join does). Outside a
// repartition the iterator yields nothing.
func (pc *PartitionContext) Marks() iter.Seq2[int64, int64] {
	return func(yield func(from, wm int64) bool) {
		if !pc.Merged {
			return
		}
		for _, m := range pc.marks {
			if !yield(m.from, m.wm) {
				return
			}
		}
	}
}

// CapEventTime returns t (Unix nanoseconds), but no further than the batch's start on the
// pipeline clock plus WithMaxFutureEventTime: operators that keep event-time marks of their
// own (watermarks, timers) observe record times through it, so that a record with a bad
// clock cannot make the partition's later records late. Without a bound it returns t.
func (pc *PartitionContext) CapEventTime(t int64) int64 {
	if pc.ceiling != 0 {
		return min(t, pc.ceiling)
	}
	return t
}

// BatchInfo describes a batch to output functions.
type BatchInfo struct {
	// Pipeline is the pipeline's name (WithName).
	Pipeline string
	// Batch is the batch number, from 1.
	Batch int64
	// Time is the processing time the batch was scheduled for.
	Time time.Time
	// Watermark is the pipeline watermark after this batch's records: the zero time before
	// any event, WatermarkTime(EndOfTime) in the final batch.
	Watermark time.Time
	// Final is true for the last batch, after the input ended.
	Final bool
}

// BatchStats is the snapshot taken after each acknowledged batch.
type BatchStats struct {
	Batch           int64
	Time            time.Time
	InputRecords    int // records of the pipeline's sources (not of its repartitions)
	InputBytes      int64
	ShuffledRecords int // records read back from repartitions (values, marks, duplicates)
	SchedulingDelay time.Duration
	ProcessingTime  time.Duration // transforms, excluding outputs
	OutputTime      time.Duration // outputs, including retries
	// Outputs has each output's part of OutputTime, in the order the outputs were added (To,
	// ForEachBatch, and each repartition's send): which one a slow batch waited for.
	Outputs []OutputStats
	// CommitTime is how long the last commit that ended during the batch took, from the
	// sources' Commit calls to their return. Run commits a batch's positions while the next
	// batch is processed and written (see Run), so it is usually the previous batch's; in
	// Step, the batch's own. CommitWait is how long the batch waited for commits: the part of
	// the previous batch's commit that its own processing and outputs did not cover (Run), or
	// its own commit (Step).
	CommitTime    time.Duration
	CommitWait    time.Duration
	Attempts      int             // output attempts of this batch (1 when nothing failed)
	Watermark     time.Time       // as BatchInfo.Watermark
	RetainedState int             // entries held by stateful operators
	State         []OperatorState // the state of each stateful operator, in graph order
	Partitions    int
	Committed     []Position // what was handed to Source.Commit after this batch
	// PartitionStats has every live partition's position and watermark, by partition id.
	PartitionStats []PartitionStats
	Source         SourceStats
	// Duplicates counts the replayed records that the repartitions' downstream partitions
	// dropped since the pipeline started (see Repartition).
	Duplicates int64
}

// OutputStats is one output's part in a batch (BatchStats.Outputs).
type OutputStats struct {
	// Output is its name: OutputName's, "repartition <name>" for a repartition's send, or
	// "output <i> (<stream>)" after its place among the outputs and the stream it writes.
	Output string
	// Values is how many values the batch handed it: the stream's values (for a windowed
	// stream, in the batches that end a slide; 0 in the others), or the records of a
	// repartition's send, its marks included.
	Values int
	// Time is how long it took to write them, every attempt of the batch together (without
	// the retry policy's waits between attempts). Outputs written at once
	// (WithConcurrentOutputs, a repartition's send beside the others) overlap: their times
	// add up to more than OutputTime.
	Time time.Duration
	// Attempts is how many times the batch called it: 1, or more when it failed and was
	// retried (an output that succeeded is not called again while others are retried).
	Attempts int
}

// PartitionStats is one partition's position and event time after a batch.
type PartitionStats struct {
	Partition int32 // pipeline partition id (PartitionSource)
	// Next is the offset after the newest record read (acknowledged or in this batch), -1
	// before any; Committed the last committed offset, -1 before any. Next - Committed is
	// the number of offsets held back by open state (or not committed yet): a consumer
	// group's lag counts them although the pipeline has read them.
	Next, Committed int64
	// Watermark is the partition's own watermark (the zero time before its first event).
	Watermark time.Time
	Idle      bool
	Ended     bool // the partition's input ended
}

// HeldBack returns the offsets read but not committed (Next - Committed), 0 if unknown.
func (s PartitionStats) HeldBack() int64 {
	if s.Next < 0 || s.Committed < 0 || s.Next < s.Committed {
		return 0
	}
	return s.Next - s.Committed
}

// RetryInfo describes a failed attempt of a batch's outputs (WithRetryHook).
type RetryInfo struct {
	Batch   int64
	Attempt int       // attempts so far, from 1
	Since   time.Time // when the batch's first attempt failed
	Backoff time.Duration
	Err     error
}

// OperatorState is the size of one stateful operator's state: entries as the operator counts
// them (keys, keys in open windows, series, sessions, cabs), and, for an operator that
// implements StateReporter, its open windows, an estimate of its bytes and the records it
// set aside by reason.
type OperatorState struct {
	Operator string
	Entries  int
	// Reported is true when the operator implements StateReporter: the fields below are what
	// it reported. Otherwise they are zero and unknown.
	Reported bool
	// OpenWindows counts the event-time windows that hold data and were not emitted yet,
	// once per partition whatever the keys in them (a session is one window of its key); 0
	// for an operator without windows.
	OpenWindows int
	// Bytes estimates the memory the state holds, as the operator documents it.
	Bytes int64
	// Late and KeyLimit count the records the operator set aside since it was created instead
	// of taking them into its state: too late for their window (ReasonLate), or refused by
	// its key limit (ReasonKeyLimit). They go to the operator's late or dead-letter stream.
	Late, KeyLimit int64
	// SplitKeys counts, for an operator that needs all of a key's records in one partition
	// (a window keyed by something other than the input's partitioning key, a co-partitioned
	// enrichment), the times a key turned up in a partition other than the one it was last
	// seen in: more than 0 means the input is not partitioned by the operator's key, and its
	// results are split between partitions or wrong (see window.Windowed.SplitKeys and
	// join.EnrichCoPartitioned).
	SplitKeys int64
	// Unmatched counts the records an inner join dropped since it was created because they
	// found no partner (join.Enrich and join.EnrichCoPartitioned with join.WithKind(Inner):
	// no table value for the record's key at its time). More than 0 is expected when the
	// table lacks some keys; a count close to the input's says the table is missing or
	// keyed otherwise.
	Unmatched int64
}

// StateReporter is an optional interface of an Operator that tells more about its state than
// StateSize. The pipeline calls ReportState after every acknowledged batch, right after
// StateSize and on the same goroutine as Process, for BatchStats.State.
type StateReporter interface {
	// ReportState sets st's OpenWindows, Bytes, Late, KeyLimit, SplitKeys and Unmatched; the
	// pipeline set the other fields. It runs once per batch, so it must be cheap: a running
	// count, or a pass over the operator's windows, not over every record it holds.
	ReportState(st *OperatorState)
}

// New builds an empty pipeline with the given batch interval.
func New(interval time.Duration, opts ...Option) (*Pipeline, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if interval <= 0 {
		cfg.errs = append(cfg.errs, invalid("batch interval %v: must be positive", interval))
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	return &Pipeline{
		cfg:      cfg,
		interval: interval,
		parts:    make(map[int32]*partState),
		wm:       NoWatermark,
		wake:     make(chan struct{}, 1),
		retryLog: lograte.New(5, time.Minute),
	}, nil
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.cfg.name }

// Interval returns the batch interval.
func (p *Pipeline) Interval() time.Duration { return p.interval }

// Logger returns the pipeline's logger, for operators and connectors.
func (p *Pipeline) Logger() *slog.Logger { return p.cfg.logger }

// Clock returns the pipeline's clock.
func (p *Pipeline) Clock() Clock { return p.cfg.clock }

// Err returns the construction errors recorded so far (a window that is not a multiple of the
// batch interval, streams of different pipelines joined, ...), joined, or nil. Run and Step
// return them too.
func (p *Pipeline) Err() error { return errors.Join(p.errs...) }

func (p *Pipeline) fail(err error) { p.errs = append(p.errs, err) }

// Stats returns the stats of the last acknowledged batch. Safe for concurrent use.
func (p *Pipeline) Stats() BatchStats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	return p.stats
}

// Retrying returns the failed attempt of the batch being retried, and false when no batch is
// failing. Safe for concurrent use.
func (p *Pipeline) Retrying() (RetryInfo, bool) {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.retrying == nil {
		return RetryInfo{}, false
	}
	return *p.retrying, true
}

// WatermarkTime turns a watermark in Unix nanoseconds (PartitionContext) into the time
// BatchInfo and BatchStats show: the zero time for NoWatermark, the year 2262 for EndOfTime.
func WatermarkTime(ns int64) time.Time {
	if ns == NoWatermark {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
