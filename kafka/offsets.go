// Partition offsets from their leaders (ListOffsets), asked once per leader for all of its
// partitions rather than once per partition as sarama.Client.GetOffset does.

package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// offsetsAt returns, for each of topic's partitions parts, its offset at `at`:
// sarama.OffsetNewest for the high-water mark, sarama.OffsetOldest for the log start. Each
// leader gets one request for all of its partitions, so the cost does not grow with the
// number of partitions (a restart of a 64-partition job asked 128 times in a row before). Any
// failure fails the call, naming the partition: a broker that did not answer is closed so
// that the next call connects again, as GetOffset does, and a partition's error refreshes
// the topic's metadata so that the next call asks its new leader.
func offsetsAt(client sarama.Client, topic string, parts []int32, at int64) (map[int32]int64, error) {
	var (
		leaders []*sarama.Broker
		byLead  = make(map[*sarama.Broker][]int32)
	)
	for _, p := range parts {
		b, err := client.Leader(topic, p)
		if err != nil {
			return nil, fmt.Errorf("leader of %s/%d: %w", topic, p, err)
		}
		if _, ok := byLead[b]; !ok {
			leaders = append(leaders, b)
		}
		byLead[b] = append(byLead[b], p)
	}
	out := make(map[int32]int64, len(parts))
	for _, b := range leaders {
		req := sarama.NewOffsetRequest(client.Config().Version)
		for _, p := range byLead[b] {
			req.AddBlock(topic, p, at, 1)
		}
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("offsets of %s from broker %d: %w", topic, b.ID(), err)
		}
		for _, p := range byLead[b] {
			block := resp.GetBlock(topic, p)
			switch {
			case block == nil:
				_ = b.Close()
				return nil, fmt.Errorf("offset of %s/%d: %w", topic, p, sarama.ErrIncompleteResponse)
			case !errors.Is(block.Err, sarama.ErrNoError):
				// Most likely a leader moved: the caller's next try should ask the new one.
				_ = client.RefreshMetadata(topic)
				return nil, fmt.Errorf("offset of %s/%d: %w", topic, p, block.Err)
			case len(block.Offsets) != 1:
				return nil, fmt.Errorf("offset of %s/%d: %w", topic, p, sarama.ErrOffsetOutOfRange)
			}
			out[p] = block.Offsets[0]
		}
	}
	return out, nil
}

// offsetRanges returns the start and end offsets of topic's partitions parts: two requests per
// leader.
func offsetRanges(client sarama.Client, topic string, parts []int32) (oldest, newest map[int32]int64, err error) {
	if oldest, err = offsetsAt(client, topic, parts, sarama.OffsetOldest); err != nil {
		return nil, nil, err
	}
	if newest, err = offsetsAt(client, topic, parts, sarama.OffsetNewest); err != nil {
		return nil, nil, err
	}
	return oldest, newest, nil
}
