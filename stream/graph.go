// The graph: Stream, how operators are registered, derived and fused, and the Operator
// extension point.

package stream

import (
	"context"
	"reflect"
	"time"
)

// node is one operator of the graph, processed partition by partition in creation order,
// which is a topological order since a stream can only be built from existing streams.
type node interface {
	process(pc *PartitionContext)
	retained(part int32) (int64, bool)
	replayStart(part int32, from int64) (start, at int64, ok bool)
	drop(part int32)
	stateSize() int
	// reportState fills in the operator's details (StateReporter), if it has any.
	reportState(st *OperatorState)
	// describe names the operator for the graph fingerprint of checkpoints.
	describe() string
	// parameters describes what defines a stateful operator's output besides its input, ""
	// if nothing (see Parameterized).
	parameters() string
	// inputs returns the indexes of the streams the operator reads.
	inputs() []int
	// elementwise reports whether the operator can run fused into its reader (see fuse).
	elementwise() bool
	// plan tells the operator whether it runs fused into its only reader or materializes its
	// batch; the pipeline calls it before a batch whenever the graph changed.
	plan(fused bool)
}

// output is an output operation: it collects a batch partition by partition and then writes it.
type output interface {
	input() int
	// outputName is the name BatchStats.Outputs gives it; outValues the number of values the
	// batch handed it (read before reset).
	outputName() string
	outValues() int
	plan(fused bool)
	collect(pc *PartitionContext)
	flush(ctx context.Context, info BatchInfo) error
	reset()
	close(ctx context.Context) error
}

// Stream is a DStream: a sequence of micro-batches of T. Streams are built from a source with
// From and from other streams with the operators; they do nothing until the pipeline runs.
type Stream[T any] struct {
	p       *Pipeline
	idx     int   // index in p.nodes: the operator's id in commit checkpoints
	parents []int // indexes of the streams it reads
	name    string
	every   int64 // the operator runs on batches that are multiples of every
	slide   int64 // the stream has data on batches that are multiples of slide
	cur     []Elem[T]
	fn      func(pc *PartitionContext, out []Elem[T]) []Elem[T]
	state   stateful
	// params are the parameters of this package's stateful operators (see Parameterized).
	params string
	// cutBy, when not 0, is 1 + the index of the stateful operator whose replay start cuts
	// this stateless operator's input after a resume, as its own would (derive): the
	// per-batch reduce that feeds an incremental window (ReduceByKeyAndWindowInv).
	cutBy int
	// reemits, when not "", says why the operator emits records it emitted in an earlier
	// batch again (UpdateStateByKey's states, MapWithState's timeouts and snapshots): no
	// repartition may read it (upstreamSources).
	reemits string
	// sideOf, for a side output (NewSideOutput), names its operator: its elements are not
	// that operator's output, which the operator's optional interfaces speak for.
	sideOf string
	// whole is set for operators that pass every element of their inputs on once, with its
	// time (Map, KeyBy, Union): a window behind only such operators sees every record of its
	// sources, and fires on their watermark (firedApart).
	whole bool

	// through is set for elementwise operators (Map, Filter, KeyBy and what is built on them):
	// it returns a loop that runs the operator over its parent's batch, a chunk at a time, and
	// passes each chunk of results to sink.
	through func(sink func([]Elem[T])) func(pc *PartitionContext)
	// materialize returns the loop that fills cur, for an elementwise operator that is not fused.
	materialize func() func(pc *PartitionContext)
	// fused is set when the operator is not materialized: its only reader runs it through feed.
	fused bool
}

// stateful is the state side of an operator.
type stateful interface {
	retained(part int32) (int64, bool)
	drop(part int32)
	stateSize() int
}

// fuseChunk is how many elements a fused chain carries from one operator to the next at a
// time: its buffers stay in the CPU's first-level cache.
const fuseChunk = 256

