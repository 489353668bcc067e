package kafka_test

import (
	"context"

	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// failFast bounds how long a start that nothing can make work may take to fail: far below
// waitFor, so that a retry loop that gives up only at the test's deadline does not pass.
const failFast = 10 * time.Second

// acls creates ACLs for principal on the literal resource, allowing the operations of allow and
// denying those of deny, through the plain listener, whose principal (ANONYMOUS) testenv makes
// a super user; waits until the broker's authorizer holds them; and removes them when the test
// ends. Once a resource has an ACL, allow.everyone.if.no.acl.found no longer opens it: what is
// not allowed is denied.
func acls(t *testing.T, plain []string, principal string, typ sarama.AclResourceType, name string, allow, deny []sarama.AclOperation) {
	t.Helper()
	admin := newAdmin(t, plain)
	res := sarama.Resource{ResourceType: typ, ResourceName: name, ResourcePatternType: sarama.AclPatternLiteral}
	filter := sarama.AclFilter{ResourceType: typ, ResourceName: &name, ResourcePatternTypeFilter: sarama.AclPatternLiteral,
		Principal: &principal, Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny}
	t.Cleanup(func() {
		a, err := sarama.NewClusterAdmin(plain, saramaConfig())
		if err != nil {
			t.Errorf("remove ACLs of %s: %v", name, err)
			return
		}
		defer a.Close()
		if _, err := a.DeleteACL(filter, false); err != nil {
			t.Errorf("remove ACLs of %s: %v", name, err)
		}
	})
	var list []*sarama.Acl
	for _, op := range allow {
		list = append(list, &sarama.Acl{Principal: principal, Host: "*", Operation: op, PermissionType: sarama.AclPermissionAllow})
	}
	for _, op := range deny {
		list = append(list, &sarama.Acl{Principal: principal, Host: "*", Operation: op, PermissionType: sarama.AclPermissionDeny})
	}
	require.NoError(t, admin.CreateACLs([]*sarama.ResourceAcls{{Resource: res, Acls: list}}))
	// The controller applies ACLs through the metadata log; DescribeAcls is answered from the
	// broker's authorizer, so once it lists them all, requests are checked against them.
	require.Eventually(t, func() bool {
		got, err := admin.ListAcls(filter)
		return err == nil && len(got) == 1 && len(got[0].Acls) == len(allow)+len(deny)
	}, waitFor, 20*time.Millisecond, "ACLs on %s never showed", name)
}

// runBriefly runs p and requires it to stop by itself, with an error, within failFast.
func runBriefly(t *testing.T, p *stream.Pipeline) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	start := time.Now()
	err := p.Run(ctx)
	took := time.Since(start)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Run waited silently until the deadline")
	require.Less(t, took, failFast, "Run took %v to fail", took)
	t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
	return err
}

// requireDenied checks the error of a start that the broker's ACLs refused: it says so, names
// the resource and the principal, keeps the broker's error for errors.Is, and is permanent.
func requireDenied(t *testing.T, err error, kerr sarama.KError, resource, user, password string) {
	t.Helper()
	require.ErrorIs(t, err, kerr)
	require.ErrorIs(t, err, kafka.ErrNotAuthorized)
	msg := err.Error()
	require.Contains(t, msg, "not authorized")
	require.Contains(t, msg, resource)
	require.Contains(t, msg, `"`+user+`"`)
	require.NotContains(t, msg, password)
}

