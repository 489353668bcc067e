// Administration through the cluster: EnsureTopic, and the committed offsets and checkpoints
// of a consumer group.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/internal/backoff"
	"github.com/fleetstream/fleetstream/stream"
)

// EnsureTopic creates topic with the given number of partitions and replication factor if it
// does not exist yet; an existing topic is left as it is (its partition count is returned).
// A replication factor of DefaultReplication (-1) leaves it to the brokers'
// default.replication.factor (Kafka 2.4 and later), as on Amazon MSK, whose default is 3 on
// clusters of three brokers or more. Only Config's connection settings are used. An existing
// topic needs only Describe: a creation the ACLs refuse is an error (wrapping
// ErrNotAuthorized, naming the Create to grant) only when the topic is not there.
func EnsureTopic(ctx context.Context, cfg Config, topic string, partitions int32, replication int16) (int32, error) {
	return ensure(ctx, cfg, topic, partitions, replication, nil, nil)
}

// DefaultReplication, as EnsureTopic's replication factor, is the brokers'
// default.replication.factor.
const DefaultReplication int16 = -1

// ensure is EnsureTopic with topic configs for a creation and a check of the topic after.
func ensure(ctx context.Context, cfg Config, topic string, partitions int32, replication int16,
	configs map[string]*string, check func(*Config, *sarama.Config) error) (int32, error) {
	if topic == "" {
		return 0, invalid("topic", "empty")
	}
	if partitions <= 0 || replication <= 0 && replication != DefaultReplication {
		return 0, invalid("partitions", "need partitions > 0 and replication > 0 (or DefaultReplication), got %d and %d", partitions, replication)
	}
	if err := cfg.validate(roleProducer); err != nil {
		return 0, err
	}
	sc, err := cfg.sarama(roleProducer)
	if err != nil {
		return 0, err
	}
	type result struct {
		n   int32
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, _, err := ensureTopic(&cfg, sc, topic, partitions, replication, configs)
		if err == nil && check != nil {
			err = check(&cfg, sc)
		}
		done <- result{n, err}
	}()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case r := <-done:
		return r.n, r.err
	}
}

// ensureTopic creates topic with the given settings (configs: topic configs such as
// cleanup.policy, nil for the broker's defaults) unless it exists, and returns its partition
// count and whether this call created it.
func ensureTopic(cfg *Config, sc *sarama.Config, topic string, partitions int32, replication int16, configs map[string]*string) (n int32, created bool, err error) {
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
	if err != nil {
		return 0, false, connectError(cfg, err)
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: replication, ConfigEntries: configs}, false)
	var te *sarama.TopicError
	// refused is set when the ACLs refuse the creation: the brokers check it before they
	// look for the topic, so a user who may not create it (one that only reads an existing
	// topic) gets the refusal, and the topic may well exist: the description below says.
	var refused error
	switch {
	case err == nil:
		created = true
	case errors.As(err, &te) && te.Err == sarama.ErrTopicAlreadyExists:
	case isNotAuthorized(err):
		refused = fmt.Errorf("kafka: create topic %q: %w", topic, cfg.notAuthorized(err, access{topics: []string{topic}, create: true}))
	default:
		return 0, false, fmt.Errorf("kafka: create topic %q: %w", topic, redact(cfg, err))
	}
	// Right after a creation the metadata may not list the topic yet: ask a few times.
	var last error
	for attempt := range 10 {
		if attempt > 0 {
			time.Sleep(backoff.Delay(50*time.Millisecond, time.Second, attempt))
		}
		md, err := admin.DescribeTopics([]string{topic})
		switch {
		case refused != nil && (err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) == 0):
			return 0, false, refused // not created, and not there (or not visible) either
		case err != nil:
			last = redact(cfg, err)
		case len(md) != 1:
			last = fmt.Errorf("%d topics in the answer", len(md))
		case md[0].Err != sarama.ErrNoError:
			last = md[0].Err
		case len(md[0].Partitions) == 0:
			last = errors.New("no partitions yet")
		default:
			return int32(len(md[0].Partitions)), created, nil
		}
	}
	return 0, created, fmt.Errorf("kafka: describe topic %q: %w", topic, last)
}

