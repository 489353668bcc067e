package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/stretchr/testify/require"
	"github.com/xdg-go/scram"

	"github.com/fleetstream/fleetstream/testenv"
)

// waitFor bounds every wait on a server in these tests.
const waitFor = 60 * time.Second

// scramClient adapts xdg-go/scram to sarama.SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "fleetstream-testenv-smoke"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 20
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 20
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

func scramConfig(s testenv.SCRAM, password string) *sarama.Config {
	cfg := saramaConfig()
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = sarama.SASLMechanism(s.Mechanism)
	cfg.Net.SASL.User = s.User
	cfg.Net.SASL.Password = password
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
		if s.Mechanism == sarama.SASLTypeSCRAMSHA256 {
			return &scramClient{hash: scram.SHA256}
		}
		return &scramClient{hash: scram.SHA512}
	}
	return cfg
}

// produceAndConsume sends n messages to partition 0 of topic and reads them back in order.
func produceAndConsume(t *testing.T, brokers []string, cfg *sarama.Config, topic string, n int) {
	t.Helper()
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, producer.Close()) }()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic:     topic,
			Partition: 0,
			Key:       sarama.StringEncoder(fmt.Sprintf("vehicle-%d", i%3)),
			Value:     sarama.StringEncoder(fmt.Sprintf("position-%d", i)),
		}
	}
	require.NoError(t, producer.SendMessages(msgs))

	consumer, err := sarama.NewConsumer(brokers, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, consumer.Close()) }()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	require.NoError(t, err)
	defer func() { require.NoError(t, pc.Close()) }()
	deadline := time.After(waitFor)
	for i := range n {
		select {
		case m := <-pc.Messages():
			require.Equal(t, fmt.Sprintf("position-%d", i), string(m.Value))
			require.Equal(t, fmt.Sprintf("vehicle-%d", i%3), string(m.Key))
			require.Equal(t, int64(i), m.Offset)
		case err := <-pc.Errors():
			require.NoError(t, err)
		case <-deadline:
			t.Fatalf("got %d of %d messages within %v", i, n, waitFor)
		}
	}
}

func TestKafkaPlainProduceConsume(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "smoke-plain")
	cfg := saramaConfig()

	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, admin.Close()) }()
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false))
	defer func() { require.NoError(t, admin.DeleteTopic(topic)) }()

	produceAndConsume(t, brokers, cfg, topic, 50)
}

type groupHandler struct {
	want int
	got  chan string
}

func (groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.got <- string(m.Value)
		sess.MarkMessage(m, "")
	}
	return nil
}

func TestKafkaConsumerGroupAutoCreatedTopic(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "smoke-group")
	group := testenv.UniqueName(t, "smoke-group")
	cfg := saramaConfig()
	const n = 20

	// The topic does not exist: the broker creates it on first use.
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, producer.Close()) }()
	for i := range n {
		_, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i))})
		require.NoError(t, err)
	}

	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, cg.Close()) }()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	h := groupHandler{want: n, got: make(chan string, n)}
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case v := <-h.got:
			seen[v] = true
		case <-ctx.Done():
			t.Fatalf("consumer group got %d of %d messages within %v", len(seen), n, waitFor)
		}
	}
	cancel()
	require.NoError(t, <-done)
}

func TestKafkaSCRAMProduceConsume(t *testing.T) {
	s := testenv.KafkaSCRAM(t)
	require.Equal(t, "SCRAM-SHA-512", s.Mechanism)
	topic := testenv.UniqueName(t, "smoke-scram")
	produceAndConsume(t, s.Brokers, scramConfig(s, s.Password), topic, 20)
}

func TestKafkaSCRAMWrongPasswordRefused(t *testing.T) {
	s := testenv.KafkaSCRAM(t)
	cfg := scramConfig(s, s.Password+"-wrong")
	cfg.Metadata.Retry.Max = 0
	client, err := sarama.NewClient(s.Brokers, cfg)
	if err == nil {
		_ = client.Close()
	}
	require.Error(t, err)
	require.ErrorIs(t, err, sarama.ErrOutOfBrokers)
	require.ErrorContains(t, err, "SASL")
}

const positionsMapping = `{
  "settings": {"number_of_shards": 1, "number_of_replicas": 0},
  "mappings": {"properties": {
    "vehicle":  {"type": "keyword"},
    "ts":       {"type": "date"},
    "location": {"type": "geo_point"},
    "speed":    {"type": "float"}
  }}
}`

type position struct {
	ID      string
	Vehicle string
	TS      string
	Lat     float64
	Lon     float64
	Speed   float64
}

