package kafka_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
)

func TestJSONCodec(t *testing.T) {
	c := kafka.JSON[event]()
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	v, et, err := c.Decode(&kafka.Message{Value: []byte(`{"id":7,"key":"cab-07","ts":"2026-11-25T10:00:00Z","v":3}`)})
	require.NoError(t, err)
	require.Equal(t, event{ID: 7, Key: "cab-07", TS: ts, V: 3}, v)
	require.True(t, et.Equal(ts), "event time from EventTimer")

	_, _, err = c.Decode(&kafka.Message{Value: []byte(`{"id":7`)})
	require.ErrorContains(t, err, "kafka: json:")
	_, _, err = c.Decode(&kafka.Message{Value: []byte(`{"id":7}`)})
	require.ErrorContains(t, err, "empty key", "Validate is applied")

	// Without its event time the record is invalid (a dead letter), not timed by Kafka.
	for _, in := range []string{`{"id":7,"key":"cab-07","v":3}`, `{"id":7,"key":"cab-07","ts":null}`} {
		_, _, err = c.Decode(&kafka.Message{Value: []byte(in), Timestamp: ts})
		var inv *kafka.InvalidError
		require.ErrorAs(t, err, &inv, in)
		require.ErrorContains(t, err, "no event time", in)
	}
	// A type without EventTime takes the Kafka timestamp: the zero time, no error.
	_, et, err = kafka.JSON[map[string]int]().Decode(&kafka.Message{Value: []byte(`{"id":7}`), Timestamp: ts})
	require.NoError(t, err)
	require.True(t, et.IsZero())
}

func TestWithMetaAndRaw(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	msg := &kafka.Message{
		Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Timestamp: ts,
		Value:   []byte(`{"id":1,"key":"cab-01","ts":"2026-11-25T10:00:00Z"}`),
		Headers: []kafka.Header{{Key: "h", Value: []byte("v")}},
	}
	var c kafka.Codec[kafka.Envelope[event]] = kafka.WithMeta(kafka.JSON[event]())
	r, _, err := c.Decode(msg)
	require.NoError(t, err)
	require.Equal(t, "t", r.Topic)
	require.Equal(t, int32(3), r.Partition)
	require.Equal(t, int64(42), r.Offset)
	require.Equal(t, []byte("k"), r.Key)
	require.Equal(t, ts, r.Timestamp)
	require.Equal(t, 1, r.Value.ID)
	msg.Headers[0].Value = []byte("changed")
	require.Equal(t, []byte("v"), r.Headers[0].Value, "headers are copied")

	m, et, err := kafka.Raw().Decode(msg)
	require.NoError(t, err)
	require.True(t, et.IsZero(), "Raw leaves the event time to the Kafka timestamp")
	require.Equal(t, msg.Value, m.Value)
	v, ok := m.Header("h")
	require.True(t, ok)
	require.Equal(t, "changed", string(v))
}

