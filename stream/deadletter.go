// Dead letters: the DeadLetter type every dead-letter output takes, Header, the Reason
// constants, DeadLetterSink and DeadLetterFunc.

package stream

import (
	"time"
)

// DeadLetter is input or output that a pipeline could not use, with where it came from and
// why. Every dead-letter output of the SDK takes this one type: sources send the records they
// cannot decode or accept, the event-time operators send late records and records of keys
// past a limit, and sinks send the documents their store rejects for good. A dead-letter
// output is a Sink[DeadLetter] (see DeadLetterSink): the kafka package writes them to a topic
// with headers, the DeadLetterFunc and a JSON-lines file are others.
type DeadLetter struct {
	// Reason classifies the fault, one of the Reason... constants (or a connector's own).
	Reason string
	// Err is the error text: what exactly was wrong.
	Err string
	// Topic, Partition and Offset name the record's origin in its source system: for Kafka,
	// the topic, the Kafka partition and the offset. Offset is -1 when there is none (a
	// document built from many records).
	Topic     string
	Partition int32
	Offset    int64
	// Key and Value are the original record's key and value as read, or for a rejected
	// document its JSON.
	Key, Value []byte
	// Timestamp is the record's time in its source (Kafka timestamp), or zero.
	Timestamp time.Time
	// Headers are the original record's headers.
	Headers []Header
	// Index, ID and Status name a document a sink rejected: its index, id and the store's
	// status code.
	Index, ID string
	Status    int
}

// Header is a record header (Kafka headers).
type Header struct {
	Key   string
	Value []byte
}

// Reasons a dead letter can carry. Connectors may add their own (an OpenSearch error type such
// as "mapper_parsing_exception").
const (
	// ReasonDecode: the record's bytes could not be decoded.
	ReasonDecode = "decode"
	// ReasonInvalid: the record decoded but failed validation.
	ReasonInvalid = "invalid"
	// ReasonEventTime: the record's event time is unusable: out of the representable range,
	// or further in the future than WithMaxFutureEventTime allows.
	ReasonEventTime = "event_time"
	// ReasonLate: the record arrived after its window had closed.
	ReasonLate = "late"
	// ReasonKeyLimit: the record's key would have exceeded an operator's key limit.
	ReasonKeyLimit = "key_limit"
	// ReasonRejected: a sink's store refused the document for good.
	ReasonRejected = "rejected"
	// ReasonEncode: an output value could not be encoded.
	ReasonEncode = "encode"
)

// DeadLetterSink is a dead-letter output. Write returns once the dead letters are durably
// stored; its errors follow the Sink contract (retried unless Permanent).
type DeadLetterSink = Sink[DeadLetter]

// DeadLetterFunc adapts a function to a DeadLetterSink.
type DeadLetterFunc = SinkFunc[DeadLetter]
