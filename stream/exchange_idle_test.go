// Repartitions of idle upstream partitions.

package stream_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestRepartitionIdleEmptyUpstream: once every upstream partition is idle, the downstream
// watermark is the slowest idle upstream partition's, and, as for the pipeline's own
// watermark, an idle partition that never had an event holds nothing back (it may never get
// one). So after a burst of records and a quiet input, with empty partitions upstream (a
// topic's partitions that no key hashes to), the windows after the repartition close up to
// the partitions' watermark, with the sums of their records, also on an instance that reads
// no upstream partition. An empty idle partition made the downstream watermark NoWatermark:
// there they never closed (on the instance that reads the upstream, its pipeline watermark
// closed them).
func TestRepartitionIdleEmptyUpstream(t *testing.T) {
	const size, ooo = 10 * time.Second, 2 * time.Second
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 53))
		parts := 2 + rng.IntN(3)
		// Instance a reads the upstream partitions (and, as b, every partition of the
		// exchange); instance b reads the exchange only, as an instance of a scaled-out
		// pipeline that owns no upstream partition does: its watermark is the marks' alone.
		log := streamtest.NewExchangeLog[stream.Pair[string, int64]](1 + rng.IntN(3))
		instance := func(parts int) (*streamtest.Harness, *streamtest.Queue[keyed], *streamtest.Collector[window.Result[string, int64]]) {
			h := streamtest.New(t, time.Second, stream.WithIdleTimeout(3*time.Second), stream.WithMaxOutOfOrderness(ooo))
			q, src := streamtest.NewQueue[keyed](h)
			q.SetPartitions(parts)
			pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
			_, shuffled := streamtest.NewRepartition(h, pairs, "keys", log)
			sums, err := window.Aggregate(shuffled, func(p stream.Pair[string, int64]) string { return p.Key },
				func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(size), window.Sum[int64]())
			require.NoError(t, err)
			return h, q, streamtest.Collect(sums.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }))
		}
		h, q, _ := instance(parts)
		hb, _, final := instance(0)

		// A burst on some partitions (in order in each), the others empty; then nothing.
		busy := 1 + rng.IntN(parts-1)
		at := make([]time.Duration, busy)
		maxAt := make([]time.Duration, busy)
		off := make([]int64, busy)
		var recs []stream.Record[keyed]
		for range 60 + rng.IntN(100) {
			p := rng.IntN(busy)
			at[p] += time.Duration(500+rng.IntN(3000)) * time.Millisecond
			maxAt[p] = at[p]
			recs = append(recs, stream.Record[keyed]{Value: keyed{fmt.Sprint("k", rng.IntN(3)), 1 + rng.Int64N(9)}, Partition: int32(p), Offset: off[p],
				EventTime: streamtest.Epoch.Add(at[p])})
			off[p]++
		}
		// In batches of up to 40 records, or in one (the partitions then go idle together).
		all := recs
		for len(recs) > 0 {
			n := min(len(recs), 1+rng.IntN(40))
			if seed%2 == 0 {
				n = len(recs)
			}
			q.Add(recs[:n]...)
			recs = recs[n:]
		}
		for range 30 {
			h.Step()
			hb.Step()
		}

		// The brute force: every window that ends at or before the slowest busy partition's
		// watermark, with the sums of its records (none is late: each partition is in order).
		wm := maxAt[0]
		for _, m := range maxAt {
			wm = min(wm, m)
		}
		wm -= ooo
		want := map[string]int64{}
		for _, r := range all {
			if start := r.EventTime.Sub(streamtest.Epoch).Truncate(size); start+size <= wm {
				want[fmt.Sprint(r.Value.Key, "@", start)] += r.Value.V
			}
		}
		got := map[string]int64{}
		for _, r := range final.Slice() {
			if at := r.Start.Sub(streamtest.Epoch); at+size <= wm {
				got[fmt.Sprint(r.Key, "@", at)] = r.Value
			}
		}
		require.NotEmpty(t, want, "seed %d", seed)
		require.Equal(t, want, got, "seed %d: %d upstream partitions, %d of them empty; the windows that end by %v", seed, parts, parts-busy, wm)
	}
}
