// A repartition's upstream source that grows (a topic given more partitions).

package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// TestRepartitionPartitionCountGrows: when the upstream source says it has more partitions
// (PartitionCounter: a topic that grew, its new partition read by another instance or not
// yet assigned), the downstream watermark waits for the new partition as soon as the count
// grows (NoWatermark until every upstream partition was heard from), and takes it in once
// the partition sends. The count travels on the marks, which went only when an upstream
// partition's watermark, idleness or end changed: a count that grew while they stood still
// did not reach the downstream until the watermark moved.
func TestRepartitionPartitionCountGrows(t *testing.T) {
	// The downstream partition's watermark after each batch (the exchange is source 1).
	var seen []time.Time
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithStatsHook(func(st stream.BatchStats) {
		for _, ps := range st.PartitionStats {
			if si, _ := stream.PartitionSource(ps.Partition); si == 1 {
				seen = append(seen, ps.Watermark)
			}
		}
	}))
	q, src := streamtest.NewQueue[keyed](h)
	q.SetPartitions(2)
	pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](1)
	streamtest.NewRepartition(h, pairs, "keys", log)

	at := func(p int32, off int64, sec int) stream.Record[keyed] {
		return stream.Record[keyed]{Value: keyed{"k", 1}, Partition: p, Offset: off, EventTime: streamtest.Epoch.Add(time.Duration(sec) * time.Second)}
	}
	q.Add(at(0, 0, 5), at(1, 0, 7))
	h.Run(3)
	require.Equal(t, streamtest.Epoch.Add(5*time.Second), seen[len(seen)-1], "the downstream watermark is the slower upstream partition's")

	// The source grows to three partitions; nothing moves on the two it reads.
	q.SetPartitions(3)
	h.Run(2)
	require.True(t, seen[len(seen)-1].IsZero(),
		"the downstream partition does not wait for the new upstream partition (watermarks per batch: %v)", seen)
	var counts []int32
	for _, r := range log.Records(0) {
		if r.Mark {
			counts = append(counts, r.Upstreams)
		}
	}
	require.Equal(t, int32(3), counts[len(counts)-1], "the last mark's partition count (all: %v)", counts)

	// The new partition sends (an instance reads it): the downstream watermark takes it in.
	q.Add(at(2, 0, 4))
	h.Run(3)
	require.Equal(t, streamtest.Epoch.Add(4*time.Second), seen[len(seen)-1], "with the third partition heard from")
}
