// Session windows: per-key sessions that grow and merge as records arrive, their emission,
// pruning and replay position.

package window

import (
	"cmp"
	"math"
	"slices"
	"unsafe"

	"github.com/fleetstream/fleetstream/stream"
)

type session[A any] struct {
	start, last int64 // first and last event time; the window is [start, last+gap)
	acc         A
	minOff      int64
	changed     bool
}

type sessKey[K comparable, A any] struct {
	key K
	ss  []session[A] // disjoint, by start
	// firedEnd is the end of the key's last emitted session: a record before it would
	// reopen an emitted session, so it is late.
	firedEnd int64
}

type sessions[T any, K comparable, V, A, R any] struct {
	op *operator[T, K, V, A, R]
	partClock
	gap     int64
	idx     map[K]int32
	keys    []*sessKey[K, A]
	scratch []sessRef
}

type sessRef struct {
	end, start int64
	key, i     int
}

func (w *sessions[T, K, V, A, R]) process(pc *stream.PartitionContext, in []stream.Elem[T], o out[K, R]) out[K, R] {
	w.merged = pc.Merged
	op := w.op
	agg := op.agg
	every := op.cfg.emit == EveryBatch
	gap := w.gap
	gg := addSat(gap, w.grace) // a session closes on its last record plus gg
	lastT := int64(math.MaxInt64) - gap
	in = begin(&w.partClock, pc, in)
	for i := range in {
		e := &in[i]
		t := e.Time
		wm := w.observeAt(pc, pc.CapEventTime(t), e.Offset)
		w.started = true
		if t > lastT {
			// within gap of the end of int64 time (a bad clock): its session's end
			// cannot be represented, and it holds nothing
			o = op.appendLate(o, e, w.part, t, math.MaxInt64)
			continue
		}
		if addSat(t, gg) <= wm {
			o = op.appendLate(o, e, w.part, t, t+gap)
			continue
		}
		k := op.key(e.Value)
		x, ok := w.idx[k]
		if ok && t < w.keys[x].firedEnd {
			o = op.appendLate(o, e, w.part, t, t+gap)
			continue
		}
		// A key without sessions (new, or kept only for its firedEnd) asks the key limit
		// for the session it opens: the limit counts keys with sessions (entries).
		if (!ok || len(w.keys[x].ss) == 0) && op.cfg.maxKeys > 0 && !op.admit(pc) {
			o = op.appendRefused(o, e, w.part, t, t+gap)
			continue
		}
		if !ok {
			x = int32(len(w.keys))
			w.idx[k] = x
			w.keys = append(w.keys, &sessKey[K, A]{key: k, firedEnd: math.MinInt64})
		}
		sk := w.keys[x]
		// the first session overlapping [t, t+gap); joining a session that the partition's
		// watermark has closed would change a result that is (or may be) emitted: late.
		f, sealed := -1, false
		for j := range sk.ss {
			s := &sk.ss[j]
			if s.start >= t+gap {
				break
			}
			if t < s.last+gap {
				if f < 0 {
					f = j
				}
				sealed = sealed || addSat(s.last, gg) <= wm
			}
		}
		if sealed {
			o = op.appendLate(o, e, w.part, t, t+gap)
			continue
		}
		if f < 0 {
			pos := 0
			for pos < len(sk.ss) && sk.ss[pos].start < t {
				pos++
			}
			sk.ss = slices.Insert(sk.ss, pos, session[A]{start: t, last: t, acc: op.add(agg.Zero(), &e.Value), minOff: e.Offset, changed: every})
			continue
		}
		s := &sk.ss[f]
		s.acc = op.add(s.acc, &e.Value)
		s.start, s.last, s.minOff, s.changed = min(s.start, t), max(s.last, t), min(s.minOff, e.Offset), every
		// t may bridge s and the sessions after it
		m := f + 1
		for m < len(sk.ss) && sk.ss[m].start < s.last+gap {
			n := &sk.ss[m]
			s.acc = agg.Merge(s.acc, n.acc)
			s.last, s.minOff = max(s.last, n.last), min(s.minOff, n.minOff)
			m++
		}
		if m > f+1 {
			sk.ss = slices.Delete(sk.ss, f+1, m)
		}
	}
	w.fwm = max(w.fwm, w.fireMark(pc))
	o = w.emit(pc, in, o, true)
	if every {
		o = w.emit(pc, in, o, false)
	}
	w.prune()
	return o
}

