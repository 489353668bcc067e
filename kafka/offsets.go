// Partition offsets from their leaders (ListOffsets), asked once per leader for all of its
// partitions rather than once per partition as sarama.Client.GetOffset does.

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
)

// listOffsets returns, for each of topic's partitions parts, its offset at `at`:
// sarama.OffsetNewest for the high-water mark, sarama.OffsetOldest for the log start. Each
// leader gets one request for all of its partitions, so the cost does not grow with the
// number of partitions. As with GetOffset, the partitions that fail (no leader known, a
// broker that did not answer, an error for the partition) are asked once more after a
// refresh of the topic's metadata, since their leader may have moved. The retry runs even
// when the refresh reports an error: sarama reports one when any partition of the topic has
// no leader, and still keeps what it learnt of the others. failed holds the errors of the
// partitions that failed in the last round, each naming its partition.
func listOffsets(client sarama.Client, topic string, parts []int32, at int64) (offsets map[int32]int64, failed map[int32]error) {
	offsets = make(map[int32]int64, len(parts))
	failed = askLeaders(client, topic, parts, at, offsets)
	if len(failed) == 0 {
		return offsets, nil
	}
	if err := client.RefreshMetadata(topic); errors.Is(err, sarama.ErrClosedClient) {
		return offsets, failed
	}
	return offsets, askLeaders(client, topic, slices.Sorted(maps.Keys(failed)), at, offsets)
}

// askLeaders sends one ListOffsets request to the leader of each of parts' partitions, notes
// the answers in offsets and returns the errors of the partitions without one. A broker that
// did not answer, or answered without a partition, is closed so that the next request
// connects again, as GetOffset does.
func askLeaders(client sarama.Client, topic string, parts []int32, at int64, offsets map[int32]int64) map[int32]error {
	var failed map[int32]error
	fail := func(p int32, err error) {
		if failed == nil {
			failed = make(map[int32]error)
		}
		failed[p] = err
	}
	// Partitions without a leader in the cached metadata fail at once: asking Leader for each
	// of them would refresh the metadata once per partition (listOffsets refreshes once).
	led, err := client.WritablePartitions(topic)
	if err != nil {
		for _, p := range parts {
			fail(p, fmt.Errorf("leader of %s/%d: %w", topic, p, err))
		}
		return failed
	}
	var leaders []*sarama.Broker
	byLead := make(map[*sarama.Broker][]int32)
	for _, p := range parts {
		if !slices.Contains(led, p) {
			fail(p, fmt.Errorf("leader of %s/%d: %w", topic, p, sarama.ErrLeaderNotAvailable))
			continue
		}
		b, err := client.Leader(topic, p)
		if err != nil {
			fail(p, fmt.Errorf("leader of %s/%d: %w", topic, p, err))
			continue
		}
		if _, ok := byLead[b]; !ok {
			leaders = append(leaders, b)
		}
		byLead[b] = append(byLead[b], p)
	}
	for _, b := range leaders {
		req := sarama.NewOffsetRequest(client.Config().Version)
		for _, p := range byLead[b] {
			req.AddBlock(topic, p, at, 1)
		}
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			_ = b.Close()
			for _, p := range byLead[b] {
				fail(p, fmt.Errorf("offset of %s/%d from broker %d: %w", topic, p, b.ID(), err))
			}
			continue
		}
		for _, p := range byLead[b] {
			block := resp.GetBlock(topic, p)
			switch {
			case block == nil:
				_ = b.Close()
				fail(p, fmt.Errorf("offset of %s/%d: %w", topic, p, sarama.ErrIncompleteResponse))
			case !errors.Is(block.Err, sarama.ErrNoError):
				fail(p, fmt.Errorf("offset of %s/%d: %w", topic, p, block.Err))
			case len(block.Offsets) != 1:
				fail(p, fmt.Errorf("offset of %s/%d: %w", topic, p, sarama.ErrOffsetOutOfRange))
			default:
				offsets[p] = block.Offsets[0]
			}
		}
	}
	return failed
}

// offsetsAt is listOffsets for callers that need every partition's offset: any partition
// that failed fails the call, with the error of the lowest-numbered one.
func offsetsAt(client sarama.Client, topic string, parts []int32, at int64) (map[int32]int64, error) {
	offsets, failed := listOffsets(client, topic, parts, at)
	if err := firstFailed(failed); err != nil {
		return nil, err
	}
	return offsets, nil
}