func TestDeadLetterMessage(t *testing.T) {
	msg := &kafka.Message{Topic: "cabs", Partition: 2, Offset: 99, Key: []byte("k"), Value: []byte("garbage"),
		Timestamp: time.UnixMilli(1_700_000_000_123), Headers: []kafka.Header{{Key: "trace", Value: []byte("x")}}}
	dl := kafka.DeadLetterOf(msg, stream.ReasonDecode, errBad)
	msg.Headers[0].Value = []byte("changed")
	require.Equal(t, "x", string(dl.Headers[0].Value), "the dead letter has its own headers")
	m := kafka.DeadLetterMessage("cabs.dlq", &dl)
	require.Equal(t, "cabs.dlq", m.Topic)
	require.Equal(t, msg.Value, m.Value)
	require.Equal(t, msg.Key, m.Key)
	require.True(t, m.Timestamp.Equal(msg.Timestamp))
	for k, want := range map[string]string{
		"trace": "x", kafka.HeaderSourceTopic: "cabs", kafka.HeaderSourcePartition: "2",
		kafka.HeaderSourceOffset: "99", kafka.HeaderError: "bad record", kafka.HeaderReason: stream.ReasonDecode,
		kafka.HeaderSourceTimestamp: "1700000000123",
	} {
		v, ok := m.Header(k)
		require.True(t, ok, k)
		require.Equal(t, want, string(v), k)
	}
	_, truncated := m.Header(kafka.HeaderTruncated)
	require.False(t, truncated)
	require.Len(t, dl.Headers, 1, "the dead letter is not changed")

	// A future timestamp (a bad clock) would be refused by the broker: the write time is used.
	dl.Timestamp = time.Now().Add(100 * 365 * 24 * time.Hour)
	m = kafka.DeadLetterMessage("cabs.dlq", &dl)
	require.False(t, m.Timestamp.After(time.Now()))
	v, _ := m.Header(kafka.HeaderSourceTimestamp)
	require.Equal(t, strconv.FormatInt(dl.Timestamp.UnixMilli(), 10), string(v))

	// A rejected document names its index, id and status.
	doc := stream.DeadLetter{Reason: stream.ReasonRejected, Err: "mapper_parsing_exception", Offset: -1, Value: []byte(`{}`),
		Index: "cab-stats-2026.11.25", ID: "abc", Status: 400}
	m = kafka.DeadLetterMessage("dlq", &doc)
	for k, want := range map[string]string{kafka.HeaderIndex: doc.Index, kafka.HeaderDocID: "abc", kafka.HeaderStatus: "400", kafka.HeaderReason: stream.ReasonRejected} {
		v, ok := m.Header(k)
		require.True(t, ok, k)
		require.Equal(t, want, string(v), k)
	}
	_, ok := m.Header(kafka.HeaderSourceOffset)
	require.False(t, ok, "no offset header without an offset")
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errBad = constErr("bad record")

func FuzzJSONCodec(f *testing.F) {
	f.Add([]byte(`{"id":1,"key":"cab-01","ts":"2026-11-25T10:00:00Z","v":3}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"key":""}`))
	f.Add([]byte{})
	c := kafka.WithMeta(kafka.JSON[event]())
	f.Fuzz(func(t *testing.T, b []byte) {
		msg := &kafka.Message{Topic: "t", Value: b}
		r, _, err := c.Decode(msg)
		if err == nil && r.Value.Key == "" {
			t.Fatalf("decoded an invalid event: %+v", r.Value)
		}
	})
}

// TestWithMetaPartitionCodec: WithMeta of a PartitionCodec is a PartitionCodec whose
// ForPartition goes to the wrapped one; WithMeta of a plain codec is not one.
func TestWithMetaPartitionCodec(t *testing.T) {
	_, ok := kafka.WithMeta(kafka.JSON[event]()).(kafka.PartitionCodec[kafka.Envelope[event]])
	require.False(t, ok, "WithMeta of a plain codec")

	pc := &perPartition{}
	wrapped, ok := kafka.WithMeta[event](pc).(kafka.PartitionCodec[kafka.Envelope[event]])
	require.True(t, ok, "WithMeta of a PartitionCodec")
	c := wrapped.ForPartition("t", 2)
	v, _, err := c.Decode(&kafka.Message{Topic: "t", Partition: 2, Offset: 9, Value: []byte(`{"id":7,"key":"cab-07","ts":"2026-11-25T10:00:00Z"}`)})
	require.NoError(t, err)
	require.Equal(t, 7, v.Value.ID)
	require.Equal(t, int64(9), v.Offset)
	require.Equal(t, map[string]int{"t/2": 1}, pc.calls())
	require.Zero(t, pc.shared.Load(), "decoded by the partition's codec")
	_, _, err = c.Decode(&kafka.Message{Topic: "t", Partition: 3, Value: []byte(`{"id":8,"key":"cab-08","ts":"2026-11-25T10:00:00Z"}`)})
	require.NoError(t, err)
	require.Equal(t, int64(1), pc.wrong.Load(), "the record of another partition was seen by partition 2's codec")
}

// TestJSONCodecPointer: JSON of a pointer type uses the type's own EventTime and Validate,
// as it does *T's for a value type. It looked only at *T, a pointer to the pointer without
// methods: a JSON[*event] timed every record by its Kafka timestamp, silently, skipped
// Validate, and passed a JSON null on as a nil value. A null is invalid (a dead letter).
func TestJSONCodecPointer(t *testing.T) {
	c := kafka.JSON[*event]()
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	kafkaTime := ts.Add(time.Hour)
	v, et, err := c.Decode(&kafka.Message{Value: []byte(`{"id":7,"key":"cab-07","ts":"2026-11-25T10:00:00Z","v":3}`), Timestamp: kafkaTime})
	require.NoError(t, err)
	require.Equal(t, &event{ID: 7, Key: "cab-07", TS: ts, V: 3}, v)
	require.True(t, et.Equal(ts), "event time from EventTimer, not the Kafka timestamp: %v", et)

	for _, tc := range []struct{ in, want string }{
		{`{"id":7,"ts":"2026-11-25T10:00:00Z"}`, "empty key"},
		{`{"id":7,"key":"cab-07"}`, "no event time"},
		{`null`, "null"},
		{` null `, "null"},
	} {
		_, _, err = c.Decode(&kafka.Message{Value: []byte(tc.in), Timestamp: kafkaTime})
		var inv *kafka.InvalidError
		require.ErrorAs(t, err, &inv, tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
	}
}
