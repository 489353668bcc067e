package kafka_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestExchangeTopicFitsProducerLimit: an exchange whose producer takes records larger than
// the broker's default message.max.bytes (WithSaramaConfig raising
// Producer.MaxMessageBytes) makes its topic to take them too: a record Send accepts is
// written and read back whole. The topic was made with the broker's default limit (1 MiB),
// so such a record passed Send's size check and the broker refused it (MESSAGE_TOO_LARGE),
// a permanent error that stopped the pipeline at the first large value.
func TestExchangeTopicFitsProducerLimit(t *testing.T) {
	t.Parallel()
	brokers, topic, pipeline, repart := exchangeNames(t, "xl", "big")
	ex, err := kafka.NewExchange(consumerConfig(brokers, pipeline, topic), pipeline, "big", stream.StringCodec{},
		kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Producer.MaxMessageBytes = 4 << 20 }))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close(context.Background())) }()
	n, err := ex.Open(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)

	big := strings.Repeat("x", 2<<20)
	require.NoError(t, ex.Send(t.Context(), []stream.Shuffled[string]{{Value: big, Partition: 0, From: 0, Seq: 7, Time: 1}}),
		"a record within the producer's MaxMessageBytes")
	recs, _ := ex.Sent()
	require.Equal(t, int64(1), recs)

	// The record is in the topic, whole.
	c, err := sarama.NewConsumer(brokers, saramaConfig())
	require.NoError(t, err)
	defer c.Close()
	pc, err := c.ConsumePartition(repart, 0, sarama.OffsetOldest)
	require.NoError(t, err)
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		require.Greater(t, len(m.Value), len(big))
		require.Contains(t, string(m.Value), big[:1000])
	case err := <-pc.Errors():
		t.Fatal(err)
	case <-t.Context().Done():
		t.Fatal("no record")
	}

	// Past the producer's limit: refused before anything is sent, as before.
	err = ex.Send(t.Context(), []stream.Shuffled[string]{{Value: strings.Repeat("y", 4<<20), Partition: 0, From: 0, Seq: 8, Time: 1}})
	require.Error(t, err)
	require.True(t, stream.IsPermanent(err))
	require.ErrorContains(t, err, "exceeds the producer's MaxMessageBytes")
}

// TestExchangeTopicKeepsRecords: the repartition topic an Exchange makes sets, as its own
// configuration, every setting that could remove or refuse its records before the purge:
// retention.ms and retention.bytes -1, cleanup.policy delete. Only retention.ms was set, so
// the topic took the cluster's log.retention.bytes (which clusters set to bound their disks:
// records the group had yet to read were deleted, and the Exchange stopped with ErrDataLoss)
// and log.cleanup.policy (compact: the broker refuses the topic's records, which have no key).
func TestExchangeTopicKeepsRecords(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "xk", 2)
	pipeline := testenv.UniqueName(t, "xk")
	deleteTopicAfter(t, brokers, pipeline+"-keep-repartition")
	ex, err := kafka.NewExchange(consumerConfig(brokers, pipeline, topic), pipeline, "keep", stream.StringCodec{})
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close(context.Background())) }()
	_, err = ex.Open(t.Context())
	require.NoError(t, err)

	want := map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete",
		// Segments small enough that what the purge deletes frees its disk (the broker's
		// default segment is 1 GiB, rolled weekly).
		"segment.bytes": "52428800", "segment.ms": "600000"}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	cfg, err := newAdmin(t, brokers).DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: ex.Topic(), ConfigNames: names}}, sarama.DescribeConfigsOptions{})
	require.NoError(t, err)
	require.Len(t, cfg, 1)
	got := map[string]string{}
	for _, e := range cfg[0].Configs {
		if e.Source == sarama.SourceTopic { // the topic's own, not the broker's default
			got[e.Name] = e.Value
		}
	}
	require.Equal(t, want, got)
}

// TestExchangeSizesToTheTopicsLimit: an exchange whose topic exists with a smaller
// max.message.bytes than its producer's (made by an earlier release, or changed by an
// administrator) packs its messages to the topic's limit, and refuses a record that cannot
// fit it before anything is sent. Send sized its messages by the producer's MaxMessageBytes
// only: the broker refused a message of several records (MESSAGE_TOO_LARGE), a permanent
// error that stopped the pipeline.
func TestExchangeSizesToTheTopicsLimit(t *testing.T) {
	t.Parallel()
	brokers, topic, pipeline, repart := exchangeNames(t, "xlim", "small")
	const limit = 20_000
	size := strconv.Itoa(limit)
	admin := newAdmin(t, brokers)
	require.NoError(t, admin.CreateTopic(repart, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &size}}, false))
	waitPartitions(t, brokers, repart, 1)

	ex, err := kafka.NewExchange(consumerConfig(brokers, pipeline, topic), pipeline, "small", stream.StringCodec{})
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close(context.Background())) }()
	_, err = ex.Open(t.Context())
	require.NoError(t, err)

	// Four records of 6,000 bytes: one message of the producer's limit, three of the topic's.
	var recs []stream.Shuffled[string]
	for i := range 4 {
		recs = append(recs, stream.Shuffled[string]{Value: strings.Repeat(strconv.Itoa(i), 6000), Partition: 0, From: 0, Seq: int64(i), Time: 1})
	}
	require.NoError(t, ex.Send(t.Context(), recs), "records that fit the topic's max.message.bytes")
	n, _ := ex.Sent()
	require.Equal(t, int64(4), n)
	require.Greater(t, ex.SentMessages(), int64(1), "packed to the topic's limit")

	err = ex.Send(t.Context(), []stream.Shuffled[string]{{Value: strings.Repeat("y", limit), Partition: 0, From: 0, Seq: 9, Time: 1}})
	require.Error(t, err)
	require.True(t, stream.IsPermanent(err))
	require.ErrorContains(t, err, "max.message.bytes")
	n, _ = ex.Sent()
	require.Equal(t, int64(4), n, "refused before anything was sent")
}

// exchangeNames makes a source topic of one partition and names a pipeline after prefix: it
// returns the brokers, the topic, the pipeline and the topic of its repartition name,
// deleted after the test.
func exchangeNames(t *testing.T, prefix, name string) (brokers []string, topic, pipeline, repart string) {
	t.Helper()
	brokers = testenv.KafkaBrokers(t)
	topic = newTopic(t, brokers, prefix, 1)
	pipeline = testenv.UniqueName(t, prefix)
	repart = pipeline + "-" + name + "-repartition"
	deleteTopicAfter(t, brokers, repart)
	return brokers, topic, pipeline, repart
}
