package kafka

import (
	"context"
	"slices"
	"strconv"
)

// Dead-letter headers: a dead-lettered record keeps its key, value, timestamp and headers and
// gains these, naming where it came from and why it was rejected.
const (
	HeaderSourceTopic     = "x-fleetstream-source-topic"
	HeaderSourcePartition = "x-fleetstream-source-partition"
	HeaderSourceOffset    = "x-fleetstream-source-offset"
	HeaderError           = "x-fleetstream-error"
)

// DeadLetterWriter receives the records a Source could not decode. WriteDeadLetter must
// return only once the record is durably stored: the Source commits past the record after
// that. It is called from the partitions' goroutines, so it must be safe for concurrent use,
// and it must not keep msg.
type DeadLetterWriter interface {
	WriteDeadLetter(ctx context.Context, msg *Message, cause error) error
}

// DeadLetterMessage returns the message a dead-letter topic receives for msg: the original
// key, value, timestamp and headers plus the x-fleetstream-* headers.
func DeadLetterMessage(topic string, msg *Message, cause error) Message {
	h := slices.Grow(slices.Clone(msg.Headers), 4)
	h = append(h,
		Header{Key: HeaderSourceTopic, Value: []byte(msg.Topic)},
		Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(msg.Partition), 10)},
		Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, msg.Offset, 10)},
		Header{Key: HeaderError, Value: []byte(cause.Error())},
	)
	return Message{Topic: topic, Key: msg.Key, Value: msg.Value, Timestamp: msg.Timestamp, Headers: h}
}

// topicDeadLetters writes dead letters to a Kafka topic: a fixed one, or "<topic>.dlq".
type topicDeadLetters struct {
	topic string // "" means per source topic
	p     *Producer[Message]
}

func (d *topicDeadLetters) WriteDeadLetter(ctx context.Context, msg *Message, cause error) error {
	topic := d.topic
	if topic == "" {
		topic = msg.Topic + ".dlq"
	}
	m := DeadLetterMessage(topic, msg, cause)
	return d.p.Write(ctx, []Message{m})
}

func identity(m Message) (Message, error) { return m, nil }
