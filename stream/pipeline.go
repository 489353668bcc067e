package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/internal/backoff"
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
	src      sourceNode
	running  atomic.Bool

	// run state, owned by the goroutine in Run or Step.
	batch    int64
	parts    map[int32]*partState
	live     []int32
	wm       int64
	pending  *pendingBatch
	finished bool

	held   []heldAt
	lin    *lineage // the stateful operators and their readers (see replayStarts)
	starts []int64  // scratch for replayStarts

	// the plan of the graph (see fuse): the operators that run in their own pass, and the
	// graph's size when it was made.
	active  []node
	planned [2]int
	// fp is the graph fingerprint of checkpoints, computed for fpNodes operators.
	fp      string
	fpNodes int

	statsMu sync.Mutex
	stats   BatchStats
}

type partState struct {
	// skip maps an operator (index in nodes) to the offset its replay starts at, after a
	// Resume (see Input.Resume); nil once every operator is past it.
	skip map[int]int64
	eff  map[int]int64 // where each operator's input is cut during the replay (effectiveSkip)
	meta string        // the checkpoint last committed
	// hist keeps, by position in lineage.stateful, the past replay starts of operators that
	// stateful operators read (see replayStarts).
	hist      [][]startAt
	trust     []int64 // by the same position: the offset from which this run's starts are exact
	base      int64   // the offset the partition started at in this run, -1 until known
	maxEvent  int64
	next      int64 // next offset after the newest record seen (acknowledged or pending)
	committed int64 // last offset handed to Source.Commit, -1 before any
	lastSeen  time.Time
}

type pendingBatch struct {
	info     BatchInfo
	next     map[int32]int64
	done     []bool
	attempts int
	end      bool
	started  time.Time
	procTime time.Duration
	records  int
	bytes    int64
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
	// EndOfInput is true in the last batch, after the input ended.
	EndOfInput bool

	skip map[int]int64
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
	// Watermark is the pipeline watermark after this batch's records (Unix nanoseconds).
	Watermark int64
	// Final is true for the last batch, after the input ended.
	Final bool
}

// BatchStats is the snapshot taken after each acknowledged batch.
type BatchStats struct {
	Batch           int64
	Time            time.Time
	InputRecords    int
	InputBytes      int64
	SchedulingDelay time.Duration
	ProcessingTime  time.Duration   // transforms, excluding outputs
	OutputTime      time.Duration   // outputs, including retries
	Attempts        int             // output attempts of this batch (1 when nothing failed)
	Watermark       time.Time       // zero before any event
	RetainedState   int             // entries held by stateful operators
	State           []OperatorState // entries held by each stateful operator, in graph order
	Partitions      int
	Committed       []Position // what was handed to Source.Commit after this batch
	Source          SourceStats
}

// OperatorState is the size of one stateful operator's state: entries as the operator counts
// them (keys, keys in open windows, series, sessions, cabs).
type OperatorState struct {
	Operator string
	Entries  int
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
// batch interval, a second source, ...), joined, or nil. Run and Step return them too.
func (p *Pipeline) Err() error { return errors.Join(p.errs...) }

func (p *Pipeline) fail(err error) { p.errs = append(p.errs, err) }

// Fail records a construction error, for operators built outside this package (package
// window uses it): Err, Run and Step return it.
func (p *Pipeline) Fail(err error) {
	if err != nil {
		p.fail(err)
	}
}

// Stats returns the stats of the last acknowledged batch. Safe for concurrent use.
func (p *Pipeline) Stats() BatchStats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	return p.stats
}

