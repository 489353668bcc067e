//go:build benchfill

package kafka_test

import (
	"os"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestFillBenchTopic fills $FLEETSTREAM_BENCH_TOPIC for kafka/bench.sh. It is built only with
// the benchfill tag, so the test suite never meets it; the topic is kept: bench.sh deletes it.
func TestFillBenchTopic(t *testing.T) {
	topic := os.Getenv(envBenchTop)
	require.NotEmpty(t, topic, envBenchTop+" names the topic to fill")
	brokers := testenv.KafkaBrokers(t)
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	require.NoError(t, err)
	defer admin.Close()
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: benchParts, ReplicationFactor: 1}, false))
	produceBench(t, brokers, topic)
}
