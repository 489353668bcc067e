package stream_test

import (
	"cmp"
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

// winSpec is one named tumbling window of a random graph: a count (or a sum) per key over
// the source, or over its records that pass a filter.
type winSpec struct {
	name     string
	size     time.Duration
	sum      bool
	filtered bool
	mapped   bool   // read through a stateless Map (the same records: another graph shape)
	of       string // reads the results of this window of the graph instead of the source
}

// randomGraph runs windows over one partition whose record at offset o has event time
// Epoch+o s, beside an UpdateStateByKey that holds the commit at offset hold for ever (so that
// the windows' own replay starts travel in the checkpoint).
type randomGraph struct {
	h    *streamtest.Harness
	q    *streamtest.Queue[int64]
	outs map[string]*streamtest.Collector[window.Result[string, int64]]
}

func newRandomGraph(t *testing.T, hold int64, wins []winSpec) *randomGraph {
	t.Helper()
	g := &randomGraph{h: streamtest.New(t, time.Second), outs: map[string]*streamtest.Collector[window.Result[string, int64]]{}}
	results := map[string]*stream.Stream[window.Result[string, int64]]{}
	var src *stream.Stream[int64]
	g.q, src = streamtest.NewQueue[int64](g.h)
	stream.UpdateStateByKey(stream.KeyBy(src, func(v int64) bool { return v >= hold }),
		func(held bool, _ []int64, n int, _ bool) (int, bool) { return n + 1, held })
	for _, w := range wins {
		if w.of != "" {
			// A window of the upstream window's results: the sum of their values per key.
			agg, err := window.Aggregate(results[w.of], func(r window.Result[string, int64]) string { return r.Key },
				func(r window.Result[string, int64]) int64 { return r.Value }, window.Tumbling(w.size), window.Sum[int64](), window.WithName(w.name))
			require.NoError(t, err)
			results[w.name] = agg.Results()
			g.outs[w.name] = streamtest.Collect(agg.Results())
			continue
		}
		in := src
		if w.filtered {
			in = in.Filter(func(v int64) bool { return v%7 != 3 })
		}
		if w.mapped {
			in = stream.Map(in, func(v int64) int64 { return v })
		}
		key := func(v int64) string { return fmt.Sprint("k", v%2) }
		val := func(v int64) int64 { return v }
		var res *stream.Stream[window.Result[string, int64]]
		if w.sum {
			agg, err := window.Aggregate(in, key, val, window.Tumbling(w.size), window.Sum[int64](), window.WithName(w.name))
			require.NoError(t, err)
			res = agg.Results()
		} else {
			agg, err := window.Aggregate(in, key, val, window.Tumbling(w.size), window.Count[int64](), window.WithName(w.name))
			require.NoError(t, err)
			res = agg.Results()
		}
		results[w.name] = res
		g.outs[w.name] = streamtest.Collect(res)
	}
	return g
}

// feed queues the records of offsets [from, n) in the batches given by cuts (the first
// offset of each batch), and runs steps batches, or to the end of the input if steps < 0.
func (g *randomGraph) feed(t *testing.T, from, n int64, cuts []int64, steps int) {
	t.Helper()
	batch := func(lo, hi int64) {
		var b []stream.Record[int64]
		for o := max(lo, from); o < hi; o++ {
			b = append(b, stream.Record[int64]{Value: o, Offset: o, EventTime: streamtest.Epoch.Add(time.Duration(o) * time.Second)})
		}
		if len(b) > 0 {
			g.q.Add(b...)
		}
	}
	for i, c := range cuts {
		end := n
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		batch(c, end)
	}
	if steps >= 0 {
		g.h.Run(steps)
		return
	}
	g.q.End()
	g.h.RunUntilDone()
}

// results adds what window name emitted to got, by key and start; a later result overwrites.
func (g *randomGraph) results(name string, got map[string]int64) {
	for _, r := range g.outs[name].Slice() {
		if r.Final {
			got[fmt.Sprintf("%s@%d", r.Key, r.Start.Sub(streamtest.Epoch)/time.Second)] = r.Value
		}
	}
}

// TestAnotherGraphOracle: random graphs of named tumbling windows (one of them, in half the
// seeds, over another window's results), a crash after a random batch, and a restart under
// another graph: some windows gone, some new (a new one may read a kept one's results), the
// kept ones in another order, some read through a new stateless operator, and a window of a
// window's results switched to another kept window (a new operator then). Every kept window's results
// over the two runs (a later result overwriting an earlier one of the same window, as a
// document id does) must be those of an uninterrupted run of the first graph: nothing
// emitted again from part of its records, nothing missing (invariant 1 of "Restarts with
// another graph"). A new window emits no window that starts before the committed offset's
// record, which it would make from part of its records. Cold (the code before), the kept
// windows' results differed in most seeds.
func TestAnotherGraphOracle(t *testing.T) {
	seeds := uint64(200)
	if testing.Short() {
		seeds = 30
	}
	sizes := []time.Duration{3 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second}
	resumedPast := 0 // kept windows whose own start was past the committed offset
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 91))
		const n = 80
		var cuts []int64
		for o := int64(0); o < n; o += 1 + rng.Int64N(7) {
			cuts = append(cuts, o)
		}
		hold := rng.Int64N(40)
		var before []winSpec
		for i := range 2 + rng.IntN(4) {
			before = append(before, winSpec{name: fmt.Sprint("w", i), size: sizes[rng.IntN(len(sizes))], sum: rng.IntN(2) == 0, filtered: rng.IntN(3) == 0})
		}
		if rng.IntN(2) == 0 { // a window of a window's results
			before = append(before, winSpec{name: "stacked", size: 2 * sizes[rng.IntN(len(sizes))], of: before[rng.IntN(len(before))].name})
		}
		var after, kept []winSpec
		keptNames := map[string]bool{}
		switched := false
		for _, w := range before {
			if rng.IntN(4) > 0 && (w.of == "" || keptNames[w.of]) {
				w.mapped = w.of == "" && rng.IntN(3) == 0
				if w.of != "" && rng.IntN(2) == 0 {
					// It reads another kept window now: another operator (its identity
					// names what it reads), which must not pull the one it reads now back to
					// its own replay start (helper-71's review).
					for _, up := range after {
						if up.of == "" && up.name != w.of {
							w.of, switched = up.name, true
							break
						}
					}
					if switched {
						after = append(after, w)
						continue
					}
				}
				after = append(after, w)
				kept = append(kept, w)
				keptNames[w.name] = true
			}
		}
		for i := range rng.IntN(3) {
			after = append(after, winSpec{name: fmt.Sprint("new", i), size: sizes[rng.IntN(len(sizes))], sum: rng.IntN(2) == 0})
		}
		if len(after) > 0 && rng.IntN(3) == 0 { // a new window of a window's results
			after = append(after, winSpec{name: "new-stacked", size: 2 * sizes[rng.IntN(len(sizes))], of: after[rng.IntN(len(after))].name})
		}
		rng.Shuffle(len(after), func(i, j int) { after[i], after[j] = after[j], after[i] })
		// A window of a window's results comes after the window it reads.
		slices.SortStableFunc(after, func(a, b winSpec) int { return cmp.Compare(len(a.of), len(b.of)) })
		crash := 1 + rng.IntN(len(cuts)-1)
		msg := fmt.Sprintf("seed %d: hold %d, crash after %d of %d batches, %v -> %v (switched %v)", seed, hold, crash, len(cuts), before, after, switched)

		full := newRandomGraph(t, hold, before)
		full.feed(t, 0, n, cuts, -1)

		first := newRandomGraph(t, hold, before)
		first.feed(t, 0, n, cuts[:crash], crash)
		pos, ok := first.q.CommittedPosition(0)
		require.True(t, ok, msg)
		second := newRandomGraph(t, hold, after)
		second.q.Resume(pos)
		second.feed(t, pos.Offset, n, cuts, -1)

		for _, w := range kept {
			want, got := map[string]int64{}, map[string]int64{}
			full.results(w.name, want)
			first.results(w.name, got)
			second.results(w.name, got)
			require.Equal(t, want, got, "%s: kept window %s", msg, w.name)
			for _, r := range second.outs[w.name].Slice() {
				if r.Start.Sub(streamtest.Epoch)/time.Second < time.Duration(pos.Offset) {
					resumedPast-- // resumed from the committed offset after all
					break
				}
			}
			resumedPast++
		}
		for _, w := range after {
			if _, old := first.outs[w.name]; old && !(switched && w.name == "stacked") {
				continue
			}
			for _, r := range second.outs[w.name].Slice() {
				start := int64(r.Start.Sub(streamtest.Epoch) / time.Second)
				require.GreaterOrEqual(t, start, pos.Offset-pos.Offset%int64(w.size/time.Second), "%s: new window %s emitted %v", msg, w.name, r)
			}
		}
	}
	t.Logf("%d kept windows resumed past the committed offset", resumedPast)
	require.Positive(t, resumedPast, "no kept window resumed past the committed offset: nothing was tested")
}