// feed returns a loop that passes s's batch in the current partition to sink, a chunk at a
// time: the elements of s.cur if s is materialized, else those s computes through its fused
// chain from the nearest materialized ancestor.
func (s *Stream[T]) feed(sink func([]Elem[T])) func(pc *PartitionContext) {
	if s.fused {
		return s.through(sink)
	}
	return func(*PartitionContext) {
		for cur := s.cur; len(cur) > 0; {
			n := min(len(cur), fuseChunk)
			sink(cur[:n])
			cur = cur[n:]
		}
	}
}

// elementwise adds a stateless operator that maps each element to zero or one element, each
// on its own: apply appends the results for in to out. Chains of such operators run fused: one
// loop over the nearest materialized batch, chunk by chunk, with no batch in between (see
// Pipeline.fuse).
func elementwise[In, Out any](parent *Stream[In], name string, apply func(in []Elem[In], out []Elem[Out]) []Elem[Out]) *Stream[Out] {
	s := &Stream[Out]{p: parent.p, name: name, every: parent.slide, slide: parent.slide, parents: []int{parent.idx}}
	scrub := hasPointers(reflect.TypeFor[Out]())
	s.through = func(sink func([]Elem[Out])) func(pc *PartitionContext) {
		var buf []Elem[Out]
		return parent.feed(func(chunk []Elem[In]) {
			buf = apply(chunk, buf[:0])
			if len(buf) > 0 {
				sink(buf)
			}
			if scrub {
				clear(buf)
			}
		})
	}
	s.materialize = func() func(pc *PartitionContext) {
		return parent.feed(func(chunk []Elem[In]) { s.cur = apply(chunk, s.cur) })
	}
	return register(parent.p, s)
}

func (s *Stream[T]) inputs() []int     { return s.parents }
func (s *Stream[T]) elementwise() bool { return s.through != nil }

func (s *Stream[T]) plan(fused bool) {
	s.fused = fused
	if s.through == nil {
		return
	}
	if fused {
		s.fn = nil
		return
	}
	run := s.materialize()
	s.fn = func(pc *PartitionContext, out []Elem[T]) []Elem[T] {
		s.cur = out
		run(pc)
		return s.cur
	}
}

func (s *Stream[T]) process(pc *PartitionContext) {
	s.cur = reuse(s.cur)
	if s.fused || pc.Batch%s.every != 0 {
		return
	}
	s.cur = s.fn(pc, s.cur)
}

func (s *Stream[T]) stateOf() stateful { return s.state }
func (s *Stream[T]) reemitted() string { return s.reemits }

func (s *Stream[T]) retained(part int32) (int64, bool) {
	if s.state == nil {
		return 0, false
	}
	return s.state.retained(part)
}

// replayStart asks the operator where a replay must start for its output from offset from
// on to be what it was (see ReplayStarter).
func (s *Stream[T]) replayStart(part int32, from int64) (start, at int64, ok bool) {
	if rs, ok := s.state.(interface {
		replayStart(int32, int64) (int64, int64, bool)
	}); ok {
		return rs.replayStart(part, from)
	}
	return 0, 0, false
}

func (s *Stream[T]) drop(part int32) {
	if s.state != nil {
		s.state.drop(part)
	}
}

func (s *Stream[T]) stateSize() int {
	if s.state == nil {
		return 0
	}
	return s.state.stateSize()
}

// reportState lets the operator fill in st (see StateReporter).
func (s *Stream[T]) reportState(st *OperatorState) {
	if r, ok := s.state.(interface{ reportState(*OperatorState) }); ok {
		r.reportState(st)
	}
}

// Pipeline returns the pipeline the stream belongs to.
func (s *Stream[T]) Pipeline() *Pipeline { return s.p }

// Name returns the operator's name, for logs and errors.
func (s *Stream[T]) Name() string { return s.name }

func register[T any](p *Pipeline, s *Stream[T]) *Stream[T] {
	s.idx = len(p.nodes)
	p.nodes = append(p.nodes, s)
	return s
}

