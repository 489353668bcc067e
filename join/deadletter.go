// Late records as dead letters: Late.DeadLetter.

package join

import (
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// DeadLetter returns the late record as a dead letter for a stream.DeadLetterSink, with its
// Reason (stream.ReasonLate), where it was read, an Err that says when the record and the
// join's watermark were, and key and value as given (the record, l.Side's Left or Right,
// encoded as its input was: the join cannot know how). It names the input record: for a
// record read through the join's repartition (l.Upstream), where the repartition read it,
// not the repartition's own topic, which is purged as soon as it is committed; else
// l.Partition and l.Offset. origin maps that pipeline partition id to the topic and
// partition it was read from; with a nil origin, or one that does not know the partition,
// Topic is empty and Partition is the pipeline's partition id. Pass the pipeline's Origin
// (stream.Pipeline.Origin), which knows every source's ids: kafka.Source.Origin and
// kafka.Exchange.Origin take their source's own ids, which are the pipeline's only for its
// first source. A dead-letter sink with no fixed topic (kafka.NewDeadLetterSink(cfg, ""))
// then writes each side's late records to "<its input topic>.dlq".
//
//	late := stream.Map(paid.Late(), func(l join.Late[string, Order, Payment]) stream.DeadLetter {
//		v, _ := json.Marshal(l.Side)
//		return l.DeadLetter(p.Origin, []byte(l.Key), v) // p: the *stream.Pipeline
//	})
//	stream.To(late, deadLetters)
func (l Late[K, A, B]) DeadLetter(origin func(part int32) (topic string, partition int32, ok bool), key, value []byte) stream.DeadLetter {
	dl := stream.DeadLetter{Reason: l.Reason, Key: key, Value: value}
	dl.SetOrigin(origin, l.Partition, l.Offset, l.Upstream)
	dl.Err = fmt.Sprintf("join: record at %s arrived after the join's watermark %s",
		l.EventTime.Format(time.RFC3339Nano), l.Watermark.Format(time.RFC3339Nano))
	return dl
}