// offsetsAtPatiently is offsetsAt for a run's start (a bounded run's end offsets), where
// waiting is better than stopping: partitions that fail with an error that may pass are asked
// again, up to the client's Metadata.Retry.Max more times, after Metadata.Retry.Backoff
// doubling up to 2 s (the package's configuration: 10 times, about 16 s), until ctx ends. A
// broker that has just restarted answers NOT_LEADER_OR_FOLLOWER for its partitions for a few
// seconds, and a bounded run started then stopped at once on it (helper-70,
// TestFaultExactlyOnceBrokerRestart: three restarts in a row). Callers that hold a lock, run
// in a batch or a rebalance, or probe, use offsetsAt (helper-72's review).
func offsetsAtPatiently(ctx context.Context, client sarama.Client, topic string, parts []int32, at int64) (map[int32]int64, error) {
	offsets, failed := listOffsets(client, topic, parts, at)
	wait := max(client.Config().Metadata.Retry.Backoff, time.Millisecond)
	for range client.Config().Metadata.Retry.Max {
		if len(failed) == 0 || !mayPass(failed) || !backoff.Sleep(ctx.Done(), wait) {
			break
		}
		wait = min(2*wait, 2*time.Second)
		more, still := listOffsets(client, topic, slices.Sorted(maps.Keys(failed)), at)
		maps.Copy(offsets, more)
		failed = still
	}
	if err := firstFailed(failed); err != nil {
		return nil, err
	}
	return offsets, nil
}

// firstFailed is the error of the lowest-numbered partition of failed, with how many more
// failed; nil if none did.
func firstFailed(failed map[int32]error) error {
	if len(failed) == 0 {
		return nil
	}
	err := failed[slices.Min(slices.Collect(maps.Keys(failed)))]
	switch n := len(failed) - 1; n {
	case 0:
		return err
	case 1:
		return fmt.Errorf("%w (and 1 more partition)", err)
	default:
		return fmt.Errorf("%w (and %d more partitions)", err, n)
	}
}

// offsetRanges returns the start and end offsets of topic's partitions parts: two requests per
// leader. The ends are read first, as the loops it replaced did, so that a start is never
// older than the log's start as of after its end was read (records deleted between the two
// reads move the start, never below it).
func offsetRanges(client sarama.Client, topic string, parts []int32) (oldest, newest map[int32]int64, err error) {
	return rangesOf(func(at int64) (map[int32]int64, error) { return offsetsAt(client, topic, parts, at) })
}

// offsetRangesPatiently is offsetRanges with offsetsAtPatiently.
func offsetRangesPatiently(ctx context.Context, client sarama.Client, topic string, parts []int32) (oldest, newest map[int32]int64, err error) {
	return rangesOf(func(at int64) (map[int32]int64, error) { return offsetsAtPatiently(ctx, client, topic, parts, at) })
}

// rangesOf reads the ends (sarama.OffsetNewest) with offsetsOf, then the starts.
func rangesOf(offsetsOf func(at int64) (map[int32]int64, error)) (oldest, newest map[int32]int64, err error) {
	if newest, err = offsetsOf(sarama.OffsetNewest); err != nil {
		return nil, nil, err
	}
	if oldest, err = offsetsOf(sarama.OffsetOldest); err != nil {
		return nil, nil, err
	}
	return oldest, newest, nil
}

// deletedBefore is for a fetch at next that answered OFFSET_OUT_OF_RANGE: when records were
// deleted up to a log start after next (retention, delete-records), it returns that start.
// A version 4 fetch, which the read-back and a Table's probe send, does not carry the log's
// start, so it is asked for; err is set when it cannot be.
func deletedBefore(client sarama.Client, topic string, part int32, next int64) (start int64, ok bool, err error) {
	starts, err := offsetsAt(client, topic, []int32{part}, sarama.OffsetOldest)
	if err != nil {
		return next, false, fmt.Errorf("fetch %s/%d at %d: offset out of range, and the log start is unknown: %w", topic, part, next, err)
	}
	if starts[part] <= next {
		return next, false, nil
	}
	return starts[part], true, nil
}

// mayPass reports whether every error of failed may pass by itself (a leader moving or being
// elected, a broker restarting, which may also answer UNKNOWN_TOPIC_OR_PARTITION for a
// moment): not a closed client, a refused authorization or an answer without the offset.
func mayPass(failed map[int32]error) bool {
	for _, err := range failed {
		for _, permanent := range []error{sarama.ErrClosedClient, sarama.ErrTopicAuthorizationFailed,
			sarama.ErrClusterAuthorizationFailed, sarama.ErrOffsetOutOfRange} {
			if errors.Is(err, permanent) {
				return false
			}
		}
	}
	return true
}
