package kafka

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

func header(t *testing.T, m *Message, key string) string {
	t.Helper()
	v, ok := m.Header(key)
	require.True(t, ok, "header %s missing", key)
	return string(v)
}

// TestFitDeadLetter checks that a dead letter too large for its topic is cut to the limit as
// sarama counts it, keeps its origin headers, and says what was cut, with the original size and
// hash.
func TestFitDeadLetter(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 1<<20+100)
	sum := sha256.Sum256(value)
	base := stream.DeadLetter{Reason: stream.ReasonDecode, Err: "kafka: json: bad", Topic: "cabs", Partition: 3, Offset: 41,
		Key: []byte("CAB-1"), Value: value, Headers: []stream.Header{{Key: "trace", Value: []byte("t-1")}}}
	const limit = 1_000_000

	for _, tc := range []struct {
		name string
		edit func(*stream.DeadLetter)
		cut  string
	}{
		{"value", func(*stream.DeadLetter) {}, "value"},
		{"long error", func(d *stream.DeadLetter) { d.Err = strings.Repeat("é", 5000) }, "error,value"},
		{"huge headers", func(d *stream.DeadLetter) {
			d.Headers = []stream.Header{{Key: "big", Value: bytes.Repeat([]byte("h"), 2*limit)}}
		}, "headers,value"},
		{"huge key", func(d *stream.DeadLetter) { d.Key = bytes.Repeat([]byte("k"), 2*limit) }, "headers,key,value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl := base
			tc.edit(&dl)
			m := fitDeadLetter("cabs.dlq", &dl, limit)
			require.LessOrEqual(t, messageSize(&m), limit)
			require.Greater(t, messageSize(&m), limit-200, "the room is used")
			require.Equal(t, tc.cut, header(t, &m, HeaderTruncated))
			require.Equal(t, strconv.Itoa(len(value)), header(t, &m, HeaderOriginalSize))
			require.Equal(t, hex.EncodeToString(sum[:]), header(t, &m, HeaderValueSHA256))
			require.Equal(t, "cabs", header(t, &m, HeaderSourceTopic))
			require.Equal(t, "3", header(t, &m, HeaderSourcePartition))
			require.Equal(t, "41", header(t, &m, HeaderSourceOffset))
			require.Equal(t, stream.ReasonDecode, header(t, &m, HeaderReason))
			require.True(t, bytes.HasPrefix(value, m.Value), "the value is a prefix of the original")
			require.True(t, bytes.HasPrefix(dl.Key, m.Key), "the key is a prefix of the original")
			require.True(t, strings.HasPrefix(dl.Err, header(t, &m, HeaderError)))
			if !strings.Contains(tc.cut, "headers") {
				require.Equal(t, "t-1", header(t, &m, "trace"))
			}
			// sarama's own count of the message (its MaxMessageBytes check) agrees.
			pm := m.toSarama("")
			require.LessOrEqual(t, pm.ByteSize(2)+batchOverhead, limit)
		})
	}

	small := base
	small.Value = []byte("short")
	m := fitDeadLetter("cabs.dlq", &small, limit)
	_, cut := m.Header(HeaderTruncated)
	require.False(t, cut, "a dead letter that fits is not cut")
	require.Equal(t, "short", string(m.Value))
}