// Run runs the pipeline: it starts the source, then every batch interval takes what the
// source buffered, runs the graph, runs the outputs (retrying failed ones under the retry
// policy), and commits what was acknowledged. Run returns nil when the input ended and every
// window closed, ctx.Err() when ctx ended (after the batch in flight was written and
// committed), or the first unrecoverable error.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.Err(); err != nil {
		return err
	}
	if p.src == nil {
		return ErrNoSource
	}
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	srcCtx, cancel := context.WithCancel(ctx)
	srcDone := make(chan error, 1)
	go func() {
		err := p.src.run(srcCtx)
		if err == nil {
			// Only a source that returns nil ends the input (a bounded source): one that was
			// stopped must not make the pipeline close every window as if input had ended.
			p.src.close()
		}
		srcDone <- err
	}()
	stop := func() error {
		cancel()
		err := <-srcDone
		if errors.Is(err, context.Canceled) && srcCtx.Err() != nil {
			err = nil // the source stopped because we cancelled it
		}
		return errors.Join(err, p.closeOutputs(context.WithoutCancel(ctx)))
	}
	// ended returns ctx.Err() itself when the context ended and stopping went well, so that
	// callers can tell a requested stop (err == context.Canceled) from a failure.
	ended := func() error {
		if err := stop(); err != nil {
			return errors.Join(ctx.Err(), err)
		}
		return ctx.Err()
	}
	clk := p.cfg.clock
	next := clk.Now().Add(p.interval)
	var srcErr error
	for {
		if wait := next.Sub(clk.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return ended()
			case err := <-srcDone:
				srcDone <- err // keep it for stop
				if ctx.Err() != nil {
					return ended() // the source saw the cancellation first
				}
				if err != nil {
					srcErr = err
					break
				}
				<-clk.After(wait)
			case <-clk.After(wait):
			}
		}
		if srcErr != nil {
			cancel()
			return errors.Join(fmt.Errorf("stream: source: %w", srcErr), p.closeOutputs(context.WithoutCancel(ctx)))
		}
		scheduled := next
		outCtx, release := p.outputContext(ctx)
		done, err := p.step(outCtx, scheduled)
		for err != nil {
			if IsPermanent(err) {
				p.cfg.logger.Error("stream: permanent output error", "err", err)
				release()
				return errors.Join(err, stop())
			}
			attempts := p.pending.attempts
			if p.cfg.retry.MaxAttempts > 0 && attempts >= p.cfg.retry.MaxAttempts {
				release()
				return errors.Join(err, stop())
			}
			d := backoff.Delay(p.cfg.retry.Initial, p.cfg.retry.Max, attempts)
			p.cfg.logger.Warn("stream: batch outputs failed, retrying", "batch", p.pending.info.Batch, "attempt", attempts, "backoff", d, "err", err)
			select {
			case <-ctx.Done():
				release()
				if err := stop(); err != nil {
					return errors.Join(ctx.Err(), err)
				}
				// Stopped while the batch's outputs were failing: the batch is not
				// acknowledged and replays on the next run; say why it did not finish.
				return fmt.Errorf("%w (batch %d was not written: %w)", ctx.Err(), p.pending.info.Batch, err)
			case <-clk.After(d):
			}
			done, err = p.step(outCtx, scheduled)
		}
		release()
		if done {
			return stop()
		}
		next = next.Add(p.interval)
		if now := clk.Now(); next.Before(now) {
			next = now
		}
	}
}

// outputContext returns the context outputs run with: it is not cancelled with ctx, so the
// batch in flight is finished on shutdown, but once ctx ends the outputs get at most the
// shutdown grace (WithShutdownGrace) before it is cancelled too. release must be called when
// the batch is done.
func (p *Pipeline) outputContext(ctx context.Context) (context.Context, func()) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	finished := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		select {
		case <-p.cfg.clock.After(p.cfg.shutdownGrace):
			p.cfg.logger.Warn("stream: shutdown grace elapsed; cancelling the batch in flight", "grace", p.cfg.shutdownGrace)
			cancel()
		case <-finished:
		}
	})
	return out, func() {
		stopWatch()
		close(finished)
		cancel()
	}
}

