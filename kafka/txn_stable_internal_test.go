package kafka

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestGroupCommitsStable: groupCommits does not answer the offset before a transaction's
// while the transaction that committed a newer one completes: it waits, and after about two
// seconds returns UNSTABLE_OFFSET_COMMIT; once the transaction is committed it answers the
// transaction's offset. Without require_stable it answered "nothing committed" at once.
func TestGroupCommitsStable(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic, group := testenv.UniqueName(t, "stable"), testenv.UniqueName(t, "g-stable")
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	require.NoError(t, err)
	defer func() { _ = admin.Close() }()
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false))
	commit := openOffsetTxn(t, brokers, group, topic, 60)

	client, err := sarama.NewClient(brokers, cfg)
	require.NoError(t, err)
	defer func() { _ = client.Close() }()
	parts := map[string][]int32{topic: {0}}
	start := time.Now()
	_, err = groupCommits(client, group, parts)
	require.ErrorIs(t, err, sarama.ErrUnstableOffsetCommit)
	require.GreaterOrEqual(t, time.Since(start), time.Duration(unstableAttempts-1)*unstableWait, "asked again meanwhile")

	commit()
	got, err := groupCommits(client, group, parts)
	require.NoError(t, err)
	require.Equal(t, int64(60), got[topicPart{topic, 0}].Offset)
}

// openOffsetTxn begins a transaction of a transactional id of its own that commits group's
// offset of topic's partition 0 to offset, and returns the function that commits it. The
// offset is pending (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT) until
// then.
func openOffsetTxn(t *testing.T, brokers []string, group, topic string, offset int64) (commit func()) {
	t.Helper()
	return openOffsetTxnAs(t, brokers, testenv.UniqueName(t, "eos-stable-txn"), group, topic, offset)
}

// openOffsetTxnAs is openOffsetTxn with the transactional id given: a process killed in the
// middle of its commit, whose restart starts a producer with the same id.
func openOffsetTxnAs(t *testing.T, brokers []string, id, group, topic string, offset int64) (commit func()) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	// retry sends one request to the coordinator that coord finds until its answer is not a
	// coordinator starting or moving (the transaction log's topic is made on the first use).
	txnCoord := func() (*sarama.Broker, error) { return client.TransactionCoordinator(id) }
	groupCoord := func() (*sarama.Broker, error) { return client.Coordinator(group) }
	retry := func(what string, coord func() (*sarama.Broker, error), send func(*sarama.Broker) (sarama.KError, error)) {
		t.Helper()
		var last error
		require.Eventually(t, func() bool {
			c, err := coord()
			var kerr sarama.KError
			if err == nil {
				kerr, err = send(c)
			}
			switch {
			case err != nil:
				last = err
			case kerr == sarama.ErrOffsetsLoadInProgress || kerr == sarama.ErrConsumerCoordinatorNotAvailable ||
				kerr == sarama.ErrNotCoordinatorForConsumer || kerr == sarama.ErrConcurrentTransactions ||
				kerr == sarama.ErrUnknownTopicOrPartition: // a topic made just before, not yet in the coordinator's metadata
				last = kerr
				_ = client.RefreshTransactionCoordinator(id)
				_ = client.RefreshCoordinator(group)
			default:
				require.Equal(t, sarama.ErrNoError, kerr, what)
				return true
			}
			return false
		}, 90*time.Second, 100*time.Millisecond, "%s: %v", what, last)
	}
	var pid int64
	var epoch int16
	retry("InitProducerID", txnCoord, func(c *sarama.Broker) (sarama.KError, error) {
		r, err := c.InitProducerID(&sarama.InitProducerIDRequest{Version: 3, TransactionalID: &id, TransactionTimeout: time.Minute, ProducerID: -1, ProducerEpoch: -1})
		if err != nil {
			return 0, err
		}
		pid, epoch = r.ProducerID, r.ProducerEpoch
		return r.Err, nil
	})
	retry("AddOffsetsToTxn", txnCoord, func(c *sarama.Broker) (sarama.KError, error) {
		r, err := c.AddOffsetsToTxn(&sarama.AddOffsetsToTxnRequest{Version: 2, TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, GroupID: group})
		if err != nil {
			return 0, err
		}
		return r.Err, nil
	})
	retry("TxnOffsetCommit", groupCoord, func(c *sarama.Broker) (sarama.KError, error) {
		r, err := c.TxnOffsetCommit(&sarama.TxnOffsetCommitRequest{Version: 2, TransactionalID: id, GroupID: group,
			ProducerID: pid, ProducerEpoch: epoch,
			Topics: map[string][]*sarama.PartitionOffsetMetadata{topic: {{Partition: 0, Offset: offset, LeaderEpoch: -1}}}})
		if err != nil {
			return 0, err
		}
		for _, pe := range r.Topics[topic] {
			if pe.Err != sarama.ErrNoError {
				return pe.Err, nil
			}
		}
		return sarama.ErrNoError, nil
	})
	return func() {
		t.Helper()
		retry("EndTxn", txnCoord, func(c *sarama.Broker) (sarama.KError, error) {
			r, err := c.EndTxn(&sarama.EndTxnRequest{Version: 2, TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, TransactionResult: true})
			if err != nil {
				return 0, err
			}
			return r.Err, nil
		})
	}
}
