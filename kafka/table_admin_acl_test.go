package kafka_test

import (
	"context"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestEnsureCompactedTopicWithoutCreate: a user who may describe a compacted topic and its
// configs but not create it (a table's reader usually is) gets the existing topic's partition
// count from EnsureCompactedTopic, as ExampleNewTable calls it: nothing needs creating. It got
// the CreateTopics refusal as an error that did not wrap ErrNotAuthorized. A topic that does
// not exist still fails, with ErrNotAuthorized naming the Create to grant.
//
// Not parallel: the Create denied on the cluster (else the cluster's Create, allowed to all
// while it has no ACL, lets the user create any topic) holds for every test of the user.
func TestEnsureCompactedTopicWithoutCreate(t *testing.T) {
	sc := testenv.KafkaSCRAM(t)
	plain := testenv.KafkaBrokers(t)
	principal := "User:" + sc.User
	topic := newCompactedTopic(t, plain, "review-ensure-nocreate", 3)
	missing := testenv.UniqueName(t, "review-ensure-nocreate-missing")
	acls(t, plain, principal, sarama.AclResourceCluster, "kafka-cluster", nil, []sarama.AclOperation{sarama.AclOperationCreate})
	for _, name := range []string{topic, missing} {
		acls(t, plain, principal, sarama.AclResourceTopic, name,
			[]sarama.AclOperation{sarama.AclOperationDescribe, sarama.AclOperationDescribeConfigs},
			[]sarama.AclOperation{sarama.AclOperationCreate})
	}
	cfg := kafka.Config{Brokers: sc.Brokers, ClientID: "fleetstream-table-test",
		SASL: kafka.SASL{Mechanism: kafka.Mechanism(sc.Mechanism), User: sc.User, Password: sc.Password}}
	ctx, cancel := context.WithTimeout(t.Context(), failFast)
	defer cancel()
	n, err := kafka.EnsureCompactedTopic(ctx, cfg, topic, 3, 1)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	_, err = kafka.EnsureCompactedTopic(ctx, cfg, missing, 3, 1)
	require.ErrorIs(t, err, kafka.ErrNotAuthorized)
	require.ErrorIs(t, err, sarama.ErrTopicAuthorizationFailed)
	require.ErrorContains(t, err, "grant it Create")
	require.ErrorContains(t, err, `topic "`+missing+`"`)
	require.NotContains(t, err.Error(), sc.Password)
}
