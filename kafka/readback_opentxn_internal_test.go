package kafka

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestReadBackWaitsForOpenTransactions: the read-back of committed output waits for the
// transactions open on an output partition when it starts, so that output another producer
// committed after one of them is read back. Every instance of a job writes to every partition
// of its output topics: a transaction that a killed instance left open pins the partition's
// last stable offset until the broker aborts it, and the read-back stopped there, missed what
// the partition's previous owner committed after it, and the replay wrote it again (the
// scale-out test's alerts read twice). Here one transactional producer leaves a message in an
// open transaction, another commits one after it; the read-back must read the second once
// the first is aborted (before: it read nothing, at once).
func TestReadBackWaitsForOpenTransactions(t *testing.T) {
	// Not parallel: it sets a hook of the package's read-back.
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "readback-open")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := EnsureTopic(ctx, Config{Brokers: brokers}, topic, 1, DefaultReplication)
	require.NoError(t, err)

	producer := func(id string) sarama.SyncProducer {
		sc := sarama.NewConfig()
		sc.Version = sarama.V2_8_0_0
		sc.Producer.Idempotent = true
		sc.Producer.Transaction.ID = testenv.UniqueName(t, id)
		sc.Producer.Transaction.Timeout = time.Minute
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Return.Successes = true
		sc.Net.MaxOpenRequests = 1
		sc.Producer.Retry.Max, sc.Producer.Retry.Backoff = 20, 250*time.Millisecond // a new topic's leader, under load
		p, err := sarama.NewSyncProducer(brokers, sc)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	open, other := producer("open"), producer("other")
	require.NoError(t, open.BeginTxn())
	_, _, err = open.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("in the open transaction")})
	require.NoError(t, err)
	require.NoError(t, other.BeginTxn())
	_, _, err = other.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("committed after it")})
	require.NoError(t, err)
	require.NoError(t, other.CommitTxn())

	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	tx := newTxn(Config{Brokers: brokers}, "t", slog.New(slog.DiscardHandler), nil)
	tx.client = client

	waiting := make(chan struct{})
	var once sync.Once
	testHookStableWait = func() { once.Do(func() { close(waiting) }) }
	t.Cleanup(func() { testHookStableWait = nil })
	aborted := make(chan error, 1)
	go func() {
		select {
		case <-waiting:
			aborted <- open.AbortTxn()
		case <-ctx.Done():
			aborted <- ctx.Err()
		}
	}()
	n, err := tx.readPartition(ctx, topicPart{topic, 0}, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the message committed after the open transaction's, read back")
	cancel()
	require.NoError(t, <-aborted)
}
