// The consumer group handler: it registers claimed partitions with their checkpoints, runs
// one claim loop per claimed partition (claimloop.go: decode, dead-letter, push in offset
// order), and hands a revoked partition back to the pipeline before it goes.

package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/internal/backoff"
	"github.com/fleetstream/fleetstream/stream"
)

// handler runs the claims of consumer group sessions.
type handler[T any] struct {
	s          *Source[T]
	client     sarama.Client
	in         *stream.Input[T]
	runCtx     context.Context
	dlq        stream.DeadLetterSink
	revokeWait time.Duration
	hold       int   // most records a claim holds fetched but not pushed
	holdBytes  int64 // most bytes of such records

	// registered are the partitions whose committed checkpoints were handed to the
	// pipeline. With the cooperative protocol Setup runs only on a member's first join:
	// partitions a later rebalance adds reach ConsumeClaim alone (see claimed).
	mu         sync.Mutex
	registered map[int32]bool
}

// Setup registers every claimed partition with the pipeline before any of them pushes a
// record, so that none can advance the watermark past another's backlog.
//
// Partitions with a committed offset resume with the pipeline checkpoint committed with it
// (stream.Input.Resume), so that every operator replays from its own start.
func (h *handler[T]) Setup(sess sarama.ConsumerGroupSession) error {
	h.s.reach.ok() // the group's coordinator answered: a session began
	h.s.member.Store(sess.MemberID())
	commits, err := groupCommits(h.client, h.s.cfg.Group, sess.Claims())
	if err != nil && (h.s.o.exchange || errors.Is(err, sarama.ErrUnstableOffsetCommit)) {
		// A repartition's checkpoints hold its dedup state: without them the replay would
		// count records twice. Nor does an exactly-once Source start while a transaction
		// that committed its offsets is completing. Fail the session; Run joins again after
		// a backoff.
		return fmt.Errorf("kafka: fetching the committed checkpoints: %w", redact(&h.s.cfg, err))
	}
	if err != nil {
		// Without the checkpoints the replay is still at-least-once, only less exact.
		h.s.log.Warn("kafka: fetching committed checkpoints failed", "err", redact(&h.s.cfg, err))
	}
	if err := h.checkCommitted(sess, commits); err != nil {
		h.s.fail(err)
		return err
	}
	h.mu.Lock()
	h.registered = make(map[int32]bool)
	h.mu.Unlock()
	h.register(sess.Claims(), commits)
	// One line a session at Info, so that a healthy run says what it reads (partitions a
	// cooperative rebalance adds later are logged at Debug, in own).
	h.s.log.Info("kafka: joined the group", "member", sess.MemberID(), "generation", sess.GenerationID(), "partitions", sess.Claims())
	return nil
}

// checkCommitted checks that the committed offsets of the claims are still in their
// partitions (Source.checkCommitted), and drops the checkpoints that no longer apply.
// Every partition's loss is named in the one error. The partitions' offsets are asked for
// once per topic and leader; a partition whose offsets cannot be read is not checked (sarama
// resets an offset out of range by itself), and the log says so.
func (h *handler[T]) checkCommitted(sess sarama.ConsumerGroupSession, commits map[topicPart]stream.Position) error {
	committed := make(map[string][]int32)
	for tp, pos := range commits {
		if pos.Offset >= 0 {
			committed[tp.topic] = append(committed[tp.topic], tp.part)
		}
	}
	type bounds struct{ oldest, newest int64 }
	ranges := make(map[topicPart]bounds)
	for topic, parts := range committed {
		newest, failedNew := listOffsets(h.client, topic, parts, sarama.OffsetNewest)
		oldest, failedOld := listOffsets(h.client, topic, parts, sarama.OffsetOldest)
		for _, p := range parts {
			if err := cmp.Or(failedNew[p], failedOld[p]); err != nil {
				h.s.log.Warn("kafka: cannot check that the committed offset is still in the partition", "topic", topic, "partition", p, "err", redact(&h.s.cfg, err))
				continue
			}
			ranges[topicPart{topic, p}] = bounds{oldest[p], newest[p]}
		}
	}
	var errs []error
	for _, tp := range slices.SortedFunc(maps.Keys(commits), func(a, b topicPart) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.part, b.part))
	}) {
		r, ok := ranges[tp]
		if !ok {
			continue
		}
		dropped, err := h.s.checkCommitted(sess, tp.topic, tp.part, commits[tp].Offset, r.oldest, r.newest)
		if err != nil {
			errs = append(errs, err)
		}
		if dropped {
			delete(commits, tp)
		}
	}
	return errors.Join(errs...)
}

