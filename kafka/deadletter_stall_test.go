package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSourceDeadLetterTopicMissing: the dead-letter topic does not exist and will not be
// created (here the sink's client does not ask for it, as against a broker with
// auto.create.topics.enable=false). The Source must not retry for ever with the partition
// stalled at the bad record (a bounded run, or -exit-when-idle, would never end, and a live
// one would hold the partition's watermark back without a word beyond a log line): Run fails
// with an error that names the topic, and nothing past the bad record is committed.
func TestSourceDeadLetterTopicMissing(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "dlqmissing", 1)
	dlqTopic := testenv.UniqueName(t, "dlqmissing-dlq")
	const n = 100
	var msgs []*sarama.ProducerMessage
	for i := range n {
		if i == 60 {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("not json")})
		}
		msgs = append(msgs, eventMsg(topic, mkEvent(i)))
	}
	produce(t, brokers, msgs)

	sink, err := kafka.NewDeadLetterSink(kafka.Config{Brokers: brokers}, dlqTopic,
		kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Metadata.AllowAutoTopicCreation = false }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	group := testenv.UniqueName(t, "g-dlqmissing")
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic),
		opts: []kafka.SourceOption{kafka.WithBounded(), kafka.WithDeadLetters(sink)}, ids: ids})
	err = r.wait(t)
	require.Error(t, err, "a bounded run that cannot store its dead letter must not end as if it had")
	require.ErrorContains(t, err, dlqTopic)
	require.ErrorIs(t, err, kafka.ErrTopicNotFound)
	require.LessOrEqual(t, ids.distinct(), 60, "no record after the bad one reached the output")
	for p, off := range committedOffsets(t, brokers, group, topic, 1) {
		require.LessOrEqual(t, off, int64(60), "partition %d committed past the bad record", p)
	}
	admin := newAdmin(t, brokers)
	topics, err := admin.ListTopics()
	require.NoError(t, err)
	require.NotContains(t, topics, dlqTopic, "the test's premise: the topic was not created")
}

// TestSourceDeadLetterTopicDeleted: the dead-letter topic existed when the Source started
// and was deleted before its first dead letter, with nothing to create it again. The write's
// UNKNOWN_TOPIC_OR_PARTITION, retried, would stall the partition at the bad record for ever:
// Run fails with an error that names the topic instead, and nothing past the bad record is
// committed.
func TestSourceDeadLetterTopicDeleted(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "dlqdeleted", 1)
	dlqTopic := newTopic(t, brokers, "dlqdeleted-dlq", 1)
	const n = 100
	var good []*sarama.ProducerMessage
	for i := range n {
		good = append(good, eventMsg(topic, mkEvent(i)))
	}
	produce(t, brokers, good)

	sink, err := kafka.NewDeadLetterSink(kafka.Config{Brokers: brokers}, dlqTopic,
		kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Metadata.AllowAutoTopicCreation = false }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	group := testenv.UniqueName(t, "g-dlqdeleted")
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic),
		opts: []kafka.SourceOption{kafka.WithDeadLetters(sink)}, ids: ids})
	require.Eventually(t, func() bool { return ids.distinct() == n }, waitFor, 20*time.Millisecond, "the good records")

	admin := newAdmin(t, brokers)
	require.NoError(t, admin.DeleteTopic(dlqTopic))
	require.Eventually(t, func() bool {
		topics, err := admin.ListTopics()
		_, there := topics[dlqTopic]
		return err == nil && !there
	}, waitFor, 50*time.Millisecond, "the dead-letter topic deleted")
	produce(t, brokers, []*sarama.ProducerMessage{{Topic: topic, Partition: 0, Value: sarama.StringEncoder("not json")}, eventMsg(topic, mkEvent(n))})

	err = r.wait(t)
	require.ErrorIs(t, err, kafka.ErrTopicNotFound)
	require.ErrorContains(t, err, dlqTopic)
	require.ErrorContains(t, err, "dead-letter output cannot store the record")
	require.False(t, ids.has(n), "no record after the bad one reached the output")
	for p, off := range committedOffsets(t, brokers, group, topic, 1) {
		require.LessOrEqual(t, off, int64(n), "partition %d committed past the bad record", p)
	}
}

// TestSourceSlowDeadLetterOutput: a dead-letter write that takes long (a slow or unreachable
// dead-letter broker) holds up only the partition of its record, and that one only after the
// records before the bad one: they and the other partitions' records keep reaching the
// output meanwhile. Here the write returns only once every record of partition 1 and every
// record of partition 0 before the bad one was output; the bounded run then ends with every
// record and the dead letter.
func TestSourceSlowDeadLetterOutput(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts, n = 2, 2000
	topic := newTopic(t, brokers, "dlqslow", parts)
	var msgs []*sarama.ProducerMessage
	var before []int // the ids the write waits for: partition 1's, and partition 0's before the bad one
	for i := range n {
		e := mkEvent(i)
		p := partitionOf(e.Key, parts)
		if i == 100 {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("not json")})
		}
		m := eventMsg(topic, e)
		m.Partition = p
		msgs = append(msgs, m)
		if p == 1 || i < 100 {
			before = append(before, i)
		}
	}
	produce(t, brokers, msgs)

	ids := newIDSet()
	var got []stream.DeadLetter
	sink := stream.DeadLetterFunc(func(ctx context.Context, b []stream.DeadLetter) error {
		for _, id := range before {
			for !ids.has(id) { // the write waits for them: it is slow, not failing
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		got = append(got, b...)
		return nil
	})
	group := testenv.UniqueName(t, "g-dlqslow")
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic),
		opts: []kafka.SourceOption{kafka.WithBounded(), kafka.WithDeadLetters(sink)}, ids: ids})
	require.NoError(t, r.wait(t))
	require.Equal(t, n, ids.distinct(), "missing e.g. %v", ids.missing(n))
	require.Len(t, got, 1)
	require.Equal(t, "not json", string(got[0].Value))
	requireCommittedAtEnd(t, brokers, group, topic, parts)
}
