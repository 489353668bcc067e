// Dead letters in Kafka: the headers that name a record's origin and error, and fitting a
// dead letter to the topic's size limit.

package kafka

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// Dead-letter headers: a dead letter written to Kafka keeps the original record's key, value
// and headers and gains these, naming where it came from and why it was rejected.
const (
	HeaderSourceTopic     = "x-fleetstream-source-topic"
	HeaderSourcePartition = "x-fleetstream-source-partition"
	HeaderSourceOffset    = "x-fleetstream-source-offset"
	// HeaderSourceTimestamp is the original record's timestamp in Unix milliseconds (absent
	// when it had none). The dead letter's own Kafka timestamp is the original one unless that
	// lies in the future (a bad clock), which the broker may refuse; then it is the write time.
	HeaderSourceTimestamp = "x-fleetstream-source-timestamp"
	HeaderError           = "x-fleetstream-error"
	// HeaderReason is stream.DeadLetter.Reason, e.g. stream.ReasonDecode.
	HeaderReason = "x-fleetstream-reason"
	// HeaderIndex, HeaderDocID and HeaderStatus name a document a sink's store rejected.
	HeaderIndex  = "x-fleetstream-index"
	HeaderDocID  = "x-fleetstream-id"
	HeaderStatus = "x-fleetstream-status"
	// HeaderTruncated is set on a dead letter that did not fit the topic's max.message.bytes.
	// Its value lists what was cut, comma-separated: "value" (the value was truncated),
	// "headers" (the original record's headers were left out), "key" (the key was
	// truncated), "error" (the error text was truncated). The original is still in its source
	// topic at the source partition and offset.
	HeaderTruncated = "x-fleetstream-truncated"
	// HeaderOriginalSize is the original value's size in bytes, set with HeaderTruncated.
	HeaderOriginalSize = "x-fleetstream-original-size"
	// HeaderValueSHA256 is the hex SHA-256 of the original value, set with HeaderTruncated.
	HeaderValueSHA256 = "x-fleetstream-value-sha256"
)

// DeadLetterOf returns the dead letter of a Kafka record rejected for reason (one of the
// stream.Reason... constants) with cause: its origin, key, value, timestamp and a copy of its
// headers. Key and value are not copied.
func DeadLetterOf(msg *Message, reason string, cause error) stream.DeadLetter {
	dl := stream.DeadLetter{
		Reason: reason, Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Key: msg.Key, Value: msg.Value, Timestamp: msg.Timestamp,
	}
	if cause != nil {
		dl.Err = cause.Error()
	}
	if len(msg.Headers) > 0 {
		dl.Headers = append([]Header(nil), msg.Headers...)
	}
	return dl
}

// DeadLetterMessage returns the message a dead-letter topic receives for dl, in full: the
// original key, value and headers plus the x-fleetstream-* headers. DeadLetterSink writes
// this message, or, when it does not fit the topic, a truncated one.
func DeadLetterMessage(topic string, dl *stream.DeadLetter) Message {
	m := Message{Topic: topic, Partition: -1, Offset: -1, Key: dl.Key, Value: dl.Value, Timestamp: dl.Timestamp}
	if now := time.Now(); dl.Timestamp.After(now) {
		m.Timestamp = now
	}
	m.Headers = make([]Header, 0, len(dl.Headers)+9)
	m.Headers = append(m.Headers, dl.Headers...)
	return withDeadLetterHeaders(m, dl, dl.Err)
}

func withDeadLetterHeaders(m Message, dl *stream.DeadLetter, errText string) Message {
	h := m.Headers
	if dl.Topic != "" {
		h = append(h, Header{Key: HeaderSourceTopic, Value: []byte(dl.Topic)})
	}
	if dl.Topic != "" || dl.Offset >= 0 {
		h = append(h, Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(dl.Partition), 10)})
	}
	if dl.Offset >= 0 {
		h = append(h, Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, dl.Offset, 10)})
	}
	if !dl.Timestamp.IsZero() {
		h = append(h, Header{Key: HeaderSourceTimestamp, Value: strconv.AppendInt(nil, dl.Timestamp.UnixMilli(), 10)})
	}
	h = append(h, Header{Key: HeaderError, Value: []byte(errText)}, Header{Key: HeaderReason, Value: []byte(dl.Reason)})
	if dl.Index != "" {
		h = append(h, Header{Key: HeaderIndex, Value: []byte(dl.Index)})
	}
	if dl.ID != "" {
		h = append(h, Header{Key: HeaderDocID, Value: []byte(dl.ID)})
	}
	if dl.Status != 0 {
		h = append(h, Header{Key: HeaderStatus, Value: strconv.AppendInt(nil, int64(dl.Status), 10)})
	}
	m.Headers = h
	return m
}