type topicPart struct {
	topic string
	part  int32
}

// groupOffsets fetches a group's committed offsets.
func groupOffsets(client sarama.Client, group string, parts map[string][]int32) (map[topicPart]int64, error) {
	blocks, err := groupCommits(client, group, parts)
	if err != nil {
		return nil, err
	}
	out := make(map[topicPart]int64, len(blocks))
	for tp, b := range blocks {
		out[tp] = b.Offset
	}
	return out, nil
}

// groupCommits fetches a group's committed offsets with their metadata. An error of the
// coordinator, for the group or for one of the partitions (offsets still loading after a
// coordinator moved, not the coordinator any more, not authorized), is returned, never taken
// for "nothing committed"; when the broker asked is no longer the coordinator, the next call
// looks the coordinator up again.
//
// Offsets that a transaction committed are answered once its markers are written: until
// then the coordinator answers UNSTABLE_OFFSET_COMMIT (require_stable), for the few
// milliseconds after an EndTxn, or until the broker aborts the transaction of a producer that
// died in the middle of its commit. groupCommits asks again for up to about two seconds, as
// sarama's own fetch does, and then returns that error.
func groupCommits(client sarama.Client, group string, parts map[string][]int32) (map[topicPart]stream.Position, error) {
	for attempt := 1; ; attempt++ {
		out, err := fetchCommits(client, group, parts)
		if !errors.Is(err, sarama.ErrUnstableOffsetCommit) || attempt == unstableAttempts {
			return out, err
		}
		time.Sleep(unstableWait)
	}
}

// How often, and how far apart, groupCommits asks again while a transaction completes.
const (
	unstableAttempts = 20
	unstableWait     = 100 * time.Millisecond
)

func fetchCommits(client sarama.Client, group string, parts map[string][]int32) (map[topicPart]stream.Position, error) {
	coord, err := client.Coordinator(group)
	if err != nil {
		return nil, err
	}
	req := sarama.NewOffsetFetchRequest(client.Config().Version, group, parts)
	// The checkpoint must be the one that goes with the offset the consumer starts from.
	req.RequireStable = req.Version >= 7
	resp, err := coord.FetchOffset(req)
	if err != nil {
		return nil, err
	}
	if kerr := resp.GroupError(); kerr != sarama.ErrNoError {
		refreshMovedCoordinator(client, group, kerr)
		return nil, fmt.Errorf("kafka: committed offsets of group %q: %w", group, kerr)
	}
	out := make(map[topicPart]stream.Position)
	for t, ps := range parts {
		for _, p := range ps {
			b := resp.GetBlock(t, p)
			if b == nil {
				continue
			}
			if b.Err != sarama.ErrNoError {
				refreshMovedCoordinator(client, group, b.Err)
				return nil, &commitError{group: group, topic: t, part: p, err: b.Err}
			}
			if b.Offset >= 0 {
				out[topicPart{t, p}] = stream.Position{Partition: p, Offset: b.Offset, Meta: b.Metadata}
			}
		}
	}
	return out, nil
}

// commitError is the error of one partition in an answer to an offset fetch.
type commitError struct {
	group, topic string
	part         int32
	err          sarama.KError
}

func (e *commitError) Error() string {
	return fmt.Sprintf("kafka: committed offset of group %q, partition %s/%d: %v", e.group, e.topic, e.part, e.err)
}

func (e *commitError) Unwrap() error { return e.err }

// refusedTopics is what a refused offset fetch of claims names (see access): the topic of
// the partition refused, else the topics claimed.
func refusedTopics(err error, claims map[string][]int32) []string {
	if ce := (*commitError)(nil); errors.As(err, &ce) {
		return []string{ce.topic}
	}
	return slices.Sorted(maps.Keys(claims))
}

// refreshMovedCoordinator looks the group's coordinator up again when kerr says the broker
// asked is not it (any more).
func refreshMovedCoordinator(client sarama.Client, group string, kerr sarama.KError) {
	if kerr == sarama.ErrNotCoordinatorForConsumer || kerr == sarama.ErrConsumerCoordinatorNotAvailable {
		_ = client.RefreshCoordinator(group)
	}
}
