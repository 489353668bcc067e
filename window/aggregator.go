// Aggregators: the Aggregator interface and the ready ones, Count, Sum, Min, Max, Mean and
// Stats (a Summary).

package window

import (
	"cmp"
	"math"
)

// Aggregator folds the values of a key's window into an accumulator A and turns it into a
// result R. A should be a small value type: it is stored inline per key and window, so adding
// a record allocates nothing.
//
// Merge must be associative and agree with Add (merging two accumulators equals adding both
// sets of values to one): sliding windows merge per-pane accumulators and sessions merge when
// a record bridges them.
//
// Accumulators that hold memory (slices, maps, pointers): the engine never copies it. What
// it guarantees, and what it needs:
//
//   - The accumulator passed to Add, as the first argument of Merge, or to Reset (Resetter)
//     is the engine's alone, and it uses only what the call returns from then on: those
//     may modify it in place and return it (TestAggregatorFirstArgumentOwned proves it for
//     every window kind and emission).
//   - The second argument of Merge stays in use (a sliding window merges one pane's
//     accumulator into every window that holds the pane, and may keep the same merged
//     accumulator in several of its slots): Merge must not modify it, and what Merge returns
//     must not share memory with it that a later Add or Merge on the result would write.
//     The engine merges into Zero() and then into the result again, so a Merge that returns
//     b itself when a is empty is wrong for a slice with spare capacity: the next Merge
//     appends into b's array.
//   - Zero must return a new accumulator on each call that shares no memory that Add or
//     Merge write with any other (a nil slice does; one package-level slice does not).
//   - Result's value goes to the stream's readers as it is, while acc stays in the window's
//     state. It may share memory with acc only when nothing writes that memory later: with
//     EveryBatch the records of later batches are added to the accumulator a partial result
//     was taken from, and with a Resetter an emitted window's accumulator is reused for a
//     later one. With OnClose and no Resetter, the engine drops an accumulator once its final
//     result is taken. To be safe in every mode, return a copy (slices.Clone) or values
//     computed from acc, as telemetry's cab stats do (their result keeps none of the
//     accumulator's points).
type Aggregator[V, A, R any] interface {
	// Zero returns an empty accumulator.
	Zero() A
	// Add folds v into acc.
	Add(acc A, v V) A
	// Merge folds b into a.
	Merge(a, b A) A
	// Result returns the result of acc.
	Result(acc A) R
}

// Resetter is an optional interface of an Aggregator whose accumulators hold memory worth
// reusing (a slice that grows with the window's records). A tumbling window's bucket is
// reused for a later window once its results were emitted; with a Resetter it keeps its
// accumulators and starts each new key with Reset(an old accumulator) instead of Zero(), so a
// steady load allocates no new accumulator memory. Reset must return an accumulator equal
// to Zero() that may reuse acc's memory, and Result must not return anything that refers to
// acc's memory (a result that aliases it would change under a later window). Reset gets only
// accumulators that Zero or Reset made and the window used, never A's zero value (it once
// got one for slots the bucket's slice had grown past its keys: a Reset that dereferenced a
// pointer accumulator panicked). Other window kinds call Zero as before.
type Resetter[A any] interface {
	Reset(acc A) A
}

// Number is the constraint of the numeric aggregators.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr |
		~float32 | ~float64
}

// CountAgg counts values. See Count.
type CountAgg[V any] struct{}

// Count returns an aggregator that counts the records of a window.
func Count[V any]() CountAgg[V] { return CountAgg[V]{} }

func (CountAgg[V]) Zero() int64              { return 0 }
func (CountAgg[V]) Add(acc int64, _ V) int64 { return acc + 1 }
func (CountAgg[V]) Merge(a, b int64) int64   { return a + b }
func (CountAgg[V]) Result(acc int64) int64   { return acc }

// SumAgg sums values. See Sum.
type SumAgg[V Number] struct{}

// Sum returns an aggregator that sums the values of a window.
func Sum[V Number]() SumAgg[V] { return SumAgg[V]{} }

func (SumAgg[V]) Zero() V        { return 0 }
func (SumAgg[V]) Add(acc, v V) V { return acc + v }
func (SumAgg[V]) Merge(a, b V) V { return a + b }
func (SumAgg[V]) Result(acc V) V { return acc }

