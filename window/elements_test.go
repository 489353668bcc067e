package window_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// evList folds the records themselves, in order: a result shows every record's key and value
// as the aggregator got it, so a record passed wrongly (another one, a zero value, a copy taken
// too early) changes it.
type evList struct{}

func (evList) Zero() []ev              { return nil }
func (evList) Add(acc []ev, e ev) []ev { return append(acc, e) }
func (evList) Merge(a, b []ev) []ev    { return append(a[:len(a):len(a)], b...) }
func (evList) Result(acc []ev) string  { return fmt.Sprint(acc) }
func sameEv(e ev) ev                   { return e }

// evSum sums the records' values.
type evSum struct{}

func (evSum) Zero() float64                 { return 0 }
func (evSum) Add(acc float64, e ev) float64 { return acc + e.V }
func (evSum) Merge(a, b float64) float64    { return a + b }
func (evSum) Result(acc float64) float64    { return acc }

// TestAggregateElementsMatchesAggregate runs seeded random input (keys, values, times out of
// order and sometimes late, two partitions) through AggregateElements and through Aggregate
// with a value function returning the record, for every kind of window and both emissions:
// the results, batch by batch, and the late records must be the same.
func TestAggregateElementsMatchesAggregate(t *testing.T) {
	kinds := []struct {
		name string
		asg  window.Assigner
	}{
		{"tumbling", window.Tumbling(10 * time.Second)},
		{"sliding", window.Sliding(10*time.Second, 4*time.Second)},
		{"session", window.Session(3 * time.Second)},
	}
	run := func(asg window.Assigner, emit window.Emission, seed uint64, elements bool) ([][]window.Result[string, string], []window.Late[ev]) {
		h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(5*time.Second), stream.WithIdleTimeout(0))
		q, s := streamtest.NewQueue[ev](h)
		q.SetPartitions(2)
		var w *window.Windowed[string, string, ev]
		var err error
		if elements {
			w, err = window.AggregateElements(s, evKey, asg, window.Aggregator[ev, []ev, string](evList{}), window.WithEmit(emit))
		} else {
			w, err = window.Aggregate(s, evKey, sameEv, asg, window.Aggregator[ev, []ev, string](evList{}), window.WithEmit(emit))
		}
		require.NoError(t, err)
		res, late := streamtest.Collect(w.Results()), streamtest.Collect(w.Late())
		r := rand.New(rand.NewPCG(seed, 7))
		var clock time.Duration
		for range 40 {
			for range r.IntN(12) {
				d := clock - time.Duration(r.IntN(8))*time.Second
				q.Add(at(int32(r.IntN(2)), fmt.Sprint("k", r.IntN(6)), d, float64(r.IntN(100))))
			}
			clock += time.Duration(r.IntN(4)) * time.Second
			h.Step()
		}
		q.End()
		h.RunUntilDone()
		return res.Batches(), late.Slice()
	}
	for _, k := range kinds {
		for _, emit := range []window.Emission{window.OnClose, window.EveryBatch} {
			t.Run(fmt.Sprint(k.name, "/", emit), func(t *testing.T) {
				var results, lates int
				for seed := range uint64(8) {
					want, wantLate := run(k.asg, emit, seed, false)
					got, gotLate := run(k.asg, emit, seed, true)
					require.Equal(t, want, got, "seed %d: results", seed)
					require.Equal(t, wantLate, gotLate, "seed %d: late records", seed)
					for _, b := range got {
						results += len(b)
					}
					lates += len(gotLate)
				}
				require.NotZero(t, results)
				if k.name != "session" { // a session takes a late record in when it is still open
					require.NotZero(t, lates, "the input has late records")
				}
			})
		}
	}
}

// TestAggregateElementsResumesAggregate: a checkpoint written by Aggregate with a value
// function returning the record resumes AggregateElements (one operator to the pipeline, as
// a release that moves to AggregateElements needs), and the windows it rebuilds from the
// replay come out whole.
func TestAggregateElementsResumesAggregate(t *testing.T) {
	build := func(elements bool, logs *bytes.Buffer) (*streamtest.Harness, *streamtest.Queue[ev], *streamtest.Collector[window.Result[string, float64]]) {
		h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(30*time.Second), stream.WithIdleTimeout(0), stream.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		q, s := streamtest.NewQueue[ev](h)
		agg := window.Aggregator[ev, float64, float64](evSum{})
		var w *window.Windowed[string, float64, ev]
		var err error
		if elements {
			w, err = window.AggregateElements(s, evKey, window.Tumbling(time.Minute), agg, window.WithName("sums"))
		} else {
			w, err = window.Aggregate(s, evKey, sameEv, window.Tumbling(time.Minute), agg, window.WithName("sums"))
		}
		require.NoError(t, err)
		return h, q, streamtest.Collect(w.Results())
	}
	var logs bytes.Buffer
	h, q, first := build(false, &logs)
	q.Add(at(0, "a", sec(10), 1), at(0, "a", sec(20), 2), at(0, "b", sec(30), 4))
	q.Add(at(0, "a", sec(70), 8))
	h.Run(2)
	require.Empty(t, first.Slice(), "no window closed in the first run")
	pos, ok := q.CommittedPosition(0)
	require.True(t, ok)
	require.Equal(t, int64(0), pos.Offset, "the open window holds the commit at its first record")

	logs.Reset()
	h, q, second := build(true, &logs)
	q.Resume(pos)
	q.Add(at(0, "a", sec(10), 1), at(0, "a", sec(20), 2), at(0, "b", sec(30), 4), at(0, "a", sec(70), 8))
	q.End()
	h.RunUntilDone()
	require.Contains(t, logs.String(), `resumed from checkpoint" partition=0 offset=0 operators=1`)
	require.NotContains(t, logs.String(), "new=", "the operator is the one the checkpoint knows")
	var got []string
	for _, r := range second.Slice() {
		got = append(got, fmt.Sprintf("%s %v %v", r.Key, r.Start.Sub(t0), r.Value))
	}
	require.Equal(t, []string{"a 0s 3", "b 0s 4", "a 1m0s 8"}, got)
}
