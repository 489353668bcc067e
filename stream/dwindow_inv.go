// ReduceByKeyAndWindowInv: processing-time keyed windows computed incrementally with an
// inverse function and a filter, and their per-partition state.

package stream

import (
	"fmt"
	"time"
)

// invState is the per-partition state of ReduceByKeyAndWindowInv: the per-batch reductions of
// the last length+slide batches, and the previous window's values.
type invState[K comparable, V any] struct {
	batches ring[Elem[Pair[K, V]]]
	prev    *groups[K, V]
	next    *groups[K, V]
	old     *groups[K, V]
}

// ReduceByKeyAndWindowInv is ReduceByKeyAndWindow computed incrementally, like Spark's
// reduceByKeyAndWindow with an inverse function: each window is the previous window's value
// for a key, with inverse applied to the values that left the window and reduce to those that
// entered. A key whose values all left the window is still emitted (with the "zero" that the
// inverse leaves) unless filter, if not nil, returns false for it; filtered keys are dropped
// from the state. slide must not exceed length.
func ReduceByKeyAndWindowInv[K comparable, V any](s *Stream[Pair[K, V]], reduce, inverse func(V, V) V, filter func(Pair[K, V]) bool, length, slide time.Duration) *Stream[Pair[K, V]] {
	lb, sb := windowBatches(s, "ReduceByKeyAndWindowInv", length, slide)
	if sb > lb {
		s.p.fail(invalid("ReduceByKeyAndWindowInv(%v, %v): slide longer than the window", length, slide))
	}
	if inverse == nil {
		s.p.fail(invalid("ReduceByKeyAndWindowInv: nil inverse function"))
	}
	perBatch := ReduceByKey(s, reduce)
	out := &Stream[Pair[K, V]]{p: s.p, name: "reduceByKeyAndWindowInv", every: perBatch.slide, slide: max(sb, 1), parents: []int{perBatch.idx},
		params: fmt.Sprintf("window length=%v slide=%v", length, slide)}
	parts := newPartitioned(func() *invState[K, V] {
		return &invState[K, V]{prev: newGroups[K, V](), next: newGroups[K, V](), old: newGroups[K, V]()}
	})
	st := &invWindow[K, V]{p: parts, length: lb}
	out.state = st
	out.fn = func(pc *PartitionContext, dst []Elem[Pair[K, V]]) []Elem[Pair[K, V]] {
		st.batch = pc.Batch
		ps := parts.get(pc.Partition)
		ps.batches.expire(pc.Batch - lb - sb)
		if len(perBatch.cur) > 0 {
			_, off := span(perBatch.cur, pc)
			ps.batches.push(pc.Batch, append([]Elem[Pair[K, V]](nil), perBatch.cur...), off)
		}
		if sb == 0 || pc.Batch%sb != 0 {
			return dst
		}
		// Values that left: batches in (n-L-S, n-L]; values that entered: (n-S, n].
		ps.old.reset()
		next := ps.next
		next.reset()
		for i, b := range ps.batches.batches {
			var g *groups[K, V]
			switch {
			case b <= pc.Batch-lb:
				g = ps.old
			case b > pc.Batch-sb:
				g = next
			default:
				continue
			}
			for _, e := range ps.batches.items[i] {
				if j, added := g.slot(e.Value.Key, e.Value.Value, e.Time, e.Offset); !added {
					g.vals[j] = reduce(g.vals[j], e.Value.Value)
				}
			}
		}
		// Merge into the previous window, keeping the previous window's key order first.
		prev := ps.prev
		for i, k := range prev.keys {
			v := prev.vals[i]
			if j, ok := ps.old.idx[k]; ok {
				v = inverse(v, ps.old.vals[j])
			}
			if j, ok := next.idx[k]; ok {
				v = reduce(v, next.vals[j])
				m := next.meta[j]
				prev.meta[i].time = max(prev.meta[i].time, m.time)
			}
			prev.vals[i] = v
		}
		for j, k := range next.keys {
			if _, ok := prev.idx[k]; !ok {
				prev.slot(k, next.vals[j], next.meta[j].time, next.meta[j].offset)
			}
		}
		// The offsets of the window's values are those of the batches still in it.
		winOff, hasOff := ps.batches.retained(pc.Batch - lb)
		cur := ps.old // reuse as the filtered next state
		cur.reset()
		for i, k := range prev.keys {
			p := Pair[K, V]{Key: k, Value: prev.vals[i]}
			if filter != nil && !filter(p) {
				continue
			}
			off := int64(-1)
			if hasOff {
				off = winOff
			}
			cur.slot(k, p.Value, prev.meta[i].time, off)
		}
		ps.prev, ps.old = cur, prev
		return cur.emit(dst)
	}
	register(s.p, out)
	// The per-batch reduce is stateless: after a resume, its input is cut at this window's
	// replay start, as a window's own input is (a reduced pair carries its group's first
	// offset, so cutting its output instead would drop whole groups).
	perBatch.cutBy = out.idx + 1
	return out
}

type invWindow[K comparable, V any] struct {
	p      *partitioned[invState[K, V]]
	length int64
	batch  int64
}

func (w *invWindow[K, V]) retained(part int32) (int64, bool) {
	if s, ok := w.p.m[part]; ok {
		return s.batches.retained(w.batch - w.length)
	}
	return 0, false
}
func (w *invWindow[K, V]) drop(part int32) { w.p.drop(part) }
func (w *invWindow[K, V]) stateSize() int {
	n := 0
	for _, s := range w.p.m {
		n += len(s.prev.keys) + s.batches.size()
	}
	return n
}
