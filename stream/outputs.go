// The end of a batch: its outputs written (retried alone when they fail), then, once all of
// them succeeded, the commit of every partition's position.

package stream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fleetstream/fleetstream/internal/backoff"
)

// flushOutputs writes the batch to every output not done yet and returns their errors. A
// repartition's send runs alongside the other outputs: it waits for the broker's acks, the
// others for their sinks, and neither depends on the other (the batch is acknowledged only
// once all of them succeeded, as before). The other outputs run one at a time in their
// order, or up to WithConcurrentOutputs at once.
func (p *Pipeline) flushOutputs(ctx context.Context, b *pendingBatch) []error {
	errs := make([]error, len(p.outputs))
	var wg sync.WaitGroup
	for i, o := range p.outputs {
		if _, ok := o.(shuffleNode); ok && !b.done[i] {
			wg.Go(func() { errs[i] = p.flushOne(ctx, b, i, o) })
		}
	}
	if p.cfg.outputs > 1 {
		p.flushConcurrently(ctx, b, errs, &wg)
	} else {
		for i, o := range p.outputs {
			if _, ok := o.(shuffleNode); !ok && !b.done[i] {
				errs[i] = p.flushOne(ctx, b, i, o)
			}
		}
	}
	wg.Wait()
	failed := errs[:0]
	for i, err := range errs {
		if err != nil {
			failed = append(failed, err)
		} else {
			b.done[i] = true
		}
	}
	return failed
}

// flushConcurrently starts the outputs that are not repartitions, at most
// WithConcurrentOutputs at once, on wg. (Apart from flushOutputs, so that the one-at-a-time
// path does not allocate the goroutines' captured variables.)
func (p *Pipeline) flushConcurrently(ctx context.Context, b *pendingBatch, errs []error, wg *sync.WaitGroup) {
	slots := make(chan struct{}, p.cfg.outputs)
	for i, o := range p.outputs {
		if _, ok := o.(shuffleNode); ok || b.done[i] {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = p.flushOne(ctx, b, i, o)
		})
	}
}

// flushOne writes the batch to output i and adds the time it took to the batch's
// (BatchStats.Outputs). Each output's slots are its own: outputs running at once write
// different ones.
func (p *Pipeline) flushOne(ctx context.Context, b *pendingBatch, i int, o output) error {
	start := p.cfg.clock.Now()
	err := o.flush(ctx, b.info)
	b.outTime[i] += p.cfg.clock.Now().Sub(start)
	b.outCalls[i]++
	return err
}