// Four positions in Berlin (geohash u33) between 10:00 and 11:00, two in Paris (u09) after 11:00.
var positions = []position{
	{"b1", "v-berlin", "2026-01-15T10:00:05Z", 52.5200, 13.4050, 31},
	{"b2", "v-berlin", "2026-01-15T10:15:00Z", 52.5163, 13.3777, 42},
	{"b3", "v-berlin", "2026-01-15T10:30:00Z", 52.5096, 13.3760, 12},
	{"b4", "v-berlin", "2026-01-15T10:59:59Z", 52.5306, 13.3830, 0},
	{"p1", "v-paris", "2026-01-15T11:05:00Z", 48.8566, 2.3522, 25},
	{"p2", "v-paris", "2026-01-15T11:20:00Z", 48.8606, 2.3376, 18},
}

func TestOpenSearchGeoDateAggregationsAndScriptedUpdate(t *testing.T) {
	url := testenv.OpenSearchURL(t)
	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{Addresses: []string{url}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	index := testenv.UniqueName(t, "smoke-positions")

	_, err = client.Indices.Create(ctx, opensearchapi.IndicesCreateReq{Index: index, Body: strings.NewReader(positionsMapping)})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := client.Indices.Delete(context.Background(), opensearchapi.IndicesDeleteReq{Indices: []string{index}})
		require.NoError(t, err)
	})

	var bulk strings.Builder
	for _, p := range positions {
		fmt.Fprintf(&bulk, `{"index":{"_id":%q}}`+"\n", p.ID)
		fmt.Fprintf(&bulk, `{"vehicle":%q,"ts":%q,"location":{"lat":%v,"lon":%v},"speed":%.1f}`+"\n",
			p.Vehicle, p.TS, p.Lat, p.Lon, p.Speed)
	}
	br, err := client.Bulk(ctx, opensearchapi.BulkReq{
		Index:  index,
		Body:   strings.NewReader(bulk.String()),
		Params: opensearchapi.BulkParams{Refresh: "true"},
	})
	require.NoError(t, err)
	require.False(t, br.Errors, "bulk items: %+v", br.Items)
	require.Len(t, br.Items, len(positions))

	// geo query: within 50 km of Berlin's centre
	sr, err := client.Search(ctx, &opensearchapi.SearchReq{
		Indices: []string{index},
		Body: strings.NewReader(`{"query":{"bool":{"filter":{"geo_distance":{
			"distance":"50km","location":{"lat":52.52,"lon":13.405}}}}}}`),
	})
	require.NoError(t, err)
	require.Equal(t, 4, sr.Hits.Total.Value)
	for _, h := range sr.Hits.Hits {
		require.True(t, strings.HasPrefix(h.ID, "b"), h.ID)
	}

	// aggregations
	sr, err = client.Search(ctx, &opensearchapi.SearchReq{
		Indices: []string{index},
		Body: strings.NewReader(`{"size":0,"aggs":{
			"cells":{"geohash_grid":{"field":"location","precision":3}},
			"hours":{"date_histogram":{"field":"ts","fixed_interval":"1h"}}}}`),
	})
	require.NoError(t, err)
	require.Equal(t, len(positions), sr.Hits.Total.Value)
	var aggs struct {
		Cells struct {
			Buckets []struct {
				Key      string `json:"key"`
				DocCount int    `json:"doc_count"`
			} `json:"buckets"`
		} `json:"cells"`
		Hours struct {
			Buckets []struct {
				Key      string `json:"key_as_string"`
				DocCount int    `json:"doc_count"`
			} `json:"buckets"`
		} `json:"hours"`
	}
	require.NoError(t, json.Unmarshal(sr.Aggregations, &aggs), string(sr.Aggregations))
	cells := map[string]int{}
	for _, b := range aggs.Cells.Buckets {
		cells[b.Key] = b.DocCount
	}
	require.Equal(t, map[string]int{"u33": 4, "u09": 2}, cells)
	hours := map[string]int{}
	for _, b := range aggs.Hours.Buckets {
		hours[b.Key] = b.DocCount
	}
	require.Equal(t, map[string]int{"2026-01-15T10:00:00.000Z": 4, "2026-01-15T11:00:00.000Z": 2}, hours)

	// painless: a scripted update (speed is a double in _source: "0.0")
	_, err = client.Update(ctx, opensearchapi.UpdateReq{
		Index:      index,
		DocumentID: "b4",
		Body: strings.NewReader(`{"script":{"lang":"painless",
			"source":"ctx._source.speed += params.delta","params":{"delta":7.5}}}`),
		Params: opensearchapi.UpdateParams{Refresh: "true"},
	})
	require.NoError(t, err)
	doc, err := client.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: index, DocumentID: "b4"})
	require.NoError(t, err)
	var src struct {
		Speed float64 `json:"speed"`
	}
	require.NoError(t, json.Unmarshal(doc.Source, &src))
	require.InDelta(t, 7.5, src.Speed, 1e-9)
}