// register hands the claimed partitions to the pipeline: those with a committed checkpoint
// resume from it (stream.Input.Resume), the others are assigned.
func (h *handler[T]) register(claims map[string][]int32, commits map[topicPart]stream.Position) {
	var ids []int32
	var resume []stream.Position
	eos := h.s.eos.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	for topic, parts := range claims {
		for _, p := range parts {
			id := h.s.PartitionID(topic, p)
			if id < 0 {
				continue
			}
			h.registered[id] = true
			h.s.mu.Lock()
			h.s.announced[id] = true
			delete(h.s.early, id)
			h.s.mu.Unlock()
			c, ok := commits[topicPart{topic, p}]
			// The stored metadata is the pipeline's checkpoint and, in exactly-once mode,
			// where committed output made from the partition's replay may start.
			ended, stored := cutEnded(c.Meta)
			if ended >= 0 {
				h.s.mu.Lock()
				if end, ok := h.s.ends[id]; ok && h.s.o.bounded && ended >= end {
					h.s.finished[id] = true // read to its end and written: a claim reads nothing
				}
				h.s.mu.Unlock()
			}
			meta, bound := splitBound(stored)
			if eos != nil {
				r := resumed{readBound: bound, off: -1}
				if ok && c.Offset >= 0 {
					r.off, r.meta = c.Offset, meta
					if ended >= 0 {
						r.meta = withEnded(meta, ended)
					}
				}
				h.s.mu.Lock()
				h.s.bases[id] = r
				h.s.mu.Unlock()
				if bound.out != nil {
					eos.resume(bound.out)
				}
			}
			// A committed offset without a checkpoint (no stateful operator reads the
			// partition before a repartition) still tells the pipeline where the partition
			// resumes: a repartition's marks from it are numbered from there, after the ones
			// an earlier run sent (an Assign would number them from nothing, and the
			// downstream would take the partition's end mark for a replayed one).
			if ok && c.Offset >= 0 {
				resume = append(resume, stream.Position{Partition: id, Offset: c.Offset, Meta: meta})
				continue
			}
			ids = append(ids, id)
		}
	}
	h.in.Resume(resume...)
	h.in.Assign(ids...)
}

// claimed registers a partition that a cooperative rebalance added after Setup, with its
// committed checkpoint, as Setup does for the first assignment: without it the pipeline's
// operators would start cold at the committed offset, and a window open there would be
// emitted again from part of its records (a repartition would also lose its dedup marks).
// A repartition's partition waits until its checkpoint can be fetched, and any partition
// until a transaction that committed its offset has completed; it reports false if the
// session ended first.
func (h *handler[T]) claimed(sess sarama.ConsumerGroupSession, topic string, part int32) bool {
	id := h.s.PartitionID(topic, part)
	h.mu.Lock()
	done := id < 0 || h.registered[id]
	h.mu.Unlock()
	if done {
		return true
	}
	claims := map[string][]int32{topic: {part}}
	for attempt := 1; ; attempt++ {
		commits, err := groupCommits(h.client, h.s.cfg.Group, claims)
		if err == nil {
			if err := h.checkCommitted(sess, commits); err != nil {
				h.s.fail(err)
				return false
			}
			h.register(claims, commits)
			return true
		}
		if !h.s.o.exchange && !errors.Is(err, sarama.ErrUnstableOffsetCommit) {
			h.s.log.Warn("kafka: fetching committed checkpoints failed", "topic", topic, "partition", part, "err", redact(&h.s.cfg, err))
			h.register(claims, nil)
			return true
		}
		wait := backoff.Delay(250*time.Millisecond, 5*time.Second, attempt)
		h.s.log.Warn("kafka: fetching the committed checkpoint failed, retrying", "topic", topic, "partition", part, "err", redact(&h.s.cfg, err), "backoff", wait)
		if !backoff.Sleep(sess.Context().Done(), wait) {
			return false
		}
	}
}

func (h *handler[T]) Cleanup(sess sarama.ConsumerGroupSession) error {
	// A fenced static member must not rejoin (it would fence the other process in turn):
	// stop before Run's loop gets to that, whether or not the group's error channel said so.
	if cause := context.Cause(sess.Context()); errors.Is(cause, sarama.ErrFencedInstancedId) {
		h.s.fail(h.s.fenced(cause))
	}
	return nil
}

