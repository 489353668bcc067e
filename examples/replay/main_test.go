package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestRateLifted, on the real broker: a replay paced at one message per thousand seconds
// produces all of its messages once -rate is lifted (SIGUSR1 in main), the rest as fast as
// possible, and says so. Without the lift it would produce one message before ctx ends.
func TestRateLifted(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t, "replay-unpace")
	unpace := make(chan os.Signal, 1)
	unpace <- syscall.SIGUSR1
	o := options{topic: topic, partitions: 2, rate: 0.001, batch: 50, quiet: true, unpace: unpace,
		feed: feed.Options{Sources: "sim", SimEvents: 300, SimCabs: 5, Seed: 1}}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	require.NoError(t, run(ctx, kafka.Config{Brokers: brokers}, o, &out), "output:\n%s", out.String())
	require.Contains(t, out.String(), "-rate lifted (SIGUSR1) after 0 messages")
	require.Contains(t, out.String(), "produced 300 messages")

	c, err := sarama.NewClient(brokers, sarama.NewConfig())
	require.NoError(t, err)
	defer c.Close()
	var n int64
	for p := range int32(2) {
		end, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		require.NoError(t, err)
		n += end
	}
	require.EqualValues(t, 300, n, "messages in the topic")
}