// TestFitDeadLetterWholeValue: a dead letter cut down for its headers or error text keeps a
// value that fits whole, and HeaderTruncated does not list "value". It listed "value" after every
// cut, so a reader took a whole value for a truncated one.
func TestFitDeadLetterWholeValue(t *testing.T) {
	const limit = 1_000_000
	base := stream.DeadLetter{Reason: stream.ReasonDecode, Err: "kafka: json: bad", Topic: "cabs", Partition: 3, Offset: 41,
		Key: []byte("CAB-1"), Value: []byte("short"), Headers: []stream.Header{{Key: "trace", Value: []byte("t-1")}}}
	for _, tc := range []struct {
		name string
		edit func(*stream.DeadLetter)
		cut  string
	}{
		{"huge headers", func(d *stream.DeadLetter) {
			d.Headers = []stream.Header{{Key: "big", Value: bytes.Repeat([]byte("h"), 2*limit)}}
		}, "headers"},
		{"huge headers and a long error", func(d *stream.DeadLetter) {
			d.Headers = []stream.Header{{Key: "big", Value: bytes.Repeat([]byte("h"), 2*limit)}}
			d.Err = strings.Repeat("e", 5000)
		}, "error,headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl := base
			tc.edit(&dl)
			m := fitDeadLetter("cabs.dlq", &dl, limit)
			require.LessOrEqual(t, messageSize(&m), limit)
			require.Equal(t, tc.cut, header(t, &m, HeaderTruncated))
			require.Equal(t, "short", string(m.Value))
			require.Equal(t, "5", header(t, &m, HeaderOriginalSize))
		})
	}
}

// FuzzFitDeadLetter: whatever the sizes of key, value, headers and error, a dead letter cut to
// a limit that can hold its x-fleetstream-* headers fits it, and what it keeps is a prefix of
// the original.
func FuzzFitDeadLetter(f *testing.F) {
	f.Add(uint32(10), uint32(100), uint32(5), uint32(20), uint32(1_000_000))
	f.Add(uint32(1<<20), uint32(2<<20), uint32(3<<20), uint32(10_000), uint32(1_048_588))
	f.Add(uint32(0), uint32(1<<20+1), uint32(0), uint32(0), uint32(4096))
	f.Fuzz(func(t *testing.T, keyLen, valueLen, headerLen, errLen, limit uint32) {
		const most = 4 << 20
		keyLen, valueLen, headerLen, errLen = keyLen%most, valueLen%most, headerLen%most, errLen%(64<<10)
		limit = 8192 + limit%(8<<20) // room for the fixed headers and a 4 KiB error
		dl := stream.DeadLetter{Reason: stream.ReasonDecode, Err: strings.Repeat("e", int(errLen)), Topic: "t", Partition: 1, Offset: 2,
			Key: bytes.Repeat([]byte("k"), int(keyLen)), Value: bytes.Repeat([]byte("v"), int(valueLen))}
		if headerLen > 0 {
			dl.Headers = []stream.Header{{Key: "h", Value: bytes.Repeat([]byte("h"), int(headerLen))}}
		}
		m := fitDeadLetter("t.dlq", &dl, int(limit))
		require.LessOrEqual(t, messageSize(&m), int(limit))
		require.True(t, bytes.HasPrefix(dl.Value, m.Value))
		require.True(t, bytes.HasPrefix(dl.Key, m.Key))
		require.Equal(t, "2", header(t, &m, HeaderSourceOffset))
		cut, truncated := m.Header(HeaderTruncated)
		if !truncated {
			require.Equal(t, len(dl.Value), len(m.Value))
			require.Equal(t, dl.Err, header(t, &m, HeaderError))
		}
		require.Equal(t, len(m.Value) < len(dl.Value), slices.Contains(strings.Split(string(cut), ","), "value"),
			"HeaderTruncated %q lists the value exactly when it was cut", cut)
	})
}

// TestDeadLetterSinkCreates: a dead-letter topic that does not exist is written (and so
// created) only if the sink's client asks and the broker creates topics; while the broker's
// setting is not known, the write is tried. The error names the topic and the setting.
func TestDeadLetterSinkCreates(t *testing.T) {
	for _, tc := range []struct {
		name                string
		asks, read, creates bool
		want                bool
	}{
		{"both", true, true, true, true},
		{"broker does not create", true, true, false, false},
		{"client does not ask", false, true, true, false},
		{"broker not known", true, false, false, true},
		{"client does not ask, broker not known", false, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &DeadLetterSink{asks: tc.asks, read: tc.read, creates: tc.creates}
			require.Equal(t, tc.want, d.createsLocked())
		})
	}
	d := &DeadLetterSink{asks: true, read: true}
	err := d.missingErr([]string{"in.dlq"}, errors.New("cause"))
	require.ErrorIs(t, err, ErrTopicNotFound)
	require.True(t, stream.IsPermanent(err))
	require.ErrorContains(t, err, `dead-letter topic "in.dlq" does not exist`)
	require.ErrorContains(t, err, "auto.create.topics.enable=false")
	require.ErrorContains(t, err, "cause")
}