// TestACLDenied is issue 14, item 4 (missing permissions): with Kafka ACLs that deny the SCRAM
// user its topic, its group or its transactional id, the Source and the Producer fail at start
// with an error naming what was denied and to whom, instead of retrying silently.
func TestACLDenied(t *testing.T) {
	t.Parallel()
	sc := testenv.KafkaSCRAM(t)
	plain := testenv.KafkaBrokers(t)
	auth := kafka.SASL{Mechanism: kafka.Mechanism(sc.Mechanism), User: sc.User, Password: sc.Password}
	principal := "User:" + sc.User
	noop := stream.SinkFunc[event](func(context.Context, []event) error { return nil })
	scramSource := func(t *testing.T, group, topic string, opts ...kafka.SourceOption) *kafka.Source[event] {
		cfg := consumerConfig(sc.Brokers, group, topic)
		cfg.SASL = auth
		src, err := kafka.NewSource(cfg, kafka.JSON[event](), opts...)
		require.NoError(t, err)
		return src
	}

	t.Run("SourceTopic", func(t *testing.T) {
		topic := newTopic(t, plain, "acl-read", 1)
		produceEvents(t, plain, topic, 1, 0, 10)
		acls(t, plain, principal, sarama.AclResourceTopic, topic, nil, []sarama.AclOperation{sarama.AclOperationRead, sarama.AclOperationDescribe})
		p, err := stream.New(50 * time.Millisecond)
		require.NoError(t, err)
		stream.To(stream.From(p, scramSource(t, testenv.UniqueName(t, "g-acl"), topic)), noop)
		requireDenied(t, runBriefly(t, p), sarama.ErrTopicAuthorizationFailed, `topic "`+topic+`"`, sc.User, sc.Password)
	})

	t.Run("SourceTopicRead", func(t *testing.T) {
		// Describe allowed, read denied: the metadata check passes, the fetch is refused.
		topic := newTopic(t, plain, "acl-readonly", 1)
		produceEvents(t, plain, topic, 1, 0, 10)
		acls(t, plain, principal, sarama.AclResourceTopic, topic, []sarama.AclOperation{sarama.AclOperationDescribe}, []sarama.AclOperation{sarama.AclOperationRead})
		p, err := stream.New(50 * time.Millisecond)
		require.NoError(t, err)
		stream.To(stream.From(p, scramSource(t, testenv.UniqueName(t, "g-acl"), topic)), noop)
		requireDenied(t, runBriefly(t, p), sarama.ErrTopicAuthorizationFailed, `topic "`+topic+`"`, sc.User, sc.Password)
	})

	t.Run("SourceGroup", func(t *testing.T) {
		topic := newTopic(t, plain, "acl-group", 1)
		produceEvents(t, plain, topic, 1, 0, 10)
		group := testenv.UniqueName(t, "g-acl-denied")
		acls(t, plain, principal, sarama.AclResourceGroup, group, nil, []sarama.AclOperation{sarama.AclOperationRead, sarama.AclOperationDescribe})
		p, err := stream.New(50 * time.Millisecond)
		require.NoError(t, err)
		stream.To(stream.From(p, scramSource(t, group, topic)), noop)
		requireDenied(t, runBriefly(t, p), sarama.ErrGroupAuthorizationFailed, `group "`+group+`"`, sc.User, sc.Password)
	})

	t.Run("SourceGroupRead", func(t *testing.T) {
		// Describe allowed, read denied: the coordinator is found, the join is refused.
		topic := newTopic(t, plain, "acl-groupread", 1)
		produceEvents(t, plain, topic, 1, 0, 10)
		group := testenv.UniqueName(t, "g-acl-denied")
		acls(t, plain, principal, sarama.AclResourceGroup, group, []sarama.AclOperation{sarama.AclOperationDescribe}, []sarama.AclOperation{sarama.AclOperationRead})
		p, err := stream.New(50 * time.Millisecond)
		require.NoError(t, err)
		stream.To(stream.From(p, scramSource(t, group, topic)), noop)
		requireDenied(t, runBriefly(t, p), sarama.ErrGroupAuthorizationFailed, `group "`+group+`"`, sc.User, sc.Password)
	})

	for _, tc := range []struct {
		name  string
		allow []sarama.AclOperation
	}{
		{"Producer", nil}, // the metadata request is refused
		{"ProducerWrite", []sarama.AclOperation{sarama.AclOperationDescribe}}, // the produce request is
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := newTopic(t, plain, "acl-write", 1)
			acls(t, plain, principal, sarama.AclResourceTopic, topic, tc.allow, []sarama.AclOperation{sarama.AclOperationWrite})
			prod, err := kafka.NewProducer(kafka.Config{Brokers: sc.Brokers, SASL: auth}, topic, kafka.JSONValue[event](nil))
			require.NoError(t, err)
			defer prod.Close(t.Context())
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			start := time.Now()
			err = prod.Write(ctx, []event{mkEvent(1)})
			took := time.Since(start)
			t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
			require.Less(t, took, failFast)
			requireDenied(t, err, sarama.ErrTopicAuthorizationFailed, `topic "`+topic+`"`, sc.User, sc.Password)
			require.True(t, stream.IsPermanent(err), "a denied write is not retried")
			require.Zero(t, prod.Sent())
		})
	}

	t.Run("ExactlyOnce", func(t *testing.T) {
		topic := newTopic(t, plain, "acl-eos-in", 1)
		alerts := newTopic(t, plain, "acl-eos-out", 1)
		produceEvents(t, plain, topic, 1, 0, 10)
		id := testenv.UniqueName(t, "txn-acl")
		acls(t, plain, principal, sarama.AclResourceTransactionalID, id, nil, []sarama.AclOperation{sarama.AclOperationWrite, sarama.AclOperationDescribe})
		src := scramSource(t, testenv.UniqueName(t, "g-acl-eos"), topic, kafka.WithTransactionalID(id))
		prod, err := kafka.NewProducer(kafka.Config{Brokers: sc.Brokers, SASL: auth}, alerts, kafka.JSONValue[event](nil), kafka.WithExactlyOnce(src))
		require.NoError(t, err)
		defer prod.Close(t.Context())
		p, err := stream.New(50*time.Millisecond, stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}))
		require.NoError(t, err)
		stream.To(stream.From(p, src), stream.Sink[event](prod))
		requireDenied(t, runBriefly(t, p), sarama.ErrTransactionalIDAuthorizationFailed, `transactional id "`+id+`"`, sc.User, sc.Password)
	})

	t.Run("ExactlyOnceWrite", func(t *testing.T) {
		// Describe allowed, write denied: the transactional producer is refused when it
		// connects, at the first batch.
		topic := newTopic(t, plain, "acl-eosw-in", 1)
		alerts := newTopic(t, plain, "acl-eosw-out", 1)
		produceEvents(t, plain, topic, 1, 0, 10)
		id := testenv.UniqueName(t, "txn-acl")
		acls(t, plain, principal, sarama.AclResourceTransactionalID, id, []sarama.AclOperation{sarama.AclOperationDescribe}, []sarama.AclOperation{sarama.AclOperationWrite})
		src := scramSource(t, testenv.UniqueName(t, "g-acl-eos"), topic, kafka.WithTransactionalID(id))
		prod, err := kafka.NewProducer(kafka.Config{Brokers: sc.Brokers, SASL: auth}, alerts, kafka.JSONValue[event](nil), kafka.WithExactlyOnce(src))
		require.NoError(t, err)
		defer prod.Close(t.Context())
		p, err := stream.New(50*time.Millisecond, stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}))
		require.NoError(t, err)
		stream.To(stream.From(p, src), stream.Sink[event](prod))
		requireDenied(t, runBriefly(t, p), sarama.ErrTransactionalIDAuthorizationFailed, `transactional id "`+id+`"`, sc.User, sc.Password)
	})

	t.Run("OthersUnaffected", func(t *testing.T) {
		// The same user still reads a topic without ACLs through a group without ACLs.
		topic := newTopic(t, plain, "acl-open", 1)
		produceEvents(t, plain, topic, 1, 0, 100)
		ids := newIDSet()
		cfg := consumerConfig(sc.Brokers, testenv.UniqueName(t, "g-acl-open"), topic)
		cfg.SASL = auth
		r := startPipeline(t, pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithBounded()}, ids: ids})
		require.NoError(t, r.wait(t))
		require.Equal(t, 100, ids.distinct())
	})

}
