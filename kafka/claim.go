// The consumer group handler: it registers claimed partitions with their checkpoints, runs
// one claim loop per claimed partition (claimloop.go: decode, dead-letter, push in offset
// order), and hands a revoked partition back to the pipeline before it goes (partition.go).

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
	if isNotAuthorized(err) {
		// The ACLs' refusal does not pass with retries: stop, saying what to grant, as
		// claimed does.
		err = fmt.Errorf("kafka: fetching the committed checkpoints: %w", h.s.cfg.notAuthorized(err,
			access{topics: refusedTopics(err, sess.Claims()), group: h.s.cfg.Group}))
		h.s.fail(err)
		return err
	}
	if err != nil {
		// Without its checkpoint every operator of a partition would replay from the
		// committed offset, which the oldest open state holds back, instead of from its own
		// start: one whose window had closed after that offset would emit it again from part
		// of its records, over the whole one. A repartition's checkpoints also hold its dedup
		// state, and an exactly-once Source must not start while a transaction that
		// committed its offsets completes. Fail the session; Run joins again after a backoff.
		return fmt.Errorf("kafka: fetching the committed checkpoints: %w", redact(&h.s.cfg, err))
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
// resets an offset out of range by itself), and the log says so, unless the ACLs refused
// them: the error then names the topic (once) and what to grant, since the claim could not
// read the partition either.
func (h *handler[T]) checkCommitted(sess sarama.ConsumerGroupSession, commits map[topicPart]stream.Position) error {
	committed := make(map[string][]int32)
	for tp, pos := range commits {
		if pos.Offset >= 0 {
			committed[tp.topic] = append(committed[tp.topic], tp.part)
		}
	}
	type bounds struct{ oldest, newest int64 }
	ranges := make(map[topicPart]bounds)
	var errs []error
	for _, topic := range slices.Sorted(maps.Keys(committed)) {
		parts := committed[topic]
		newest, failedNew := listOffsets(h.client, topic, parts, sarama.OffsetNewest)
		oldest, failedOld := listOffsets(h.client, topic, parts, sarama.OffsetOldest)
		refused := false
		for _, p := range parts {
			if err := cmp.Or(failedNew[p], failedOld[p]); err != nil {
				if isNotAuthorized(err) {
					if !refused {
						errs = append(errs, fmt.Errorf("kafka: checking the committed offsets of topic %q: %w", topic,
							h.s.cfg.notAuthorized(err, access{topics: []string{topic}})))
					}
					refused = true
					continue
				}
				h.s.log.Warn("kafka: cannot check that the committed offset is still in the partition", "topic", topic, "partition", p, "err", redact(&h.s.cfg, err))
				continue
			}
			ranges[topicPart{topic, p}] = bounds{oldest[p], newest[p]}
		}
	}
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
			h.s.mu.Lock()
			if h.s.starts == nil {
				h.s.starts = make(map[int32]startNote) // a Source made without NewSource (tests)
			}
			h.s.starts[id] = noteStart(c, ok)
			h.s.mu.Unlock()
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
// The partition waits until its checkpoint can be fetched (which also waits for a
// transaction that committed its offset to complete); it reports false if the session ended
// first. A fetch that the ACLs refuse stops the Source (ErrNotAuthorized).
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
		if isNotAuthorized(err) {
			// The ACLs' refusal does not pass with retries: stop, saying what to grant.
			h.s.fail(fmt.Errorf("kafka: fetching the committed checkpoint of %s/%d: %w", topic, part,
				h.s.cfg.notAuthorized(err, access{topics: []string{topic}, group: h.s.cfg.Group})))
			return false
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
	// Every claim of the session has ended. A partition handed to the pipeline (register)
	// whose claim never started (its claim could not be made, or the session ended first) is
	// not this member's any more: the pipeline drops it, and its positions are forgotten, as
	// release does for a claimed one. Otherwise the pipeline kept it, and under exactly once
	// its restamped position came back with ErrNotClaimed at every batch (helper-72's
	// review). The next session hands it over again if the group gives it back.
	s := h.s
	s.mu.Lock()
	never := slices.Sorted(maps.Keys(s.announced))
	clear(s.announced)
	for _, id := range never {
		delete(s.early, id)
	}
	s.mu.Unlock()
	if len(never) > 0 && h.runCtx.Err() == nil {
		h.in.Revoke(never...)
		s.log.Debug("kafka: partitions handed to the pipeline whose claims never started, dropped", "partitions", never)
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
	c := &claimLoop[T]{h: h, p: p, sess: sess, codec: s.codec, toldEnd: -1}
	if pc, ok := s.codec.(PartitionCodec[T]); ok {
		c.codec = pc.ForPartition(claim.Topic(), claim.Partition())
	}
	c.into, _ = c.codec.(DecoderInto[T])
	defer h.release(p)
	h.in.Assign(p.id)
	// After the partition's Resume (register) and this Assign: dead letters wait for the
	// pipeline to accept them (claimLoop.mayWrite).
	c.accepted = h.in.Accepted()
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
	defer c.stopProbe()
	for {
		space := h.in.Space()
		blocked := !c.flush()
		idle := !blocked && len(c.queue) == 0 && len(c.pending) == 0 && len(c.skips) == 0
		if idle {
			c.noteReadToEnd()
		}
		if idle && c.probe == nil && c.gapTarget() > c.p.read.Load() {
			c.probe, c.probeFrom = time.NewTimer(probeEvery), c.p.read.Load()
		}
		var probe <-chan time.Time
		if c.probe != nil {
			probe = c.probe.C
		}
		// Fetching pauses only when the claim takes no more records (its hold is full, or
		// the partition is read to its bounded end), not as soon as the input is full: when
		// every claim paused at once, as they did while a batch ran, sarama's broker consumer
		// slept 100 ms at a time (it has nothing to fetch) and the input refilled up to that
		// late. The hold (see Source.Run) carries a claim through a batch instead.
		// A paused claim's high-water mark stops moving: Run lists it meanwhile (ends.go).
		if wantPause := !c.room() || c.finished; wantPause != paused {
			if pauser != nil {
				if wantPause {
					pauser.Pause()
				} else {
					pauser.Resume()
				}
			}
			paused = wantPause
			c.p.setPaused(wantPause && !c.finished)
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
		var accept <-chan struct{}
		if !c.open && len(c.pending) > 0 {
			accept = c.accepted
		}
		select {
		case m, ok := <-recv:
			if !ok || !c.take(m, msgs) {
				return nil
			}
			if c.retry == nil && !c.writeDeadLetters() {
				return nil
			}
		case <-retry:
			c.retry = nil
			if !c.writeDeadLetters() {
				return nil
			}
		case <-accept:
			if c.retry == nil && !c.writeDeadLetters() {
				return nil
			}
		case <-probe:
			c.probe = nil
			// Only a claim that read nothing for the whole wait asks: one that is reading
			// (a drain, whose claims are idle for a moment between fetches) would make the
			// broker send, and itself decode, a fetch's worth of records for nothing.
			if c.p.read.Load() == c.probeFrom && len(c.queue) == 0 && len(c.pending) == 0 && len(c.skips) == 0 {
				c.skipUndelivered()
			}
		case <-wait:
		case <-sessDone:
			return nil
		}
	}
}

// holdBytes is the most bytes of fetched records a claim holds before it pushes them.
func holdBytes(sc *sarama.Config) int64 {
	return max(2*int64(sc.Consumer.Fetch.Default), 4<<20)
}