// TestDeadLetterProducerSendsAtOnce: the dead-letter producer does not linger. A claim waits
// for its dead letters' acknowledgement before it pushes the records after them, and the
// producers' 5 ms linger made every one of a drain's 254 writes about 6 ms long (2.3 ms
// without; the demo topic's drain 0.3 s shorter). All three flush triggers are zero (a zero
// frequency beside a byte trigger would never send a lone dead letter), and a user's
// WithSaramaConfig still has the last word, unless it sets a trigger without a frequency.
func TestDeadLetterProducerSendsAtOnce(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:1"}}
	for _, tc := range []struct {
		name  string
		opts  []ProducerOption
		want  time.Duration
		bytes int
	}{
		{name: "default"},
		{name: "user's linger", opts: []ProducerOption{WithSaramaConfig(func(sc *sarama.Config) {
			sc.Producer.Flush.Frequency, sc.Producer.Flush.Bytes = 20*time.Millisecond, 64<<10
		})}, want: 20 * time.Millisecond, bytes: 64 << 10},
		// A byte trigger without a frequency would hold a lone dead letter for ever: the
		// producers' linger comes back.
		{name: "user's bytes only", opts: []ProducerOption{WithSaramaConfig(func(sc *sarama.Config) {
			sc.Producer.Flush.Bytes = 64 << 10
		})}, want: producerLinger, bytes: 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDeadLetterSink(cfg, "dlq", tc.opts...)
			require.NoError(t, err)
			sc, err := cfg.sarama(roleProducer)
			require.NoError(t, err)
			require.NotZero(t, sc.Producer.Flush.Frequency, "the other producers linger")
			d.p.o.tune(sc)
			require.Equal(t, tc.want, sc.Producer.Flush.Frequency)
			require.Equal(t, tc.bytes, sc.Producer.Flush.Bytes)
			require.Zero(t, sc.Producer.Flush.Messages)
		})
	}
}

// TestProducerFlushHoldingForEver: a WithSaramaConfig that zeroes the producers' linger but
// keeps a byte or message trigger would make sarama hold every write below the trigger, and
// the batch's output waited without a word (a drain stalled so while this was tried for the
// dead-letter producer). The Producer's first write (and a transaction's producer) refuse
// it, for good and before connecting, naming the setting; all three at zero is accepted.
// (An Exchange's producer sets its own 1 ms frequency.)
func TestProducerFlushHoldingForEver(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:1"}}
	hold := WithSaramaConfig(func(sc *sarama.Config) { sc.Producer.Flush.Frequency = 0 })
	p, err := NewProducer(cfg, "alerts", EncoderFunc[string](func(s string) (Message, error) { return Message{Value: []byte(s)}, nil }), hold)
	require.NoError(t, err)
	err = p.Write(t.Context(), []string{"a"})
	require.ErrorIs(t, err, ErrInvalidOption)
	require.True(t, stream.IsPermanent(err))
	require.ErrorContains(t, err, "Producer.Flush.Frequency 0 with Flush.Bytes 1048576")

	sc, err := cfg.sarama(roleProducer)
	require.NoError(t, err)
	sc.Producer.Flush.Frequency, sc.Producer.Flush.Bytes = 0, 0
	require.NoError(t, checkFlush(sc), "all three at zero: each write at once")
}
