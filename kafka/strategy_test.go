package kafka_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSourceStrategyMismatch: two members of one group with different assignment strategies
// (Config.Rebalance.Strategy). The coordinator refuses the join of the second
// (INCONSISTENT_GROUP_PROTOCOL) for as long as a member of the other strategy is in the
// group. The Source keeps trying, as it did: a group whose members all stopped to change
// strategy still holds a crashed or static member until its session timeout, and a
// rolling change goes through once the last member of the old strategy left (Java's
// consumer throws from poll, and a poll after it tries again). But its warning said only
// the broker's words, "The provider group protocol type is incompatible with the other
// members", and its stats no more: it names the setting, the group and the remedy. Once the
// other member left, the Source joins and reads every record, those produced while it
// waited included.
func TestSourceStrategyMismatch(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts = 2
	topic := newTopic(t, brokers, "strategy", parts)
	group := testenv.UniqueName(t, "g-strategy")
	produceEvents(t, brokers, topic, parts, 0, 100)

	ranged := consumerConfig(brokers, group, topic)
	ranged.Rebalance.Strategy = kafka.StrategyRange
	idsA := newIDSet()
	a := startPipeline(t, pipelineSpec{cfg: ranged, ids: idsA})
	require.Eventually(t, func() bool { return a.owned() == parts && idsA.distinct() == 100 }, waitFor, 50*time.Millisecond,
		"the range member reads every partition")

	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	idsB := newIDSet()
	b := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: idsB, // cooperative-sticky
		opts: []kafka.SourceOption{kafka.WithLogger(log)}})
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "Rebalance.Strategy") },
		waitFor, 50*time.Millisecond, "the refused member's warning names the setting; it logged:\n%s", logs.String())
	out := logs.String()
	require.Contains(t, out, "Rebalance.Strategy: cooperative-sticky")
	require.Contains(t, out, group)
	require.Contains(t, out, "the same strategy")
	st := b.src.Stats()
	require.False(t, st.FailingSince.IsZero(), "the stats say the Source cannot consume")
	require.Contains(t, st.LastError, "Rebalance.Strategy")
	require.False(t, b.ended(), "the Source keeps trying")
	require.Zero(t, b.owned())

	produceEvents(t, brokers, topic, parts, 100, 200)
	require.Eventually(t, func() bool { return idsA.distinct() == 200 }, waitFor, 50*time.Millisecond)
	require.ErrorIs(t, a.stop(t), context.Canceled)
	produceEvents(t, brokers, topic, parts, 200, 300)
	require.Eventually(t, func() bool { return b.owned() == parts && len(idsB.missingFrom(200, 300)) == 0 }, waitFor, 50*time.Millisecond,
		"the member joins once the other strategy's member left")
	for i := range 300 {
		require.True(t, idsA.has(i) || idsB.has(i), "record %d lost", i)
	}
	require.True(t, b.src.Stats().FailingSince.IsZero(), "consuming again")
	require.ErrorIs(t, b.stop(t), context.Canceled)
}
