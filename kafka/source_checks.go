// The Source's checks of what it reads: that its topics exist, that the group and the
// transactional id may be used (ACLs), at start, and that no topic is deleted while it runs.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// errTopicMissing is wrapped by the errors of a missing or deleted source topic.
var errTopicMissing = sarama.ErrUnknownTopicOrPartition

// checkTopics fails unless every source topic exists, confirmed by the broker.
func (s *Source[T]) checkTopics(ctx context.Context, client sarama.Client) error {
	done := make(chan error, 1)
	go func() {
		var total int64
		for _, t := range s.cfg.Topics {
			err := client.RefreshMetadata(t)
			if err == nil {
				var parts []int32
				parts, err = client.Partitions(t)
				total += int64(len(parts))
			}
			if err != nil {
				if errors.Is(err, errTopicMissing) {
					done <- fmt.Errorf("kafka: source topic %q does not exist (a Source never creates topics; create it first, e.g. with kafka.EnsureTopic): %w", t, err)
				} else if isNotAuthorized(err) {
					done <- s.cfg.notAuthorized(err, access{topics: []string{t}})
				} else if errors.Is(err, sarama.ErrOutOfBrokers) || errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
					// The client's first request (it fetches only its topics' metadata, so
					// NewClient did not connect): the cluster cannot be reached or refused us.
					done <- connectError(&s.cfg, err)
				} else {
					done <- fmt.Errorf("kafka: metadata of source topic %q: %w", t, redact(&s.cfg, err))
				}
				return
			}
		}
		s.partitions.Store(total)
		done <- nil
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-done:
		return err
	}
}

// checkGroup fails when the ACLs deny the Source its consumer group (finding the group's
// coordinator needs Describe on it). Joining the group would fail on it too, but only after
// sarama's retries of both, tens of seconds. Other errors are left to the group's join, which
// rides out outages.
func (s *Source[T]) checkGroup(ctx context.Context, client sarama.Client) error {
	return s.checkAccess(ctx, func() error {
		_, err := client.Coordinator(s.cfg.Group)
		return err
	}, access{group: s.cfg.Group})
}

// checkAccess runs find and returns its error if the ACLs refused it (described with a),
// nil otherwise.
func (s *Source[T]) checkAccess(ctx context.Context, find func() error, a access) error {
	done := make(chan error, 1)
	go func() { done <- find() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-done:
		if isNotAuthorized(err) {
			return s.cfg.notAuthorized(err, a)
		}
		return nil
	}
}

// checkTransactionalID fails when the ACLs deny the Source's exactly-once producer its
// transactional id (finding its coordinator needs Describe on it), so that this shows at
// start rather than at the first batch. Other errors are left to the producer's connection.
func (s *Source[T]) checkTransactionalID(ctx context.Context, client sarama.Client, id string) error {
	return s.checkAccess(ctx, func() error {
		_, err := client.TransactionCoordinator(id)
		return err
	}, access{txnID: id})
}

// topicCheckEvery is how often a running Source asks the broker whether its topics still
// exist.
const topicCheckEvery = 5 * time.Second

// monitorTopics stops the Source when the broker says, at two checks in a row, that a source
// topic no longer exists (one answer could be a broker still loading its metadata after a
// restart). A broker that cannot be reached says nothing about the topics: outages are ridden
// out, and reported in Stats (FailingSince) until a check is answered again.
//
// It also says when a topic got more partitions: the group reads them after the rebalance
// that follows (Config.MetadataRefresh), but a key that a hash partitioner placed moves to
// another partition with the count, so state kept per partition by the record's key (a
// stream not repartitioned) splits from then on.
func (s *Source[T]) monitorTopics(ctx context.Context, client sarama.Client) {
	t := time.NewTicker(topicCheckEvery)
	defer t.Stop()
	missing := make(map[string]bool)
	counts := make(map[string]int) // partitions per topic at the last look
	for _, topic := range s.cfg.Topics {
		if parts, err := client.Partitions(topic); err == nil {
			counts[topic] = len(parts)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, topic := range s.cfg.Topics {
			err := client.RefreshMetadata(topic)
			gone := errors.Is(err, errTopicMissing)
			switch {
			case err == nil:
				s.reach.ok()
				s.noteGrowth(client, topic, counts)
			case !gone && ctx.Err() == nil:
				s.reach.failed(redact(&s.cfg, err))
			}
			if gone && missing[topic] && ctx.Err() == nil {
				s.fail(fmt.Errorf("kafka: source topic %q was deleted while the Source ran: %w", topic, err))
				return
			}
			missing[topic] = gone
		}
	}
}

// noteGrowth logs a topic's partition count when it grew since the last look, and keeps the
// Source's partition count (Stats) up to date.
func (s *Source[T]) noteGrowth(client sarama.Client, topic string, counts map[string]int) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return
	}
	was, seen := counts[topic]
	counts[topic] = len(parts)
	if !seen || len(parts) <= was {
		return
	}
	if s.o.bounded {
		// A bounded run reads the partitions present at its start (loadEnds), and its
		// partition count stays theirs: a repartition's downstream partitions wait for the
		// end of as many upstream partitions as the count says, and a partition added since
		// sends no end unless a rebalance hands it to a running instance, which may never
		// come (MetadataRefresh < 0): the run hung, or ended a refresh and a rebalance late.
		s.log.Warn("kafka: partitions were added to a source topic during a bounded run; the run reads the partitions present at its start only, and leaves the new partitions' records to the next run",
			"topic", topic, "partitions", len(parts), "was", was)
		return
	}
	s.partitions.Add(int64(len(parts) - was))
	s.log.Warn("kafka: partitions were added to a source topic; the group reads them after its next rebalance, from their start. A key placed by a hash partitioner now goes to another partition: state kept per partition by the record's key splits (repartition by the key to keep it whole)",
		"topic", topic, "partitions", len(parts), "was", was)
}

