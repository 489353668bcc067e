// What a Source does when the broker refuses a commit's metadata as too large.

package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// ErrCommitMetadataTooLarge is wrapped by the error that stops a Source whose commit the
// broker refused because the offset metadata (the pipeline's checkpoint, with the
// repartition marks and, exactly once, the read-back bound) is larger than the broker's
// offset.metadata.max.bytes, 4096 bytes by default. No later commit of that partition would
// pass either, so running on would only replay more at each restart, and exactly once would
// hold every output message in memory; the pipeline stops instead, with nothing lost (a
// restart replays from the offsets committed before).
var ErrCommitMetadataTooLarge = errors.New("kafka: commit refused: offset metadata larger than the broker's offset.metadata.max.bytes")

// metadataTooLarge returns the error that stops the Source after the broker refused the
// commit of topic/part with OFFSET_METADATA_TOO_LARGE, with the size of the partition's
// checkpoint if it is owned.
func (s *Source[T]) metadataTooLarge(topic string, part int32) error {
	size := -1
	s.mu.Lock()
	if p := s.owned[s.PartitionID(topic, part)]; p != nil {
		p.mu.Lock()
		size = len(p.marks.meta)
		p.mu.Unlock()
	}
	s.mu.Unlock()
	return metadataTooLarge(fmt.Sprintf("partition %s/%d", topic, part), size)
}

// metadataTooLarge says what to do about a commit refused for its metadata's size; where
// names the partition (or the transaction), size is the checkpoint's in bytes, or -1.
func metadataTooLarge(where string, size int) error {
	what := "its offset metadata (the checkpoint"
	if size >= 0 {
		what = fmt.Sprintf("its offset metadata (a checkpoint of %d bytes", size)
	}
	return fmt.Errorf("%w: %s: %s; a repartition's marks take about 12 bytes per upstream partition) exceeds the "+
		"broker's limit, 4096 bytes unless offset.metadata.max.bytes was raised, and no later commit can pass either: "+
		"the Source stops rather than run on without commits; raise offset.metadata.max.bytes on the brokers, or "+
		"repartition topics with fewer partitions", ErrCommitMetadataTooLarge, where, what)
}

// isMetadataTooLarge reports whether err is the broker's OFFSET_METADATA_TOO_LARGE, or
// INVALID_COMMIT_OFFSET_SIZE (one commit's metadata together over the limit of a record of
// __consumer_offsets, about 1 MB: a member committing hundreds of partitions with large
// checkpoints), which sarama too logs and goes on from.
func isMetadataTooLarge(err error) bool {
	return errors.Is(err, sarama.ErrOffsetMetadataTooLarge) || errors.Is(err, sarama.ErrInvalidCommitOffsetSize)
}
