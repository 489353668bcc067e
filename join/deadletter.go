// Late records as dead letters: Late.DeadLetter.

package join

import (
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// DeadLetter returns the late record as a dead letter for a stream.DeadLetterSink, with its
// Reason (stream.ReasonLate), its offset, an Err that says when the record and the join's
// watermark were, and key and value as given (the record, l.Side's Left or Right, encoded as
// its input was: the join cannot know how). origin maps the record's pipeline partition id
// (l.Partition), one of the join's repartition, to the topic and partition it was read from
// (the exchange's topic); with a nil origin, or one that does not know the partition, Topic
// is empty and Partition is the pipeline's partition id. Pass the pipeline's Origin
// (stream.Pipeline.Origin): kafka.Exchange.Origin takes the exchange's own partition ids,
// never the pipeline's here (the exchange is not the pipeline's first source). Give the dead
// letters a sink with a fixed topic (with kafka.NewDeadLetterSink(cfg, "") they would go to
// "<repartition topic>.dlq").
//
//	late := stream.Map(paid.Late(), func(l join.Late[string, Order, Payment]) stream.DeadLetter {
//		v, _ := json.Marshal(l.Side)
//		return l.DeadLetter(p.Origin, []byte(l.Key), v) // p: the *stream.Pipeline
//	})
//	stream.To(late, deadLetters)
func (l Late[K, A, B]) DeadLetter(origin func(part int32) (topic string, partition int32, ok bool), key, value []byte) stream.DeadLetter {
	dl := stream.DeadLetter{Reason: l.Reason, Partition: l.Partition, Offset: l.Offset, Key: key, Value: value}
	if origin != nil {
		if topic, part, ok := origin(l.Partition); ok {
			dl.Topic, dl.Partition = topic, part
		}
	}
	dl.Err = fmt.Sprintf("join: record at %s arrived after the join's watermark %s",
		l.EventTime.Format(time.RFC3339Nano), l.Watermark.Format(time.RFC3339Nano))
	return dl
}