// derive adds a stateless or stateful operator reading parent. The operator runs whenever the
// parent has data and keeps the parent's slide.
func derive[In, Out any](parent *Stream[In], name string, fn func(pc *PartitionContext, in []Elem[In], out []Elem[Out]) []Elem[Out]) *Stream[Out] {
	s := &Stream[Out]{p: parent.p, name: name, every: parent.slide, slide: parent.slide, parents: []int{parent.idx}}
	var kept []Elem[In]
	s.fn = func(pc *PartitionContext, out []Elem[Out]) []Elem[Out] {
		in := parent.cur
		pc.op.node = s.idx
		pc.ResumeFired, pc.KeepsFired = NoWatermark, false
		if s.state != nil && pc.Merged {
			pc.KeepsFired = !s.p.lineage().fed[s.idx]
			if f, ok := pc.fired[s.idx]; ok {
				pc.ResumeFired = f
			} else if pc.KeepsFired {
				pc.ResumeFired = pc.partFired
			}
		}
		key, cut := s.idx, s.state != nil
		if s.cutBy > 0 {
			key, cut = s.cutBy-1, true
		}
		pc.cutAt, pc.cut = 0, false
		if cut && pc.skip != nil {
			// Replay after a resume: leave out what this operator had already accounted for.
			if from, ok := pc.skip[key]; ok {
				pc.cutAt, pc.cut = from, true
				kept = kept[:0]
				for i := range in {
					if in[i].Offset >= from {
						kept = append(kept, in[i])
					}
				}
				in = kept
			}
		}
		out = fn(pc, in, out)
		clear(kept)
		return out
	}
	return register(parent.p, s)
}

// Operator is a custom per-partition operator, the extension point that package window uses
// for event-time windows. The pipeline calls Process once per batch for every live partition,
// in increasing partition order, with that partition's input (possibly empty, so that
// watermark-driven output can fire). State must be kept per partition.
//
// Ordering guarantee: within a batch, the pipeline runs one partition through every operator
// of the graph, in the order the operators were created, before the next partition. So an
// operator created after another sees, in the same call for the same partition, what the
// earlier one produced (a side output read through a second operator is consistent).
//
// Optional interfaces tell the pipeline more about an operator: ReplayStarter (where a
// replay must start it), Withholder (records it holds without output), WatermarkHolder (its
// output stands behind the watermark), TimeOrderer (RepartitionByTime may number its output
// by event time), Parameterized (parameters a restart must keep) and StateReporter (stats).
type Operator[In, Out any] interface {
	// Process appends the outputs for this partition and batch to out and returns it. It must
	// not keep in or out past the call.
	Process(pc *PartitionContext, in []Elem[In], out []Elem[Out]) []Elem[Out]
	// Retained returns the oldest source offset that the partition's open state still needs,
	// and false if it holds nothing. Commits never pass it, nor go back: an offset behind
	// the partition's last commit holds it there (those records are not replayed). A replay
	// that starts the operator from an offset it returned after some batch must give the
	// same output for every record after that batch; output for the records before may
	// differ, and only reaches the pipeline's outputs (a stateful reader skips it).
	Retained(partition int32) (offset int64, ok bool)
	// Drop discards a partition's state: the partition was revoked.
	Drop(partition int32)
	// StateSize returns the number of entries held, for stats.
	StateSize() int
}

// ReplayStarter is an optional interface of an Operator whose output for a record depends on
// the records before it (a tracker that compares each event with the cab's previous one).
// When a stateful operator reads its output and replays from an older offset than its own
// start, the pipeline must start it early enough that its output from there on is what it
// was. Without ReplayStarter the pipeline only knows where the operator could start at the
// end of each past batch, so commits lag by up to a batch, a long one while catching up.
type ReplayStarter interface {
	// ReplayStart returns an offset a replay of the partition can start the operator at for
	// its output for every record from offset from on to be what it was, and the offset at
	// which it was recorded (at most from: the operator's state before that record decided
	// it). ok is false if it kept no such offset. Offsets before from that it kept can be
	// forgotten: from does not move back.
	ReplayStart(partition int32, from int64) (start, at int64, ok bool)
}

