// Sliding windows: emitting a window as the merge of its panes with the two stacks (fire,
// flip), and the partial results of EveryBatch.

package window

import (
	"cmp"
	"math"
	"slices"
)

// fire emits the window ending at e for every key with data in it.
func (w *sliding[T, K, V, A, R]) fire(o out[K, R], e int64) out[K, R] {
	agg := w.op.agg
	z := floorDiv(e, w.g) - 1
	a := z - w.n + 1
	at := w.closeAt(addSat(e, w.grace))
	sp := spanOf(e-w.size, e) // once per window, not per key
	for _, x := range w.order {
		if w.newest[x] < a {
			continue
		}
		s := &w.meta[x]
		if s.hi < a-1 {
			s.lo, s.b, s.hi = a, a, a-1
			s.back, s.backN = agg.Zero(), 0
		}
		for j := s.hi + 1; j <= z; j++ {
			if sl := w.at(x, j); sl.id == j {
				s.back = agg.Merge(s.back, sl.acc)
				s.backN++
			}
		}
		s.hi = max(s.hi, z)
		s.lo = max(s.lo, a)
		if s.lo >= s.b {
			w.flip(x, s)
		}
		front := s.lo < s.b && w.at(x, s.lo).id == s.lo
		if !front && s.backN == 0 {
			continue
		}
		acc := agg.Zero()
		if front {
			acc = agg.Merge(acc, w.at(x, s.lo).acc)
		}
		if s.backN > 0 {
			acc = agg.Merge(acc, s.back)
		}
		o = w.op.appendSpan(o, w.part, s.key, acc, &sp, true, at)
	}
	return o
}

// flip turns the back stack [lo, hi] into suffix merges: slot j then holds the merge of
// panes j..hi, for every j whose suffix has data.
func (w *sliding[T, K, V, A, R]) flip(x int32, s *series[K, A]) {
	agg := w.op.agg
	var acc A
	has := false
	for j := s.hi; j >= s.lo; j-- {
		sl := w.at(x, j)
		switch {
		case sl.id == j:
			if has {
				sl.acc = agg.Merge(sl.acc, acc)
			}
			acc, has = sl.acc, true
		case has:
			sl.id, sl.acc = j, acc
		}
	}
	s.b = s.hi + 1
	s.back, s.backN = agg.Zero(), 0
}

// partials emits, for every key changed in the batch, the open windows that hold a changed
// pane, by window end and then key order. It merges panes directly: O(size/g) per window.
func (w *sliding[T, K, V, A, R]) partials(o out[K, R]) out[K, R] {
	agg := w.op.agg
	w.parts = w.parts[:0]
	for _, x := range w.order {
		s := &w.meta[x]
		if !s.changed {
			continue
		}
		s.changed = false
		first := max(w.nextEnd, floorMul(s.chLo*w.g, w.slide)+w.slide)
		for e := first; e <= s.chHi*w.g+w.size; e += w.slide {
			z := floorDiv(e, w.g) - 1
			a := z - w.n + 1
			acc, any := agg.Zero(), false
			j := a
			if a <= s.b {
				if sl := w.at(x, a); a < s.b && sl.id == a {
					acc, any = agg.Merge(acc, sl.acc), true
				}
				j = s.b
				if s.backN > 0 {
					acc, any = agg.Merge(acc, s.back), true
					j = s.hi + 1
				}
			}
			for ; j <= z; j++ {
				if sl := w.at(x, j); sl.id == j {
					acc, any = agg.Merge(acc, sl.acc), true
				}
			}
			if any {
				w.parts = append(w.parts, partial[A]{end: e, x: x, acc: acc})
			}
		}
	}
	slices.SortStableFunc(w.parts, func(p, q partial[A]) int { return cmp.Compare(p.end, q.end) })
	for _, p := range w.parts {
		o = w.op.appendResult(o, w.part, w.meta[p.x].key, p.acc, p.end-w.size, p.end, false, w.paneMin(p.end))
	}
	clear(w.parts)
	return o
}

func (w *sliding[T, K, V, A, R]) paneMin(e int64) int64 {
	z := floorDiv(e, w.g) - 1
	a := z - w.n + 1
	m := int64(math.MaxInt64)
	for _, p := range w.panes {
		if p.idx >= a && p.idx <= z {
			m = min(m, p.minOff)
		}
	}
	return m
}
