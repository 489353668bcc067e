// Repartitions after stateful operators that emit records out of source-offset order.

package stream_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// TestRepartitionAfterStateNeverLosesSilently: a repartition numbers its records by source
// offset and rank within a batch, so an operator that emits an offset in a later batch again
// (UpdateStateByKey carries each key's state, with the offset of its first record, in every
// batch; MapWithState's timeout call emits with that offset too) cannot be repartitioned by
// offset. Whatever the input, the run either stops with a permanent error or brings every
// element the upstream emitted downstream exactly once: never drops one as a copy of another.
// It dropped them when the offset repeated was the highest one sent before (a key alone in
// its partition). An operator that emits each record once with its own offset (MapWithState
// without a timeout, a tracker) is never refused.
func TestRepartitionAfterStateNeverLosesSilently(t *testing.T) {
	refused := 0
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 41))
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
		q, src := streamtest.NewQueue[keyed](h)
		parts := 1 + rng.IntN(2)
		q.SetPartitions(parts)
		pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
		var up *stream.Stream[stream.Pair[string, int64]]
		op := "updateStateByKey"
		if seed%3 == 0 {
			up = stream.UpdateStateByKey(pairs, func(_ string, vals []int64, sum int64, _ bool) (int64, bool) {
				for _, v := range vals {
					sum += v
				}
				return sum, true
			})
		} else {
			// Without a timeout MapWithState emits each record once with its own offset, as
			// a tracker does: never refused.
			op = "mapWithState"
			timeout := 2 * time.Second
			if seed%3 == 2 {
				op, timeout = "mapWithState without timeout", 0
			}
			up, _ = stream.MapWithState(pairs, func(k string, v int64, ok bool, st *stream.State[int64]) (stream.Pair[string, int64], bool) {
				if !ok {
					sum, _ := st.Get()
					return stream.KV(k+"/timeout", sum), true
				}
				sum, _ := st.Get()
				st.Update(sum + v)
				return stream.KV(k, sum+v), true
			}, timeout)
		}
		sent := streamtest.Collect(up)
		_, shuffled := streamtest.NewRepartition(h, up, "after-state", streamtest.NewExchangeLog[stream.Pair[string, int64]](1+rng.IntN(2)))
		got := streamtest.Collect(shuffled)
		keys := 1 + rng.IntN(3)
		off := make([]int64, parts)
		for range 2 + rng.IntN(5) {
			var b []stream.Record[keyed]
			for range rng.IntN(3) {
				p := rng.IntN(parts)
				b = append(b, stream.Record[keyed]{Value: keyed{fmt.Sprint("k", rng.IntN(keys)), 1 + rng.Int64N(9)}, Partition: int32(p), Offset: off[p],
					EventTime: streamtest.Epoch.Add(time.Duration(off[p]) * time.Second)})
				off[p]++
			}
			q.Add(b...)
			q.AddEmpty(rng.IntN(3))
		}
		q.End()
		var stepErr error
		for range 200 {
			done, err := h.TryStep()
			if err != nil {
				stepErr = err
				break
			}
			if done {
				break
			}
		}
		if stepErr != nil {
			require.NotEqual(t, 2, seed%3, "seed %d (%s): refused", seed, op)
			refused++
			require.True(t, stream.IsPermanent(stepErr), "seed %d (%s): %v", seed, op, stepErr)
			require.ErrorContains(t, stepErr, "out of source order", "seed %d (%s)", seed, op)
			continue
		}
		str := func(ps []stream.Pair[string, int64]) []string {
			var out []string
			for _, p := range ps {
				out = append(out, fmt.Sprint(p.Key, "=", p.Value))
			}
			slices.Sort(out)
			return out
		}
		require.Equal(t, str(sent.Slice()), str(got.Slice()), "seed %d (%s): what the upstream emitted and what came through the repartition", seed, op)
	}
	t.Logf("%d of 60 runs refused", refused)
	require.Positive(t, refused, "no input made an operator emit out of source order: nothing was tested")
	require.Less(t, refused, 60, "every input was refused: the comparison was never made")
}