// Step runs one batch synchronously at the clock's current time, without starting the
// source: it is the building block of Run, exported for harnesses (package streamtest) that
// push records through a Binder source. If the previous Step's outputs failed, Step retries
// that batch's failed outputs instead of taking a new batch. done is true once the input
// ended and the final batch was acknowledged.
func (p *Pipeline) Step(ctx context.Context) (done bool, err error) {
	if err := p.Err(); err != nil {
		return false, err
	}
	if p.src == nil {
		return false, ErrNoSource
	}
	return p.step(ctx, p.cfg.clock.Now())
}

func (p *Pipeline) step(ctx context.Context, scheduled time.Time) (bool, error) {
	if p.finished {
		return true, nil
	}
	if p.pending == nil {
		p.startBatch(scheduled)
	} else {
		p.handleControl()
	}
	b := p.pending
	b.attempts++
	outStart := p.cfg.clock.Now()
	var errs []error
	for i, o := range p.outputs {
		if b.done[i] {
			continue
		}
		if err := o.flush(ctx, b.info); err != nil {
			errs = append(errs, err)
			continue
		}
		b.done[i] = true
	}
	if len(errs) > 0 {
		return false, &OutputError{Batch: b.info.Batch, Errs: errs}
	}
	outTime := p.cfg.clock.Now().Sub(outStart)
	committed := p.ack(ctx, b)
	for _, o := range p.outputs {
		o.reset()
	}
	st := BatchStats{
		Batch:           b.info.Batch,
		Time:            b.info.Time,
		InputRecords:    b.records,
		InputBytes:      b.bytes,
		SchedulingDelay: max(0, b.started.Sub(b.info.Time)),
		ProcessingTime:  b.procTime,
		OutputTime:      outTime,
		Attempts:        b.attempts,
		Partitions:      len(p.live),
		Committed:       committed,
	}
	if p.wm != NoWatermark && p.wm != EndOfTime {
		st.Watermark = time.Unix(0, p.wm).UTC()
	}
	for _, n := range p.nodes {
		size := n.stateSize()
		st.RetainedState += size
		if hasState(n) {
			st.State = append(st.State, OperatorState{Operator: n.(interface{ Name() string }).Name(), Entries: size})
		}
	}
	if s, ok := p.src.stats(); ok {
		st.Source = s
	}
	p.statsMu.Lock()
	p.stats = st
	p.statsMu.Unlock()
	if p.cfg.statsHook != nil {
		p.cfg.statsHook(st)
	}
	p.pending = nil
	if b.end {
		p.finished = true
	}
	return b.end, nil
}

// handleControl applies partition assignments and revocations that arrived from the source.
func (p *Pipeline) handleControl() {
	assigned, revoked := p.src.control()
	p.applyControl(assigned, revoked)
}

func (p *Pipeline) applyControl(assigned []Position, revoked []revocation) {
	now := p.cfg.clock.Now()
	for _, r := range revoked {
		for _, part := range r.parts {
			if _, ok := p.parts[part]; !ok {
				continue
			}
			delete(p.parts, part)
			p.live = slices.DeleteFunc(p.live, func(x int32) bool { return x == part })
			for _, n := range p.nodes {
				n.drop(part)
			}
			if p.pending != nil {
				delete(p.pending.next, part)
			}
			p.cfg.logger.Info("stream: partition revoked, state dropped", "partition", part)
		}
		close(r.done)
	}
	for _, pos := range assigned {
		ps := p.partition(pos.Partition, now)
		if pos.Offset >= 0 {
			ps.base = pos.Offset
		}
		if pos.Meta == "" {
			continue
		}
		skip, err := decodeCheckpoint(pos.Meta, pos.Offset, len(p.nodes), p.fingerprint())
		if err != nil {
			p.cfg.logger.Warn("stream: ignoring the committed checkpoint: every stateful operator starts cold from the committed offset, so windows open at the commit may be emitted again from part of their records (then overwritten)", "partition", pos.Partition, "offset", pos.Offset, "err", err)
			continue
		}
		ps.skip, ps.meta = skip, pos.Meta
		ps.eff = p.effectiveSkip(skip, pos.Offset)
		if pos.Offset > ps.committed {
			ps.committed = pos.Offset
		}
		p.cfg.logger.Info("stream: partition resumed from checkpoint", "partition", pos.Partition, "offset", pos.Offset, "operators", len(skip))
	}
}

