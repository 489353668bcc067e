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
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/testenv"
)

var _ stream.Sink[event] = (*kafka.Producer[event])(nil)

// readKeys returns the key of every record of a topic, duplicates included: Kafka appends, so
// a record's identity is its key, and a value written twice is there twice.
func readKeys(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	require.NoError(t, err)
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	require.NoError(t, err)
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	require.NoError(t, err)
	var keys []string
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		require.NoError(t, err)
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		for {
			select {
			case m := <-pc.Messages():
				keys = append(keys, string(m.Key))
				if m.Offset+1 < end {
					continue
				}
			case <-time.After(waitFor):
				t.Fatalf("reading %s/%d timed out", topic, p)
			}
			break
		}
		require.NoError(t, pc.Close())
	}
	return keys
}

func TestProducerConformance(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topics := map[stream.Sink[event]]string{}
	streamtest.RunSinkConformance(t, streamtest.SinkSuite[event]{
		New: func(t *testing.T) stream.Sink[event] {
			topic := newTopic(t, brokers, "conf", 3)
			p, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, topic, kafka.JSONValue(func(e event) []byte { return []byte(strconv.Itoa(e.ID)) }))
			require.NoError(t, err)
			topics[p] = topic
			return p
		},
		Value:  mkEvent,
		ID:     func(e event) string { return strconv.Itoa(e.ID) },
		Stored: func(t *testing.T, s stream.Sink[event]) []string { return readKeys(t, brokers, topics[s]) },
		N:      500,
		// A producer appends: a replayed batch is stored again.
		Features: streamtest.SinkFeatures{AtLeastOnce: true},
	})
}

func TestProducerPermanentErrors(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "perm", 1)
	enc := kafka.EncoderFunc[int](func(v int) (kafka.Message, error) {
		if v < 0 {
			return kafka.Message{}, errBad
		}
		return kafka.Message{Value: make([]byte, v)}, nil
	})
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, topic, enc)
	require.NoError(t, err)
	defer p.Close(context.Background())
	err = p.Write(t.Context(), []int{-1})
	require.True(t, stream.IsPermanent(err), "encoding errors are permanent: %v", err)
	err = p.Write(t.Context(), []int{8 << 20})
	require.Error(t, err)
	require.True(t, stream.IsPermanent(err), "a message the broker can never take is permanent: %v", err)
	require.NoError(t, p.Write(t.Context(), []int{10, 20}))
	require.Equal(t, int64(2), p.Sent())
	require.NoError(t, p.Close(t.Context()))
	err = p.Write(t.Context(), []int{1})
	require.ErrorIs(t, err, kafka.ErrClosed)
	require.True(t, stream.IsPermanent(err), "a closed producer never takes a write again: %v", err)
}

// TestProducerTopicMissing: the Producer's topic does not exist and a write will not create
// it (here its client does not ask, as against a broker with auto.create.topics.enable=false,
// Amazon MSK's default). Each write was refused with UNKNOWN_TOPIC_OR_PARTITION after
// sarama's retries, an error the pipeline retries for ever: every later batch waited behind
// it and nothing was committed, with no error from Run. The write fails for good instead,
// naming the topic and the setting; once the topic exists the same Producer writes to it.
func TestProducerTopicMissing(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "prodmissing")
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, topic, kafka.JSONValue[event](nil),
		kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Metadata.AllowAutoTopicCreation = false }))
	require.NoError(t, err)
	defer p.Close(context.Background())

	err = p.Write(t.Context(), []event{mkEvent(1)})
	require.Error(t, err)
	require.True(t, stream.IsPermanent(err), "retried, the write would hold the pipeline for ever: %v", err)
	require.ErrorIs(t, err, kafka.ErrTopicNotFound)
	require.ErrorIs(t, err, sarama.ErrUnknownTopicOrPartition)
	require.ErrorContains(t, err, strconv.Quote(topic))
	require.ErrorContains(t, err, "Metadata.AllowAutoTopicCreation=false")
	require.Zero(t, p.Sent())

	createTopic(t, brokers, topic, 1)
	require.Eventually(t, func() bool { return p.Write(t.Context(), []event{mkEvent(2)}) == nil }, waitFor, 100*time.Millisecond,
		"the same Producer writes once the topic exists")
	require.Equal(t, []string{""}, readKeys(t, brokers, topic))
}
