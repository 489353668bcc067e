package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestTableRecordsDeletedWhileLoading: records deleted (retention of a compact,delete topic,
// or delete-records) ahead of where the Table's consumer reads make its next fetch fail
// with OFFSET_OUT_OF_RANGE, on which sarama shuts the partition consumer down. The Table
// must read on from the log's new start: Load returns, and records written afterwards
// reach the table.
func TestTableRecordsDeletedWhileLoading(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "table-deleted")
	str := func(s string) *string { return &s }
	admin := newAdmin(t, brokers)
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"cleanup.policy": str("compact,delete")}}, false))
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })
	waitPartitions(t, brokers, topic, 1)
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	const batches, per = 20, 50
	for b := range batches { // a batch per call: the consumer fetches one at a time
		recs := make([]tableRec, per)
		for i := range recs {
			recs[i] = tableRec{fmt.Sprintf("cab-%d", b*per+i), `{"name":"old"}`, at, 0}
		}
		produceTable(t, brokers, topic, recs...)
	}

	// decode blocks at the first record until released: the consumer fills its buffer and
	// stops fetching, far before the end.
	first, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	decode := func(key, value []byte) (string, driver, error) {
		once.Do(func() {
			close(first)
			<-release
		})
		return decodeDriver(key, value)
	}
	tab, err := kafka.NewTable(kafka.Config{Brokers: brokers, ClientID: "fleetstream-table-test",
		Fetch: kafka.Fetch{MaxBytes: 1}}, topic, decode)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tab.Close()) })
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	loaded := make(chan error, 1)
	go func() { loaded <- tab.Load(ctx) }()
	select {
	case <-first:
	case <-ctx.Done():
		t.Fatal("no record read")
	}
	require.NoError(t, admin.DeleteRecords(topic, map[int32]int64{0: batches * per}))
	close(release)
	require.NoError(t, <-loaded, "Load must return once what is left before the end offset was deleted")

	produceTable(t, brokers, topic, tableRec{"cab-new", `{"name":"new"}`, at, 0})
	for {
		if v, ok := tab.Latest("cab-new"); ok {
			require.Equal(t, "new", v.Name)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("a record written after the deletion never reached the table: %+v", tab.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestTableCloseDuringLoad: Close while Load waits for a partition to reach its end offset
// (here held by a transaction left open) makes Load return, with ErrNotLoaded.
func TestTableCloseDuringLoad(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, brokers, "table-close-load", 1)
	c := saramaConfig()
	c.Producer.Idempotent = true
	c.Producer.Transaction.ID = testenv.UniqueName(t, "table-close-load")
	c.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(brokers, c)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	require.NoError(t, p.BeginTxn())
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("cab-1"),
		Value: sarama.StringEncoder(`{"name":"ana"}`)})
	require.NoError(t, err)
	defer func() { _ = p.AbortTxn() }() // fails when the test outlived the transaction timeout

	tab, err := kafka.NewTable(kafka.Config{Brokers: brokers, ClientID: "fleetstream-table-test"}, topic, decodeDriver)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	loaded := make(chan error, 1)
	go func() { loaded <- tab.Load(ctx) }()
	for len(tab.Stats().Partitions) == 0 { // connected: Load waits for the transaction
		select {
		case <-ctx.Done():
			t.Fatal("Load never connected")
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.NoError(t, tab.Close())
	err = <-loaded
	require.ErrorIs(t, err, kafka.ErrNotLoaded)
	require.NoError(t, ctx.Err(), "Load returned only when its context ended")
}

// TestTableTopicRecreated: a table topic deleted and created again under the same name is a
// new topic: the table drops the keys read from the old one and reads the new one from its
// start. It kept the old keys for ever and read the new log from the old one's offsets on,
// skipping the new topic's first records without a word.
func TestTableTopicRecreated(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	// Without topic ids (metadata before version 10), a table sees that the log's end went
	// back before what it read: the new topic has fewer records than the old.
	noIDs := kafka.WithSaramaConfig(func(c *sarama.Config) { c.Version = sarama.V2_4_0_0 })
	for _, tc := range []struct {
		name string
		opts []kafka.TableOption
		new  int
	}{
		{"global", nil, 10}, // more records per partition than the table read
		{"co-partitioned", []kafka.TableOption{kafka.WithCoPartitioned()}, 10},
		{"global without topic ids", []kafka.TableOption{noIDs}, 2},
		{"co-partitioned without topic ids", []kafka.TableOption{kafka.WithCoPartitioned(), noIDs}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := newCompactedTopic(t, brokers, "table-recreated", 2)
			at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			recs := func(name string, n int) []tableRec {
				rs := make([]tableRec, n)
				for i := range rs {
					rs[i] = tableRec{fmt.Sprintf("%s-%d", name, i), fmt.Sprintf(`{"name":%q}`, name), at, int32(i % 2)}
				}
				return rs
			}
			old, recreated := recs("old", 6), recs("new", tc.new)
			produceTable(t, brokers, topic, old...)
			tab := loadTable(t, brokers, topic, tc.opts...)
			if tab.CoPartitioned() {
				for p := range int32(2) {
					require.NoError(t, tab.LoadPartition(t.Context(), p))
				}
			}
			require.Equal(t, len(old), tab.Len())

			admin := newAdmin(t, brokers)
			require.NoError(t, admin.DeleteTopic(topic))
			compact := "compact"
			require.Eventually(t, func() bool { // refused while the old topic is being deleted
				return admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
					ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false) == nil
			}, waitFor, 50*time.Millisecond)
			waitPartitions(t, brokers, topic, 2)
			produceTable(t, brokers, topic, recreated...)

			found := func(rs []tableRec) (n int) {
				for _, r := range rs {
					if _, ok := tab.Latest(r.key); ok {
						n++
					}
				}
				return n
			}
			require.Eventually(t, func() bool { return found(recreated) == len(recreated) && found(old) == 0 }, waitFor, 50*time.Millisecond,
				"new keys found: %d of %d, old keys found: %d; %+v", found(recreated), len(recreated), found(old), tab.Stats())
			require.Equal(t, len(recreated), tab.Len())
		})
	}
}
