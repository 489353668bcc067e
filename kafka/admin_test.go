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
}
