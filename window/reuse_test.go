package window_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestTumblingKeysComeAndGo: a tumbling window's buckets are reused for later windows; here
// keys skip windows and come back, in another order each time, and windows of hundreds of keys
// alternate with windows of a few or none. Each window's final results are exactly its keys,
// in the order of their first records in it, with all their values; EveryBatch partial
// results of a window come in that order too, the last of each key with its final value; with
// a Resetter, and with one that checks it only gets accumulators it may spend.
func TestTumblingKeysComeAndGo(t *testing.T) {
	pool := make([]string, 400)
	for i := range pool {
		pool[i] = fmt.Sprintf("k%03d", i)
	}
	for _, emit := range []window.Emission{window.OnClose, window.EveryBatch} {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("%v/seed%d", emit, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 11))
				var batches [][]stream.Record[ev]
				// want: each window's keys in order of their first records, with their values
				want := map[int64][]window.Result[string, string]{}
				for win := range 40 {
					n := []int{0, 3, 300, 10, 200, 80}[r.IntN(6)]
					keys := slices.Clone(pool)
					r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
					keys = keys[:n]
					vals := map[string][]float64{}
					var order []string
					var recs []stream.Record[ev]
					draws := slices.Clone(keys) // every key once, some again, in any order
					for range n {
						draws = append(draws, keys[r.IntN(n)])
					}
					r.Shuffle(len(draws), func(i, j int) { draws[i], draws[j] = draws[j], draws[i] })
					for i, k := range draws {
						v := float64(r.IntN(1000))
						if vals[k] == nil {
							order = append(order, k)
						}
						vals[k] = append(vals[k], v)
						d := time.Duration(win)*time.Second + time.Duration(i)*time.Second/time.Duration(2*n+1)
						recs = append(recs, at(0, k, d, v))
					}
					start := t0.Add(time.Duration(win) * time.Second)
					for _, k := range order {
						want[start.UnixNano()] = append(want[start.UnixNano()], window.Result[string, string]{
							Key: k, Start: start, End: start.Add(time.Second), Value: listAgg{}.Result(vals[k]), Final: true,
						})
					}
					// a window's records come in two batches
					batches = append(batches, recs[:len(recs)/2], recs[len(recs)/2:])
				}
				aggs := map[string]window.Aggregator[float64, []float64, string]{"list": listAgg{}, "reset": resetAgg{reused: new(int)}}
				for name, agg := range aggs {
					got := runBatches(t, batches, emit, agg)
					require.Equal(t, want, got, name)
				}
				var bad []string
				require.Equal(t, want, runBatches(t, batches, emit, window.Aggregator[float64, *ownedAcc, string](ownedResetAgg{ownedAgg{&bad}})))
				require.Empty(t, bad, "spent accumulators or A's zero value used")
			})
		}
	}
}

// runBatches runs a one-second tumbling window over the batches and returns its final
// results by window start, in the order they came. With EveryBatch it checks that each batch's
// partial results of a window come in the order of that window's final results, and that a
// key's last partial result of a window is its final one (its records come before the window
// closes).
func runBatches[A any](t *testing.T, batches [][]stream.Record[ev], emit window.Emission, agg window.Aggregator[float64, A, string]) map[int64][]window.Result[string, string] {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Tumbling(time.Second), agg, window.WithEmit(emit))
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())
	for _, b := range batches {
		q.Add(b...)
	}
	q.End()
	h.RunUntilDone()
	got := map[int64][]window.Result[string, string]{}
	for _, r := range res.Slice() {
		if r.Final {
			r.Partition = 0
			got[r.Start.UnixNano()] = append(got[r.Start.UnixNano()], r)
		}
	}
	if emit == window.EveryBatch {
		// a key's last partial result of a window came with its last record: the final value
		last := map[int64]map[string]string{}
		for _, r := range res.Slice() {
			if !r.Final {
				if last[r.Start.UnixNano()] == nil {
					last[r.Start.UnixNano()] = map[string]string{}
				}
				last[r.Start.UnixNano()][r.Key] = r.Value
			}
		}
		for start, rs := range got {
			require.Len(t, last[start], len(rs), "window %d: keys with partial results", start)
			for _, r := range rs {
				require.Equal(t, r.Value, last[start][r.Key], "window %d, key %s: last partial result", start, r.Key)
			}
		}
	}
	for i, b := range res.Batches() {
		partial := map[int64][]string{}
		for _, r := range b {
			if !r.Final {
				partial[r.Start.UnixNano()] = append(partial[r.Start.UnixNano()], r.Key)
			}
		}
		for start, keys := range partial {
			rank := map[string]int{}
			for j, r := range got[start] {
				rank[r.Key] = j
			}
			require.True(t, slices.IsSortedFunc(keys, func(a, b string) int { return rank[a] - rank[b] }),
				"batch %d: partial results of window %d not in the order of their keys' first records: %v", i, start, keys)
		}
	}
	return got
}
