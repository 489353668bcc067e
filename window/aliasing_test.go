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

// ownedAcc is an accumulator of ownedAgg: the values, and whether it was spent (passed as
// the first argument of Add or Merge, or to Reset).
type ownedAcc struct {
	vals  []float64
	spent bool
}

// ownedAgg checks the engine's side of the Aggregator contract: Add and Merge may modify
// their first argument and return it, so the engine must never use an accumulator again
// once it passed it there (only what the call returned), nor pass a spent one anywhere. It
// stands for an aggregator that does modify in place by returning a new accumulator and
// marking the old one spent; every use of a spent one is recorded in bad. Results are
// listAgg's (a copy).
type ownedAgg struct{ bad *[]string }

func (a ownedAgg) use(op string, accs ...*ownedAcc) {
	for _, x := range accs {
		if x == nil {
			*a.bad = append(*a.bad, op+" of A's zero value, not an accumulator")
			continue
		}
		if x.spent {
			*a.bad = append(*a.bad, op)
		}
	}
}

func (ownedAgg) Zero() *ownedAcc { return &ownedAcc{} }
func (a ownedAgg) Add(acc *ownedAcc, v float64) *ownedAcc {
	a.use("Add", acc)
	acc.spent = true
	return &ownedAcc{vals: append(slices.Clone(acc.vals), v)}
}
func (a ownedAgg) Merge(x, y *ownedAcc) *ownedAcc {
	a.use("Merge", x, y)
	x.spent = true
	return &ownedAcc{vals: append(slices.Clone(x.vals), y.vals...)}
}
func (a ownedAgg) Result(acc *ownedAcc) string {
	a.use("Result", acc)
	return listAgg{}.Result(acc.vals)
}

// ownedResetAgg is ownedAgg with window.Resetter: Reset spends its argument too.
type ownedResetAgg struct{ ownedAgg }

func (a ownedResetAgg) Reset(acc *ownedAcc) *ownedAcc {
	a.use("Reset", acc)
	if acc != nil {
		acc.spent = true
	}
	return &ownedAcc{}
}

// TestAggregatorFirstArgumentOwned: what the Aggregator documentation promises about
// accumulators. Every window kind, with emission on close and every batch, on random keys,
// values, times (out of order, late) and partitions: the engine never uses an accumulator
// after passing it as the first argument of Add or Merge, or to Reset (so an aggregator may
// modify it in place), Reset gets only accumulators (a tumbling window once passed it A's zero
// value, nil here, for the slots its bucket's slice had grown past its keys), and the
// results equal those of listAgg, which copies.
func TestAggregatorFirstArgumentOwned(t *testing.T) {
	assigners := []window.Assigner{
		window.Tumbling(10 * time.Second),
		window.Sliding(10*time.Second, 5*time.Second),
		window.Sliding(9*time.Second, 6*time.Second),
		window.Session(3 * time.Second),
	}
	for _, asg := range assigners {
		for _, emit := range []window.Emission{window.OnClose, window.EveryBatch} {
			for seed := range uint64(8) {
				t.Run(fmt.Sprintf("%v/%v/seed%d", asg, emit, seed), func(t *testing.T) {
					want := runAgg(t, asg, emit, seed, listAgg{})
					var bad []string
					require.Equal(t, want, runAgg(t, asg, emit, seed, ownedAgg{&bad}))
					require.Empty(t, bad, "spent accumulators used")
					require.Equal(t, want, runAgg(t, asg, emit, seed, ownedResetAgg{ownedAgg{&bad}}))
					require.Empty(t, bad, "spent accumulators used, with a Resetter")
				})
			}
		}
	}
}

// runAgg runs the window over seeded random input (keys, values, times out of order and
// sometimes late, two partitions) and returns its results, batch by batch.
func runAgg[A any](t *testing.T, asg window.Assigner, emit window.Emission, seed uint64, agg window.Aggregator[float64, A, string]) [][]window.Result[string, string] {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(5*time.Second), stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	q.SetPartitions(2)
	w, err := window.Aggregate(s, evKey, evVal, asg, agg, window.WithEmit(emit))
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())
	r := rand.New(rand.NewPCG(seed, 1))
	var clock time.Duration
	for range 40 {
		for range r.IntN(12) {
			d := clock - time.Duration(r.IntN(8))*time.Second // out of order, sometimes late
			q.Add(at(int32(r.IntN(2)), fmt.Sprint("k", r.IntN(6)), d, float64(r.IntN(100))))
		}
		clock += time.Duration(r.IntN(4)) * time.Second
		h.Step()
	}
	q.End()
	h.RunUntilDone()
	return res.Batches()
}
