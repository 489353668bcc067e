// Processing-time windows, batch by batch like Spark's DStreams: Window, ReduceByWindow,
// CountByWindow, ReduceByKeyAndWindow, CountByValueAndWindow, GroupByKeyAndWindow.

package stream

import (
	"fmt"
	"time"
)

// windowBatches checks a processing-time window against the batch interval and the parent's
// slide, returning its length and slide in batches, or 0, 0 after recording an error.
func windowBatches[T any](s *Stream[T], op string, length, slide time.Duration) (int64, int64) {
	iv := s.p.interval
	parent := time.Duration(s.slide) * iv
	switch {
	case length <= 0 || slide <= 0:
		s.p.fail(invalid("%s(%v, %v): length and slide must be positive", op, length, slide))
	case length%iv != 0 || slide%iv != 0:
		s.p.fail(invalid("%s(%v, %v): length and slide must be multiples of the batch interval %v", op, length, slide, iv))
	case length%parent != 0 || slide%parent != 0:
		s.p.fail(invalid("%s(%v, %v): length and slide must be multiples of the parent stream's slide %v", op, length, slide, parent))
	default:
		return int64(length / iv), int64(slide / iv)
	}
	return 0, 0
}

// ring keeps per-batch items for the last batches of a partition.
type ring[E any] struct {
	batches []int64
	items   [][]E
	minOff  []int64
}

func (r *ring[E]) push(batch int64, items []E, minOff int64) {
	r.batches = append(r.batches, batch)
	r.items = append(r.items, items)
	r.minOff = append(r.minOff, minOff)
}

// expire drops the batches numbered <= upto.
func (r *ring[E]) expire(upto int64) {
	n := 0
	for n < len(r.batches) && r.batches[n] <= upto {
		n++
	}
	if n == 0 {
		return
	}
	clear(r.items[:n])
	r.batches = append(r.batches[:0], r.batches[n:]...)
	r.items = append(r.items[:0], r.items[n:]...)
	r.minOff = append(r.minOff[:0], r.minOff[n:]...)
}

// retained is the oldest offset held by batches numbered > after.
func (r *ring[E]) retained(after int64) (int64, bool) {
	off, ok := int64(0), false
	for i, b := range r.batches {
		if b > after && r.minOff[i] >= 0 && (!ok || r.minOff[i] < off) {
			off, ok = r.minOff[i], true
		}
	}
	return off, ok
}

func (r *ring[E]) size() int {
	n := 0
	for _, it := range r.items {
		n += len(it)
	}
	return n
}

// partitioned holds one state value per partition.
type partitioned[S any] struct {
	m     map[int32]*S
	fresh func() *S
}

func newPartitioned[S any](fresh func() *S) *partitioned[S] {
	return &partitioned[S]{m: make(map[int32]*S), fresh: fresh}
}

func (p *partitioned[S]) get(part int32) *S {
	s, ok := p.m[part]
	if !ok {
		s = p.fresh()
		p.m[part] = s
	}
	return s
}

func (p *partitioned[S]) drop(part int32) { delete(p.m, part) }

type windowState[T any] struct {
	p      *partitioned[ring[Elem[T]]]
	length int64
	batch  int64
}

func (w *windowState[T]) retained(part int32) (int64, bool) {
	if r, ok := w.p.m[part]; ok {
		return r.retained(w.batch - w.length)
	}
	return 0, false
}
func (w *windowState[T]) drop(part int32) { w.p.drop(part) }
func (w *windowState[T]) stateSize() int {
	n := 0
	for _, r := range w.p.m {
		n += r.size()
	}
	return n
}

