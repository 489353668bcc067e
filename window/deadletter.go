// Late records as dead letters: Late.DeadLetter.

package window

import (
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// DeadLetter returns the late record as a dead letter for a stream.DeadLetterSink, with its
// Reason (stream.ReasonLate or stream.ReasonKeyLimit), where it was read, an Err that says
// when the record and its window were, and key and value as given (the record encoded as the
// job's input was: the window cannot know how). It names the input record: for a record read
// through a repartition (l.Upstream), where the repartition read it, not the repartition's
// own topic, which is purged as soon as it is committed; else l.Partition and l.Offset.
// origin maps that pipeline partition id to the topic and partition it was read from; with
// a nil origin, or one that does not know the partition, Topic is empty and Partition is the
// pipeline's partition id. Pass the pipeline's Origin (stream.Pipeline.Origin), which knows
// every source's ids; kafka.Source.Origin and kafka.Exchange.Origin take their source's own
// ids, which are the pipeline's only for its first source (the first From). A dead-letter
// sink with no fixed topic (kafka.NewDeadLetterSink(cfg, "")) then writes the late records
// of a window after a repartition to "<input topic>.dlq" too. After a repartition of another
// repartition's stream (or RepartitionByTime), l.Upstream names the earlier repartition (or
// is nil), so give such dead letters a sink with a fixed topic.
//
//	late := stream.Map(stats.Late(), func(l window.Late[Event]) stream.DeadLetter {
//		v, _ := json.Marshal(l.Value)
//		return l.DeadLetter(p.Origin, []byte(l.Value.CabID), v) // p: the *stream.Pipeline
//	})
//	stream.To(late, deadLetters)
func (l Late[T]) DeadLetter(origin func(part int32) (topic string, partition int32, ok bool), key, value []byte) stream.DeadLetter {
	dl := stream.DeadLetter{Reason: l.Reason, Key: key, Value: value}
	dl.SetOrigin(origin, l.Partition, l.Offset, l.Upstream)
	at := l.EventTime.Format(time.RFC3339Nano)
	if l.Reason == stream.ReasonKeyLimit {
		dl.Err = fmt.Sprintf("window: key limit reached: record at %s not aggregated", at)
	} else {
		dl.Err = fmt.Sprintf("window: record at %s arrived after its window [%s, %s) had closed",
			at, l.Start.Format(time.RFC3339Nano), l.End.Format(time.RFC3339Nano))
	}
	return dl
}