// WatermarkHolder is an optional interface of an Operator whose output for a partition
// stands behind the partition's watermark: a window emits its results when its own fire
// watermark passes, which lags the partition's when an operator before it dropped records.
// RepartitionByTime sends, after an upstream partition's values, the lowest of its own
// watermark and those of the WatermarkHolders upstream, so that a window's results that are
// still to come are never behind the watermark downstream.
//
// Limit: an operator that holds no state for a partition caps nothing. A window that has
// seen no record of a partition, because everything before it was dropped, has marks sent at
// the partition's watermark; its first record then opens a window that may already be behind
// them downstream, and that window's partial result goes to the downstream Late stream.
type WatermarkHolder interface {
	// HeldWatermark returns the watermark the operator's output for the partition stands at
	// after its last Process, and false if it holds no state for the partition.
	HeldWatermark(partition int32) (int64, bool)
}

// TimeOrderer is an optional interface of a WatermarkHolder whose output RepartitionByTime
// may number by event time and rank (package window's operators implement it). That takes,
// per partition, every element of an event time in one batch, later batches only later
// times, and a replay from any offset the operator returned by Retained that sends again,
// with the same values and in the same order, the elements of every time it sends that the
// first run sent: else a replay after a crash (or after a send that wrote part of a batch)
// shifts the ranks, and downstream one result is kept twice where another is dropped as a
// copy. RepartitionByTime of a stream made from a WatermarkHolder that does not implement
// TimeOrderer, or whose TimeOrder says why not, is refused when the graph is built
// (ErrGraph), naming the operator and what TimeOrder said.
type TimeOrderer interface {
	// TimeOrder returns "" if the operator's output is so, else why not (with what to
	// use instead), for the graph error.
	TimeOrder() string
}

// FireDelayer is an optional interface of a TimeOrderer whose results of an event time t come
// in the batch in which the watermark it fires on first passes t plus a fixed delay (a
// window's grace; package window's operators implement it). That watermark is its
// partition's when it sees every record of the partition; one that sees only some (behind a
// Filter) fires on the lower watermark of those. Two such operators over the same source with
// other delays, or with one delay but not the same input, one of them seeing only some of its
// records, send the results of one time in different batches, which RepartitionByTime cannot
// number (a permanent error once it happens, after the outputs of the batches before were
// written): a RepartitionByTime of a stream made from both (a Union of windows with other
// graces) is refused when the graph is built (ErrGraph), naming them.
type FireDelayer interface {
	FireDelay() time.Duration
}

// Parameterized is an optional interface of an Operator whose output depends on parameters
// besides its input, such as a window's size and grace or a join's bounds and kind (package
// window's and package join's operators implement it). Each commit's checkpoint records a
// hash of every such operator's Parameters, and a restart whose operator describes other
// parameters than the checkpoint it resumes from stops with ErrOperatorChanged (see
// "Restarts with changed operators" in the package documentation) instead of replaying the
// operator from replay starts computed for the old parameters: results of the old and the
// new parameters would otherwise mix, without a word. Functions (a key or value function, an
// aggregator) are code, not parameters: a change of them is not detected.
type Parameterized interface {
	// Parameters returns a description of the parameters that define the operator's output,
	// the same in every run with the same parameters and different for different ones
	// ("tumbling(1m0s) grace=10s emit=on-close"). It is hashed, never parsed, and appears in
	// ErrOperatorChanged's message. A parameter that only bounds resources (a key limit) may
	// be left out, so that it can change across a restart.
	Parameters() string
}

// Withholder is an optional interface of an Operator that may hold a partition's records back
// without emitting anything for them, for a replay to emit them (a stream-table join whose
// table partition could not be loaded holds its commits before them). Withheld returns the
// oldest such record's offset: from there on the operator has emitted nothing for the
// partition. The replay start of every stateful operator that reads its output (through
// stateless ones) is kept at or before it, so that the rows a replay emits for those records,
// with their own offsets, reach the reader, which never saw them, instead of being taken for
// rows it had accounted for before its start.
type Withholder interface {
	Withheld(partition int32) (offset int64, ok bool)
}