// emit emits the sessions that close (final) or that changed (partial), by end and then key
// order, and removes the closed ones.
func (w *sessions[T, K, V, A, R]) emit(pc *stream.PartitionContext, in []stream.Elem[T], o out[K, R], final bool) out[K, R] {
	w.scratch = w.scratch[:0]
	gg := addSat(w.gap, w.grace)
	for ki, sk := range w.keys {
		for i := range sk.ss {
			s := &sk.ss[i]
			closed := addSat(s.last, gg) <= w.fwm
			if (final && closed) || (!final && s.changed) {
				w.scratch = append(w.scratch, sessRef{end: s.last + w.gap, start: s.start, key: ki, i: i})
			}
			if !final {
				s.changed = false
			}
		}
	}
	if len(w.scratch) == 0 {
		return o
	}
	if final {
		rose(&w.partClock, pc, in)
	}
	slices.SortFunc(w.scratch, func(a, b sessRef) int {
		if c := cmp.Compare(a.end, b.end); c != 0 {
			return c
		}
		if a.key != b.key {
			return a.key - b.key
		}
		return cmp.Compare(a.start, b.start)
	})
	for _, r := range w.scratch {
		sk := w.keys[r.key]
		s := &sk.ss[r.i]
		at := s.minOff
		if final {
			at = w.closeAt(addSat(r.end, w.grace))
		}
		o = w.op.appendResult(o, w.part, sk.key, s.acc, s.start, r.end, final, at)
	}
	if final {
		for _, r := range w.scratch {
			sk := w.keys[r.key]
			sk.firedEnd = max(sk.firedEnd, r.end)
		}
		for _, sk := range w.keys {
			sk.ss = slices.DeleteFunc(sk.ss, func(s session[A]) bool { return addSat(s.last, gg) <= w.fwm })
		}
	}
	return o
}

// prune drops the keys with no session whose emitted sessions no record can reach anymore.
func (w *sessions[T, K, V, A, R]) prune() {
	n := 0
	gg := addSat(w.gap, w.grace)
	for _, sk := range w.keys {
		if len(sk.ss) > 0 || addSat(sk.firedEnd, gg) > w.fwm {
			w.keys[n] = sk
			n++
			continue
		}
		delete(w.idx, sk.key)
	}
	if n == len(w.keys) {
		return
	}
	clear(w.keys[n:])
	w.keys = w.keys[:n]
	if cap(w.keys) > 256 && 8*n <= cap(w.keys) {
		// A burst of keys gone by: give its memory back (a Go map never shrinks).
		w.keys = slices.Clone(w.keys)
		w.idx = make(map[K]int32, n)
		w.scratch = nil
	}
	for i, sk := range w.keys {
		w.idx[sk.key] = int32(i)
	}
}

// retained is the oldest record of any open session. Sessions have no common boundaries, so
// a replay rebuilds every open session exactly but may re-emit, from its later records only,
// a session that closed while spanning the committed offset (see the package documentation).
func (w *sessions[T, K, V, A, R]) retained() (int64, bool) {
	lo, ok := int64(math.MaxInt64), false
	for _, sk := range w.keys {
		for i := range sk.ss {
			lo, ok = min(lo, sk.ss[i].minOff), true
		}
	}
	return lo, ok
}

// entries counts the keys with sessions (WithMaxKeys bounds them).
func (w *sessions[T, K, V, A, R]) entries() int {
	n := 0
	for _, sk := range w.keys {
		if len(sk.ss) > 0 {
			n++
		}
	}
	return n
}

// usage: every session is an open window; bytes count the keys' sessions by capacity and
// the key map. Like entries, it passes over the keys.
func (w *sessions[T, K, V, A, R]) usage() (int, int64) {
	var k K
	open := 0
	n := int64(unsafe.Sizeof(*w)) + w.riseBytes() + int64(cap(w.keys))*int64(unsafe.Sizeof(&sessKey[K, A]{})) +
		int64(cap(w.scratch))*int64(unsafe.Sizeof(sessRef{})) + mapBytes(len(w.idx), unsafe.Sizeof(k), 4)
	for _, sk := range w.keys {
		open += len(sk.ss)
		n += int64(unsafe.Sizeof(*sk)) + int64(cap(sk.ss))*int64(unsafe.Sizeof(session[A]{}))
	}
	return open, n
}
