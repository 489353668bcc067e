// What a Source does when records it has not read are no longer in Kafka: the retention (or
// a DeleteRecords) removed them from the partition's start before the group read them, or the
// group's committed offset lies past the partition's end (the topic was deleted and made
// again). By default it stops with ErrDataLoss, as Spark's Kafka source does with
// failOnDataLoss; WithAcceptDataLoss goes on from the partition's start instead.

package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// ErrDataLoss is wrapped by the error that stops a Source when records it had yet to read
// were deleted from a partition (retention, DeleteRecords) or its committed offset lies past
// the partition's end. The error is permanent (stream.IsPermanent): a restart meets the same
// offsets. Restart with WithAcceptDataLoss to go on from the partition's start, or move the
// group's offsets (kafka-consumer-groups --reset-offsets).
var ErrDataLoss = errors.New("kafka: records deleted before they were read")

// WithAcceptDataLoss makes a Source go on from a partition's start when records it had yet to
// read were deleted (or its committed offset lies past the partition's end), instead of
// stopping with ErrDataLoss. Each such partition is logged at Error with the offsets, and
// Source.Lost counts the records deleted unread. Results of windows those records belonged to
// are then incomplete.
func WithAcceptDataLoss() SourceOption {
	return sourceOpt(func(o *sourceOptions) { o.acceptLoss = true })
}

// Lost returns how many records were deleted from Kafka, under WithAcceptDataLoss, between
// the group's committed offset and the partition's new start (without it the Source stops
// instead). Some of them may have been read before a restart: the committed offset is held
// back to the oldest record that open windows need.
func (s *Source[T]) Lost() int64 { return s.lost.Load() }

// lossError describes records of a partition that are gone: from want (the offset the Source
// needed next) to oldest, or a want past the partition's end.
func (s *Source[T]) lossError(topic string, part int32, want, oldest, newest int64) error {
	remedy := fmt.Sprintf("restart with WithAcceptDataLoss (fleetpipeline -accept-data-loss) to go on from offset %d, or reset the group's offsets", oldest)
	if s.o.exchange {
		// Its records are the pipeline's state in transit, numbered for the dedup: no
		// going on past a gap.
		remedy = "a repartition cannot go on past lost records: run the pipeline again from its input under a new consumer group and either a new pipeline name or with this repartition topic deleted (a new group alone is refused with ErrRepartitionInUse: the topic holds the old group's offsets), and set retention.ms to -1 on a repartition topic made by an earlier release (an Exchange makes it so, and purges what was committed)"
	}
	if want > newest {
		return stream.Permanent(fmt.Errorf("%w: %s/%d: the group's offset %d is past the partition's end %d (was the topic deleted and created again?); %s",
			ErrDataLoss, topic, part, want, newest, remedy))
	}
	return stream.Permanent(fmt.Errorf("%w: %s/%d: records %d to %d (%d) were deleted (by the retention or DeleteRecords) before the group was done with them; %s",
		ErrDataLoss, topic, part, want, oldest-1, oldest-want, remedy))
}

// checkCommitted checks, at a claim's start, that the partition still holds the records from
// the group's committed offset on, given its start and end offsets. It returns nil when it
// does, or when the loss is accepted (then the claim is moved to the partition's start,
// dropped reports that the committed checkpoint no longer applies, and the loss is logged
// and counted); otherwise the loss, wrapping ErrDataLoss.
func (s *Source[T]) checkCommitted(sess sarama.ConsumerGroupSession, topic string, part int32, committed, oldest, newest int64) (dropped bool, err error) {
	if committed >= oldest && committed <= newest {
		return false, nil
	}
	loss := s.lossError(topic, part, committed, oldest, newest)
	if !s.o.acceptLoss {
		return false, loss
	}
	if committed > newest {
		// The topic was made again: its offsets start over, and the checkpoint's are another
		// topic's.
		sess.ResetOffset(topic, part, oldest, "")
		s.log.Error("kafka: reading the partition from its start (WithAcceptDataLoss)", "err", loss)
		return true, nil
	}
	sess.MarkOffset(topic, part, oldest, "")
	s.lost.Add(oldest - committed)
	s.log.Error("kafka: going on after records were deleted (WithAcceptDataLoss)", "err", loss, "lost", oldest-committed)
	return false, nil
}

// outOfRange handles a partition whose fetch fell out of the retained range while the
// Source read it (the retention overtook a lagging consumer): sarama stops consuming the
// partition. The Source stops with ErrDataLoss, or under WithAcceptDataLoss ends the group
// session, so that the claim starts again from the partition's start (checkCommitted).
func (s *Source[T]) outOfRange(client sarama.Client, ce *sarama.ConsumerError) {
	want := int64(-1)
	s.mu.Lock()
	if p := s.owned[s.PartitionID(ce.Topic, ce.Partition)]; p != nil {
		want = p.read.Load()
	}
	s.mu.Unlock()
	oldest, newest, err := offsetRanges(client, ce.Topic, []int32{ce.Partition})
	var loss error
	if want >= 0 && err == nil {
		loss = s.lossError(ce.Topic, ce.Partition, want, oldest[ce.Partition], newest[ce.Partition])
	} else {
		loss = stream.Permanent(fmt.Errorf("%w: %s/%d: the offset to read next is no longer in the partition: %w", ErrDataLoss, ce.Topic, ce.Partition, ce.Err))
	}
	if !s.o.acceptLoss {
		s.fail(loss)
		return
	}
	s.log.Error("kafka: a partition's next records were deleted unread; joining the group again to go on from its start (WithAcceptDataLoss)", "err", loss)
	if end := s.endSession.Load(); end != nil {
		(*end)()
	}
}
