// A Source's commits over a connection of their own. A broker answers the requests of one
// connection in order, and sarama sends a consumer group's commits to the coordinator over
// the client's connection to that broker, the one its fetches use: once the consumer is
// caught up, each fetch waits at the broker up to Fetch.MaxWait for records, and a commit
// queued behind one waited with it (a bounded run's last commit took 250 ms of a one-second
// read; every commit of a job that follows its topic could wait so). Kafka's own consumer
// talks to its coordinator over a connection of its own for that reason; so does the Source:
// it sends the offsets the session marked, with the session's member id and generation,
// over a client of its own. Where that cannot be done (no client, no coordinator, a
// transport error, or any partition refused: a rebalance, an unknown member), it commits
// through the session as before, which handles each of those; the offsets stay marked in the
// session either way, so sarama's own commits (on Commit, and when the session ends) send the
// same ones again.

package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// commitConn is the Source's client for its commits, made at the first commit.
type commitConn struct {
	sc     *sarama.Config
	client sarama.Client
	tried  bool // made, being made, or failed to be made (then commits go through the session)
}

// commitOwn commits the offsets marked for sess's partitions over the commit client, and
// reports whether it did: false means they must go through the session. The background
// commit (commitSession) calls it, one at a time per session; ownMu is held only to read or
// set the client, never over a request, so that closeOwnClient does not wait for one.
func (s *Source[T]) commitOwn(sess sarama.ConsumerGroupSession) bool {
	c, sc := s.ownClient()
	if c == nil {
		return false
	}
	req, parts, sent := s.commitRequest(sess, sc)
	if req == nil {
		return true // nothing marked
	}
	b, err := c.Coordinator(s.cfg.Group)
	if err != nil {
		s.log.Debug("kafka: no coordinator for the commit's own connection; committing through the session", "err", redact(&s.cfg, err))
		return false
	}
	resp, err := b.CommitOffset(req)
	if err == nil {
		err = commitRefused(parts, resp)
	}
	if err != nil {
		s.log.Debug("kafka: commit over its own connection failed; committing through the session", "err", redact(&s.cfg, err))
		if !errors.Is(err, errPartitionRefused) {
			_ = c.RefreshCoordinator(s.cfg.Group)
		}
		return false
	}
	committed(sent)
	return true
}

// ownClient returns the commit client and its configuration, making the client the first
// time (outside ownMu: it dials); nil if it cannot be made, is being made, or the Source is
// not running.
func (s *Source[T]) ownClient() (sarama.Client, *sarama.Config) {
	s.ownMu.Lock()
	cc := s.commitConn
	if cc.tried || cc.sc == nil {
		s.ownMu.Unlock()
		return cc.client, cc.sc
	}
	s.commitConn.tried = true
	s.ownMu.Unlock()
	c, err := sarama.NewClient(s.cfg.Brokers, cc.sc)
	if err != nil {
		s.log.Warn("kafka: no client of its own for commits; they go through the consumer's connection (each may wait for a fetch)", "err", redact(&s.cfg, err))
		return nil, nil
	}
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	if s.commitConn.sc != cc.sc { // the Source stopped meanwhile
		_ = c.Close()
		return nil, nil
	}
	s.commitConn.client = c
	return c, cc.sc
}

// useOwnClient sets the configuration of the commit client, the consumer's sc without its
// metadata of every topic (a commit needs the coordinator only).
func (s *Source[T]) useOwnClient(sc *sarama.Config) {
	c := *sc
	c.Metadata.Full = false
	c.Metadata.RefreshFrequency = 0
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	s.commitConn = commitConn{sc: &c}
}

// closeOwnClient closes the commit client once the Source's commits are done (or were
// waited for long enough: a request still running then fails, and its commit goes through
// the session).
func (s *Source[T]) closeOwnClient() {
	s.ownMu.Lock()
	c := s.commitConn.client
	s.commitConn = commitConn{}
	s.ownMu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// commitRequest returns the request that commits what is marked for sess's partitions, as
// sarama's offset manager would send it for the configuration sc, its partitions and
// what it sends for them; nil if nothing was marked since the last commit.
func (s *Source[T]) commitRequest(sess sarama.ConsumerGroupSession, sc *sarama.Config) (*sarama.OffsetCommitRequest, []topicPart, []sentMark) {
	req := &sarama.OffsetCommitRequest{
		Version:                 1,
		ConsumerGroup:           s.cfg.Group,
		ConsumerID:              sess.MemberID(),
		ConsumerGroupGeneration: sess.GenerationID(),
	}
	v := sc.Version
	switch {
	case v.IsAtLeast(sarama.V2_4_0_0):
		req.Version = 8
	case v.IsAtLeast(sarama.V2_3_0_0):
		req.Version = 7
	case v.IsAtLeast(sarama.V2_1_0_0):
		req.Version = 6
	case v.IsAtLeast(sarama.V2_0_0_0):
		req.Version = 4
	case v.IsAtLeast(sarama.V0_11_0_0):
		req.Version = 3
	case v.IsAtLeast(sarama.V0_9_0_0):
		req.Version = 2
	}
	if id := sc.Consumer.Group.InstanceId; req.Version >= 7 && id != "" {
		req.GroupInstanceId = &id
	}
	if req.Version >= 2 && req.Version < 5 {
		req.RetentionTime = -1
		if r := sc.Consumer.Offsets.Retention; r > 0 {
			req.RetentionTime = r.Milliseconds()
		}
	}
	var stamp int64
	if req.Version == 1 {
		stamp = sarama.ReceiveTime
	}
	var (
		parts []topicPart
		sent  []sentMark
	)
	s.mu.Lock()
	for _, p := range s.owned {
		if p.sess != sess || p.eos != nil {
			continue
		}
		p.mu.Lock()
		if p.dirty {
			// What the claim marked, as sarama sends only what was marked: the group's own
			// offset and checkpoint stay until the pipeline marks others. -1: no leader
			// epoch (Kafka's for an unknown one), stored with the offset; sarama sends the
			// epoch the group had, which the Source does not know.
			req.AddBlockWithLeaderEpoch(p.topic, p.part, p.marks.committed, -1, stamp, p.marks.meta)
			parts = append(parts, topicPart{p.topic, p.part})
			sent = append(sent, sentMark{p, p.marks.committed, p.marks.meta})
		}
		p.mu.Unlock()
	}
	s.mu.Unlock()
	if len(parts) == 0 {
		return nil, nil, nil
	}
	return req, parts, sent
}

// sentMark is the offset and checkpoint a commit request sends for a partition.
type sentMark struct {
	p    *partition
	off  int64
	meta string
}

// committed clears the partitions' dirty flags where nothing was marked since the request
// was made.
func committed(sent []sentMark) {
	for _, m := range sent {
		m.p.mu.Lock()
		if m.p.marks.committed == m.off && m.p.marks.meta == m.meta {
			m.p.dirty = false
		}
		m.p.mu.Unlock()
	}
}

// errPartitionRefused is commitRefused's error when the broker refused a partition's offset.
var errPartitionRefused = errors.New("partition refused")

// commitRefused returns an error if the response does not accept the offset of every one of
// parts.
func commitRefused(parts []topicPart, resp *sarama.OffsetCommitResponse) error {
	for _, tp := range parts {
		kerr, ok := resp.Errors[tp.topic][tp.part]
		if !ok {
			return fmt.Errorf("%s/%d: no answer", tp.topic, tp.part)
		}
		if kerr != sarama.ErrNoError {
			return fmt.Errorf("%w: %s/%d: %w", errPartitionRefused, tp.topic, tp.part, kerr)
		}
	}
	return nil
}
