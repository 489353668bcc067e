// How a Source commits what the pipeline acknowledged outside a transaction: marked at
// once, committed through the group session in the background, and waited for at most
// commitWait, so that a member rejoining the group never holds the pipeline (see "Delivery and
// commits" in the package documentation). The exactly-once path is in source_txn.go.

package kafka

import (
	"context"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// Commit marks the acknowledged positions for commit and commits them through the consumer
// group session, waiting at most two seconds for the commit (see "Delivery and commits" in
// the package documentation). Positions of partitions this instance no longer owns are
// ignored: their new owner commits them. With a Producer bound to the Source
// (WithExactlyOnce), the positions and the batch's messages are committed in one
// transaction instead (see "Exactly once" in the package documentation).
func (s *Source[T]) Commit(ctx context.Context, pos []stream.Position) error {
	if t := s.eos.Load(); t != nil {
		return s.commitTxn(ctx, t, pos)
	}
	var sessions []sarama.ConsumerGroupSession
	s.mu.Lock()
	for _, x := range pos {
		p := s.owned[x.Partition]
		if p == nil {
			s.keepEarly(x)
			continue
		}
		if p.mark(x.Offset, endedMeta(p, x)) && !slices.Contains(sessions, p.sess) {
			sessions = append(sessions, p.sess)
		}
	}
	s.mu.Unlock()
	if len(sessions) == 0 {
		return nil
	}
	// Errors reach the group's error channel (logged); the offsets stay marked and the
	// next commit sends them again.
	//
	// A session's commit waits while its member rejoins the group: sarama holds the offset
	// manager's generation lock through JoinGroup and SyncGroup, and JoinGroup lasts until
	// every member has rejoined. Another member of this pipeline may be unable to rejoin
	// until the pipeline drops a revoked partition (release), which it does only at its
	// next batch, after this commit: waiting here without a bound would close that cycle
	// until release gave up (4/5 of the rebalance timeout). So the commit runs in the
	// background and is waited for at most commitWait; the offsets are marked, and the
	// commit (or release, or the next Commit) sends them once the member has rejoined.
	t := time.NewTimer(commitWait)
	defer t.Stop()
	for _, sess := range sessions {
		select {
		case <-s.commitSession(sess):
		case <-t.C:
			s.log.Debug("kafka: commit waits for the member to rejoin the group; it goes on in the background")
			return nil
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// keepEarly keeps the position of a partition that the pipeline has but whose claim has not
// started yet (announced), for own to mark; s.mu is held. The claim of a partition that
// Setup handed over starts a moment later, and the pipeline may commit it before: a
// checkpoint restamped with the parameters now (stream.WithColdStartChanged), which it
// sends only once, was lost that way (TestAcceptedChangeWithQuietRequests failed 3 runs in
// 10). Positions of partitions no longer owned are ignored: their new owner commits them.
// Not under exactly once, where a position marked before the claim's read-back bounds are
// known could store a wrong bound: there the commit leaves it out and returns ErrNotClaimed,
// and the pipeline sends it again with the next batch (commitTxn).
//
// A kept position may be stale: the pipeline's batch in flight may acknowledge the
// partition as it was before a session ended (its claim never started, or release gave up
// waiting) and reach here after the next session announced it again (helper-124's review).
// That neither moves a commit back nor crosses sessions: early is cleared wherever announced
// is (register, own, release, Cleanup), and own marks it on the new claim's marks, whose
// start is the offset the group committed when the claim began, so an older offset marks
// nothing (marks.mark). One at or past that start is still a position and checkpoint that
// this pipeline acknowledged, the output of every record before it written: a restart from
// it skips no record that was not done, and rebuilds its state from the checkpoint's own
// replay starts, as from any commit.
func (s *Source[T]) keepEarly(x stream.Position) {
	if s.announced[x.Partition] {
		s.early[x.Partition] = x
	}
}

// waitCommits waits until the background commits are done, at most d.
func (s *Source[T]) waitCommits(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.commits.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("kafka: a commit still runs as the Source stops; the next run replays from the offsets committed before it", "waited", d)
	}
}

// commitWait is how long Commit waits for a session's commit before it lets the pipeline go
// on (see Commit). A commit takes milliseconds unless its member is rejoining the group.
var commitWait = 2 * time.Second

// bgCommit is a session's commit running in the background.
type bgCommit struct {
	again bool // marked again meanwhile: commit once more
	done  chan struct{}
}

// commitSession commits sess's marked offsets in the background, at most one commit per
// session at a time: a call while one runs makes it commit once more, with what was marked
// by then. The channel is closed when the commit covering this call is done.
func (s *Source[T]) commitSession(sess sarama.ConsumerGroupSession) <-chan struct{} {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if c := s.committing[sess]; c != nil {
		c.again = true
		return c.done
	}
	if s.committing == nil {
		s.committing = make(map[sarama.ConsumerGroupSession]*bgCommit)
	}
	c := &bgCommit{done: make(chan struct{})}
	s.committing[sess] = c
	s.commits.Add(1)
	go func() {
		defer s.commits.Done()
		for {
			if !s.commitOwn(sess) {
				sess.Commit()
			}
			s.commitMu.Lock()
			if !c.again {
				delete(s.committing, sess)
				s.commitMu.Unlock()
				close(c.done)
				return
			}
			c.again = false
			s.commitMu.Unlock()
		}
	}()
	return c.done
}
