package kafka_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestCommitNotQueuedBehindFetch: a Source's commits go over a connection of their own, not
// behind the consumer's fetch that the broker holds for Fetch.MaxWait once the consumer is
// caught up. With a MaxWait of 10 s, a bounded run's last commit waited there past commitWait
// (2 s): Commit gave up waiting and logged that the commit goes on in the background, and
// the run ended only when the fetch returned. Now every commit is done within Commit, and the
// group's offsets are at the ends when the run ends.
func TestCommitNotQueuedBehindFetch(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "own-commit", 2)
	var msgs []*sarama.ProducerMessage
	for i := range 40 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % 2), Value: sarama.StringEncoder(strconv.Itoa(i))})
	}
	produce(t, brokers, msgs)

	group := testenv.UniqueName(t, "g-own-commit")
	cfg := consumerConfig(brokers, group, topic)
	cfg.Fetch.MaxWait = 10 * time.Second
	var logbuf syncbuf.Buffer
	lg := slog.New(slog.NewTextHandler(&logbuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the Source's log:\n%s", logbuf.String())
		}
	})
	codec := kafka.CodecFunc[[]byte](func(m *kafka.Message) ([]byte, time.Time, error) { return m.Value, time.Time{}, nil })
	src, err := kafka.NewSource(cfg, codec, kafka.WithBounded(), kafka.WithLogger(lg))
	require.NoError(t, err)
	p, err := stream.New(100*time.Millisecond, stream.WithLogger(lg))
	require.NoError(t, err)
	var n atomic.Int64
	stream.To(stream.From(p, src), stream.SinkFunc[[]byte](func(_ context.Context, batch [][]byte) error {
		n.Add(int64(len(batch)))
		return nil
	}))
	require.NoError(t, p.Run(context.Background()))
	require.Equal(t, int64(len(msgs)), n.Load())
	require.NotContains(t, logbuf.String(), "commit waits", "a commit waited past commitWait")
	require.Equal(t, map[int32]int64{0: 20, 1: 20}, committedOffsets(t, brokers, group, topic, 2))
}
