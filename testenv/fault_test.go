package testenv_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

func TestFaultRestartOpenSearchKeepsData(t *testing.T) {
	testenv.FaultTest(t)
	url := testenv.OpenSearchURL(t)
	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses: []string{url}, DisableRetry: true,
	}})
	require.NoError(t, err)
	ctx := context.Background()
	index := testenv.UniqueName(t, "restart")
	_, err = client.Index(ctx, opensearchapi.IndexReq{
		Index: index, DocumentID: "1", Body: strings.NewReader(`{"n":1}`),
		Params: opensearchapi.IndexParams{Refresh: "true"},
	})
	require.NoError(t, err)

	testenv.StopService(t, "opensearch")
	t.Cleanup(func() { testenv.StartService(t, "opensearch") }) // no-op when already up
	_, err = http.Get(url)
	require.Error(t, err, "OpenSearch still answers after stop")

	testenv.StartService(t, "opensearch")
	doc, err := client.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: index, DocumentID: "1"})
	require.NoError(t, err)
	require.True(t, doc.Found)
	_, err = client.Indices.Delete(ctx, opensearchapi.IndicesDeleteReq{Indices: []string{index}})
	require.NoError(t, err)
}

func TestFaultRestartKafkaKeepsData(t *testing.T) {
	testenv.FaultTest(t)
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "restart")
	cfg := saramaConfig()
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	_, _, err = producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("before")})
	require.NoError(t, err)
	require.NoError(t, producer.Close())

	testenv.StopService(t, "kafka")
	t.Cleanup(func() { testenv.StartService(t, "kafka") })
	testenv.StartService(t, "kafka")

	consumer, err := sarama.NewConsumer(brokers, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, consumer.Close()) }()
	// Right after the restart the broker may not lead the partition yet (a CI run got "not
	// the leader" here): a client retries, as sarama's own consumers do.
	var pc sarama.PartitionConsumer
	assert.Eventually(t, func() bool {
		pc, err = consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
		return err == nil
	}, waitFor, 100*time.Millisecond)
	require.NoError(t, err, "consume after the restart")
	defer func() { require.NoError(t, pc.Close()) }()
	select {
	case m := <-pc.Messages():
		require.Equal(t, "before", string(m.Value))
	case <-time.After(waitFor):
		t.Fatal("the message produced before the restart did not come back")
	}
}
