// InitialOffset OffsetNewest for a job rather than for a partition: the Source commits the
// ends of a topic the group has never read before it joins, and the consumer starts any
// partition without a commit at its start.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/internal/backoff"
)

// startAtEnds gives InitialOffset OffsetNewest its meaning for a job, as Flink's Kafka source
// does: the partitions a group finds when it first reads a topic start at their ends, and a
// partition added to the topic later starts at its start, so that what a producer writes to
// it before the group's next rebalance is read. (With sarama's Offsets.Initial at newest, a
// partition added while the job runs would start at its end as of the rebalance that assigns
// it, up to two Config.MetadataRefresh after its first records, and those would be skipped;
// so would a partition added while the job was stopped, and the old records of a partition
// that had none to commit before a restart would be read.)
//
// Before the group is joined, each topic for which the group has no committed offset at all
// gets the current ends of its partitions committed, without a checkpoint, as a group that
// read nothing of it. The consumer then starts every partition without a commit at its
// oldest offset (config_sarama.go). A commit refused because the group has members is left to
// them: another instance joined first, and committed the ends itself before it did. (Not so
// for a topic added to Config.Topics in a rolling restart while instances without it still
// run: that topic then starts at its start.) Other failures are retried for up to
// startAtEndsFor, then stop the Source.
func (s *Source[T]) startAtEnds(ctx context.Context, client sarama.Client) error {
	if s.cfg.InitialOffset != OffsetNewest || s.o.exchange {
		return nil
	}
	deadline := time.Now().Add(startAtEndsFor)
	for attempt := 1; ; attempt++ {
		err := s.commitEnds(client)
		if err == nil {
			return nil
		}
		if isNotAuthorized(err) {
			return s.cfg.notAuthorized(err, access{topics: s.cfg.Topics, group: s.cfg.Group})
		}
		wait := backoff.Delay(250*time.Millisecond, 5*time.Second, attempt)
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("kafka: committing the ends of the topics new to group %q (InitialOffset %q): %w", s.cfg.Group, OffsetNewest, redact(&s.cfg, err))
		}
		s.log.Warn("kafka: committing the ends of the topics new to the group failed, retrying", "group", s.cfg.Group, "err", redact(&s.cfg, err), "backoff", wait)
		if !backoff.Sleep(ctx.Done(), wait) {
			return ctx.Err()
		}
	}
}

// startAtEndsFor bounds startAtEnds' retries.
const startAtEndsFor = 30 * time.Second

// commitEnds commits the ends of the topics of which the group has no committed offset.
func (s *Source[T]) commitEnds(client sarama.Client) error {
	parts := make(map[string][]int32, len(s.cfg.Topics))
	for _, t := range s.cfg.Topics {
		ps, err := client.Partitions(t)
		if err != nil {
			return err
		}
		parts[t] = ps
	}
	committed, err := groupOffsets(client, s.cfg.Group, parts)
	if err != nil {
		return err
	}
	has := make(map[string]bool, len(parts))
	for tp := range committed {
		has[tp.topic] = true
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: s.cfg.Group, ConsumerGroupGeneration: -1, RetentionTime: -1}
	var fresh []string
	for t, ps := range parts {
		if has[t] {
			continue
		}
		ends, err := offsetsAt(client, t, ps, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		for _, p := range ps {
			req.AddBlock(t, p, ends[p], 0, "")
		}
		fresh = append(fresh, t)
	}
	if len(fresh) == 0 {
		return nil
	}
	coord, err := client.Coordinator(s.cfg.Group)
	if err != nil {
		return err
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		_ = client.RefreshCoordinator(s.cfg.Group)
		return err
	}
	for t, ps := range resp.Errors {
		for p, kerr := range ps {
			switch {
			case kerr == sarama.ErrNoError:
			case errors.Is(kerr, sarama.ErrUnknownMemberId), errors.Is(kerr, sarama.ErrRebalanceInProgress), errors.Is(kerr, sarama.ErrIllegalGeneration):
				// The group has members: the first of them committed the ends before it
				// joined, and they own the positions now.
				s.log.Info("kafka: the group is active; its members set where the topics new to it start", "group", s.cfg.Group, "topics", fresh)
				return nil
			default:
				if errors.Is(kerr, sarama.ErrNotCoordinatorForConsumer) || errors.Is(kerr, sarama.ErrConsumerCoordinatorNotAvailable) {
					_ = client.RefreshCoordinator(s.cfg.Group)
				}
				return fmt.Errorf("commit of %s/%d: %w", t, p, kerr)
			}
		}
	}
	s.log.Info("kafka: topics new to the group start at their ends (InitialOffset newest); partitions added to them later start at their start", "group", s.cfg.Group, "topics", fresh)
	return nil
}
