// Per-batch keyed operators: ReduceByKey, GroupByKey, CountByValue, Join and LeftJoin, and
// the groups that gather values by key in order of first appearance.

package stream

// groups gathers values by key in order of first appearance, reusing its memory between
// batches.
type groups[K comparable, V any] struct {
	idx  map[K]int
	keys []K
	vals []V
	meta []meta
}

type meta struct{ time, offset int64 }

func newGroups[K comparable, V any]() *groups[K, V] {
	return &groups[K, V]{idx: make(map[K]int)}
}

func (g *groups[K, V]) reset() {
	clear(g.idx)
	clear(g.keys)
	clear(g.vals)
	g.keys, g.vals, g.meta = g.keys[:0], g.vals[:0], g.meta[:0]
}

// slot returns the index of k, adding it with v0 if new, and widens its time and offset span.
func (g *groups[K, V]) slot(k K, v0 V, ts, off int64) (int, bool) {
	if i, ok := g.idx[k]; ok {
		m := &g.meta[i]
		m.time = max(m.time, ts)
		m.offset = min(m.offset, off)
		return i, false
	}
	i := len(g.keys)
	g.idx[k] = i
	g.keys = append(g.keys, k)
	g.vals = append(g.vals, v0)
	g.meta = append(g.meta, meta{ts, off})
	return i, true
}

func (g *groups[K, V]) emit(out []Elem[Pair[K, V]]) []Elem[Pair[K, V]] {
	for i, k := range g.keys {
		out = append(out, Elem[Pair[K, V]]{Value: Pair[K, V]{Key: k, Value: g.vals[i]}, Time: g.meta[i].time, Offset: g.meta[i].offset})
	}
	return out
}

// ReduceByKey merges the values of each key within a batch and partition with reduce, which
// must be associative and commutative. Keys come out in order of first appearance.
func ReduceByKey[K comparable, V any](s *Stream[Pair[K, V]], reduce func(V, V) V) *Stream[Pair[K, V]] {
	g := newGroups[K, V]()
	return derive(s, "reduceByKey", func(_ *PartitionContext, in []Elem[Pair[K, V]], out []Elem[Pair[K, V]]) []Elem[Pair[K, V]] {
		g.reset()
		for i := range in {
			e := &in[i]
			if j, added := g.slot(e.Value.Key, e.Value.Value, e.Time, e.Offset); !added {
				g.vals[j] = reduce(g.vals[j], e.Value.Value)
			}
		}
		return g.emit(out)
	})
}

// GroupByKey gathers the values of each key within a batch and partition, in arrival order.
func GroupByKey[K comparable, V any](s *Stream[Pair[K, V]]) *Stream[Pair[K, []V]] {
	g := newGroups[K, []V]()
	return derive(s, "groupByKey", func(_ *PartitionContext, in []Elem[Pair[K, V]], out []Elem[Pair[K, []V]]) []Elem[Pair[K, []V]] {
		g.reset()
		for i := range in {
			e := &in[i]
			j, _ := g.slot(e.Value.Key, nil, e.Time, e.Offset)
			g.vals[j] = append(g.vals[j], e.Value.Value)
		}
		return g.emit(out)
	})
}

// CountByValue counts each distinct value within a batch and partition.
func CountByValue[T comparable](s *Stream[T]) *Stream[Pair[T, int64]] {
	return ReduceByKey(Map(s, func(v T) Pair[T, int64] { return Pair[T, int64]{Key: v, Value: 1} }), addInt64)
}

func addInt64(a, b int64) int64 { return a + b }
func subInt64(a, b int64) int64 { return a - b }

// Join pairs, within each batch and partition, every value of a key in left with every value
// of the same key in right (an inner join).
func Join[K comparable, V, W any](left *Stream[Pair[K, V]], right *Stream[Pair[K, W]]) *Stream[Pair[K, Joined[V, W]]] {
	return join(left, right, false)
}

// LeftJoin is Join that also keeps left values without a match, with Matched false.
func LeftJoin[K comparable, V, W any](left *Stream[Pair[K, V]], right *Stream[Pair[K, W]]) *Stream[Pair[K, Joined[V, W]]] {
	return join(left, right, true)
}

func join[K comparable, V, W any](left *Stream[Pair[K, V]], right *Stream[Pair[K, W]], outer bool) *Stream[Pair[K, Joined[V, W]]] {
	if left.p != right.p {
		left.p.fail(graphError("Join: streams of different pipelines"))
	} else if left.slide != right.slide {
		left.p.fail(graphError("Join: slides differ (%d and %d batches)", left.slide, right.slide))
	}
	rg := newGroups[K, []Elem[W]]()
	j := derive(left, "join", func(_ *PartitionContext, in []Elem[Pair[K, V]], out []Elem[Pair[K, Joined[V, W]]]) []Elem[Pair[K, Joined[V, W]]] {
		rg.reset()
		for i := range right.cur {
			e := right.cur[i]
			j, _ := rg.slot(e.Value.Key, nil, e.Time, e.Offset)
			rg.vals[j] = append(rg.vals[j], Elem[W]{Value: e.Value.Value, Time: e.Time, Offset: e.Offset})
		}
		for i := range in {
			l := &in[i]
			j, ok := rg.idx[l.Value.Key]
			if !ok {
				if outer {
					out = append(out, Elem[Pair[K, Joined[V, W]]]{Value: Pair[K, Joined[V, W]]{Key: l.Value.Key, Value: Joined[V, W]{Left: l.Value.Value}}, Time: l.Time, Offset: l.Offset})
				}
				continue
			}
			for _, r := range rg.vals[j] {
				out = append(out, Elem[Pair[K, Joined[V, W]]]{
					Value:  Pair[K, Joined[V, W]]{Key: l.Value.Key, Value: Joined[V, W]{Left: l.Value.Value, Right: r.Value, Matched: true}},
					Time:   max(l.Time, r.Time),
					Offset: min(l.Offset, r.Offset),
				})
			}
		}
		return out
	})
	j.parents = append(j.parents, right.idx)
	return j
}
