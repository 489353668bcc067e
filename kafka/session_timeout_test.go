package kafka_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSourceSessionTimeoutOutOfRange: a Rebalance.SessionTimeout outside the range the broker
// allows (group.min.session.timeout.ms and group.max.session.timeout.ms, 6s and 30m by
// default) is refused at every join with INVALID_SESSION_TIMEOUT. The Source retried the join
// for ever, consuming nothing while Run went on without an error; it stops with an error
// that names the setting.
func TestSourceSessionTimeoutOutOfRange(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "sessrange", 1)
	produceEvents(t, brokers, topic, 1, 0, 10)
	for _, tc := range []struct {
		name               string
		session, heartbeat time.Duration
	}{
		{"below the minimum", 3 * time.Second, 500 * time.Millisecond},
		{"above the maximum", 2 * time.Hour, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := consumerConfig(brokers, testenv.UniqueName(t, "g-sessrange"), topic)
			cfg.Rebalance.SessionTimeout, cfg.Rebalance.HeartbeatInterval = tc.session, tc.heartbeat
			r := startPipeline(t, pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithBounded()}, ids: newIDSet()})
			err := r.wait(t) // fails the test if the run does not end: it joined again for ever
			require.ErrorIs(t, err, kafka.ErrInvalidOption)
			require.ErrorIs(t, err, sarama.ErrInvalidSessionTimeout)
			require.ErrorContains(t, err, "Rebalance.SessionTimeout")
			require.ErrorContains(t, err, tc.session.String())
		})
	}
}
