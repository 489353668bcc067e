// Topics for tables: EnsureCompactedTopic and the cleanup-policy check.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// ErrNotCompacted is wrapped by EnsureCompactedTopic's error when the topic exists with a
// cleanup.policy without compact.
var ErrNotCompacted = errors.New("kafka: topic is not compacted")

// EnsureCompactedTopic creates topic as a compacted topic (cleanup.policy=compact), the kind
// a Table reads, with the given number of partitions and replication factor, unless it
// exists. An existing topic is checked: if its cleanup.policy lacks compact, the error wraps
// ErrNotCompacted (the table would lose keys whose records expire); that needs Describe and
// DescribeConfigs on it, not Create (see EnsureTopic). It returns the topic's partition
// count. Only Config's connection settings are used.
func EnsureCompactedTopic(ctx context.Context, cfg Config, topic string, partitions int32, replication int16) (int32, error) {
	compact := "compact"
	return ensure(ctx, cfg, topic, partitions, replication, map[string]*string{"cleanup.policy": &compact},
		func(c *Config, sc *sarama.Config) error {
			policy, err := cleanupPolicy(c, sc, topic)
			if err == nil && !strings.Contains(policy, "compact") {
				err = fmt.Errorf("%w: topic %q has cleanup.policy=%s", ErrNotCompacted, topic, policy)
			}
			return err
		})
}

// cleanupPolicy returns the topic's cleanup.policy ("delete", "compact" or "compact,delete").
func cleanupPolicy(cfg *Config, sc *sarama.Config, topic string) (string, error) {
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
	if err != nil {
		return "", connectError(cfg, err)
	}
	defer admin.Close()
	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"cleanup.policy"}}},
		sarama.DescribeConfigsOptions{})
	if err != nil {
		return "", fmt.Errorf("kafka: describe configs of topic %q: %w", topic, redact(cfg, err))
	}
	for _, r := range res {
		if r.Name != topic {
			continue
		}
		if r.ErrorCode != sarama.ErrNoError {
			return "", fmt.Errorf("kafka: describe configs of topic %q: %w", topic, r.ErrorCode)
		}
		for _, e := range r.Configs {
			if e.Name == "cleanup.policy" {
				return e.Value, nil
			}
		}
	}
	return "", fmt.Errorf("kafka: topic %q: no cleanup.policy in its configs", topic)
}
