package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestExactlyOnceMemberRemovedMidBatch: the group removes an exactly-once Source's member
// while a batch's output waits for its commit (here a LeaveGroup naming the member, as the
// coordinator does to a member that missed a rebalance or its session), so the batch's
// TxnOffsetCommit is answered UNKNOWN_MEMBER_ID. As Kafka Streams does with a migrated task,
// the Source aborts the transaction, drops the batch's output, rejoins, and the pipeline
// replays from the committed offsets: the run ends by itself without an error, and the
// alerts topic, read with read_committed, holds every alert exactly once.
func TestExactlyOnceMemberRemovedMidBatch(t *testing.T) {
	t.Parallel()
	const n, parts = 6_000, 3
	brokers, topic, alerts := eosTopics(t, "eos-removed", n, parts)
	group := testenv.UniqueName(t, "g-eos-removed")
	hold := newBatchHold(3) // the third batch with alerts
	logs := &logWatch{}
	r := startHeldEOS(t, brokers, group, topic, alerts, hold, kafka.WithReadCommitted(), kafka.WithBounded(),
		kafka.WithLogger(slog.New(logs)))

	select {
	case <-hold.held:
	case err := <-r.done:
		t.Fatalf("the run ended before the held batch: %v", err)
	case <-time.After(waitFor):
		t.Fatal("no batch held")
	}
	var member string
	requireGroup(t, brokers, group, func(g *sarama.GroupDescription) bool {
		if g.State != "Stable" || len(g.Members) != 1 {
			return false
		}
		for id := range g.Members {
			member = id
		}
		return true
	}, "the Source alone in a stable group")
	removeMember(t, brokers, group, member)
	requireGroup(t, brokers, group, func(g *sarama.GroupDescription) bool {
		_, in := g.Members[member]
		return !in
	}, "the member removed")
	close(hold.release)

	select {
	case err := <-r.done:
		r.done <- err
		require.NoError(t, err, "the run rides out the removal")
	case <-time.After(waitFor):
		t.Fatal("the run did not end")
	}
	// A commit met the removal, and the held batch's alerts, handed to the transaction
	// after it, were dropped: no later commit of the lost session could succeed.
	logs.wait(t, func(l string) bool { return strings.Contains(l, "took this member's partitions away during a commit") })
	require.Positive(t, logs.dropped(), "messages dropped")
	requireCommittedAtEnd(t, brokers, group, topic, parts)
	requireAlertsOnce(t, brokers, alerts, parts, expectedAlerts(n))
}

// batchHold holds the nth batch with alerts of startHeldEOS's output before its messages go
// to the transaction (a commit of the batch before, which may still run, cannot take them),
// and so before the pipeline acknowledges and commits it, until release is closed; held is
// closed when it is held.
type batchHold struct {
	nth     int64
	seen    atomic.Int64
	held    chan struct{}
	release chan struct{}
}

func newBatchHold(nth int64) *batchHold {
	return &batchHold{nth: nth, held: make(chan struct{}), release: make(chan struct{})}
}

// startHeldEOS is startEOS's pipeline (events -> repeats -> an exactly-once Producer to
// alerts) with a batch held by hold.
func startHeldEOS(t *testing.T, brokers []string, group, topic, alerts string, hold *batchHold, opts ...kafka.SourceOption) *eosRun {
	t.Helper()
	src, err := kafka.NewSource(consumerConfig(brokers, group, topic), kafka.JSON[event](), opts...)
	require.NoError(t, err)
	prod, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, alerts, kafka.KeyValue(
		func(s string) []byte { return []byte(s[:6]) },
		func(s string) ([]byte, error) { return []byte(s), nil }), kafka.WithExactlyOnce(src))
	require.NoError(t, err)
	r := &eosRun{src: src, done: make(chan error, 1)}
	p, err := stream.New(50*time.Millisecond, stream.WithIdleTimeout(0), stream.WithName("kafka-eos-test"), stream.WithBuffer(1000, 0),
		stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}))
	require.NoError(t, err)
	events := stream.From[event](p, src)
	out := stream.Apply(events, "repeats", stream.Operator[event, string](&repeats{parts: map[int32]map[string][]int64{}}))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	stream.To(out, stream.SinkFunc[string](func(ctx context.Context, batch []string) error {
		if len(batch) > 0 && hold != nil && hold.seen.Add(1) == hold.nth {
			close(hold.held)
			select {
			case <-hold.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return prod.Write(ctx, batch)
	}))
	go func() {
		err := p.Run(ctx)
		r.done <- errors.Join(err, prod.Close(context.Background()))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitFor):
			t.Errorf("pipeline did not stop within %v", waitFor)
		}
	})
	return r
}

// removeMember removes member from group with a LeaveGroup request that names it (KIP-345's
// batch form), as the coordinator removes a member whose session or rebalance timed out.
func removeMember(t *testing.T, brokers []string, group, member string) {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	require.NoError(t, err)
	defer func() { _ = client.Close() }()
	coord, err := client.Coordinator(group)
	require.NoError(t, err)
	resp, err := coord.LeaveGroup(&sarama.LeaveGroupRequest{Version: 3, GroupId: group, Members: []sarama.MemberIdentity{{MemberId: member}}})
	require.NoError(t, err)
	require.Equal(t, sarama.ErrNoError, resp.Err, "LeaveGroup")
	for _, m := range resp.Members {
		require.Equal(t, sarama.ErrNoError, m.Err, "LeaveGroup of %s", m.MemberId)
	}
}

// requireAlertsOnce reads alerts with read_committed and requires want, each exactly once.
func requireAlertsOnce(t *testing.T, brokers []string, alerts string, parts int, want map[string]bool) {
	t.Helper()
	got := readCommitted(t, brokers, alerts, parts)
	count := map[string]int{}
	for _, a := range got {
		count[a]++
	}
	var extra, twice, missing []string
	for a, c := range count {
		if !want[a] {
			extra = append(extra, a)
		}
		if c > 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", a, c))
		}
	}
	for a := range want {
		if count[a] == 0 {
			missing = append(missing, a)
		}
	}
	require.Empty(t, twice, "alerts written more than once")
	require.Empty(t, missing, "alerts missing")
	require.Empty(t, extra, "alerts that an uninterrupted run does not raise")
	require.Len(t, got, len(want))
}

// dropped sums the messages of the lines that say exactly-once output was dropped.
func (l *logWatch) dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if !strings.Contains(line, "exactly-once") || !strings.Contains(line, "dropped") {
			continue
		}
		var k int
		if i := strings.Index(line, " messages="); i >= 0 {
			if _, err := fmt.Sscanf(line[i+len(" messages="):], "%d", &k); err == nil {
				n += k
			}
		}
	}
	return n
}
