package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestTableLoadReadDenied: with Describe allowed and Read denied, the topic check passes and
// every fetch is refused with TOPIC_AUTHORIZATION_FAILED, which sarama retries for ever:
// Load fails with ErrNotAuthorized, as its doc says, instead of waiting until its context
// ends (found by helper-85's review).
func TestTableLoadReadDenied(t *testing.T) {
	t.Parallel()
	sc := testenv.KafkaSCRAM(t)
	plain := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, plain, "review-table-acl", 1)
	produceTable(t, plain, topic, tableRec{"cab-1", `{"name":"ana"}`, time.Now(), 0})
	acls(t, plain, "User:"+sc.User, sarama.AclResourceTopic, topic,
		[]sarama.AclOperation{sarama.AclOperationDescribe}, []sarama.AclOperation{sarama.AclOperationRead})
	cfg := kafka.Config{Brokers: sc.Brokers, ClientID: "fleetstream-table-test",
		SASL: kafka.SASL{Mechanism: kafka.Mechanism(sc.Mechanism), User: sc.User, Password: sc.Password}}
	tab, err := kafka.NewTable(cfg, topic, decodeDriver)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tab.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*failFast)
	defer cancel()
	start := time.Now()
	err = tab.Load(ctx)
	took := time.Since(start)
	t.Logf("Load after %v: %v; stats %+v", took.Round(time.Millisecond), err, tab.Stats())
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Load waited silently until the deadline")
	require.ErrorIs(t, err, kafka.ErrNotAuthorized)
}

// TestTableLoadOddPartitions: readiness on unusual partitions: one never written, one holding only an aborted
// transaction, one whose records were all deleted (delete-records), one ending in a commit
// marker after a tombstone. Load returns and the table is exactly what was committed.
func TestTableLoadOddPartitions(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "review-table-odd")
	str := func(s string) *string { return &s }
	admin := newAdmin(t, brokers)
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"cleanup.policy": str("compact,delete")}}, false))
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })
	waitPartitions(t, brokers, topic, 4)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	c := saramaConfig()
	c.Producer.Idempotent = true
	c.Producer.Transaction.ID = testenv.UniqueName(t, "review-table-odd")
	c.Net.MaxOpenRequests = 1
	c.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(brokers, c)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	txn := func(commit bool, msgs ...*sarama.ProducerMessage) {
		require.NoError(t, p.BeginTxn())
		for _, m := range msgs {
			_, _, err := p.SendMessage(m)
			require.NoError(t, err)
		}
		if commit {
			require.NoError(t, p.CommitTxn())
		} else {
			require.NoError(t, p.AbortTxn())
		}
	}
	msg := func(part int32, key, value string, s int) *sarama.ProducerMessage {
		m := &sarama.ProducerMessage{Topic: topic, Partition: part, Key: sarama.StringEncoder(key), Timestamp: t0.Add(time.Duration(s) * time.Second)}
		if value != "" {
			m.Value = sarama.StringEncoder(value)
		}
		return m
	}
	// partition 0: empty. partition 1: an aborted transaction only.
	txn(false, msg(1, "cab-1", `{"name":"zed"}`, 0), msg(1, "cab-1b", `{"name":"zed"}`, 0))
	// partition 2: records deleted up to the end.
	produceTable(t, brokers, topic, tableRec{"cab-2", `{"name":"ana"}`, t0, 2}, tableRec{"cab-2b", `{"name":"ana"}`, t0, 2})
	require.NoError(t, admin.DeleteRecords(topic, map[int32]int64{2: 2}))
	// partition 3: a value, then a tombstone and a commit marker.
	txn(true, msg(3, "cab-3", `{"name":"bob"}`, 0))
	txn(true, msg(3, "cab-3", "", 10))

	ctx, cancel := context.WithTimeout(t.Context(), failFast)
	defer cancel()
	tab, err := kafka.NewTable(kafka.Config{Brokers: brokers, ClientID: "fleetstream-table-test"}, topic, decodeDriver)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tab.Close()) })
	require.NoError(t, tab.Load(ctx))
	st := tab.Stats()
	require.EqualValues(t, 2, st.Records, "%+v", st)
	require.Equal(t, 0, st.Keys)
	v, ok := tab.Lookup("cab-3", t0.Add(5*time.Second))
	require.True(t, ok)
	require.Equal(t, "bob", v.Name)
	_, ok = tab.Lookup("cab-3", t0.Add(10*time.Second))
	require.False(t, ok)
	for _, k := range []string{"cab-1", "cab-1b", "cab-2", "cab-2b"} {
		_, ok := tab.Latest(k)
		require.False(t, ok, k)
	}
}

