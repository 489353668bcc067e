// A claimed partition: its state, how the Source takes it on (own) and hands it back to the
// pipeline before it goes (release), and how its commit marks reach the session.

package kafka

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// resumed is what an exactly-once claim starts from: the committed offset (-1: none) and
// the checkpoint committed with it, as the Source marks it (with the ended marker, without
// the read-back bound), and that bound.
type resumed struct {
	readBound
	off  int64
	meta string
}

// own registers a claimed partition.
func (s *Source[T]) own(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) *partition {
	id := s.PartitionID(claim.Topic(), claim.Partition())
	if id < 0 {
		s.log.Error("kafka: claim of an unknown topic-partition", "topic", claim.Topic(), "partition", claim.Partition())
		return nil
	}
	start := claim.InitialOffset()
	if start < 0 {
		start = -1 // resolved from the first record
	}
	p := &partition{
		topic: claim.Topic(), part: claim.Partition(), id: id,
		sess: sess, claim: claim, end: -1,
		marks: newMarks(start),
		eos:   s.eos.Load(), txnOff: start,
		endAcked: make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.replayTo = -1
	if b, ok := s.bases[id]; ok {
		p.base, p.replayTo = b.out, b.pushed
		if b.off >= 0 && b.off == start {
			// The checkpoint committed with the claim's start: a transaction that commits
			// the partition unmoved (the generation fence, see txn.commit) sends it again.
			p.marks.meta, p.txnMeta = b.meta, b.meta
		}
	}
	if s.o.bounded {
		end, ok := s.ends[id]
		if !ok {
			end = 0 // a partition created after the start is not part of the backfill
		}
		p.end = end
	}
	s.noteRead()
	p.read.Store(start)
	s.owned[id] = p
	if x, ok := s.early[id]; ok && p.eos == nil {
		// Committed by the pipeline before this claim started (see keepEarly).
		if p.mark(x.Offset, endedMeta(p, x)) {
			defer s.commitSession(sess)
		}
	}
	delete(s.early, id)
	delete(s.announced, id)
	note, noted := s.starts[id]
	delete(s.starts, id)
	s.logStart(p, claim.InitialOffset(), note, noted)
	return p
}

// release hands a partition back after its claim ended: it tells the pipeline (which drops
// the partition's buffered records and state once the batch in flight was acknowledged and
// committed), waits for that within the rebalance timeout, commits, and forgets the partition.
func (h *handler[T]) release(p *partition) {
	s := h.s
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	dropped := false // the pipeline dropped the partition: nothing more comes from its records
	if h.runCtx.Err() == nil && (!ended || p.eos != nil) {
		done := h.in.Revoke(p.id)
		// Exactly once, once the bounded input ended: the pipeline may have taken its last
		// batch already, and then applies no revocation, but it acknowledges the partition's
		// end (stream.Position.Ended) once the results of all its records are written: from
		// then on, nothing more comes from them either. Before, a revocation after the input
		// ended was not waited for, and the output of the partition's records, left pending
		// by a commit that the rebalance's new generation refused, was committed by a later
		// transaction with the offsets of the partitions kept, while the partition's next
		// owner replayed them (cooperative rebalancing revokes after the new generation
		// formed): written twice (TestSourceBoundedTwoInstancesHeldCommits: 2 runs in 128
		// under -race). WithEndWhenCaughtUp acknowledges no partition's end: there the wait
		// ends when the pipeline stops the Source after its last commit (runCtx).
		// The end's acknowledgement counts whether or not the input had ended when this
		// began: it may end meanwhile, and then the revocation is not applied either.
		var endAcked <-chan struct{}
		if p.eos != nil && p.end >= 0 {
			endAcked = p.endAcked
		}
		if ended {
			p.mu.Lock()
			if !p.pushedAny {
				endAcked = alreadyClosed // this claim pushed nothing: nothing comes from it
			}
			p.mu.Unlock()
		}
		t := time.NewTimer(h.revokeWait)
		select {
		case <-done:
			dropped = true
		case <-endAcked:
			dropped = true
		case <-t.C:
			s.log.Warn("kafka: pipeline did not release a revoked partition in time; its last batch will be replayed by the next owner",
				"topic", p.topic, "partition", p.part)
		case <-h.runCtx.Done():
		}
		t.Stop()
	}
	if p.eos != nil && h.runCtx.Err() == nil && !dropped {
		// The pipeline still holds the partition: its batch in flight may hold the
		// partition's records, or close its windows, and the output made from them would
		// be committed by a later transaction, with the offsets of the partitions still
		// owned, while the partition's next owner replays the same records from its
		// checkpoint: written twice. So no later transaction may commit: the Source stops,
		// and a restart replays exactly from the committed checkpoints. (Before, this went on
		// when no message was pending yet, and the held batch's output was committed.)
		err := fmt.Errorf("%w: partition %s/%d was revoked and the pipeline did not let it go within %v (4/5 of the "+
			"rebalance timeout, kafka.Config.Rebalance.Timeout): the output of the batch in flight, which may come from "+
			"its records, cannot be committed once its next owner replays them; a restart replays from the committed checkpoints",
			ErrTransaction, p.topic, p.part, h.revokeWait)
		p.eos.poison(err)
		s.fail(err)
	}
	if p.eos != nil && h.runCtx.Err() == nil && dropped {
		if n := p.eos.pendingCount(); n > 0 || ended {
			// Output that no commit covered yet may come from this partition, which its next
			// owner replays: committing it later would duplicate it. A commit refused by the
			// rebalance's new generation leaves such output (see txn.failed). Once the pipeline
			// dropped the partition, all of its output is pending or committed, and its
			// acknowledged positions are marked: commit them together now, with the current
			// generation, before the partition is handed over. Otherwise (or if that fails),
			// restart from the committed checkpoints.
			if err := s.commitTxn(h.runCtx, p.eos, nil); err != nil {
				// Poisoned, not only failed: a commit refused by a new generation keeps its
				// messages pending, and the pipeline's next commit (a bounded run tries its
				// last one again) would commit them without this partition's offsets
				// (helper-89's review).
				err = errors.Join(fmt.Errorf("%w: partition %s/%d revoked while %d messages waited for a commit", ErrTransaction, p.topic, p.part, n), err)
				p.eos.poison(err)
				s.fail(err)
			} else {
				s.log.Info("kafka: exactly-once: committed the output pending at a revocation", "topic", p.topic, "partition", p.part, "messages", n)
			}
		}
	}
	p.mu.Lock()
	committed, meta := p.marks.committed, p.marks.meta
	if p.eos != nil {
		committed, meta = p.txnOff, p.txnMeta
	}
	p.mu.Unlock()
	endedAt, _ := cutEnded(meta)
	s.mu.Lock()
	if p.end >= 0 && !s.ended && committed < p.end && endedAt < p.end {
		// Bounded, and the partition goes before its commit said it is done (the ended
		// marker, or an offset at its end): read to its end here perhaps, but the results of
		// its end not written, or not committed. It is done once its next owner says so.
		delete(s.finished, p.id)
	}
	if s.owned[p.id] == p {
		delete(s.owned, p.id)
	}
	delete(s.announced, p.id)
	delete(s.early, p.id)
	s.mu.Unlock()
	h.mu.Lock()
	delete(h.registered, p.id) // if it comes back, from the checkpoint its next owner commits
	h.mu.Unlock()
	if p.eos == nil {
		p.sess.Commit()
	}
	s.log.Debug("kafka: partition released", "topic", p.topic, "partition", p.part)
}

// partition is the state of one claimed partition.
type partition struct {
	topic string
	part  int32
	id    int32
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	end   int64 // bounded mode: stop before this offset; -1 unbounded

	// read is the offset after the last record pushed into the input or dead-lettered, for
	// the caught-up monitor (WithEndWhenCaughtUp).
	read atomic.Int64
	// paused is set while the claim does not fetch (its hold is full), and listedEnd is the
	// partition's high-water mark as listed meanwhile (ends.go); 0 until then.
	paused    atomic.Bool
	listedEnd atomic.Int64

	mu sync.Mutex
	// marks is written under mu, by the claim's goroutine and by mark (Source.Commit). Only
	// the claim's goroutine writes marks.pushedNext, so it reads that field without mu.
	marks marks
	// dirty is set, under mu, when the claim marked an offset or checkpoint in the session
	// that the commit's own connection has not committed yet (commit_own.go).
	dirty bool

	// Exactly once (eos non-nil): offsets are committed only in the Source's transaction.
	eos      *txn
	txnOff   int64      // the offset the last transaction committed (or the claim's start)
	txnMeta  string     // the checkpoint it committed
	base     outputs    // the read-back bound of the claim's checkpoint
	replayTo int64      // and its pushed end: records before it may have committed output
	hist     []pushMark // where committed output ended when records were pushed

	// endAcked is closed once the pipeline acknowledged the end of a bounded partition's
	// input (a position with Ended marked for commit): the results of all its records are
	// written, so nothing more is made from them (see release).
	endAcked chan struct{}
	endAck   bool
	// pushedAny: this claim pushed records into the input (hist does not say so: it notes
	// pushes only once the transactional producer connected).
	pushedAny bool
}

// alreadyClosed is a closed channel.
var alreadyClosed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// ackEnd closes endAcked, once.
func (p *partition) ackEnd() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.endAck {
		p.endAck = true
		close(p.endAcked)
	}
}

// mark records off (the pipeline's next offset) and the pipeline's checkpoint for commit
// (see marks.mark). It reports whether anything was marked.
func (p *partition) mark(off int64, meta string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.apply(p.marks.mark(off, meta))
}

// apply makes the session call op asks for, with p.mu held. It reports whether there was one.
func (p *partition) apply(op markOp) bool {
	if p.eos != nil {
		return false // committed with the next transaction (Source.commitTxn)
	}
	switch op {
	case markAdvance:
		p.sess.MarkOffset(p.topic, p.part, p.marks.committed, p.marks.meta)
	case markReset:
		p.sess.ResetOffset(p.topic, p.part, p.marks.committed, p.marks.meta)
	default:
		return false
	}
	p.dirty = true
	return true
}
