// The run loop: Run, when the next batch starts, retries, and a batch's start from the
// source's buffer through the graph (startBatch). One batch's outputs and commit are in step.go.

package stream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fleetstream/fleetstream/internal/backoff"
)

type pendingBatch struct {
	info     BatchInfo
	next     map[int32]int64
	done     []bool
	outTime  []time.Duration // by output: every attempt's write, this batch
	outCalls []int           // by output: the attempts that wrote it
	attempts int
	end      bool
	started  time.Time
	procTime time.Duration
	records  int
	bytes    int64
	shuffled int
	full     bool // the batch took a full buffer (a backlog)
}

// Run runs the pipeline: it starts the source, then every batch interval takes what the
// source buffered, runs the graph, runs the outputs (retrying failed ones under the retry
// policy), and commits what was acknowledged. The commit of a batch runs while the next
// batch is taken, processed and written; that batch's own commit waits for it, so commits
// stay in batch order, and Run returns only once the last one ended. Run returns nil when
// the input ended, every event-time window closed and the last commit succeeded (a last
// commit that fails for a reason that may pass is tried five times, or
// RetryPolicy.MaxAttempts, with the retry policy's backoff, since no batch follows to send it
// again), ctx.Err() when ctx ended (after the batch in flight was written and committed), or
// the first unrecoverable error. Processing-time windows (Window, ReduceByWindow and the
// other ...Window operators) do not close at the end of input: they span a number of
// batches, not of event time. So a bounded run with one returns nil with its last commit
// held at the oldest record of the window's last length of batches, and a next run replays
// those records to rebuild the window (its first windows then hold them again). No error but
// ctx.Err() itself matches context.Canceled or context.DeadlineExceeded with errors.Is, not
// even a stop with a batch unwritten or an output cut off by the shutdown grace: those are
// failures, and their messages say so. Run stops the sources (cancels their context) when it
// ends, and waits for their Run to return for at most the shutdown grace (at least a second):
// a source that does not return by then is left behind and named in an error that wraps
// ErrStopTimeout.
func (p *Pipeline) Run(ctx context.Context) error {
	err := p.run(ctx)
	if cut := p.stopTimedOut(); cut != nil {
		if err == nil || err == ctx.Err() { //nolint:errorlint // a clean stop is ctx.Err() itself
			err = stopFailed(ctx, cut)
		} else {
			err = errors.Join(err, cut)
		}
	}
	if err == nil || err == ctx.Err() { //nolint:errorlint // a clean stop is ctx.Err() itself
		return err
	}
	return notStop(err)
}