// dlqNames reports the source topics whose own dead-letter topic, "<topic>.dlq", would be
// longer than Kafka allows, when the dead letters go there (no WithDeadLetterTopic, no
// WithDeadLetters): the first bad record would stop the Source.
func dlqNames(cfg *Config, o *sourceOptions) []error {
	if o.dlqTopic != "" || o.dlqSink != nil || o.exchange {
		return nil
	}
	var errs []error
	for _, t := range cfg.Topics {
		if len(t+".dlq") > 249 && len(t) <= 249 {
			errs = append(errs, invalid("Topics", "%q: its dead-letter topic, %q, would be longer than Kafka's 249 characters: "+
				"name one with WithDeadLetterTopic, or use WithDeadLetters", t, t+".dlq"))
		}
	}
	return errs
}

// sessionTimeoutRefused is the error that stops a Source whose group session timeout the
// brokers refused (INVALID_SESSION_TIMEOUT): every join would be refused the same way.
func sessionTimeoutRefused(cfg *Config, err error) error {
	return fmt.Errorf("%w: %w", invalid("Rebalance.SessionTimeout", "%v is outside the range the brokers allow "+
		"(group.min.session.timeout.ms to group.max.session.timeout.ms, 6s to 30m by default)", cfg.rebalance().SessionTimeout), err)
}

// strategyRefused is the error a Source retries with when the group's coordinator refuses
// its join with INCONSISTENT_GROUP_PROTOCOL: the group has members of another assignment
// strategy (Rebalance.Strategy), or is another kind of client's (Kafka Connect's workers).
// Retried, not returned: the refusal ends by itself once those members leave, as in a
// rolling change of strategy or a stop of every member to change it, where a crashed or
// static member stays in the group until its session timeout. The broker's own words ("The
// provider group protocol type is incompatible with the other members") named neither.
func strategyRefused(cfg *Config, err error) error {
	return fmt.Errorf("%w: %w", invalid("Rebalance.Strategy", "%s: group %q has members of another assignment strategy (or of "+
		"another kind of client, such as Kafka Connect), and its coordinator refuses this member until they leave: "+
		"give every member of the group the same strategy", cfg.rebalance().Strategy, cfg.Group), err)
}

// boundedAndCaughtUp refuses WithBounded beside WithEndWhenCaughtUp. They contradict each
// other: a bounded Source ends its input alone at the end offsets of its start and reads
// nothing past them, while a CaughtUp ends the inputs of all its Sources together once each
// was read to its high-water mark and idle. With records written after the start, the
// bounded Source never counted as caught up (its reading stops below the mark), and the
// option's other Sources waited for it for ever; without, the option did nothing.
func boundedAndCaughtUp(o *sourceOptions) error {
	if !o.bounded || o.caughtUp == nil {
		return nil
	}
	return invalid("WithBounded/WithEndWhenCaughtUp", "give a Source one of them: WithBounded reads "+
		"to the end offsets present when Run starts (a backfill), WithEndWhenCaughtUp reads on until the topics of "+
		"every Source given it stay idle (a drain)")
}

// consumeError says what Run does with an error of a group session: return it (true), the
// errors no retry mends, or retry after a backoff with it (said more plainly where the
// broker's words name no setting).
func (s *Source[T]) consumeError(err error) (error, bool) {
	switch {
	case errors.Is(err, sarama.ErrClosedConsumerGroup):
		return fmt.Errorf("kafka: consume: %w", err), true
	case errors.Is(err, sarama.ErrFencedInstancedId):
		return s.fenced(err), true
	case errors.Is(err, sarama.ErrInvalidSessionTimeout): // refused at every join: retried, for ever
		return sessionTimeoutRefused(&s.cfg, err), true
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed):
		return connectError(&s.cfg, err), true
	case isNotAuthorized(err):
		return s.cfg.notAuthorized(err, access{topics: s.cfg.Topics, group: s.cfg.Group}), true
	case errors.Is(err, sarama.ErrInconsistentGroupProtocol):
		return strategyRefused(&s.cfg, err), false
	}
	return err, false
}