// ConsumeClaim feeds one partition into the input until the claim is revoked or the session
// ends, then hands the partition back (see release).
func (h *handler[T]) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	if !h.claimed(sess, claim.Topic(), claim.Partition()) {
		return nil
	}
	p := s.own(sess, claim)
	if p == nil {
		return nil
	}
	c := &claimLoop[T]{h: h, p: p, sess: sess, codec: s.codec}
	if pc, ok := s.codec.(PartitionCodec[T]); ok {
		c.codec = pc.ForPartition(claim.Topic(), claim.Partition())
	}
	defer h.release(p)
	h.in.Assign(p.id)
	if p.end >= 0 && (p.marks.pushedNext >= p.end || s.isFinished(p.id)) {
		c.finished = true
		s.finish(p.id)
		h.in.End(p.id)
	}
	pauser, _ := claim.(interface {
		Pause()
		Resume()
	})
	paused := false
	msgs := claim.Messages()
	sessDone := sess.Context().Done()
	defer c.stopRetry()
	for {
		space := h.in.Space()
		blocked := !c.flush()
		if wantPause := blocked || c.finished; wantPause != paused && pauser != nil {
			if wantPause {
				pauser.Pause()
			} else {
				pauser.Resume()
			}
			paused = wantPause
		}
		var recv <-chan *sarama.ConsumerMessage
		if c.room() {
			recv = msgs
		}
		var wait <-chan struct{}
		if blocked {
			wait = space
		}
		var retry <-chan time.Time
		if c.retry != nil {
			retry = c.retry.C
		}
		select {
		case m, ok := <-recv:
			if !ok {
				return nil
			}
			c.receive(m)
			// Take what is already fetched without going round the loop for each record.
			for more := true; more && c.room(); {
				select {
				case m, ok := <-msgs:
					if !ok {
						return nil
					}
					c.receive(m)
				default:
					more = false
				}
			}
			if c.retry == nil && !c.writeDeadLetters() {
				return nil
			}
		case <-retry:
			c.retry = nil
			if !c.writeDeadLetters() {
				return nil
			}
		case <-wait:
		case <-sessDone:
			return nil
		}
	}
}

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
	s.log.Debug("kafka: partition assigned", "topic", p.topic, "partition", p.part, "offset", start)
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
	if h.runCtx.Err() == nil && !ended {
		done := h.in.Revoke(p.id)
		t := time.NewTimer(h.revokeWait)
		select {
		case <-done:
			dropped = true
		case <-t.C:
			s.log.Warn("kafka: pipeline did not release a revoked partition in time; its last batch will be replayed by the next owner",
				"topic", p.topic, "partition", p.part)
		case <-h.runCtx.Done():
		}
		t.Stop()
	}
	if p.eos != nil && h.runCtx.Err() == nil && !ended && !dropped {
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
	if p.eos != nil && h.runCtx.Err() == nil && !ended && dropped {
		if n := p.eos.pendingCount(); n > 0 {
			// Output that no commit covered yet may come from this partition, which its next
			// owner replays: committing it later would duplicate it. A commit refused by the
			// rebalance's new generation leaves such output (see txn.failed). Once the pipeline
			// dropped the partition, all of its output is pending or committed, and its
			// acknowledged positions are marked: commit them together now, with the current
			// generation, before the partition is handed over. Otherwise (or if that fails),
			// restart from the committed checkpoints.
			if err := s.commitTxn(h.runCtx, p.eos, nil); err != nil {
				s.fail(errors.Join(fmt.Errorf("%w: partition %s/%d revoked while %d messages waited for a commit", ErrTransaction, p.topic, p.part, n), err))
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

// holdBytes is the most bytes of fetched records a claim holds before it pushes them.
func holdBytes(sc *sarama.Config) int64 {
	return max(2*int64(sc.Consumer.Fetch.Default), 4<<20)
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

	mu sync.Mutex
	// marks is written under mu, by the claim's goroutine and by mark (Source.Commit). Only
	// the claim's goroutine writes marks.pushedNext, so it reads that field without mu.
	marks marks

	// Exactly once (eos non-nil): offsets are committed only in the Source's transaction.
	eos      *txn
	txnOff   int64      // the offset the last transaction committed (or the claim's start)
	txnMeta  string     // the checkpoint it committed
	base     outputs    // the read-back bound of the claim's checkpoint
	replayTo int64      // and its pushed end: records before it may have committed output
	hist     []pushMark // where committed output ended when records were pushed
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
	return true
}