// ack hands, for every partition of the batch, the next offset after its records, held back
// by the oldest offset that any operator's open state still needs, to the sources' Commit,
// and returns what it handed. The commit runs in the background (inflight): Run processes
// and writes the next batch meanwhile, and settles it before that batch's commit, before a
// revocation drops a partition's state, and before it returns (see settle). A batch's
// positions are computed here, from the operators' state after the batch and before the
// next one changes it, so the commit is what it would be if it ran at once.
func (p *Pipeline) ack(ctx context.Context, b *pendingBatch) []Position {
	p.settle()
	var pos []Position
	for _, part := range p.live {
		ps := p.parts[part]
		if ps.next < 0 {
			// A partition resumed with WithColdStartChanged that has read nothing: it commits
			// where it is, with the parameters now, or the next restart would stop again.
			if r := ps.restamp; r.Meta != "" && r.Offset == ps.committed && r.Meta != ps.meta {
				pos = append(pos, r)
			}
			continue
		}
		if ps.marked && ps.markEnd && p.shuffleOf(part) != nil {
			// A repartition's partition whose every upstream partition ended: the end
			// fired every window, but the records of a next run on the next records of the
			// topics (a bounded run again) revise the windows still open on the marks before
			// the end. So it commits where it could before this batch, and says that the end
			// marks read until now are this run's own (marks.staleEnd).
			if !ps.hasHeld {
				// Its first batch with records is the end's (its partitions were assigned
				// after every upstream partition ended, say): it could resume where it
				// started, with the state it started with.
				ps.heldOff, ps.heldMeta = p.startCheckpoint(part, ps)
				ps.hasHeld = true
			}
			off, meta := ps.heldOff, withStaleEnd(ps.heldMeta, ps.next)
			if off > ps.committed || (off == ps.committed && meta != ps.meta) {
				pos = append(pos, Position{Partition: part, Offset: off, Meta: meta})
			}
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
		starts, fired := p.replayStarts(lin, part, ps, held)
		if ps.skip != nil && maxSkip(ps.skip) <= ps.next {
			ps.skip, ps.eff = nil, nil // every operator is past its replay start
		}
		off := ps.next
		for _, s := range starts {
			off = min(off, s)
		}
		_, params := p.operatorParams()
		_, idents := p.operatorIdents()
		meta := encodeCheckpoint(off, lin.stateful, starts, fired, len(p.nodes), p.fingerprint(), params, idents)
		if sh := p.shuffleOf(part); sh != nil {
			// A repartition's partition commits where its marks are known (off itself),
			// with them; in the format earlier releases read while the checkpoint stays
			// within checkpointX1Max with it.
			var marks string
			_, marks = sh.checkpoint(part, off, checkpointX1Max-len(meta)-len(markSep)-fireRoom)
			if marks = withFired(marks, partFired(fired)); marks != "" {
				meta += markSep + marks
			}
		}
		if ps.marked {
			ps.heldOff, ps.heldMeta, ps.hasHeld = off, meta, true
		}
		if off < ps.committed {
			// A start behind the commit (a reader's start moved back, an Operator's Retained
			// went behind it): the records there are not replayed anyway. Only the end
			// (below) is sent with the position unmoved; nothing ever commits backwards.
			off, meta = ps.committed, ps.meta
		}
		if off > ps.committed || (off == ps.committed && meta != ps.meta) || ps.selfEnded && !ps.endAcked {
			pos = append(pos, Position{Partition: part, Offset: off, Meta: meta, Ended: ps.selfEnded})
		}
	}
	if len(pos) == 0 {
		p.commitErr = nil // what a failed commit held is committed since, or no longer ours
		return nil
	}
	// Each source commits its own partitions, every source at once: their commits are
	// independent (each source its own consumer group member or transaction), so a batch
	// waits for the slowest one rather than for their sum. A failed commit leaves its
	// partitions' positions as they were, and a later batch commits again from them. So a
	// failure or a crash may leave any of the sources committed and not the others, in
	// either order, as one failed commit could before the commits ran at once.
	c := &inflightCommit{
		mine:    make([][]Position, len(p.srcs)),
		errs:    make([]error, len(p.srcs)),
		done:    make(chan struct{}),
		started: p.cfg.clock.Now(),
	}
	for _, x := range pos {
		si, _ := p.sourceOf(x.Partition)
		c.mine[si] = append(c.mine[si], x)
	}
	cctx, release := ctx, func() {}
	if p.commitCtx != nil {
		cctx, release = p.commitCtx()
	}
	p.inflight = c
	go func() {
		defer close(c.done)
		defer release()
		var wg sync.WaitGroup
		for si, sn := range p.srcs {
			if len(c.mine[si]) > 0 {
				wg.Go(func() { c.errs[si] = sn.commit(cctx, c.mine[si]) })
			}
		}
		wg.Wait()
		c.took = p.cfg.clock.Now().Sub(c.started)
	}()
	return pos
}

// startCheckpoint returns the position a repartition's partition started this run at and the
// checkpoint as of there: the one it resumed from (restamped under WithColdStartChanged), or,
// for a partition that started without one, every operator's start at its first record, the
// operators' parameters and identities, and the marks as of that record (none yet, with the
// inputs' names). So the checks that a restart makes against a checkpoint (ErrOperatorChanged,
// ErrInputChanged) have what they need even when the run committed nothing else.
func (p *Pipeline) startCheckpoint(part int32, ps *partState) (int64, string) {
	if ps.committed >= 0 {
		if r := ps.restamp; r.Meta != "" && r.Offset == ps.committed {
			return r.Offset, r.Meta
		}
		return ps.committed, ps.meta
	}
	off := ps.base
	lin := p.lineage()
	starts := make([]int64, len(lin.stateful))
	for k := range starts {
		starts[k] = off
	}
	_, params := p.operatorParams()
	_, idents := p.operatorIdents()
	meta := encodeCheckpoint(off, lin.stateful, starts, nil, len(p.nodes), p.fingerprint(), params, idents)
	if sh := p.shuffleOf(part); sh != nil {
		if _, marks := sh.checkpoint(part, off, checkpointX1Max-len(meta)-len(markSep)-fireRoom); marks != "" {
			meta += markSep + marks
		}
	}
	return off, meta
}

// lastCommitAttempts is how many times a run whose input ended tries its last commit when
// it fails for a reason that may pass (an error not Permanent), unless the retry policy
// bounds attempts (RetryPolicy.MaxAttempts).
const lastCommitAttempts = 5

// retryLastCommit commits again, with the retry policy's backoff, while the last commit of a
// run whose input ended failed for a reason that may pass: no batch follows to send its
// positions again. A Kafka source's exactly-once commit that a rebalance's new generation
// refused goes through at the next try (two bounded instances ending together: each one's
// leaving moves the other's generation). The sources still run. It returns when a commit
// succeeded, the error is permanent, the attempts are spent, or ctx ended.
func (p *Pipeline) retryLastCommit(ctx context.Context) {
	p.settle()
	limit := lastCommitAttempts
	if p.cfg.retry.MaxAttempts > 0 {
		limit = p.cfg.retry.MaxAttempts
	}
	for attempt := 1; attempt < limit && p.commitErr != nil && !IsPermanent(p.commitErr); attempt++ {
		d := backoff.Delay(p.cfg.retry.Initial, p.cfg.retry.Max, attempt)
		p.cfg.logger.Warn("stream: the run's last commit failed; trying again", "attempt", attempt+1, "of", limit, "backoff", d, "err", p.commitErr)
		select {
		case <-ctx.Done():
			return
		case <-p.cfg.clock.After(d):
		}
		if len(p.ack(ctx, nil)) == 0 {
			return // nothing left to commit: what failed is committed since, or no longer ours
		}
		p.settle()
	}
}

// inflightCommit is a batch's commit running in the background (see ack).
type inflightCommit struct {
	mine    [][]Position // by source
	errs    []error      // by source, once done
	done    chan struct{}
	started time.Time
	took    time.Duration // once done
}

// settle waits for the commit in flight, if any, and notes its outcome: the committed
// positions of the sources whose commit succeeded, a warning for the others (a later batch
// commits their partitions again). It adds the commit's duration and the wait to the batch's
// commit figures.
func (p *Pipeline) settle() {
	c := p.inflight
	if c == nil {
		return
	}
	p.inflight = nil
	waitStart := p.cfg.clock.Now()
	if !p.awaitCommit(c) {
		return // cut off by the shutdown timeout: nothing it did is noted as committed
	}
	p.commitWait += p.cfg.clock.Now().Sub(waitStart)
	p.commitTook = c.took
	p.commitErr = nil
	for si, err := range c.errs {
		if err != nil {
			p.cfg.logger.Warn("stream: commit failed; will retry with the next batch", "source", si, "err", err)
			p.commitErr = errors.Join(p.commitErr, err)
			continue
		}
		for _, x := range c.mine[si] {
			if ps := p.parts[x.Partition]; ps != nil {
				ps.committed, ps.meta = x.Offset, x.Meta
				ps.endAcked = ps.endAcked || x.Ended
			}
		}
	}
}

// minCloseGrace is the least time the outputs' Close gets after a stop (see closeOutputs).
const minCloseGrace = time.Second

// closeOutputs closes every output that holds resources (Closer). After a run whose input
// ended, Close is not bounded (it waits for what is in flight, as its last batch did); once
// ctx ended (a stop, SIGTERM), it is bounded by the shutdown grace (at least minCloseGrace),
// counted from when the closes begin. Before, a stop always closed without a bound, and a
// Kafka producer or exchange whose records were still in flight in a broker outage held the
// stopped process for the producer's retries, over an hour (helper-90's review).
//
// Under WithShutdownTimeout, when what is left of it is less, the closes get that, and
// closeWithin does not wait for a Close that does not heed its context beyond it.
func (p *Pipeline) closeOutputs(ctx context.Context) error {
	closeCtx, cancel := context.WithoutCancel(ctx), func() {}
	limit, byTimeout := time.Duration(0), false
	if ctx.Err() != nil {
		limit, byTimeout = p.stopBound(max(p.cfg.shutdownGrace, minCloseGrace), 0)
		closeCtx, cancel = context.WithTimeout(closeCtx, limit)
	}
	defer cancel()
	if byTimeout {
		return p.closeWithin(closeCtx, limit)
	}
	return p.closeAll(closeCtx, nil)
}

// closeAll closes every output with ctx, sending each one's name to at (if not nil) as its
// Close begins.
func (p *Pipeline) closeAll(ctx context.Context, at chan<- string) error {
	var errs []error
	for _, o := range p.outputs {
		if at != nil {
			at <- o.outputName()
		}
		if err := o.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