type opState[In, Out any] struct{ op Operator[In, Out] }

func (o opState[In, Out]) withheld(part int32) (int64, bool) {
	if w, ok := o.op.(Withholder); ok {
		return w.Withheld(part)
	}
	return 0, false
}

// isWatermarkHolder reports whether the operator implements WatermarkHolder.
func (o opState[In, Out]) isWatermarkHolder() bool {
	_, ok := o.op.(WatermarkHolder)
	return ok
}

// timeOrder returns "" if RepartitionByTime may number the operator's output by event time,
// else why not (TimeOrderer).
func (o opState[In, Out]) timeOrder() string {
	if t, ok := o.op.(TimeOrderer); ok {
		return t.TimeOrder()
	}
	return "does not say that a replay sends its results again in the same order (it implements WatermarkHolder but not TimeOrderer)"
}

// fireDelay returns the operator's FireDelay, if it implements FireDelayer.
func (o opState[In, Out]) fireDelay() (time.Duration, bool) {
	if f, ok := o.op.(FireDelayer); ok {
		return f.FireDelay(), true
	}
	return 0, false
}

func (o opState[In, Out]) heldWatermark(part int32) (int64, bool) {
	if h, ok := o.op.(WatermarkHolder); ok {
		return h.HeldWatermark(part)
	}
	return 0, false
}

func (o opState[In, Out]) replayStart(part int32, from int64) (int64, int64, bool) {
	if rs, ok := o.op.(ReplayStarter); ok {
		return rs.ReplayStart(part, from)
	}
	return 0, 0, false
}

func (o opState[In, Out]) retained(part int32) (int64, bool) { return o.op.Retained(part) }
func (o opState[In, Out]) drop(part int32)                   { o.op.Drop(part) }
func (o opState[In, Out]) stateSize() int                    { return o.op.StateSize() }

// operator marks the state of an Operator added by Apply (NewSideOutput).
func (opState[In, Out]) operator() {}

func (o opState[In, Out]) reportState(st *OperatorState) {
	if r, ok := o.op.(StateReporter); ok {
		st.Reported = true
		r.ReportState(st)
	}
}

// Identifier is an optional interface of an Operator that gives its checkpoint identity
// itself (see "Restarts with another graph" in the package documentation). The pipeline
// identifies an operator by its name, element type and state type, so a release that
// changes an operator's output type would start it, and the stateful operators that read
// it, as new; one that implements Identifier with Identity returning what the pipeline
// identified it by before, ApplyIdentity of its old types, resumes it from its checkpoint,
// as Flink's setUidHash keeps the state of an operator whose generated hash changed. An
// empty Identity is ignored. Give an operator only its own former identity: one taken for
// another resumes from the other's replay start.
type Identifier interface {
	Identity() string
}

// ApplyIdentity returns the checkpoint identity that Apply gives an Operator[In, Out] named
// name that does not implement Identifier, for an operator whose types changed to keep
// (Identifier).
func ApplyIdentity[In, Out any](name string) string {
	return identityString(name, reflect.TypeFor[Out](), opState[In, Out]{})
}

func (o opState[In, Out]) pinnedIdentity() string {
	if id, ok := o.op.(Identifier); ok {
		return id.Identity()
	}
	return ""
}

// Apply adds a custom Operator to the graph.
func Apply[In, Out any](s *Stream[In], name string, op Operator[In, Out]) *Stream[Out] {
	out := derive(s, name, op.Process)
	out.state = opState[In, Out]{op}
	return out
}

// bigBuffer is the capacity from which a reused buffer is given back once a batch used less
// than a quarter of it: one catch-up batch of a million results must not pin their memory
// (and, through the stale elements, the keys they point to) for the rest of the run.
const bigBuffer = 1 << 16

// reuse returns b emptied for reuse, or nil when it is big and was mostly unused.
func reuse[T any](b []T) []T {
	if cap(b) > bigBuffer && len(b) < cap(b)/4 {
		return nil
	}
	return b[:0]
}