// Window returns a stream whose batches are windows over s: every slide, all values of the
// last length of batches, like Spark's window. length and slide must be multiples of the
// batch interval (and of s's slide). Until length has passed, windows hold the batches there
// are. Windows are per partition.
func Window[T any](s *Stream[T], length, slide time.Duration) *Stream[T] {
	lb, sb := windowBatches(s, "Window", length, slide)
	out := &Stream[T]{p: s.p, name: "window", every: s.slide, slide: max(sb, 1), parents: []int{s.idx},
		params: fmt.Sprintf("window length=%v slide=%v", length, slide)}
	st := &windowState[T]{p: newPartitioned(func() *ring[Elem[T]] { return new(ring[Elem[T]]) }), length: lb}
	out.state = st
	out.fn = func(pc *PartitionContext, dst []Elem[T]) []Elem[T] {
		st.batch = pc.Batch
		r := st.p.get(pc.Partition)
		r.expire(pc.Batch - lb)
		in := s.cur
		if from, ok := pc.skip[out.idx]; ok {
			// Replay after a resume: leave out the records of windows already emitted,
			// which another operator's older replay start brought back.
			in = nil
			for i := range s.cur {
				if s.cur[i].Offset >= from {
					in = append(in, s.cur[i])
				}
			}
		}
		if len(in) > 0 {
			_, off := span(in, pc)
			r.push(pc.Batch, append([]Elem[T](nil), in...), off)
		}
		if sb == 0 || pc.Batch%sb != 0 {
			return dst
		}
		for _, it := range r.items {
			dst = append(dst, it...)
		}
		return dst
	}
	return register(s.p, out)
}

// ReduceByWindow reduces all values of each window to one, like Spark's reduceByWindow.
// Empty windows produce nothing.
func ReduceByWindow[T any](s *Stream[T], reduce func(T, T) T, length, slide time.Duration) *Stream[T] {
	w := Window(s, length, slide)
	return derive(w, "reduceByWindow", func(_ *PartitionContext, in []Elem[T], out []Elem[T]) []Elem[T] {
		if len(in) == 0 {
			return out
		}
		acc := in[0]
		for _, e := range in[1:] {
			acc = Elem[T]{Value: reduce(acc.Value, e.Value), Time: max(acc.Time, e.Time), Offset: min(acc.Offset, e.Offset)}
		}
		return append(out, acc)
	})
}

// ReduceByWindowInv is ReduceByWindow computed incrementally with an inverse function, like
// Spark's reduceByWindow(reduce, inverse, ...): once values were seen, a window whose values
// all left still yields a value (the inverse of everything).
func ReduceByWindowInv[T any](s *Stream[T], reduce, inverse func(T, T) T, length, slide time.Duration) *Stream[T] {
	keyed := Map(s, func(v T) Pair[struct{}, T] { return Pair[struct{}, T]{Value: v} })
	r := ReduceByKeyAndWindowInv(keyed, reduce, inverse, nil, length, slide)
	return Map(r, func(p Pair[struct{}, T]) T { return p.Value })
}

// CountByWindow counts the values of each window, like Spark's countByWindow (which uses an
// inverse function: after values were seen, an empty window counts 0).
func CountByWindow[T any](s *Stream[T], length, slide time.Duration) *Stream[int64] {
	return ReduceByWindowInv(Map(s, func(T) int64 { return 1 }), addInt64, subInt64, length, slide)
}

// ReduceByKeyAndWindow reduces the values of each key over each window, like Spark's
// reduceByKeyAndWindow without an inverse function.
func ReduceByKeyAndWindow[K comparable, V any](s *Stream[Pair[K, V]], reduce func(V, V) V, length, slide time.Duration) *Stream[Pair[K, V]] {
	return ReduceByKey(Window(ReduceByKey(s, reduce), length, slide), reduce)
}

// CountByValueAndWindow counts each distinct value over each window, like Spark's
// countByValueAndWindow: incremental, and values whose count fell to zero are left out.
func CountByValueAndWindow[T comparable](s *Stream[T], length, slide time.Duration) *Stream[Pair[T, int64]] {
	ones := Map(s, func(v T) Pair[T, int64] { return Pair[T, int64]{Key: v, Value: 1} })
	return ReduceByKeyAndWindowInv(ones, addInt64, subInt64, func(p Pair[T, int64]) bool { return p.Value != 0 }, length, slide)
}

// GroupByKeyAndWindow gathers the values of each key over each window, in batch order.
func GroupByKeyAndWindow[K comparable, V any](s *Stream[Pair[K, V]], length, slide time.Duration) *Stream[Pair[K, []V]] {
	return GroupByKey(Window(s, length, slide))
}
