// The run loop: Run and Step, a batch from the source's buffer through the graph to the
// outputs (outputs.go: writing them and committing), retries, and when the next batch starts.

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
// policy), and commits what was acknowledged. Run returns nil when the input ended and every
// window closed, ctx.Err() when ctx ended (after the batch in flight was written and
// committed), or the first unrecoverable error.
func (p *Pipeline) Run(ctx context.Context) error {
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
		return err
	}
	srcCtx, cancel := context.WithCancel(ctx)
	srcDone := make(chan error, len(p.srcs))
	for _, sn := range p.srcs {
		go func() {
			err := sn.run(srcCtx)
			if err == nil {
				// Only a source that returns nil ends its input (a bounded source): one that
				// was stopped must not make the pipeline close every window as if input had
				// ended.
				sn.close()
			}
			srcDone <- err
		}()
	}
	running := len(p.srcs)
	var srcErrs []error
	// returned notes a source's Run result.
	returned := func(err error) {
		running--
		if errors.Is(err, context.Canceled) && srcCtx.Err() != nil {
			err = nil // the source stopped because we cancelled it
		}
		if err != nil {
			srcErrs = append(srcErrs, fmt.Errorf("stream: source: %w", err))
		}
	}
	stop := func() error {
		cancel()
		for running > 0 {
			returned(<-srcDone)
		}
		return errors.Join(append(srcErrs, p.closeOutputs(context.WithoutCancel(ctx)))...)
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
	for {
		if wait := next.Sub(clk.Now()); wait > 0 {
			tick := clk.After(wait)
		waiting:
			for {
				select {
				case <-ctx.Done():
					return ended()
				case <-p.wake:
					if p.filled() {
						// A batch worth of records is waiting (a backlog): start it now rather
						// than at the tick, so catching up runs at the speed of the CPU, not
						// of the clock.
						next = clk.Now()
						break waiting
					}
				case err := <-srcDone:
					if ctx.Err() != nil {
						srcDone <- err // keep it for stop
						return ended() // the source saw the cancellation first
					}
					returned(err)
					if len(srcErrs) > 0 {
						return stop()
					}
					next = clk.Now() // an input ended: its last batch starts at once
					break waiting
				case <-tick:
					break waiting
				}
			}
		} else {
			select { // back to back: still honour a stop between batches
			case <-ctx.Done():
				return ended()
			default:
			}
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
			p.noteRetry(attempts, d, err)
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
		} else if p.soon {
			// Catching up: the source is refilling the buffer while this batch ran (the batch
			// took a full buffer, or the sources' partitions still hold records not read).
			// Start the next batch as soon as the buffer is full again (filled), and at the
			// latest after a tenth of the interval with what it holds then, so that a source
			// slower than a full buffer per batch does not make every batch wait for the
			// tick. Likewise while a repartition's end marks make their way back after its
			// inputs ended: every hop of the end through a repartition would otherwise wait
			// for a tick.
			if soon := now.Add(p.interval / 10); soon.Before(next) {
				next = soon
			}
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
	if len(p.srcs) == 0 {
		return false, ErrNoSource
	}
	if p.running.Load() {
		return false, ErrRunning
	}
	return p.step(ctx, p.cfg.clock.Now())
}

func (p *Pipeline) step(ctx context.Context, scheduled time.Time) (bool, error) {
	if p.finished {
		return true, nil
	}
	if p.pending == nil {
		if err := p.openShuffles(ctx); err != nil {
			return false, Permanent(err)
		}
		p.startBatch(scheduled)
	} else {
		p.handleControl()
	}
	b := p.pending
	b.attempts++
	outStart := p.cfg.clock.Now()
	errs := p.flushOutputs(ctx, b)
	if len(errs) > 0 {
		return false, &OutputError{Batch: b.info.Batch, Errs: errs}
	}
	outTime := p.cfg.clock.Now().Sub(outStart)
	committed := p.ack(ctx, b)
	for _, o := range p.outputs {
		o.reset()
	}
	var dups int64
	ending := false
	for _, sh := range p.shuffles {
		ending = sh.finish(p) || ending
		dups += sh.duplicates()
	}
	st := BatchStats{
		Batch:           b.info.Batch,
		Time:            b.info.Time,
		InputRecords:    b.records,
		ShuffledRecords: b.shuffled,
		InputBytes:      b.bytes,
		SchedulingDelay: max(0, b.started.Sub(b.info.Time)),
		ProcessingTime:  b.procTime,
		OutputTime:      outTime,
		Attempts:        b.attempts,
		Partitions:      len(p.live),
		Committed:       committed,
		Duplicates:      dups,
		PartitionStats:  p.partitionStats(),
	}
	st.Watermark = b.info.Watermark
	st.State = make([]OperatorState, 0, p.statefulNodes())
	for _, n := range p.nodes {
		size := n.stateSize()
		st.RetainedState += size
		if hasState(n) {
			st.State = append(st.State, OperatorState{Operator: n.(interface{ Name() string }).Name(), Entries: size})
			n.reportState(&st.State[len(st.State)-1])
		}
	}
	st.Source = p.sourceStats()
	// The next batch need not wait for the tick when this one took a full buffer, left a
	// tenth of one waiting, or a repartition's end marks are on their way back.
	p.soon = b.full || ending || p.waiting(st.Source) >= max(1, int64(p.cfg.maxRecords/10))
	p.statsMu.Lock()
	p.stats = st
	recovered := p.retrying
	p.retrying = nil
	p.statsMu.Unlock()
	if recovered != nil {
		p.cfg.logger.Info("stream: batch written after retries", "batch", st.Batch, "attempts", st.Attempts, "outage", p.cfg.clock.Now().Sub(recovered.Since).Round(time.Millisecond))
	}
	if p.cfg.statsHook != nil {
		p.cfg.statsHook(st)
	}
	p.pending = nil
	if b.end {
		p.finished = true
	}
	return b.end, nil
}

// noteRetry publishes a failed attempt (Retrying, WithRetryHook) and logs it: the first
// attempts each, then at most one line a minute with the count of the ones left out.
func (p *Pipeline) noteRetry(attempts int, d time.Duration, err error) {
	now := p.cfg.clock.Now()
	p.statsMu.Lock()
	info := RetryInfo{Batch: p.pending.info.Batch, Attempt: attempts, Since: now, Backoff: d, Err: err}
	if p.retrying != nil && p.retrying.Batch == info.Batch {
		info.Since = p.retrying.Since
	}
	p.retrying = &info
	p.statsMu.Unlock()
	if ok, suppressed := p.retryLog.Allow(now); ok {
		p.cfg.logger.Warn("stream: batch outputs failed, retrying", "batch", info.Batch, "attempt", attempts, "backoff", d,
			"failing_for", now.Sub(info.Since).Round(time.Millisecond), "suppressed", suppressed, "err", err)
	}
	if p.cfg.retryHook != nil {
		p.cfg.retryHook(info)
	}
}

// waiting returns the records waiting for the next batch: in the sources' buffers, and in
// their partitions beyond what was read (SourceStats End - Read, over the partitions that
// report both).
func (p *Pipeline) waiting(st SourceStats) int64 {
	var lag int64
	for _, sn := range p.srcs {
		lag += int64(sn.buffered())
	}
	for name, end := range st.End {
		if read, ok := st.Read[name]; ok && end > read {
			lag += end - read
		}
	}
	return lag
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

// filled reports whether a source's buffer holds a batch worth of records or its input ended.
func (p *Pipeline) filled() bool {
	for _, sn := range p.srcs {
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
		ps.ended = p.srcs[si].ended()
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
	}
	for _, part := range p.live {
		pc.Partition = part
		ps := p.parts[part]
		pc.EndOfInput = end || ps.ended || ps.marked && ps.markEnd
		pc.Merged = ps.marked
		pc.startMark, pc.marks = pc.PartitionWatermark, nil
		if ps.marked {
			if sh := p.shuffleOf(part); sh != nil {
				pc.startMark, pc.marks = sh.marks(part)
			}
		}
		pc.PartitionWatermark, pc.Idle = p.partitionWatermark(ps, started, pc.EndOfInput)
		pc.skip = ps.eff
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
