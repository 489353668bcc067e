// The end of a batch: its outputs written (retried alone when they fail), then, once all of
// them succeeded, the commit of every partition's position.

package stream

import (
	"context"
	"errors"
	"sync"
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
			wg.Go(func() { errs[i] = o.flush(ctx, b.info) })
		}
	}
	if p.cfg.outputs > 1 {
		p.flushConcurrently(ctx, b, errs, &wg)
	} else {
		for i, o := range p.outputs {
			if _, ok := o.(shuffleNode); !ok && !b.done[i] {
				errs[i] = o.flush(ctx, b.info)
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
			errs[i] = o.flush(ctx, b.info)
		})
	}
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
		starts, fired := p.replayStarts(lin, part, ps, held)
		if ps.skip != nil && maxSkip(ps.skip) <= ps.next {
			ps.skip, ps.eff = nil, nil // every operator is past its replay start
		}
		off := ps.next
		for _, s := range starts {
			off = min(off, s)
		}
		var marks string
		if sh := p.shuffleOf(part); sh != nil {
			// A repartition's partition commits where its marks are known, with them.
			off, marks = sh.checkpoint(part, off)
			marks = withFired(marks, partFired(fired))
		}
		meta := encodeCheckpoint(off, lin.stateful, starts, fired, len(p.nodes), p.fingerprint())
		if marks != "" {
			meta += markSep + marks
		}
		if off > ps.committed || (off == ps.committed && meta != ps.meta) {
			pos = append(pos, Position{Partition: part, Offset: off, Meta: meta})
		}
	}
	if len(pos) == 0 {
		return nil
	}
	// Each source commits its own partitions, every source at once: their commits are
	// independent (each source its own consumer group member or transaction), so a batch
	// waits for the slowest one rather than for their sum. A failed commit leaves its
	// partitions' positions as they were, and a later batch commits again from them. So a
	// failure or a crash may leave any of the sources committed and not the others, in
	// either order, as one failed commit could before the commits ran at once.
	mine := make([][]Position, len(p.srcs))
	for _, x := range pos {
		si, _ := p.sourceOf(x.Partition)
		mine[si] = append(mine[si], x)
	}
	errs := make([]error, len(p.srcs))
	var wg sync.WaitGroup
	for si, sn := range p.srcs {
		if len(mine[si]) > 0 {
			wg.Go(func() { errs[si] = sn.commit(ctx, mine[si]) })
		}
	}
	wg.Wait()
	var done []Position
	for si, err := range errs {
		if err != nil {
			p.cfg.logger.Warn("stream: commit failed; will retry with the next batch", "source", si, "err", err)
			continue
		}
		done = append(done, mine[si]...)
	}
	for _, x := range done {
		ps := p.parts[x.Partition]
		ps.committed, ps.meta = x.Offset, x.Meta
	}
	if len(done) == 0 {
		return nil
	}
	return done
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