func (p *Pipeline) partition(part int32, now time.Time) *partState {
	ps, ok := p.parts[part]
	if !ok {
		ps = &partState{maxEvent: NoWatermark, base: -1, next: -1, committed: -1, lastSeen: now}
		p.parts[part] = ps
		i, _ := slices.BinarySearch(p.live, part)
		p.live = slices.Insert(p.live, i, part)
	}
	return ps
}

func (p *Pipeline) startBatch(scheduled time.Time) {
	clk := p.cfg.clock
	started := clk.Now()
	if p.planned != [2]int{len(p.nodes), len(p.outputs)} {
		p.fuse()
	}
	p.batch++
	in := p.src.take(scheduled.UnixNano())
	p.applyControl(in.assigned, in.revoked)
	next := make(map[int32]int64, len(in.parts))
	// No record moves a watermark past the clock plus the future bound, even from a source
	// that does not check event times (Input.CheckEventTime).
	ceiling := int64(math.MaxInt64)
	if p.cfg.maxFuture > 0 {
		ceiling = started.Add(p.cfg.maxFuture).UnixNano()
	}
	for _, st := range in.parts {
		ps := p.partition(st.part, started)
		ps.lastSeen = started
		ps.maxEvent = max(ps.maxEvent, min(st.maxEvent, ceiling))
		if ps.base < 0 {
			ps.base = p.src.minOffset(st.bucket)
		}
		if st.maxOffset+1 > ps.next {
			ps.next = st.maxOffset + 1
		}
		next[st.part] = ps.next
	}
	end := in.closed
	p.wm = max(p.wm, p.watermark(started, end))
	pc := PartitionContext{
		Batch:             p.batch,
		BatchTime:         scheduled,
		Watermark:         p.wm,
		MaxOutOfOrderness: p.cfg.outOfOrder,
		ceiling:           ceiling,
		EndOfInput:        end,
	}
	for _, part := range p.live {
		pc.Partition = part
		ps := p.parts[part]
		pc.PartitionWatermark, pc.Idle = p.partitionWatermark(ps, started, end)
		pc.skip = ps.eff
		for _, n := range p.active {
			n.process(&pc)
		}
		for _, o := range p.outputs {
			o.collect(&pc)
		}
	}
	p.src.release()
	p.pending = &pendingBatch{
		info: BatchInfo{
			Pipeline:  p.cfg.name,
			Batch:     p.batch,
			Time:      scheduled,
			Watermark: p.wm,
			Final:     end,
		},
		next:     next,
		done:     make([]bool, len(p.outputs)),
		end:      end,
		started:  started,
		procTime: clk.Now().Sub(started),
		records:  in.records,
		bytes:    in.bytes,
	}
}

// fuse plans the graph: an elementwise operator (Map, Filter, KeyBy...) whose only reader is
// another elementwise operator or an output runs fused into that reader, so that a chain of
// them is one loop over the last materialized batch, with no batch in between. Operators read
// by several readers, by stateful operators or by nothing are materialized as before, so a
// user function is never applied twice to the same element.
func (p *Pipeline) fuse() {
	readers := make([]int, len(p.nodes))
	elemReader := make([]bool, len(p.nodes))
	note := func(idx int, elem bool) {
		readers[idx]++
		elemReader[idx] = elem
	}
	for _, n := range p.nodes {
		for _, idx := range n.inputs() {
			note(idx, n.elementwise())
		}
	}
	for _, o := range p.outputs {
		note(o.input(), true)
	}
	fused := make([]bool, len(p.nodes))
	p.active = p.active[:0]
	for i, n := range p.nodes {
		fused[i] = n.elementwise() && readers[i] == 1 && elemReader[i]
		n.plan(fused[i])
		if !fused[i] {
			p.active = append(p.active, n)
		}
	}
	for _, o := range p.outputs {
		o.plan(fused[o.input()])
	}
	p.planned = [2]int{len(p.nodes), len(p.outputs)}
}

