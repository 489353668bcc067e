// How a Source ends its input in bounded mode (WithBounded): it reads to the end offsets
// present at start, in this instance or another member of the group. WithEndWhenCaughtUp,
// which ends once every owned partition stayed read to its high-water mark, confirmed by the
// broker, is in caughtup_monitor.go.

package kafka

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// loadEnds reads the end offset of every partition at start (bounded mode), waiting a while
// for partitions whose leader is not ready (offsetsAtPatiently), without holding s.mu.
func (s *Source[T]) loadEnds(ctx context.Context, client sarama.Client) error {
	for ti, topic := range s.cfg.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("kafka: partitions of %q: %w", topic, err)
		}
		oldest, newest, err := offsetRangesPatiently(ctx, client, topic, parts)
		if err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		s.mu.Lock()
		for _, part := range parts {
			id := int32(ti)<<partitionBits | part
			s.ends[id] = newest[part]
			if newest[part] <= oldest[part] {
				s.finished[id] = true
			}
		}
		s.mu.Unlock()
	}
	// The partitions this run reads, which a repartition's end marks count (PartitionCount),
	// also when the topics grew since the Source counted them at start.
	s.mu.Lock()
	s.partitions.Store(int64(len(s.ends)))
	s.mu.Unlock()
	return nil
}

// endedMarker starts the offset metadata of a partition that a bounded run read to its end
// offset and whose results the pipeline wrote (stream.Position.Ended): "~end:<offset>~"
// before the pipeline's checkpoint. Another member's bounded run counts the partition done
// when the offset is at least the end it read at its start (monitorBounded), as when the
// committed offset is; the committed offset itself stays where the open windows held it,
// so that a later run on the next records completes them.
const endedMarker = "~end:"

// withEnded prefixes meta with the ended marker for end.
func withEnded(meta string, end int64) string {
	return endedMarker + strconv.FormatInt(end, 10) + "~" + meta
}

// cutEnded splits stored offset metadata into the end offset of its ended marker (-1 if it
// has none) and the rest.
func cutEnded(stored string) (end int64, meta string) {
	rest, ok := strings.CutPrefix(stored, endedMarker)
	if !ok {
		return -1, stored
	}
	n, meta, ok := strings.Cut(rest, "~")
	v, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || v < 0 {
		return -1, stored // not ours
	}
	return v, meta
}

// endedMeta is the metadata to commit with the pipeline's position x of a partition.
func endedMeta(p *partition, x stream.Position) string {
	if x.Ended && p.end >= 0 {
		return withEnded(x.Meta, p.end)
	}
	return x.Meta
}

func (s *Source[T]) finish(id int32) {
	s.mu.Lock()
	if _, ok := s.ends[id]; ok {
		s.finished[id] = true
	}
	s.mu.Unlock()
	select {
	case s.progress <- struct{}{}:
	default:
	}
}

// monitorBounded closes the input once every partition was read to its end offset, by this
// instance or (per the group's committed offsets) by another member.
func (s *Source[T]) monitorBounded(ctx context.Context, client sarama.Client, in *stream.Input[T]) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.mu.Lock()
		var open map[string][]int32
		for id := range s.ends {
			if s.finished[id] {
				continue
			}
			if _, mine := s.owned[id]; mine {
				open = nil
				break
			}
			if open == nil {
				open = make(map[string][]int32)
			}
			t, p := s.TopicPartition(id)
			open[t] = append(open[t], p)
		}
		done := len(s.finished) == len(s.ends)
		if done {
			s.ended = true
		}
		s.mu.Unlock()
		if done {
			s.log.Info("kafka: bounded input read to its end offsets")
			in.Close()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.progress:
			continue
		case <-tick.C:
		}
		if open != nil {
			// Partitions only other members own: done once the group committed their end, or
			// their owner said that it read them to their end and wrote the results (the
			// ended marker): open windows hold the committed offset back until the owner's
			// input ends, and for the next run after it.
			committed, err := groupCommits(client, s.cfg.Group, open)
			if err != nil {
				s.log.Debug("kafka: fetching group offsets", "err", err)
				continue
			}
			s.mu.Lock()
			for tp, c := range committed {
				id := s.PartitionID(tp.topic, tp.part)
				end, _ := cutEnded(c.Meta)
				if c.Offset >= s.ends[id] || end >= s.ends[id] {
					s.finished[id] = true
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *Source[T]) isFinished(id int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished[id]
}