// TestTableLoadPartitionReadDenied: the same for a co-partitioned table: LoadPartition fails
// with ErrNotAuthorized (it waited until its context ended: join's load timeout, 10 minutes).
func TestTableLoadPartitionReadDenied(t *testing.T) {
	t.Parallel()
	sc := testenv.KafkaSCRAM(t)
	plain := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, plain, "review-copart-acl", 1)
	produceTable(t, plain, topic, tableRec{"cab-1", `{"name":"ana"}`, time.Now(), 0})
	acls(t, plain, "User:"+sc.User, sarama.AclResourceTopic, topic,
		[]sarama.AclOperation{sarama.AclOperationDescribe}, []sarama.AclOperation{sarama.AclOperationRead})
	cfg := kafka.Config{Brokers: sc.Brokers, ClientID: "fleetstream-table-test",
		SASL: kafka.SASL{Mechanism: kafka.Mechanism(sc.Mechanism), User: sc.User, Password: sc.Password}}
	tab, err := kafka.NewTable(cfg, topic, decodeDriver, kafka.WithCoPartitioned())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tab.Close() })
	require.NoError(t, tab.Load(t.Context()))
	ctx, cancel := context.WithTimeout(t.Context(), 2*failFast)
	defer cancel()
	start := time.Now()
	err = tab.LoadPartition(ctx, 0)
	took := time.Since(start)
	t.Logf("LoadPartition after %v: %v; stats %+v", took.Round(time.Millisecond), err, tab.Stats())
	require.NotErrorIs(t, err, context.DeadlineExceeded, "LoadPartition waited silently until the deadline")
	require.ErrorIs(t, err, kafka.ErrNotAuthorized)
}

// labelledGoroutines counts the goroutines carrying pprof label fleetstream_test=label (those
// started, directly or not, from code run under pprof.Do with it) whose stack has a frame
// containing frame.
func labelledGoroutines(t *testing.T, label, frame string) int {
	t.Helper()
	var b strings.Builder
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&b, 1))
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, `"fleetstream_test":"`+label+`"`) && strings.Contains(g, frame) {
			n += countOf(g)
		}
	}
	return n
}

// countOf is the goroutine count heading a record of pprof's goroutine profile (debug=1).
func countOf(record string) int {
	var n int
	if _, err := fmt.Sscanf(record, "%d @", &n); err != nil {
		return 1
	}
	return n
}

// TestTableReadDeniedAfterLoadLetsGo: a loaded table whose reads the ACLs refuse later stops
// following the partition, as documented, and lets go of it: it left sarama's partition
// consumer running, fetching for ever and sending each refusal into an error channel that
// nobody read any more; once that channel was full, sarama's broker consumer blocked on it,
// and Close could not make it let go, so its goroutines outlived the Table for good.
func TestTableReadDeniedAfterLoadLetsGo(t *testing.T) {
	t.Parallel()
	sc := testenv.KafkaSCRAM(t)
	plain := testenv.KafkaBrokers(t)
	topic := newCompactedTopic(t, plain, "review-table-revoked", 1)
	produceTable(t, plain, topic, tableRec{"cab-1", `{"name":"ana"}`, time.Now(), 0})
	principal := "User:" + sc.User
	acls(t, plain, principal, sarama.AclResourceTopic, topic,
		[]sarama.AclOperation{sarama.AclOperationDescribe, sarama.AclOperationRead}, nil)
	var logs syncbuf.Buffer
	var retries atomic.Int64 // for the log
	cfg := kafka.Config{Brokers: sc.Brokers, ClientID: "fleetstream-table-test",
		SASL: kafka.SASL{Mechanism: kafka.Mechanism(sc.Mechanism), User: sc.User, Password: sc.Password}}
	tab, err := kafka.NewTable(cfg, topic, decodeDriver, kafka.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		kafka.WithSaramaConfig(func(c *sarama.Config) {
			c.ChannelBufferSize = 4 // fills after a few refusals (128 by default: minutes at sarama's 2 s backoff)
			c.Consumer.Retry.BackoffFunc = func(int) time.Duration { retries.Add(1); return time.Millisecond }
		}))
	require.NoError(t, err)
	label := testenv.UniqueName(t, "revoked")
	pprof.Do(t.Context(), pprof.Labels("fleetstream_test", label), func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, failFast)
		defer cancel()
		require.NoError(t, tab.Load(ctx))
	})
	v, ok := tab.Latest("cab-1")
	require.True(t, ok)
	require.Equal(t, "ana", v.Name)

	// Deny Read now.
	admin := newAdmin(t, plain)
	res := sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: topic, ResourcePatternType: sarama.AclPatternLiteral}
	require.NoError(t, admin.CreateACLs([]*sarama.ResourceAcls{{Resource: res, Acls: []*sarama.Acl{{Principal: principal, Host: "*",
		Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionDeny}}}}))
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "table partition no longer followed")
	}, failFast, 10*time.Millisecond, "the refusal was never seen: %s; %+v", logs.String(), tab.Stats())
	// Either the partition consumer let go, or it kept fetching until its error channel was
	// full and it blocked sending the next refusal.
	require.Eventually(t, func() bool {
		return labelledGoroutines(t, label, "sarama.(*partitionConsumer).sendError") > 0 ||
			labelledGoroutines(t, label, "sarama.(*partitionConsumer)") == 0
	}, waitFor, 10*time.Millisecond)
	t.Logf("fetches retried after a refusal: %d", retries.Load())

	require.NoError(t, tab.Close())
	require.Eventually(t, func() bool {
		return labelledGoroutines(t, label, "sarama.") == 0
	}, failFast, 10*time.Millisecond, "goroutines of the table's consumer outlived Close: %d", labelledGoroutines(t, label, "sarama."))
}
