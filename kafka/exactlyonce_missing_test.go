package kafka_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestExactlyOnceTopicMissing: the topic of an exactly-once Producer does not exist and will
// not be created (its client does not ask, as against a broker with
// auto.create.topics.enable=false). The transactional producer's start failed on the
// topic's partitions with UNKNOWN_TOPIC_OR_PARTITION, an error retried at every session and
// every commit: the bounded run never ended, committed nothing and said nothing but log
// lines. Run fails with an error that names the topic instead, and nothing is committed.
func TestExactlyOnceTopicMissing(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "eosmissing", 1)
	alerts := testenv.UniqueName(t, "eosmissing-out")
	produceEvents(t, brokers, topic, 1, 0, 10)
	group := testenv.UniqueName(t, "g-eosmissing")
	// The transactional producer is the Source's: its client takes the Source's options.
	src, err := kafka.NewSource(consumerConfig(brokers, group, topic), kafka.JSON[event](), kafka.WithBounded(),
		kafka.WithDeadLetters(stream.DeadLetterFunc(func(context.Context, []stream.DeadLetter) error { return nil })),
		kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Metadata.AllowAutoTopicCreation = false }))
	require.NoError(t, err)
	prod, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, alerts, kafka.JSONValue[event](nil), kafka.WithExactlyOnce(src))
	require.NoError(t, err)
	p, err := stream.New(50*time.Millisecond, stream.WithName("kafka-eos-missing"),
		stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}))
	require.NoError(t, err)
	stream.To(stream.From(p, src), stream.Sink[event](prod))
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	err = p.Run(ctx)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the run must fail, not wait for a topic nobody creates")
	require.ErrorIs(t, err, kafka.ErrTopicNotFound)
	require.ErrorContains(t, err, strconv.Quote(alerts))
	for part, off := range committedOffsets(t, brokers, group, topic, 1) {
		require.LessOrEqual(t, off, int64(0), "partition %d committed without its output", part)
	}
}
