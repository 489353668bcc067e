// Message, the Kafka record a Codec decodes and a Producer writes; the codecs (JSON, Raw)
// and WithMeta, which keeps a record's metadata with its value.

package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// Message is a Kafka record as a codec sees it, and as a Producer writes it.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Timestamp is the record's Kafka timestamp (create or log-append time).
	Timestamp time.Time
	Headers   []Header
}

// Header is a Kafka record header: the SDK's one header type, stream.Header.
type Header = stream.Header

// Header returns the value of the first header named key.
func (m *Message) Header(key string) ([]byte, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Codec decodes Kafka messages into the values of a pipeline.
//
// Decode returns the value and its event time; the zero time means "use the message's Kafka
// timestamp". An error sends the message to the dead-letter output: return one for input that
// cannot be decoded and for input that fails validation. Decode is called from one goroutine
// per partition, so it must be safe for concurrent use; it must not keep msg or its byte
// slices past the call unless it copies them.
type Codec[T any] interface {
	Decode(msg *Message) (T, time.Time, error)
}

// PartitionCodec is a Codec that keeps state per partition, such as an intern table of the
// keys it has seen or a cache of schemas. When the Source claims a partition it calls
// ForPartition and decodes that partition's records with the codec returned, from the
// partition's goroutine only: that codec need not be safe for concurrent use. A partition
// claimed again after a rebalance gets a new one. (Kafka Streams likewise gives each task a
// deserializer of its own.) The Source uses Decode itself for nothing else.
type PartitionCodec[T any] interface {
	Codec[T]
	ForPartition(topic string, partition int32) Codec[T]
}

// InvalidError marks a Decode error as a validation failure: the record decoded but is not
// acceptable. The Source dead-letters it with the reason stream.ReasonInvalid, as it does an
// error whose chain has a method InvalidRecord() bool that returns true (the errors of
// telemetry.Decode for ErrInvalid); any other Decode error gets stream.ReasonDecode. JSON
// wraps the errors of Validate in it. Its text is the wrapped error's.
type InvalidError struct{ Err error }

// invalidRecord is an error that can say the record is well-formed but refused (see
// InvalidError).
type invalidRecord interface{ InvalidRecord() bool }

// isInvalid reports whether a Decode error is a validation failure (see InvalidError).
func isInvalid(err error) bool {
	var inv *InvalidError
	if errors.As(err, &inv) {
		return true
	}
	var ir invalidRecord
	return errors.As(err, &ir) && ir.InvalidRecord()
}

func (e *InvalidError) Error() string { return e.Err.Error() }

// Unwrap returns the validation error.
func (e *InvalidError) Unwrap() error { return e.Err }

// DecoderInto is a Codec that can also decode a message in place. The Source then decodes
// each record straight into its slot in the claim's queue rather than copying the value out of
// Decode and into the queue: for a value of a hundred bytes or more (a telemetry event), that
// copy was a few percent of what reading a record costs. DecodeInto has Decode's contract;
// dst points to T's zero value. After an error the Source discards *dst.
type DecoderInto[T any] interface {
	Codec[T]
	DecodeInto(msg *Message, dst *T) (time.Time, error)
}

// CodecFunc adapts a function to a Codec.
type CodecFunc[T any] func(msg *Message) (T, time.Time, error)

// Decode calls f.
func (f CodecFunc[T]) Decode(msg *Message) (T, time.Time, error) { return f(msg) }

// EventTimer is implemented by values that carry their event time. The JSON codec uses it.
type EventTimer interface {
	EventTime() time.Time
}

// JSON returns a codec that unmarshals the message value with encoding/json. The event time
// is v.EventTime() when T (or *T) implements EventTimer, else the Kafka timestamp. A value
// whose EventTime is the zero time (its field missing or null) is invalid (a dead letter with
// the reason "invalid"), not timed by its Kafka timestamp, which would count it in the window
// it was produced in, silently; a Codec of your own that returns the zero time chooses the
// Kafka timestamp. If T (or *T) has a method Validate() error, a validation failure is
// invalid too. For a pointer type T (JSON[*Event]), a JSON null is invalid.
func JSON[T any]() Codec[T] {
	ptr := reflect.TypeFor[T]().Kind() == reflect.Pointer
	return CodecFunc[T](func(msg *Message) (T, time.Time, error) {
		var v T
		if err := json.Unmarshal(msg.Value, &v); err != nil {
			return v, time.Time{}, fmt.Errorf("kafka: json: %w", err)
		}
		methods := any(&v) // *T's, which has T's too
		if ptr {
			// *T points to a pointer and has no methods: T's own are the value's.
			if reflect.ValueOf(v).IsNil() {
				return v, time.Time{}, &InvalidError{Err: fmt.Errorf("kafka: json: null, not a %T", v)}
			}
			methods = any(v)
		}
		if val, ok := methods.(interface{ Validate() error }); ok {
			if err := val.Validate(); err != nil {
				return v, time.Time{}, &InvalidError{Err: err}
			}
		}
		var ts time.Time
		if et, ok := methods.(EventTimer); ok {
			if ts = et.EventTime(); ts.IsZero() {
				return v, ts, &InvalidError{Err: fmt.Errorf("kafka: json: no event time: %T's EventTime() is the zero time (its field missing or null?)", v)}
			}
		}
		return v, ts, nil
	})
}

// Raw returns a codec that passes messages through unchanged, with the Kafka timestamp as the
// event time. Its values share the fetched bytes, which the client never reuses.
func Raw() Codec[Message] {
	return CodecFunc[Message](func(msg *Message) (Message, time.Time, error) {
		m := *msg
		m.Headers = slices.Clone(msg.Headers)
		return m, time.Time{}, nil
	})
}

// Meta is a record's Kafka metadata.
type Meta struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Timestamp time.Time
	Headers   []Header
}