func (p *Pipeline) run(ctx context.Context) error {
	if err := p.Err(); err != nil {
		return err
	}
	if len(p.srcs) == 0 {
		return ErrNoSource
	}
	if p.ran.Load() {
		return ErrRunTwice
	}
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer func() {
		p.ran.Store(true)
		p.running.Store(false)
	}()
	if err := p.openShuffles(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ctx.Err() // stopped while opening: nothing ran
		}
		return err
	}
	p.stopCtx = ctx
	defer func() { p.stopCtx = nil }()
	if p.cfg.shutdownTimeout > 0 {
		// The shutdown timeout counts from the context's end.
		defer context.AfterFunc(ctx, func() { p.stopLeft(0) })()
	}
	// A batch's commit runs while the next batch is processed and written (see ack), with a
	// context that, like the outputs', outlives the batch and ctx by at most the shutdown
	// grace.
	p.commitCtx = func() (context.Context, func()) { return p.outputContext(ctx, "a commit") }
	srcs := p.startSources(ctx)
	stop := func() error {
		p.settle() // the last commit ends while its sources still run
		return errors.Join(append(srcs.stop(ctx), p.closeOutputs(ctx))...)
	}
	// finished is stop for a run whose input ended (a bounded run). No batch follows to send
	// the positions of a failed last commit again: what the run processed since its last
	// commit that succeeded is not committed, and it must not end with nil then (helper-70:
	// an exactly-once bounded run whose last commit failed during a broker outage returned
	// nil, its last batch's output never committed); it is tried again first
	// (retryLastCommit). A run stopped by its context keeps
	// returning ctx.Err(): the commit failed for a reason that passes (a rebalance), the
	// next run replays, and a SIGTERM must not look like a failure (helper-72's review).
	finished := func() error {
		p.retryLastCommit(ctx)
		err := stop()
		if p.commitErr != nil {
			err = errors.Join(err, fmt.Errorf("stream: the run's last commit failed (a restart replays what was processed since the last commit): %w", p.commitErr))
		}
		return err
	}
	// ended returns ctx.Err() itself when the context ended and stopping went well, so that
	// callers can tell a requested stop (err == context.Canceled) from a failure.
	ended := func() error {
		if err := stop(); err != nil {
			return stopFailed(ctx, err)
		}
		return ctx.Err()
	}
	// sourceEnded handles a source's Run returning while Run waits (srcDone): the error Run
	// must return with, and true, when the run ends with it (a stop the source saw first, a
	// source's failure); false when an input ended and the run goes on.
	sourceEnded := func(ex srcExit) (error, bool) {
		if ctx.Err() != nil {
			// The source saw the cancellation first: keep its result for stop.
			srcs.done <- ex
			return ended(), true
		}
		if srcs.note(ex) {
			return stop(), true
		}
		return nil, false
	}
	if err, end := p.awaitRegistrations(ctx, srcs.done, sourceEnded, ended); end {
		return err
	}
	clk := p.cfg.clock
	next := clk.Now().Add(p.interval)
	for {
		if wait := next.Sub(clk.Now()); wait > 0 {
			tick := clk.After(wait)
		waiting:
			for {
				select {
				case <-ctx.Done():
					return ended()
				case <-p.wake:
					if p.filled() || p.soon && p.readToEnd() {
						// A batch worth of records is waiting (a backlog), or a catch-up's
						// last records, with nothing more on its way: start it now rather
						// than at the tick, so catching up runs at the speed of the CPU, not
						// of the clock.
						next = clk.Now()
						break waiting
					}
				case ex := <-srcs.done:
					if err, end := sourceEnded(ex); end {
						return err
					}
					next = clk.Now() // an input ended: its last batch starts at once
					break waiting
				case <-tick:
					break waiting
				}
			}
		}
		// Honour a stop between batches, back to back or when the tick (or a backlog) came
		// with it: after the batch in flight, none starts once ctx ended.
		select {
		case <-ctx.Done():
			return ended()
		case ex := <-srcs.done:
			// A source that failed (or ended) while no wait came between batches: a run
			// behind the clock or catching up never waits, and a failed source must still
			// stop it.
			if err, end := sourceEnded(ex); end {
				return err
			}
		default:
		}
		scheduled := next
		outCtx, release := p.outputContext(ctx, "the batch in flight")
		done, err := p.step(outCtx, scheduled)
		for err != nil {
			if ctx.Err() != nil && permanentByStop(err) {
				// Stopped (SIGTERM) while the batch's outputs failed: no retry follows
				// (awaitRetry would return at once). An output that gave up for good because
				// its context ended (a Kafka transaction cut off by the stop) is part of the
				// stop, not a permanent error: the stop is the cause.
				release()
				return p.stoppedUnwritten(ctx, stop, err)
			}
			if IsPermanent(err) {
				p.cfg.logger.Error("stream: stopping on a permanent error", "err", err)
				release()
				return errors.Join(err, stop())
			}
			attempts := p.pending.attempts
			if p.cfg.retry.MaxAttempts > 0 && attempts >= p.cfg.retry.MaxAttempts {
				release()
				return errors.Join(err, stop())
			}
			d := backoff.Delay(p.cfg.retry.Initial, p.cfg.retry.Max, attempts)
			p.noteRetry(attempts, d, err)
			if err, end := p.awaitRetry(ctx, clk.After(d), srcs, release, stop, err); end {
				return err
			}
			done, err = p.step(outCtx, scheduled)
		}
		release()
		if done {
			return finished()
		}
		next = next.Add(p.interval)
		if now := clk.Now(); next.Before(now) || p.endWaiting() {
			// Behind the clock, or an input was closed and the batch that ends it (closes
			// its windows) can start at once: nothing more will arrive to wait for. (An input
			// closed with records in its buffer ends one batch after them.)
			next = now
		} else if p.soon {
			// Catching up: the source is refilling the buffer while this batch ran (the batch
			// took a full buffer, or the sources' partitions still hold records not read).
			// Start the next batch as soon as the buffer is full again (filled), and at the
			// latest after a tenth of the interval with what it holds then, so that a source
			// slower than a full buffer per batch does not make every batch wait for the
			// tick. Likewise while a repartition's end marks make their way back after its
			// inputs ended: every hop of the end through a repartition would otherwise wait
			// for a tick. (Returning values and end marks start the batch as soon as one
			// arrives: see shuffleNode.awaitReturn.)
			// Sooner still when every source said it pushed all its partitions held
			// (Input.ReadToEnd) and records wait: the buffer will not fill again, and the
			// tenth of the interval was a drain's last 100 ms.
			if p.readToEnd() {
				next = now
			} else if soon := now.Add(p.interval / 10); soon.Before(next) {
				next = soon
			}
		}
	}
}

// markSep separates the operators' checkpoint from a repartition partition's marks in
// Position.Meta.
const markSep = "|"

// shuffleOf returns the repartition whose downstream partition part is, or nil.
func (p *Pipeline) shuffleOf(part int32) shuffleNode {
	for _, sh := range p.shuffles {
		if sh.owns(part) {
			return sh
		}
	}
	return nil
}

// endWaiting reports whether a source's input was closed and no batch has ended it yet.
func (p *Pipeline) endWaiting() bool {
	for _, sn := range p.srcs {
		if sn.endWaiting() {
			return true
		}
	}
	return false
}

