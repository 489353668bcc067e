package kafka_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSourceLagGrowsWhileBlocked: while the pipeline's output blocks (an outage), the input
// fills, every claim fills its hold and stops fetching, and the records produced meanwhile
// must still show in Stats' ends and lag (listed from the broker; the claims' own marks stop
// at their last fetch). Once the output is released, every record is read once.
func TestSourceLagGrowsWhileBlocked(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const parts, first, total = 2, 2000, 6000
	topic := newTopic(t, brokers, "blocked", parts)
	cfg := consumerConfig(brokers, testenv.UniqueName(t, "blocked"), topic)
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{
		cfg: cfg,
		// A small hold (32 × the channel buffer: 256 records a claim), so that the claims
		// pause after a few hundred records.
		opts:   []kafka.SourceOption{kafka.WithSaramaConfig(func(c *sarama.Config) { c.ChannelBufferSize = 8 })},
		buffer: 100,
		ids:    ids,
		onBatch: func(ctx context.Context, _ []event) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	sum := func(m map[string]int64) (n int64) {
		for _, v := range m {
			n += v
		}
		return n
	}

	produceEvents(t, brokers, topic, parts, 0, first)
	require.Eventually(t, func() bool { return r.src.PausedClaims() == parts }, waitFor, 20*time.Millisecond,
		"the claims never paused")
	st := r.src.Stats()
	require.Len(t, st.End, parts)
	require.LessOrEqual(t, sum(st.End), int64(first), "ends beyond what was produced: %v", st.End)
	read := sum(st.Read)
	require.Less(t, read, int64(first), "the blocked pipeline's input took every record")

	// Produced while every claim is paused: no fetch reports these.
	produceEvents(t, brokers, topic, parts, first, total)
	require.Eventually(t, func() bool {
		st := r.src.Stats()
		return sum(st.End) == total && sum(st.Lag) == total
	}, 30*time.Second, 50*time.Millisecond, "ends and lag did not follow the records produced while blocked: %+v", r.src.Stats())
	st = r.src.Stats()
	require.Equal(t, read, sum(st.Read), "read while blocked")
	for part, end := range endOffsets(t, brokers, topic) {
		require.Equal(t, end, st.End[topic+"/"+strconv.Itoa(int(part))], "end of partition %d", part)
	}

	open()
	require.Eventually(t, func() bool { return ids.distinct() == total }, waitFor, 50*time.Millisecond,
		"records missing after the release: %v", ids.missing(total))
	ids.mu.Lock()
	defer ids.mu.Unlock()
	require.Equal(t, total, ids.total, "records read more than once")
}
