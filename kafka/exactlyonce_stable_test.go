package kafka_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestExactlyOnceStartsAtStableOffsets: a partition whose last owner's transaction committed
// its offset, but whose commit has not completed yet, must not be read from the offset before
// it. That is the window after a leaving instance's last commit (EndTxn answers before the
// markers are written): CI 108's scale-out test saw 25 alerts twice in read_committed output
// and zone demand short of 34 events. Here the transaction is held open on purpose, through
// the raw requests: its TxnOffsetCommit of offset 60 is sent, its EndTxn only once the
// exactly-once Source has shown that it waits (its group session failed on the unstable
// offset). Before the Source read with read_committed under exactly once, it joined at once
// and read from offset 0.
func TestExactlyOnceStartsAtStableOffsets(t *testing.T) {
	t.Parallel()
	const n, from = 100, 60
	brokers, topic, alerts := eosTopics(t, "eos-stable", n, 1)
	group := testenv.UniqueName(t, "g-stable")
	end := openOffsetTxn(t, brokers, group, topic, from)

	logs := &logWatch{}
	src, err := kafka.NewSource(consumerConfig(brokers, group, topic), kafka.JSON[event](),
		kafka.WithLogger(slog.New(logs)), kafka.WithTransactionalID(testenv.UniqueName(t, "eos-stable-src")))
	require.NoError(t, err)
	prod, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, alerts, kafka.KeyValue(
		func(e event) []byte { return []byte(e.Key) },
		func(e event) ([]byte, error) { return []byte(e.Key), nil }), kafka.WithExactlyOnce(src))
	require.NoError(t, err)
	p, err := stream.New(50*time.Millisecond, stream.WithIdleTimeout(0))
	require.NoError(t, err)
	var mu sync.Mutex
	var ids []int
	events := stream.From(p, src)
	stream.To(events, stream.SinkFunc[event](func(_ context.Context, b []event) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b {
			ids = append(ids, e.ID)
		}
		return nil
	}))
	stream.To(events, prod)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()

	// Either the session fails on the unstable offset (the fix), or the Source joins and
	// reads (the fault): whichever the log shows first.
	msg := logs.wait(t, func(m string) bool {
		return strings.Contains(m, "kafka: joined the group") || strings.Contains(m, "unstable")
	})
	require.NotContains(t, msg, "joined the group", "the Source started while the transaction that committed its offset was completing")
	end()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) >= n-from
	}, waitFor, 20*time.Millisecond, "records %d.. of %d", from, n)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, from, slices.Min(ids), "read from below the offset the transaction committed")
	require.Len(t, ids, n-from)
}

// openOffsetTxn begins a transaction of a transactional id of its own that commits group's
// offset of topic's partition 0 to offset, and returns the function that commits it. The
// offset is pending (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT) until
// then.
func openOffsetTxn(t *testing.T, brokers []string, group, topic string, offset int64) (commit func()) {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	id := testenv.UniqueName(t, "eos-stable-txn")
	// retry sends one request until its answer is not a coordinator starting or moving (the
	// transaction log's topic is made on the first use).
	retry := func(what string, send func() (sarama.KError, error)) {
		t.Helper()
		var last error
		require.Eventually(t, func() bool {
			kerr, err := send()
			switch {
			case err != nil:
				last = err
			case kerr == sarama.ErrOffsetsLoadInProgress || kerr == sarama.ErrConsumerCoordinatorNotAvailable ||
				kerr == sarama.ErrNotCoordinatorForConsumer || kerr == sarama.ErrConcurrentTransactions:
				last = kerr
				_ = client.RefreshTransactionCoordinator(id)
				_ = client.RefreshCoordinator(group)
			default:
				require.Equal(t, sarama.ErrNoError, kerr, what)
				return true
			}
			return false
		}, waitFor, 100*time.Millisecond, "%s: %v", what, last)
	}
	var pid int64
	var epoch int16
	retry("InitProducerID", func() (sarama.KError, error) {
		c, err := client.TransactionCoordinator(id)
		if err != nil {
			return 0, err
		}
		r, err := c.InitProducerID(&sarama.InitProducerIDRequest{Version: 3, TransactionalID: &id, TransactionTimeout: time.Minute, ProducerID: -1, ProducerEpoch: -1})
		if err != nil {
			return 0, err
		}
		pid, epoch = r.ProducerID, r.ProducerEpoch
		return r.Err, nil
	})
	retry("AddOffsetsToTxn", func() (sarama.KError, error) {
		c, err := client.TransactionCoordinator(id)
		if err != nil {
			return 0, err
		}
		r, err := c.AddOffsetsToTxn(&sarama.AddOffsetsToTxnRequest{Version: 2, TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, GroupID: group})
		if err != nil {
			return 0, err
		}
		return r.Err, nil
	})
	retry("TxnOffsetCommit", func() (sarama.KError, error) {
		c, err := client.Coordinator(group)
		if err != nil {
			return 0, err
		}
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
		retry("EndTxn", func() (sarama.KError, error) {
			c, err := client.TransactionCoordinator(id)
			if err != nil {
				return 0, err
			}
			r, err := c.EndTxn(&sarama.EndTxnRequest{Version: 2, TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, TransactionResult: true})
			if err != nil {
				return 0, err
			}
			return r.Err, nil
		})
	}
}

// logWatch is a slog.Handler that keeps each record's message and attributes as one line.
type logWatch struct {
	mu    sync.Mutex
	lines []string
}

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logWatch) WithGroup(string) slog.Handler            { return l }

func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

// wait returns the first line that match accepts.
func (l *logWatch) wait(t *testing.T, match func(string) bool) string {
	t.Helper()
	var found string
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if i := slices.IndexFunc(l.lines, match); i >= 0 {
			found = l.lines[i]
			return true
		}
		return false
	}, waitFor, 10*time.Millisecond, "no such log line")
	return found
}
