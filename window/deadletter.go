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
// input was: the window cannot know how). origin maps the record's pipeline partition id
// (l.Partition) to the topic and partition it was read from; with a nil origin, or one that
// does not know the partition, Topic is empty and Partition is the pipeline's partition id.
// Pass the pipeline's Origin (stream.Pipeline.Origin), which knows every source's ids;
// kafka.Source.Origin and kafka.Exchange.Origin take their source's own ids, which are the
// pipeline's only for its first source (the first From), so an exchange's Origin names
// nothing here. A window after a repartition reads the repartition topic, and its late
// records name that topic, so give such dead letters a sink with a fixed topic
// (kafka.NewDeadLetterSink(cfg, "<input>.dlq")): with "" they would go to
// "<repartition topic>.dlq".
//
//	late := stream.Map(stats.Late(), func(l window.Late[Event]) stream.DeadLetter {
//		v, _ := json.Marshal(l.Value)
//		return l.DeadLetter(p.Origin, []byte(l.Value.CabID), v) // p: the *stream.Pipeline
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
