// Late records as dead letters: Late.DeadLetter.

package window

import (
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// DeadLetter returns the late record as a dead letter for a stream.DeadLetterSink, with its
// Reason (stream.ReasonLate or stream.ReasonKeyLimit), its offset, an Err that says when the
// record and its window were, and key and value as given (the record encoded as the job's
// input was: the window cannot know how). origin maps the record's pipeline partition to the
// topic and partition it was read from (kafka.Source.Origin; for a window after a
// repartition, the exchange's topic); with a nil origin, or one that does not know the
// partition, Topic is empty and Partition is the pipeline's partition id.
//
//	late := stream.Map(stats.Late(), func(l window.Late[Event]) stream.DeadLetter {
//		v, _ := json.Marshal(l.Value)
//		return l.DeadLetter(src.Origin, []byte(l.Value.CabID), v)
//	})
//	stream.To(late, deadLetters)
func (l Late[T]) DeadLetter(origin func(part int32) (topic string, partition int32, ok bool), key, value []byte) stream.DeadLetter {
	dl := stream.DeadLetter{Reason: l.Reason, Partition: l.Partition, Offset: l.Offset, Key: key, Value: value}
	if origin != nil {
		if topic, part, ok := origin(l.Partition); ok {
			dl.Topic, dl.Partition = topic, part
		}
	}
	at := l.EventTime.Format(time.RFC3339Nano)
	if l.Reason == stream.ReasonKeyLimit {
		dl.Err = fmt.Sprintf("window: key limit reached: record at %s not aggregated", at)
	} else {
		dl.Err = fmt.Sprintf("window: record at %s arrived after its window [%s, %s) had closed",
			at, l.Start.Format(time.RFC3339Nano), l.End.Format(time.RFC3339Nano))
	}
	return dl
}
