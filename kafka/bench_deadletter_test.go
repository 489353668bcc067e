package kafka_test

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

var errNotEvent = errors.New("not an event")

// deadLetterBenchRecords is how many undecodable records BenchmarkDeadLetters reads
// (FLEETSTREAM_BENCH_DEAD_LETTERS overrides it).
const deadLetterBenchRecords = 20_000

// BenchmarkDeadLetters reads N undecodable records ("bad-<i>") from a 3-partition topic
// through a bounded Source whose codec refuses every record, so that every record goes to
// the dead-letter topic "<topic>.dlq". It reports dead letters per second from Run to its
// end, including the group join, and checks that every one was written and committed.
func BenchmarkDeadLetters(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	n := deadLetterBenchRecords
	if v := os.Getenv("FLEETSTREAM_BENCH_DEAD_LETTERS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	const parts = 3
	topic := newTopic(b, brokers, "bench-dlq", parts)
	createTopic(b, brokers, topic+".dlq", 1)
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: int32(i % parts), Value: sarama.StringEncoder("bad-" + strconv.Itoa(i))}
	}
	produce(b, brokers, msgs)
	codec := kafka.CodecFunc[[]byte](func(m *kafka.Message) ([]byte, time.Time, error) {
		return nil, time.Time{}, errNotEvent
	})
	var total time.Duration
	var letters int64
	for b.Loop() {
		group := testenv.UniqueName(b, "g-bench-dlq")
		src, got, took := runBoundedBench(b, consumerConfig(brokers, group, topic), codec)
		total += took
		require.Zero(b, got)
		require.Equal(b, int64(n), src.DeadLettered())
		letters += src.DeadLettered()
		requireCommittedAtEnd(b, brokers, group, topic, parts)
	}
	b.ReportMetric(float64(letters)/total.Seconds(), "deadletters/s")
}
