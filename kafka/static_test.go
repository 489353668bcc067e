package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestStaticMembership: two instances of a pipeline, A and B, each with a group instance id
// (Config.Rebalance.InstanceID, KIP-345). A stops and starts again within the session
// timeout: meanwhile it stays a member of the group with its partitions, it takes them
// back, and B is given none of them, where with dynamic members (the control) A's leave
// gives B A's partitions at once. A second Source of the process with A's id is refused at
// Run (ErrInvalidOption). Then another process joins with A's id: the running A is fenced
// and stops with ErrFencedInstance, naming the id, instead of rejoining and fencing the
// other in turn (before, it retried the join for ever, and the two took the partitions from
// each other); the other process reads A's partitions.
func TestStaticMembership(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		static bool
		eos    bool // the offsets go in transactions, with the instance id
	}{{"static", true, false}, {"static, exactly once", true, true}, {"dynamic", false, false}} {
		static, name := tc.static, tc.name
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			brokers := testenv.KafkaBrokers(t)
			const n, parts = 2000, 4
			topic := newTopic(t, brokers, "static", parts)
			produceEvents(t, brokers, topic, parts, 0, n)
			group := testenv.UniqueName(t, "g-static")
			out := topic + "-out"
			if tc.eos {
				createTopic(t, brokers, out, parts)
			}
			ids := newIDSet()
			spec := func(id string, logs *logWatch) pipelineSpec {
				cfg := consumerConfig(brokers, group, topic)
				cfg.Rebalance.SessionTimeout = 20 * time.Second // longer than a restart
				cfg.Rebalance.HeartbeatInterval = 250 * time.Millisecond
				if static {
					cfg.Rebalance.InstanceID = group + "-" + id
				}
				sp := pipelineSpec{cfg: cfg, ids: ids, opts: []kafka.SourceOption{kafka.WithLogger(slog.New(logs))}}
				if tc.eos {
					sp.opts = append(sp.opts, kafka.WithTransactionalID(group+"-"+id))
					var prod *kafka.Producer[event]
					sp.wrap = func(src *kafka.Source[event]) source {
						prod = idProducer(t, brokers, out, src)
						return src
					}
					sp.onBatch = func(ctx context.Context, batch []event) error { return prod.Write(ctx, batch) }
				}
				return sp
			}
			owned := func(r *running) []string {
				return slices.Sorted(maps.Keys(r.src.Stats().Lag))
			}
			// A rebalance that moves partitions to B, cooperative or not, shows in B's log.
			assigned := func(l *logWatch) int {
				return l.count(func(m string) bool { return strings.Contains(m, "kafka: partition assigned") })
			}

			lb := &logWatch{}
			a := startPipeline(t, spec("a", &logWatch{}))
			b := startPipeline(t, spec("b", lb))
			require.Eventually(t, func() bool {
				return len(owned(a)) > 0 && len(owned(b)) > 0 && len(owned(a))+len(owned(b)) == parts
			}, waitFor, 20*time.Millisecond, "A and B share the partitions")
			require.Eventually(t, func() bool { return ids.distinct() == n }, waitFor, 20*time.Millisecond, "every record read")
			requireCommittedAtEnd(t, brokers, group, topic, parts)
			mine, bAssigned := owned(a), assigned(lb)

			require.ErrorIs(t, a.stop(t), context.Canceled)
			if !static {
				// A left the group: B is given its partitions at once (the control).
				require.Eventually(t, func() bool { return len(owned(b)) == parts }, waitFor, 20*time.Millisecond, "B takes A's partitions")
				require.Equal(t, bAssigned+len(mine), assigned(lb))
				return
			}
			// A is still a member of the group, with its partitions, until the session
			// timeout: no rebalance, and no one reads them meanwhile.
			require.Equal(t, []string{group + "-a", group + "-b"}, testenv.GroupInstanceIDs(t, brokers, group))
			a2 := startPipeline(t, spec("a", &logWatch{}))
			require.Eventually(t, func() bool { return slices.Equal(owned(a2), mine) }, waitFor, 20*time.Millisecond,
				"A back with its partitions %v, has %v", mine, owned(a2))
			require.Equal(t, bAssigned, assigned(lb), "B was given no partition of A's")
			require.Equal(t, parts-len(mine), len(owned(b)))

			// A Source of this process with the same id is refused: the two would fence
			// each other at every join.
			dup := startPipeline(t, spec("a", &logWatch{}))
			require.ErrorIs(t, dup.wait(t), kafka.ErrInvalidOption)
			require.False(t, a2.ended())

			// The same id in another process (a consumer of its own): the running A is
			// fenced and stops, instead of rejoining and fencing the other in turn.
			claims := otherProcess(t, brokers, group, group+"-a", topic)
			select {
			case err := <-a2.done:
				a2.done <- err
				require.ErrorIs(t, err, kafka.ErrFencedInstance)
				require.ErrorContains(t, err, group+"-a")
			case <-time.After(waitFor):
				t.Fatal("the fenced member did not stop")
			}
			require.Eventually(t, func() bool { return slices.Equal(claims(), mine) }, waitFor, 20*time.Millisecond,
				"the other process reads A's partitions %v, has %v", mine, claims())
		})
	}
}

// otherProcess joins group as a static member with instance id, as another process would,
// consuming topic until the test ends; claims returns the "topic/partition" names it holds.
func otherProcess(t *testing.T, brokers []string, group, id, topic string) (claims func() []string) {
	t.Helper()
	c := saramaConfig()
	c.Consumer.Group.InstanceId = id
	c.Consumer.Group.Session.Timeout = 20 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 250 * time.Millisecond
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	g, err := sarama.NewConsumerGroup(brokers, group, c)
	require.NoError(t, err)
	h := &claimSet{held: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = g.Close()
	})
	return h.names
}

// claimSet is a consumer group handler that holds its claims until the session ends.
type claimSet struct {
	mu   sync.Mutex
	held map[string]bool
}

func (h *claimSet) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *claimSet) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *claimSet) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	name := fmt.Sprintf("%s/%d", claim.Topic(), claim.Partition())
	h.mu.Lock()
	h.held[name] = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.held, name)
		h.mu.Unlock()
	}()
	for {
		select {
		case <-claim.Messages():
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (h *claimSet) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.held))
}
