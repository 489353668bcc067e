// Elementwise and per-batch operators: Map, Filter, FlatMap, Transform, Union, KeyBy and
// MapValues.

package stream

import (
	"reflect"
	"slices"
)

// Map returns a stream of f applied to every value.
func Map[T, U any](s *Stream[T], f func(T) U) *Stream[U] {
	m := elementwise(s, "map", func(in []Elem[T], out []Elem[U]) []Elem[U] {
		n := len(out)
		out = slices.Grow(out, len(in))[:n+len(in)]
		for i := range in {
			e, d := &in[i], &out[n+i]
			d.Value, d.Time, d.Offset = f(e.Value), e.Time, e.Offset
		}
		return out
	})
	m.whole = true
	return m
}

// Filter returns a stream of the values for which keep returns true.
func (s *Stream[T]) Filter(keep func(T) bool) *Stream[T] {
	f := elementwise(s, "filter", func(in []Elem[T], out []Elem[T]) []Elem[T] {
		start := 0 // of the run of kept elements that i ends
		for i := range in {
			if !keep(in[i].Value) {
				out = append(out, in[start:i]...)
				start = i + 1
			}
		}
		return append(out, in[start:]...)
	})
	// Fused, a long run of kept elements goes to the reader as it is, a part of the chunk it
	// came in, not copied: the readers of a chunk only read it (see feed). Short runs are
	// gathered first, so that a filter that keeps few does not call its reader per element.
	scrub := hasPointers(reflect.TypeFor[T]())
	f.through = func(sink func([]Elem[T])) func(pc *PartitionContext) {
		var short []Elem[T]
		pass := func(run []Elem[T]) {
			if len(run) < directRun {
				short = append(short, run...)
				return
			}
			if len(short) > 0 {
				sink(short)
				short = emptied(short, scrub)
			}
			sink(run)
		}
		return s.feed(func(chunk []Elem[T]) {
			start := 0
			for i := range chunk {
				if !keep(chunk[i].Value) {
					pass(chunk[start:i])
					start = i + 1
				}
			}
			pass(chunk[start:])
			if len(short) > 0 {
				sink(short)
				short = emptied(short, scrub)
			}
		})
	}
	return f
}

// directRun is the shortest run of kept elements that a fused Filter passes on uncopied.
const directRun = 16

// emptied returns b emptied, its elements cleared first if scrub (they hold pointers).
func emptied[T any](b []T, scrub bool) []T {
	if scrub {
		clear(b)
	}
	return b[:0]
}

// FlatMap returns a stream of every value that f yields for every input value; f calls emit
// zero or more times.
func FlatMap[T, U any](s *Stream[T], f func(v T, emit func(U))) *Stream[U] {
	return elementwise(s, "flatMap", func(in []Elem[T], out []Elem[U]) []Elem[U] {
		// One emit for the chunk, not one per value: f is a function value, so the closure
		// it receives lives on the heap.
		var from *Elem[T]
		emit := func(u U) { out = append(out, Elem[U]{Value: u, Time: from.Time, Offset: from.Offset}) }
		for i := range in {
			from = &in[i]
			f(from.Value, emit)
		}
		return out
	})
}

// Transform applies f to each partition's values of a batch as a whole, like Spark's
// transform and mapPartitions. The outputs take the newest event time and the oldest offset
// of the inputs. f must not keep in.
func Transform[T, U any](s *Stream[T], f func(pc *PartitionContext, in []T) []U) *Stream[U] {
	var vals []T
	return derive(s, "transform", func(pc *PartitionContext, in []Elem[T], out []Elem[U]) []Elem[U] {
		vals = vals[:0]
		ts, off := span(in, pc)
		for i := range in {
			vals = append(vals, in[i].Value)
		}
		for _, u := range f(pc, vals) {
			out = append(out, Elem[U]{Value: u, Time: ts, Offset: off})
		}
		clear(vals)
		return out
	})
}

// span returns the newest event time and oldest offset of in (batch time and -1 when empty).
func span[T any](in []Elem[T], pc *PartitionContext) (ts, off int64) {
	if len(in) == 0 {
		return pc.BatchTime.UnixNano(), -1
	}
	ts, off = in[0].Time, in[0].Offset
	for i := 1; i < len(in); i++ {
		ts = max(ts, in[i].Time)
		off = min(off, in[i].Offset)
	}
	return ts, off
}

// Union returns a stream of the values of s followed by those of others, batch by batch.
// Every stream must belong to the same pipeline and have the same slide.
func (s *Stream[T]) Union(others ...*Stream[T]) *Stream[T] {
	for _, o := range others {
		if o.p != s.p {
			s.p.fail(graphError("Union: streams of different pipelines"))
		} else if o.slide != s.slide {
			s.p.fail(graphError("Union: slides differ (%d and %d batches)", s.slide, o.slide))
		}
	}
	u := derive(s, "union", func(_ *PartitionContext, in []Elem[T], out []Elem[T]) []Elem[T] {
		out = append(out, in...)
		for _, o := range others {
			out = append(out, o.cur...)
		}
		return out
	})
	for _, o := range others {
		u.parents = append(u.parents, o.idx)
	}
	u.whole = true
	return u
}

// KeyBy pairs every value with the key that f computes.
func KeyBy[K comparable, T any](s *Stream[T], f func(T) K) *Stream[Pair[K, T]] {
	k := elementwise(s, "keyBy", func(in []Elem[T], out []Elem[Pair[K, T]]) []Elem[Pair[K, T]] {
		n := len(out)
		out = slices.Grow(out, len(in))[:n+len(in)]
		for i := range in {
			e, d := &in[i], &out[n+i]
			d.Value.Key, d.Value.Value, d.Time, d.Offset = f(e.Value), e.Value, e.Time, e.Offset
		}
		return out
	})
	k.whole = true
	return k
}

// MapValues applies f to the value of every pair, keeping the key.
func MapValues[K comparable, V, W any](s *Stream[Pair[K, V]], f func(V) W) *Stream[Pair[K, W]] {
	return Map(s, func(p Pair[K, V]) Pair[K, W] { return Pair[K, W]{Key: p.Key, Value: f(p.Value)} })
}
