// The consumer group handler and the claim loop: one goroutine per claimed partition decodes
// fetched records, dead-letters what cannot be used, and pushes the rest into the pipeline's
// input in offset order; a revoked partition is handed back to the pipeline before it goes.

package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
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
	commits, err := groupCommits(h.client, h.s.cfg.Group, sess.Claims())
	if err != nil && h.s.o.exchange {
		// A repartition's checkpoints hold its dedup state: without them the replay would
		// count records twice. Fail the session; Run joins again after a backoff.
		return fmt.Errorf("kafka: fetching the repartition's committed checkpoints: %w", redact(&h.s.cfg, err))
	}
	if err != nil {
		// Without the checkpoints the replay is still at-least-once, only less exact.
		h.s.log.Warn("kafka: fetching committed checkpoints failed", "err", redact(&h.s.cfg, err))
	}
	h.mu.Lock()
	h.registered = make(map[int32]bool)
	h.mu.Unlock()
	h.register(sess.Claims(), commits)
	return nil
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
			c, ok := commits[topicPart{topic, p}]
			// The stored metadata is the pipeline's checkpoint and, in exactly-once mode,
			// where committed output made from the partition's replay may start.
			meta, bound := splitBound(c.Meta)
			if eos != nil {
				h.s.mu.Lock()
				h.s.bases[id] = bound
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
// A repartition's partition waits until its checkpoint can be fetched; it reports false if
// the session ended first.
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
			h.register(claims, commits)
			return true
		}
		if !h.s.o.exchange {
			h.s.log.Warn("kafka: fetching committed checkpoints failed", "topic", topic, "partition", part, "err", redact(&h.s.cfg, err))
			h.register(claims, nil)
			return true
		}
		wait := backoff.Delay(250*time.Millisecond, 5*time.Second, attempt)
		h.s.log.Warn("kafka: fetching the repartition's committed checkpoint failed, retrying", "topic", topic, "partition", part, "err", redact(&h.s.cfg, err), "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-sess.Context().Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

func (h *handler[T]) Cleanup(sarama.ConsumerGroupSession) error { return nil }

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
	c := &claimLoop[T]{h: h, p: p, sess: sess}
	defer h.release(p)
	h.in.Assign(p.id)
	if p.end >= 0 && (p.marks.pushedNext >= p.end || s.isFinished(p.id)) {
		c.finished = true
		s.finish(p.id)
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
	if p.eos != nil && h.runCtx.Err() == nil && !ended {
		if n := p.eos.pendingCount(); n > 0 {
			// Output that no commit covered yet may come from this partition, which its next
			// owner replays: committing it later would duplicate it. A commit refused by the
			// rebalance's new generation leaves such output (see txn.failed). Once the pipeline
			// dropped the partition, all of its output is pending or committed, and its
			// acknowledged positions are marked: commit them together now, with the current
			// generation, before the partition is handed over. Otherwise (or if that fails),
			// restart from the committed checkpoints.
			var err error
			if dropped {
				err = s.commitTxn(h.runCtx, p.eos, nil)
			}
			if !dropped || err != nil {
				s.fail(errors.Join(fmt.Errorf("%w: partition %s/%d revoked while %d messages waited for a commit", ErrTransaction, p.topic, p.part, n), err))
			} else {
				s.log.Info("kafka: exactly-once: committed the output pending at a revocation", "topic", p.topic, "partition", p.part, "messages", n)
			}
		}
	}
	s.mu.Lock()
	if s.owned[p.id] == p {
		delete(s.owned, p.id)
	}
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

// claimLoop is the per-claim state owned by its goroutine.
type claimLoop[T any] struct {
	h        *handler[T]
	p        *partition
	sess     sarama.ConsumerGroupSession
	msg      Message
	queue    []stream.Record[T] // decoded, not yet in the input
	qarr     []stream.Record[T] // the array queue lies in, from its start (see flush)
	queued   int64              // bytes of queue and pending
	skips    []int64            // dead-lettered offsets among or after queue, ascending
	pending  []stream.DeadLetter
	retry    *time.Timer // set while a failed dead-letter write waits to be retried
	attempt  int         // failed attempts of the pending dead letters
	finished bool
	corrupt  bool // a repartition record could not be decoded: take nothing after it
}

// room reports whether the claim may take more fetched records.
func (c *claimLoop[T]) room() bool {
	return len(c.queue)+len(c.skips)+len(c.pending) < c.h.hold && c.queued < c.h.holdBytes
}

// receive decodes one fetched record into the queue, or, if it cannot be decoded or its event
// time is unusable (stream.Input.CheckEventTime), into the pending dead letters.
func (c *claimLoop[T]) receive(m *sarama.ConsumerMessage) {
	p, s := c.p, c.h.s
	if p.end >= 0 && m.Offset >= p.end || c.corrupt {
		return // past the backfill's end, or after a corrupt repartition record
	}
	if p.marks.pushedNext < 0 {
		// No committed offset: start counting from the first record.
		p.mu.Lock()
		p.marks.begin(m.Offset)
		p.mu.Unlock()
	}
	size := len(m.Key) + len(m.Value)
	s.records.Add(1)
	s.bytes.Add(int64(size))
	c.queued += int64(size)
	c.msg.fromSarama(m)
	if s.o.exchange {
		// A repartition topic holds only what an Exchange wrote: a record it cannot decode is
		// corruption or a codec that changed under a running topic. Dead-lettering it would
		// silently lose a record the exactly-once count includes, so the Source stops. A
		// packed message's records all take its offset (the pipeline keeps them in one
		// batch) and share its size.
		n0 := len(c.queue)
		q, err := s.codec.(multiDecoder[T]).decodeAppend(c.queue, &c.msg)
		if err != nil {
			c.corrupt = true
			s.fail(fmt.Errorf("%w: %s/%d offset %d: %w", ErrCorruptRepartition, m.Topic, m.Partition, m.Offset, err))
			return
		}
		if cap(q) != cap(c.queue) { // a new array
			c.qarr = q[:0]
		}
		for i := n0; i < len(q); i++ {
			q[i].Partition, q[i].Offset = p.id, m.Offset
		}
		q[n0].Size = size
		c.queue = q
		return
	}
	v, ts, err := s.codec.Decode(&c.msg)
	if err != nil {
		reason := stream.ReasonDecode
		var inv *InvalidError
		if errors.As(err, &inv) {
			reason = stream.ReasonInvalid
		}
		c.pending = append(c.pending, DeadLetterOf(&c.msg, reason, err))
		return
	}
	if ts.IsZero() {
		ts = m.Timestamp
	}
	if err := c.h.in.CheckEventTime(ts); err != nil {
		// A bad clock must never reach a watermark.
		c.pending = append(c.pending, DeadLetterOf(&c.msg, stream.ReasonEventTime, err))
		return
	}
	c.enqueue(stream.Record[T]{Value: v, Partition: p.id, Offset: m.Offset, EventTime: ts, Size: size})
}

func (c *claimLoop[T]) enqueue(r stream.Record[T]) {
	full := len(c.queue) == cap(c.queue)
	c.queue = append(c.queue, r)
	if full { // a new array
		c.qarr = c.queue[:0]
	}
}

// writeDeadLetters writes the pending dead letters. On success their offsets join skips; a
// failure that is not permanent is retried after a backoff (c.retry), while the records
// before them are still pushed. It returns false if the claim must end: the session ended,
// or the dead-letter output failed for good, which stops the Source.
func (c *claimLoop[T]) writeDeadLetters() bool {
	if len(c.pending) == 0 {
		return true
	}
	s := c.h.s
	ctx := c.sess.Context()
	err := c.h.dlq.Write(ctx, c.pending)
	if err == nil {
		for i := range c.pending {
			dl := &c.pending[i]
			c.skips = append(c.skips, dl.Offset)
			c.queued -= int64(len(dl.Key) + len(dl.Value))
			n := s.deadLettered.Add(1)
			s.countDeadLetter(dl.Reason)
			if ok, left := s.dlqLog.Allow(time.Now()); ok {
				s.log.Warn("kafka: record dead-lettered", "topic", dl.Topic, "partition", dl.Partition, "offset", dl.Offset,
					"reason", dl.Reason, "err", dl.Err, "not_logged_since_last", left, "dead_letters", n)
			}
		}
		clear(c.pending)
		c.pending = c.pending[:0]
		c.attempt = 0
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	first := &c.pending[0]
	if stream.IsPermanent(err) {
		s.fail(fmt.Errorf("kafka: dead-letter output cannot store the record at %s/%d offset %d (%s): %w",
			first.Topic, first.Partition, first.Offset, first.Reason, err))
		return false
	}
	c.attempt++
	wait := backoff.Delay(100*time.Millisecond, 5*time.Second, c.attempt)
	s.log.Error("kafka: dead-letter write failed, retrying", "topic", first.Topic, "partition", first.Partition, "offset", first.Offset,
		"dead_letters", len(c.pending), "attempt", c.attempt, "backoff", wait, "err", redact(&s.cfg, err))
	c.retry = time.NewTimer(wait)
	return true
}

func (c *claimLoop[T]) stopRetry() {
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
}

// flush moves queued records into the input and settles dead-lettered offsets, in offset
// order, up to the first pending (not yet written) dead letter. It returns false if the
// input is full.
func (c *claimLoop[T]) flush() bool {
	stop := int64(math.MaxInt64)
	if len(c.pending) > 0 {
		stop = c.pending[0].Offset
	}
	for len(c.queue) > 0 && c.queue[0].Offset < stop || len(c.skips) > 0 && c.skips[0] < stop {
		bound := stop
		if len(c.skips) > 0 {
			bound = min(bound, c.skips[0])
		}
		lim, _ := slices.BinarySearchFunc(c.queue, bound, func(r stream.Record[T], off int64) int {
			return cmp.Compare(r.Offset, off)
		})
		if lim > 0 {
			// Push in small chunks and let the other partitions' goroutines in between, so
			// that one partition cannot fill the input alone and stall the watermark.
			lim = min(lim, pushChunk)
			// A packed repartition message's records share an offset: never split them
			// between two pushes (TryPushBatch keeps them in one batch).
			for lim < len(c.queue) && c.queue[lim].Offset == c.queue[lim-1].Offset {
				lim++
			}
			// Exactly once: where committed output ends before the push. Loaded after,
			// it could already include output made from these records.
			var snap *outputs
			if c.p.eos != nil {
				snap = c.p.eos.snap.Load()
			}
			n := c.h.in.TryPushBatch(c.queue[:lim])
			if testHookPushed != nil {
				testHookPushed()
			}
			if n > 0 {
				c.pushed(c.queue[0].Offset, c.queue[n-1].Offset+1, snap)
				for i := range n {
					c.queued -= int64(c.queue[i].Size)
				}
				clear(c.queue[:n])
				c.queue = c.queue[n:]
				if len(c.queue) == 0 {
					// Start again at the front of the array: fetched records arrive all the
					// time, and a new array per refill was the claim's largest allocation.
					c.queue = c.qarr[:0]
				}
			}
			if n < lim {
				return false
			}
		}
		if len(c.skips) > 0 && c.skips[0] < stop && (len(c.queue) == 0 || c.queue[0].Offset > c.skips[0]) {
			c.skipped(c.skips[0])
			c.skips = c.skips[1:]
		}
		if lim >= pushChunk {
			runtime.Gosched()
		}
	}
	return true
}

// testHookPushed, when set by a test, runs right after records were pushed: where the
// pipeline may already have processed them and committed their output.
var testHookPushed func()

// pushChunk is the most records a partition moves into the input at once.
const pushChunk = 128

// pushed notes that the records from..next-1 were pushed when committed output ended at
// snap (nil without exactly once).
func (c *claimLoop[T]) pushed(from, next int64, snap *outputs) {
	p := c.p
	p.read.Store(next)
	p.mu.Lock()
	if snap != nil {
		p.notePush(snap, from)
	}
	p.marks.pushed(next)
	p.mu.Unlock()
	c.checkEnd(next)
}

// skipped settles a dead-lettered offset: it joins the run after the last pushed record, and
// if the pipeline already committed everything pushed, the run is committed right away.
func (c *claimLoop[T]) skipped(off int64) {
	p := c.p
	p.read.Store(off + 1)
	p.mu.Lock()
	direct := p.apply(p.marks.skipped(off))
	p.mu.Unlock()
	if direct {
		p.sess.Commit()
	}
	c.checkEnd(off + 1)
}

func (c *claimLoop[T]) checkEnd(next int64) {
	if p := c.p; p.end >= 0 && !c.finished && next >= p.end {
		c.finished = true
		c.h.s.finish(p.id)
	}
}
