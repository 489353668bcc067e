// The Source's side of exactly once: the transaction a Producer binds to, the commit of a
// batch's offsets in it, and the read-back bound that each committed checkpoint carries.

package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/fleetstream/fleetstream/stream"
)

var _ Transactional = (*Source[int])(nil)

// transaction returns the Source's transaction, made on first use (WithExactlyOnce).
func (s *Source[T]) transaction() *txn {
	s.eosOnce.Do(func() {
		id := s.o.txnID
		if id == "" {
			id = defaultTransactionalID(&s.cfg)
		}
		s.eos.Store(newTxn(s.cfg, id, s.log, s.o.tune))
	})
	return s.eos.Load()
}

// TransactionalID returns the transactional id of the Source's exactly-once producer, or ""
// when no Producer is bound to the Source.
func (s *Source[T]) TransactionalID() string {
	if t := s.eos.Load(); t != nil {
		return t.id
	}
	return ""
}

// Duplicates returns how many messages the bound Producers did not write again because
// committed output already held them: what a replay emitted a second time.
func (s *Source[T]) Duplicates() int64 {
	if t := s.eos.Load(); t != nil {
		return t.dropped.Load()
	}
	return 0
}

// commitTxn commits the acknowledged positions, and those that dead-lettered runs moved,
// with the pending messages in one transaction. The marks move at once; what the last
// transaction committed moves only when it succeeds, so a failed commit is sent again with
// the next one. A position of a partition whose claim has not started yet (announced) cannot
// be marked before the claim's read-back bounds are known: the commit returns ErrNotClaimed
// for it once the transaction committed the rest, and the pipeline sends it again with the
// next batch (a checkpoint restamped with the parameters now, which it sends until it is
// committed, was lost otherwise).
func (s *Source[T]) commitTxn(ctx context.Context, t *txn, pos []stream.Position) error {
	var waiting []int32
	s.mu.Lock()
	for _, x := range pos {
		if p := s.owned[x.Partition]; p != nil {
			p.mark(x.Offset, endedMeta(p, x))
			if x.Ended && p.end >= 0 {
				p.ackEnd()
			}
		} else if s.announced[x.Partition] {
			waiting = append(waiting, x.Partition)
		}
	}
	s.mu.Unlock()
	var offs []txnOffset
	var parts []*partition
	err := t.commit(ctx, func(fence bool) []txnOffset {
		first := t.first.Load()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.owned {
			p.mu.Lock()
			if c := p.marks.committed; c >= 0 && (fence || c != p.txnOff || p.marks.meta != p.txnMeta) {
				b := readBound{out: p.boundFor(c, first), pushed: max(p.replayTo, p.marks.pushedNext)}
				offs = append(offs, txnOffset{sess: p.sess, topic: p.topic, part: p.part, off: c, meta: encodeBound(p.marks.meta, b)})
				parts = append(parts, p)
			}
			p.mu.Unlock()
		}
		return offs
	}, func() {
		// Under the transaction's lock: a commit waiting for it (release's, the pipeline's
		// next) sees these offsets as committed and does not send them again.
		for i, p := range parts {
			p.mu.Lock()
			p.txnOff, p.txnMeta = offs[i].off, p.marks.meta
			if offs[i].off != p.marks.committed {
				p.txnMeta = "" // marked further meanwhile: send it again
			}
			p.mu.Unlock()
		}
	})
	if err != nil {
		if ctx.Err() == nil && t.broken() {
			s.fail(err)
		}
		return fmt.Errorf("kafka: commit: %w", err)
	}
	if len(waiting) > 0 {
		return fmt.Errorf("%w: pipeline partitions %v", ErrNotClaimed, waiting)
	}
	return nil
}

// ErrNotClaimed is returned by an exactly-once commit for positions of partitions whose
// claim had not started yet (a rebalance hands a partition to the pipeline a moment before
// its claim starts): the rest of the commit succeeded, and the pipeline sends those positions
// again with the next batch.
var ErrNotClaimed = errors.New("kafka: commit: a position of a partition whose claim has not started yet was left for the next batch")

// pushMark says that records from off on were pushed when committed output ended at out.
type pushMark struct {
	off int64
	out *outputs
}

// notePush records, for exactly once, where committed output ended when the records from
// off on were pushed: nothing made from them can lie before. snap must be loaded before the
// push: the pipeline may process the records and commit their output before this runs.
// p.mu is held.
func (p *partition) notePush(snap *outputs, off int64) {
	if len(p.hist) > 0 && p.hist[len(p.hist)-1].out == snap {
		return
	}
	p.hist = append(p.hist, pushMark{off, snap})
}

// boundFor returns where a read-back must start for the output made from the records from
// off on. Records before replayTo were pushed by an earlier owner too, which may have
// committed output made from them: for them it is the bound of the claim's checkpoint, which
// precedes all of that output. For the others, the end of committed output when the first of
// them was pushed; for records pushed before any mark, the bound of the claim's checkpoint,
// or else where output ended when the producer connected (nothing made from this partition
// was committed before). p.mu is held.
func (p *partition) boundFor(off int64, connected *outputs) outputs {
	if p.base != nil && off < p.replayTo {
		return p.base
	}
	i := len(p.hist) - 1
	for i >= 0 && p.hist[i].off > off {
		i--
	}
	if i >= 0 {
		p.hist = p.hist[i:]
		return *p.hist[0].out
	}
	if p.base != nil {
		return p.base
	}
	if connected != nil {
		return *connected
	}
	return nil
}