// own returns a partition's own watermark.
func (p *Pipeline) own(ps *partState) int64 {
	if ps.maxEvent == NoWatermark {
		return NoWatermark
	}
	return ps.maxEvent - int64(p.cfg.outOfOrder)
}

func (p *Pipeline) idle(ps *partState, now time.Time) bool {
	return p.cfg.idleTimeout > 0 && now.Sub(ps.lastSeen) >= p.cfg.idleTimeout
}

func (p *Pipeline) partitionWatermark(ps *partState, now time.Time, end bool) (int64, bool) {
	idle := p.idle(ps, now)
	if end {
		return EndOfTime, idle
	}
	w := p.own(ps)
	if idle {
		w = max(w, p.wm)
	}
	return w, idle
}

func (p *Pipeline) watermark(now time.Time, end bool) int64 {
	if end {
		return EndOfTime
	}
	wm, minAll, active := int64(math.MaxInt64), int64(math.MaxInt64), false
	for _, part := range p.live {
		ps := p.parts[part]
		w := p.own(ps)
		if w == NoWatermark {
			// A partition with no event yet holds nothing back while idle (it may never
			// get one), but an active one holds time until its first event.
			if !p.idle(ps, now) {
				return NoWatermark
			}
			continue
		}
		minAll = min(minAll, w)
		if p.idle(ps, now) {
			continue
		}
		active = true
		wm = min(wm, w)
	}
	if !active {
		// Every partition is idle: take the slowest partition's own watermark, never the
		// furthest. Each partition has then reached it, so no partition that becomes active
		// again finds its next records behind the pipeline watermark unless they are behind
		// its own watermark too (see "Watermarks" in the package documentation).
		if minAll == math.MaxInt64 {
			return NoWatermark
		}
		return minAll
	}
	return wm
}

// ack commits, for every partition of the batch, the next offset after its records, held back
// by the oldest offset that any operator's open state still needs.
func (p *Pipeline) ack(ctx context.Context, b *pendingBatch) []Position {
	var pos []Position
	for _, part := range p.live {
		ps := p.parts[part]
		if ps.next < 0 {
			continue
		}
		held := p.held[:0]
		for i, n := range p.nodes {
			if r, ok := n.retained(part); ok {
				held = append(held, heldAt{i, r})
			}
		}
		p.held = held
		lin := p.lineage()
		starts := p.replayStarts(lin, part, ps, held)
		if ps.skip != nil && maxSkip(ps.skip) <= ps.next {
			ps.skip, ps.eff = nil, nil // every operator is past its replay start
		}
		off := ps.next
		for _, s := range starts {
			off = min(off, s)
		}
		meta := encodeCheckpoint(off, lin.stateful, starts, len(p.nodes), p.fingerprint())
		if off > ps.committed || (off == ps.committed && meta != ps.meta) {
			pos = append(pos, Position{Partition: part, Offset: off, Meta: meta})
		}
	}
	if len(pos) == 0 {
		return nil
	}
	if err := p.src.commit(ctx, pos); err != nil {
		// The records are written; a later batch commits again from the same positions.
		p.cfg.logger.Warn("stream: commit failed; will retry with the next batch", "err", err)
		return nil
	}
	for _, x := range pos {
		ps := p.parts[x.Partition]
		ps.committed, ps.meta = x.Offset, x.Meta
	}
	return pos
}

func (p *Pipeline) closeOutputs(ctx context.Context) error {
	var errs []error
	for _, o := range p.outputs {
		if err := o.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
