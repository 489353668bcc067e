package kafka_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

func TestEnsureTopic(t *testing.T) {
	t.Parallel()
	cfg := kafka.Config{Brokers: testenv.KafkaBrokers(t)}
	topic := testenv.UniqueName(t, "ensure")
	n, err := kafka.EnsureTopic(t.Context(), cfg, topic, 6, 1)
	require.NoError(t, err)
	require.Equal(t, int32(6), n)
	n, err = kafka.EnsureTopic(t.Context(), cfg, topic, 3, 1)
	require.NoError(t, err, "an existing topic is fine")
	require.Equal(t, int32(6), n, "and keeps its partitions")
	_, err = kafka.EnsureTopic(t.Context(), cfg, topic, 0, 1)
	require.ErrorIs(t, err, kafka.ErrInvalidOption)
	_, err = kafka.EnsureTopic(t.Context(), cfg, topic, 1, -2)
	require.ErrorIs(t, err, kafka.ErrInvalidOption)

	// The brokers' default.replication.factor (the test broker's is 1, and it is alone).
	byDefault := testenv.UniqueName(t, "ensure-default")
	n, err = kafka.EnsureTopic(t.Context(), cfg, byDefault, 2, kafka.DefaultReplication)
	require.NoError(t, err)
	require.Equal(t, int32(2), n)
	admin := newAdmin(t, cfg.Brokers)
	meta, err := admin.DescribeTopics([]string{byDefault})
	require.NoError(t, err)
	require.Len(t, meta, 1)
	require.Len(t, meta[0].Partitions, 2)
	for _, p := range meta[0].Partitions {
		require.Len(t, p.Replicas, 1, "partition %d: the default replication factor", p.ID)
	}
}