// readToEnd reports whether every source (but the repartitions', whose returning records
// wake the batch themselves: shuffleNode.awaitReturn, and those whose input ended) said it
// pushed all its partitions held (Input.ReadToEnd), and they hold a tenth of a buffer (the
// bound of step's behind) or more. Not a lone fetch's few records: a producer about as fast
// as the pipeline keeps every partition at its end between full batches, and starting a batch
// for each of its fetches would multiply the batches (each an output flush and a commit).
func (p *Pipeline) readToEnd() bool {
	waiting := 0
	for _, sn := range p.srcs {
		if sn.internal() || sn.ended() {
			continue
		}
		at, n := sn.readToEnd()
		if !at {
			return false
		}
		waiting += n
	}
	return waiting > 0 && waiting >= p.cfg.maxRecords/10
}

// filled reports whether a source's buffer holds a batch worth of records or its input ended.
// A source that has ended is past that: its input stays "filled" for good, and counting it
// started a batch at every wake-up of the others (each ReadToEnd of a live source).
func (p *Pipeline) filled() bool {
	for _, sn := range p.srcs {
		if sn.ended() {
			continue
		}
		select {
		case <-sn.filled():
			return true
		default:
		}
	}
	return false
}

func (p *Pipeline) startBatch(scheduled time.Time) {
	clk := p.cfg.clock
	started := clk.Now()
	if p.planned != [2]int{len(p.nodes), len(p.outputs)} {
		p.fuse()
	}
	p.batch++
	// No record moves a watermark past the clock plus the future bound, even from a source
	// that does not check event times (Input.CheckEventTime).
	ceiling := int64(math.MaxInt64)
	if p.cfg.maxFuture > 0 {
		ceiling = started.Add(p.cfg.maxFuture).UnixNano()
	}
	next := make(map[int32]int64)
	var records, shuffled int
	var bytes int64
	end, backlog := true, false
	for _, sn := range p.srcs {
		in := sn.take(scheduled.UnixNano())
		p.applyControl(in.assigned, in.revoked)
		for _, part := range in.ended {
			if ps, ok := p.parts[part]; ok {
				ps.selfEnded = true
			}
		}
		if sn.internal() {
			shuffled += in.records
		} else {
			records += in.records
			bytes += in.bytes
		}
		// A batch that took a full buffer means a backlog: the next one need not wait for
		// the tick.
		backlog = backlog || in.records >= p.cfg.maxRecords || (p.cfg.maxBytes > 0 && in.bytes >= p.cfg.maxBytes)
		for _, st := range in.parts {
			ps := p.partition(st.part, started)
			ps.lastSeen = started
			ps.maxEvent = max(ps.maxEvent, min(st.maxEvent, ceiling))
			if ps.base < 0 {
				ps.base = sn.minOffset(st.bucket)
			}
			if st.maxOffset+1 > ps.next {
				ps.next = st.maxOffset + 1
			}
			next[st.part] = ps.next
		}
		end = end && sn.ended()
	}
	for _, part := range p.live {
		ps := p.parts[part]
		si, _ := p.sourceOf(part)
		ps.ended = p.srcs[si].ended() || ps.selfEnded
	}
	for _, sh := range p.shuffles {
		sh.arrived(p)
	}
	p.wm = max(p.wm, p.watermark(started, end))
	pc := PartitionContext{
		Batch:             p.batch,
		BatchTime:         scheduled,
		Watermark:         p.wm,
		MaxOutOfOrderness: p.cfg.outOfOrder,
		ceiling:           ceiling,
		EndOfInput:        end,
		ctx:               p.stopCtx,
		op:                opAt{p: p, node: -1},
	}
	for _, part := range p.live {
		pc.Partition = part
		ps := p.parts[part]
		pc.EndOfInput = end || ps.ended || ps.marked && ps.markEnd
		pc.Merged = ps.marked
		pc.startMark, pc.marks, pc.up = pc.PartitionWatermark, nil, nil
		if ps.marked {
			if sh := p.shuffleOf(part); sh != nil {
				pc.startMark, pc.marks = sh.marks(part)
				pc.up, _ = sh.(upstreamer)
			}
		}
		pc.PartitionWatermark, pc.Idle = p.partitionWatermark(ps, started, pc.EndOfInput)
		pc.skip, pc.fired, pc.partFired = ps.eff, ps.fired, ps.partFired
		for _, n := range p.active {
			n.process(&pc)
		}
		for _, o := range p.outputs {
			o.collect(&pc)
		}
	}
	for _, sn := range p.srcs {
		sn.release()
	}
	p.pending = &pendingBatch{
		info: BatchInfo{
			Pipeline:  p.cfg.name,
			Batch:     p.batch,
			Time:      scheduled,
			Watermark: WatermarkTime(p.wm),
			Final:     end,
		},
		next:     next,
		done:     make([]bool, len(p.outputs)),
		outTime:  make([]time.Duration, len(p.outputs)),
		outCalls: make([]int, len(p.outputs)),
		end:      end,
		started:  started,
		procTime: clk.Now().Sub(started),
		records:  records,
		bytes:    bytes,
		shuffled: shuffled,
		full:     backlog,
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

// statefulNodes returns how many operators hold state.
func (p *Pipeline) statefulNodes() int {
	n := 0
	for _, nd := range p.nodes {
		if hasState(nd) {
			n++
		}
	}
	return n
}