// Envelope is a decoded value with the metadata of the Kafka record it came from. Use it with
// WithMeta when transforms need the topic, key, offset or headers. (A stream.Record is
// something else: the pipeline's unit of input, which a Source makes of every value.)
type Envelope[T any] struct {
	Meta
	Value T
}

// WithMeta wraps a codec so that each value carries its record's metadata. WithMeta of a
// PartitionCodec is one too: each partition still gets the wrapped codec's ForPartition.
func WithMeta[T any](c Codec[T]) Codec[Envelope[T]] {
	m := metaCodec[T]{c}
	if _, ok := c.(PartitionCodec[T]); ok {
		return metaPartitionCodec[T]{m}
	}
	return m
}

type metaCodec[T any] struct{ c Codec[T] }

func (m metaCodec[T]) Decode(msg *Message) (Envelope[T], time.Time, error) {
	v, ts, err := m.c.Decode(msg)
	if err != nil {
		return Envelope[T]{}, ts, err
	}
	return Envelope[T]{
		Meta: Meta{
			Topic:     msg.Topic,
			Partition: msg.Partition,
			Offset:    msg.Offset,
			Key:       msg.Key,
			Timestamp: msg.Timestamp,
			Headers:   slices.Clone(msg.Headers),
		},
		Value: v,
	}, ts, nil
}

// metaPartitionCodec is WithMeta of a PartitionCodec: it keeps the wrapped codec's state per
// partition.
type metaPartitionCodec[T any] struct{ metaCodec[T] }

func (m metaPartitionCodec[T]) ForPartition(topic string, partition int32) Codec[Envelope[T]] {
	return metaCodec[T]{m.c.(PartitionCodec[T]).ForPartition(topic, partition)}
}

// fromSarama fills m from a consumed record, reusing m's header slice.
func (m *Message) fromSarama(cm *sarama.ConsumerMessage) {
	m.Topic, m.Partition, m.Offset = cm.Topic, cm.Partition, cm.Offset
	m.Key, m.Value, m.Timestamp = cm.Key, cm.Value, cm.Timestamp
	clear(m.Headers)
	m.Headers = m.Headers[:0]
	for _, h := range cm.Headers {
		if h != nil {
			m.Headers = append(m.Headers, Header{Key: string(h.Key), Value: h.Value})
		}
	}
}

// toSarama builds a producer record; an empty topic means defTopic.
func (m *Message) toSarama(defTopic string) *sarama.ProducerMessage {
	pm := &sarama.ProducerMessage{Topic: m.Topic, Timestamp: m.Timestamp}
	if pm.Topic == "" {
		pm.Topic = defTopic
	}
	if m.Key != nil {
		pm.Key = sarama.ByteEncoder(m.Key)
	}
	if m.Value != nil {
		pm.Value = sarama.ByteEncoder(m.Value)
	}
	if len(m.Headers) > 0 {
		pm.Headers = make([]sarama.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			pm.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
	}
	return pm
}