// Sizes of Kafka's record format (magic 2) as sarama counts them, so that a dead letter that
// fits by this count is never refused by sarama's Producer.MaxMessageBytes check nor by the
// broker's max.message.bytes.
const (
	batchOverhead     = 61 // a record batch's header
	recordOverhead    = 36 // a record's length, attributes, deltas and the key, value and header-count varints
	headerOverhead    = 10 // a header's key and value length varints
	sizeSlack         = 64
	maxErrorTruncated = 4 << 10 // error text kept when a dead letter must shrink
	// defaultMaxMessageBytes is used when the limits cannot be read: a little below Kafka's
	// default message.max.bytes (1 MiB + 12).
	defaultMaxMessageBytes = 1_000_000
)

// messageSize is the bytes m takes in a record batch of its own, as sarama counts them.
func messageSize(m *Message) int {
	n := batchOverhead + recordOverhead + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return n
}

// fitDeadLetter returns the message for dl on topic, cut down to at most limit bytes (as
// messageSize counts) when the full one is larger: the x-fleetstream-* headers are kept (the
// error text at most 4 KiB), HeaderTruncated, HeaderOriginalSize and HeaderValueSHA256 are
// added, the original headers are left out if they and the key do not fit, and the key, then the
// value, is cut to what is left. HeaderTruncated lists only what was cut.
func fitDeadLetter(topic string, dl *stream.DeadLetter, limit int) Message {
	m := DeadLetterMessage(topic, dl)
	if messageSize(&m) <= limit {
		return m
	}
	var cut []string
	errText := dl.Err
	if len(errText) > maxErrorTruncated {
		errText = strings.ToValidUTF8(errText[:maxErrorTruncated], "")
		cut = append(cut, "error")
	}
	sum := sha256.Sum256(dl.Value)
	extra := func(cut []string) []Header {
		return []Header{
			{Key: HeaderTruncated, Value: []byte(strings.Join(cut, ","))},
			{Key: HeaderOriginalSize, Value: strconv.AppendInt(nil, int64(len(dl.Value)), 10)},
			{Key: HeaderValueSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
		}
	}
	build := func(orig []Header, key []byte, cut []string) Message {
		t := Message{Topic: topic, Partition: -1, Offset: -1, Key: key, Timestamp: m.Timestamp}
		t.Headers = append(append(make([]Header, 0, len(orig)+12), orig...), extra(cut)...)
		return withDeadLetterHeaders(t, dl, errText)
	}
	// The longest list of cuts, so that the room left for the value is never overestimated.
	worst := append(append([]string(nil), cut...), "value", "headers", "key")
	fixed := build(nil, nil, worst)
	room := limit - messageSize(&fixed)
	orig, key := dl.Headers, dl.Key
	for _, h := range orig {
		room -= headerOverhead + len(h.Key) + len(h.Value)
	}
	room -= len(key)
	if room < 0 {
		for _, h := range orig {
			room += headerOverhead + len(h.Key) + len(h.Value)
		}
		if len(orig) > 0 {
			orig = nil
			cut = append(cut, "headers")
		}
	}
	if room < 0 {
		keep := max(len(key)+room, 0)
		room += len(key) - keep
		key = key[:keep]
		cut = append(cut, "key")
	}
	value := dl.Value[:max(min(room, len(dl.Value)), 0)]
	if len(value) < len(dl.Value) {
		cut = append(cut, "value")
	}
	out := build(orig, key, cut)
	out.Value = value
	return out
}
