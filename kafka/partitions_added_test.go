package kafka_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSourceReadsAddedPartitions: partitions added to a topic while a Source reads it are
// read, from their start, before WithEndWhenCaughtUp ends the input. Records flow into the
// two first partitions for a while (so the input cannot end meanwhile), then the topic gets
// two more partitions and records in all four, and the producer stops. Until the group's
// leader saw the new partitions (Config.MetadataRefresh) and a rebalance assigned them, the
// caught-up check must not end the input, although the topic is idle: before, the input
// ended with the new partitions unread, and an exit-when-idle run exited 0 without them.
func TestSourceReadsAddedPartitions(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const per, batches = 40, 6
	topic := newTopic(t, brokers, "grow", 2)
	produceEvents(t, brokers, topic, 2, 0, per)
	cfg := consumerConfig(brokers, testenv.UniqueName(t, "g-grow"), topic)
	cfg.MetadataRefresh = 2 * time.Second
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: cfg, ids: ids,
		opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond)}})
	// The producer's pace is the scenario under test (arrivals 200 ms apart), not a
	// synchronisation.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for b := 1; b < batches; b++ {
		<-tick.C
		produceEvents(t, brokers, topic, 2, b*per, (b+1)*per)
	}
	require.NoError(t, newAdmin(t, brokers).CreatePartitions(topic, 4, nil, false))
	waitPartitions(t, brokers, topic, 4)
	n := batches * per
	produceEvents(t, brokers, topic, 4, n, n+4*per)
	require.NoError(t, r.wait(t))
	require.Empty(t, ids.missing(n+4*per), "records not read before the input ended")
	require.Equal(t, n+4*per, ids.distinct())
}
