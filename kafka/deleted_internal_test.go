package kafka

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestReadsPastDeletedRecords: records deleted (retention, delete-records) below an offset
// that a reader of the log's raw fetches starts from. The exactly-once read-back goes on from
// the log's start, and a Table's load probe counts the deleted records as nothing left to
// deliver. Before, both fetched at the deleted offset and failed with OFFSET_OUT_OF_RANGE for
// ever: the version 4 fetch they send carries no log start, so the read-back's skip never
// ran, and the probe had none; a Table whose records before its end offset were all deleted
// between reading its offsets and starting its consumer never finished loading.
func TestReadsPastDeletedRecords(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "deleted")
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	// The topic is new: its leader may not be known for a while on a loaded machine (sarama's
	// 3 retries 100 ms apart failed it once in CI, "Failed to deliver 1 messages").
	cfg.Producer.Retry.Max, cfg.Producer.Retry.Backoff = 20, 250*time.Millisecond
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false))
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })
	client, err := sarama.NewClient(brokers, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	prod, err := sarama.NewSyncProducerFromClient(client)
	require.NoError(t, err)
	msgs := make([]*sarama.ProducerMessage, 100)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: 0, Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(fmt.Sprint("v", i))}
	}
	require.NoError(t, prod.SendMessages(msgs))
	require.NoError(t, admin.DeleteRecords(topic, map[int32]int64{0: 60}))

	x := newTxn(Config{}, "job-1", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	x.client = client
	n, err := x.readPartition(t.Context(), topicPart{topic, 0}, 10)
	require.NoError(t, err, "read-back from an offset that was deleted")
	require.Equal(t, 40, n, "the records from the log's start on (60..99)")

	tbl := &Table[string, string]{topic: topic, client: client}
	gone := &tablePart{id: 0, end: 60}
	gone.next.Store(10)
	left, err := tbl.nothingLeft(gone)
	require.NoError(t, err)
	require.True(t, left, "every record before the end offset was deleted")
	some := &tablePart{id: 0, end: 100}
	some.next.Store(10)
	left, err = tbl.nothingLeft(some)
	require.NoError(t, err)
	require.False(t, left, "records 60..99 are still to come")
}