// Extreme is the accumulator of Min and Max: the extreme value so far, if any.
type Extreme[V cmp.Ordered] struct {
	Value V
	Set   bool
}

// MinAgg keeps the smallest value. See Min.
type MinAgg[V cmp.Ordered] struct{}

// Min returns an aggregator of the smallest value of a window.
func Min[V cmp.Ordered]() MinAgg[V] { return MinAgg[V]{} }

func (MinAgg[V]) Zero() Extreme[V] { return Extreme[V]{} }
func (MinAgg[V]) Add(acc Extreme[V], v V) Extreme[V] {
	if !acc.Set || v < acc.Value {
		return Extreme[V]{Value: v, Set: true}
	}
	return acc
}
func (m MinAgg[V]) Merge(a, b Extreme[V]) Extreme[V] {
	if !b.Set {
		return a
	}
	return m.Add(a, b.Value)
}
func (MinAgg[V]) Result(acc Extreme[V]) V { return acc.Value }

// MaxAgg keeps the largest value. See Max.
type MaxAgg[V cmp.Ordered] struct{}

// Max returns an aggregator of the largest value of a window.
func Max[V cmp.Ordered]() MaxAgg[V] { return MaxAgg[V]{} }

func (MaxAgg[V]) Zero() Extreme[V] { return Extreme[V]{} }
func (MaxAgg[V]) Add(acc Extreme[V], v V) Extreme[V] {
	if !acc.Set || v > acc.Value {
		return Extreme[V]{Value: v, Set: true}
	}
	return acc
}
func (m MaxAgg[V]) Merge(a, b Extreme[V]) Extreme[V] {
	if !b.Set {
		return a
	}
	return m.Add(a, b.Value)
}
func (MaxAgg[V]) Result(acc Extreme[V]) V { return acc.Value }

// MeanState is the accumulator of Mean.
type MeanState struct {
	Sum   float64
	Count int64
}

// MeanAgg averages values. See Mean.
type MeanAgg[V Number] struct{}

// Mean returns an aggregator of the arithmetic mean of a window's values (NaN if empty).
func Mean[V Number]() MeanAgg[V] { return MeanAgg[V]{} }

func (MeanAgg[V]) Zero() MeanState { return MeanState{} }
func (MeanAgg[V]) Add(acc MeanState, v V) MeanState {
	return MeanState{Sum: acc.Sum + float64(v), Count: acc.Count + 1}
}
func (MeanAgg[V]) Merge(a, b MeanState) MeanState {
	return MeanState{Sum: a.Sum + b.Sum, Count: a.Count + b.Count}
}
func (MeanAgg[V]) Result(acc MeanState) float64 {
	if acc.Count == 0 {
		return math.NaN()
	}
	return acc.Sum / float64(acc.Count)
}

// Summary is count, sum, min and max of a window's values; the result of Stats.
type Summary struct {
	Count    int64
	Sum      float64
	Min, Max float64
}

// Mean returns Sum/Count, or NaN for an empty summary.
func (s Summary) Mean() float64 {
	if s.Count == 0 {
		return math.NaN()
	}
	return s.Sum / float64(s.Count)
}

// StatsAgg computes a Summary. See Stats.
type StatsAgg[V Number] struct{}

// Stats returns an aggregator of count, sum, min and max (and so the mean) in one pass,
// with a 32-byte accumulator.
func Stats[V Number]() StatsAgg[V] { return StatsAgg[V]{} }

func (StatsAgg[V]) Zero() Summary { return Summary{} }
func (StatsAgg[V]) Add(acc Summary, v V) Summary {
	f := float64(v)
	if acc.Count == 0 {
		return Summary{Count: 1, Sum: f, Min: f, Max: f}
	}
	acc.Count++
	acc.Sum += f
	acc.Min = min(acc.Min, f)
	acc.Max = max(acc.Max, f)
	return acc
}
func (StatsAgg[V]) Merge(a, b Summary) Summary {
	switch {
	case b.Count == 0:
		return a
	case a.Count == 0:
		return b
	}
	return Summary{Count: a.Count + b.Count, Sum: a.Sum + b.Sum, Min: min(a.Min, b.Min), Max: max(a.Max, b.Max)}
}
func (StatsAgg[V]) Result(acc Summary) Summary { return acc }
