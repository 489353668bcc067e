package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// perPartition is a PartitionCodec that checks how the Source uses it: each codec that
// ForPartition returns must see only its own partition's records, from one goroutine at a
// time; the shared codec's Decode must never be called.
type perPartition struct {
	mu      sync.Mutex
	made    map[string]int // "topic/partition": ForPartition calls
	shared  atomic.Int64   // calls of perPartition.Decode
	wrong   atomic.Int64   // records decoded by another partition's codec
	overlap atomic.Int64   // Decode calls that overlapped on one codec
}

func (c *perPartition) Decode(msg *kafka.Message) (event, time.Time, error) {
	c.shared.Add(1)
	return kafka.JSON[event]().Decode(msg)
}

func (c *perPartition) ForPartition(topic string, partition int32) kafka.Codec[event] {
	c.mu.Lock()
	if c.made == nil {
		c.made = make(map[string]int)
	}
	c.made[fmt.Sprintf("%s/%d", topic, partition)]++
	c.mu.Unlock()
	inner := kafka.JSON[event]()
	var busy atomic.Int32
	return kafka.CodecFunc[event](func(msg *kafka.Message) (event, time.Time, error) {
		if busy.Add(1) != 1 {
			c.overlap.Add(1)
		}
		defer busy.Add(-1)
		if msg.Topic != topic || msg.Partition != partition {
			c.wrong.Add(1)
		}
		return inner.Decode(msg)
	})
}

func (c *perPartition) calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made
}

// TestSourcePartitionCodec: a PartitionCodec decodes every partition's records with the codec
// made for that partition, alone or inside WithMeta.
func TestSourcePartitionCodec(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts, n = 3, 600
	topic := newTopic(t, brokers, "partcodec", parts)
	produceEvents(t, brokers, topic, parts, 0, n)
	want := map[string]int{}
	for p := range parts {
		want[fmt.Sprintf("%s/%d", topic, p)] = 1
	}

	run := func(t *testing.T, build func(*stream.Pipeline, string) (func() []int, error)) {
		p, err := stream.New(50 * time.Millisecond)
		require.NoError(t, err)
		ids, err := build(p, testenv.UniqueName(t, "g-partcodec"))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, p.Run(ctx))
		got := ids()
		require.Len(t, got, n)
		seen := make(map[int]bool, n)
		for _, id := range got {
			seen[id] = true
		}
		require.Len(t, seen, n, "every record once")
	}

	t.Run("plain", func(t *testing.T) {
		codec := &perPartition{}
		run(t, func(p *stream.Pipeline, group string) (func() []int, error) {
			src, err := kafka.NewSource(consumerConfig(brokers, group, topic), kafka.Codec[event](codec), kafka.WithBounded())
			return collectIDs(p, src, func(e event) int { return e.ID }), err
		})
		require.Equal(t, want, codec.calls(), "one codec per claimed partition")
		require.Zero(t, codec.shared.Load(), "the shared codec decoded records")
		require.Zero(t, codec.wrong.Load(), "a partition's codec decoded another's records")
		require.Zero(t, codec.overlap.Load(), "a partition's codec was used concurrently")
	})

	t.Run("with-meta", func(t *testing.T) {
		codec := &perPartition{}
		var wrongMeta atomic.Int64
		run(t, func(p *stream.Pipeline, group string) (func() []int, error) {
			src, err := kafka.NewSource(consumerConfig(brokers, group, topic), kafka.WithMeta[event](codec), kafka.WithBounded())
			return collectIDs(p, src, func(e kafka.Envelope[event]) int {
				if e.Topic != topic || e.Partition != partitionOf(e.Value.Key, parts) {
					wrongMeta.Add(1)
				}
				return e.Value.ID
			}), err
		})
		require.Equal(t, want, codec.calls(), "WithMeta keeps one codec per claimed partition")
		require.Zero(t, codec.shared.Load(), "the shared codec decoded records")
		require.Zero(t, codec.wrong.Load(), "a partition's codec decoded another's records")
		require.Zero(t, wrongMeta.Load(), "envelopes carry their record's topic and partition")
	})
}

// collectIDs writes src's values to a sink that keeps their ids, and returns what it kept so
// far. A nil src (NewSource failed) adds nothing.
func collectIDs[T any](p *stream.Pipeline, src *kafka.Source[T], id func(T) int) func() []int {
	var mu sync.Mutex
	var ids []int
	if src != nil {
		stream.To(stream.From(p, src), stream.SinkFunc[T](func(_ context.Context, b []T) error {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range b {
				ids = append(ids, id(v))
			}
			return nil
		}))
	}
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}
