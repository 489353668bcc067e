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
// offset. Whatever the input, the pipeline is either refused when it is built (those two, see
// TestRepartitionAfterStateRefusedAtBuild) or brings every element the upstream emitted
// downstream exactly once: never drops one as a copy of another. It dropped them when the
// offset repeated was the highest one sent before (a key alone in its partition). An operator
// that emits each record once with its own offset (MapWithState without a timeout, a
// tracker) is never refused.
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
		if err := h.P.Err(); err != nil {
			require.NotEqual(t, uint64(2), seed%3, "seed %d (%s): refused: %v", seed, op, err)
			require.ErrorIs(t, err, stream.ErrGraph, "seed %d (%s)", seed, op)
			refused++
			continue
		}
		require.Equal(t, uint64(2), seed%3, "seed %d (%s): not refused", seed, op)
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
		require.NoError(t, stepErr, "seed %d (%s)", seed, op)
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

// TestRepartitionAfterStateRefusedAtBuild: UpdateStateByKey, MapWithState with a timeout and
// MapWithState's snapshots emit again, in later batches, records with offsets already sent
// (and with batch times that a replay does not reproduce), so neither Repartition nor
// RepartitionByTime can number them once and for all. Such a graph is refused when it is
// built, naming the operator and why, before any record is read; it used to fail at the
// first repeated offset, after outputs had written the batches before. The same operators
// after the repartition are accepted, and MapWithState without a timeout before Repartition
// too (not before RepartitionByTime, which takes window results only).
func TestRepartitionAfterStateRefusedAtBuild(t *testing.T) {
	type pair = stream.Pair[string, int64]
	sum := func(_ string, vals []int64, s int64, _ bool) (int64, bool) {
		for _, v := range vals {
			s += v
		}
		return s, true
	}
	mapped := func(timeout time.Duration) func(s *stream.Stream[pair]) *stream.Stream[pair] {
		return func(s *stream.Stream[pair]) *stream.Stream[pair] {
			m, _ := stream.MapWithState(s, func(k string, v int64, ok bool, st *stream.State[int64]) (pair, bool) {
				st.Update(v)
				return stream.KV(k, v), ok
			}, timeout)
			return m
		}
	}
	snapshots := func(s *stream.Stream[pair]) *stream.Stream[pair] {
		_, snaps := stream.MapWithState(s, func(k string, v int64, _ bool, st *stream.State[int64]) (pair, bool) {
			st.Update(v)
			return stream.KV(k, v), false
		}, 0)
		return snaps
	}
	for _, tc := range []struct {
		name    string // the operator's name in the error, "" if accepted
		op      func(s *stream.Stream[pair]) *stream.Stream[pair]
		because string
	}{
		{"updateStateByKey", func(s *stream.Stream[pair]) *stream.Stream[pair] { return stream.UpdateStateByKey(s, sum) }, "every key's state in every batch"},
		{"mapWithState", mapped(2 * time.Second), "timeout calls"},
		{"stateSnapshots", snapshots, "every key's state in every batch"},
		{"", mapped(0), ""},
	} {
		for _, byTime := range []bool{false, true} {
			h := streamtest.New(t, time.Second)
			q, src := streamtest.NewQueue[keyed](h)
			read := streamtest.Collect(src)
			pairs := stream.Map(src, func(k keyed) pair { return stream.KV(k.Key, k.V) })
			ex := streamtest.NewExchange(streamtest.NewExchangeLog[pair](2))
			hash := func(p pair) uint64 { return stream.HashKey(p.Key) }
			var shuffled *stream.Stream[pair]
			if byTime {
				shuffled = stream.RepartitionByTime(tc.op(pairs), "after-state", ex, hash)
			} else {
				shuffled = stream.RepartitionBy(tc.op(pairs), "after-state", ex, hash)
			}
			h.AddExchange(ex)
			// After the repartition, every one of them is accepted.
			stream.UpdateStateByKey(shuffled, sum)
			mapped(2 * time.Second)(shuffled)
			snapshots(shuffled)
			q.AddValues(keyed{"a", 1}, keyed{"b", 2})
			if tc.name == "" && byTime {
				// Accepted by Repartition, but not a window's results, which RepartitionByTime
				// takes (TestRepartitionByTimeOfOtherStreamsRefused).
				err := h.P.Err()
				require.ErrorIs(t, err, stream.ErrGraph)
				require.ErrorContains(t, err, `RepartitionByTime "after-state": its stream "mapWithState" is the output of the operator "mapWithState"`)
				continue
			}
			if tc.name == "" {
				require.NoError(t, h.P.Err(), "byTime %v", byTime)
				continue
			}
			err := h.P.Err()
			require.ErrorIs(t, err, stream.ErrGraph, "%s, byTime %v", tc.name, byTime)
			require.ErrorContains(t, err, `Repartition "after-state": it reads "`+tc.name+`"`)
			require.ErrorContains(t, err, tc.because)
			require.ErrorContains(t, err, "after the repartition")
			_, stepErr := h.TryStep()
			require.ErrorIs(t, stepErr, stream.ErrGraph)
			require.Empty(t, read.Slice(), "%s, byTime %v: records were read", tc.name, byTime)
		}
	}
}
