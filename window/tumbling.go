// Tumbling windows: one bucket of inline accumulators per open window, reused when closed,
// firing and replay position.

package window

import (
	"math"
	"slices"
	"unsafe"

	"github.com/fleetstream/fleetstream/stream"
)

// bucket is one tumbling window of a partition: every key's accumulator inline, in order of
// first appearance.
type bucket[K comparable, A any] struct {
	start  int64
	minOff int64
	idx    map[K]int32
	keys   []K
	vals   []A
	// kept is how many of vals' slots, from the first, hold an earlier window's accumulator
	// for the aggregator's Reset (see reset): the slots past it up to cap(vals) hold A's zero
	// value (append grew them), which is no accumulator to hand to Reset.
	kept int
	// EveryBatch: the batch that last changed each key, and the keys changed in this batch.
	stamp   []int64
	changed []int32
}

// reset empties b for another window. keepVals keeps the accumulators past the new length,
// for the aggregator's Reset to reuse (see Resetter); otherwise they are cleared, so that
// what they refer to can be collected.
func (b *bucket[K, A]) reset(keepVals bool) {
	clear(b.idx)
	clear(b.keys)
	if keepVals {
		b.kept = max(b.kept, len(b.vals))
	} else {
		clear(b.vals)
		b.kept = 0
	}
	b.keys, b.vals, b.stamp, b.changed = b.keys[:0], b.vals[:0], b.stamp[:0], b.changed[:0]
}

type tumbling[T any, K comparable, V, A, R any] struct {
	op *operator[T, K, V, A, R]
	partClock
	size int64
	open []*bucket[K, A] // by start
	free []*bucket[K, A]
	cur  *bucket[K, A]
	// typicalKeys is a moving average of the keys closed buckets held (see recycle).
	typicalKeys int
	// the newest window ever opened, the replay position once no window is open.
	newestStart, newestOff int64
	hasNewest              bool
}

const maxFree = 4

// maxFreeKeys is the most keys a closed bucket may hold to be kept for reuse whatever the
// windows before it held (see recycle).
const maxFreeKeys = 4096

func (w *tumbling[T, K, V, A, R]) process(pc *stream.PartitionContext, in []stream.Elem[T], o out[K, R]) out[K, R] {
	w.merged = pc.Merged
	op := w.op
	agg := op.agg
	every := op.cfg.emit == EveryBatch
	size := w.size
	sg := addSat(size, w.grace) // a window closes on its start plus sg (addSat: up to the end of time)
	in = begin(&w.partClock, pc, in)
	for i := range in {
		e := &in[i]
		wm := w.observeAt(pc, pc.CapEventTime(e.Time), e.Offset)
		var start int64
		if b := w.cur; b != nil && e.Time >= b.start && uint64(e.Time-b.start) < uint64(size) {
			start = b.start // most records fall in the last window used: skip the division
		} else {
			var end int64
			var fits bool
			if start, end, fits = tumblingWindow(e.Time, size); !fits {
				// within a window of the ends of int64 time (a bad clock): its window
				// cannot be emitted, and it holds nothing
				o = op.appendLate(o, e, w.part, start, end)
				continue
			}
		}
		if !w.started {
			w.started, w.floor = true, start
			w.cut, w.hasCut = e.Offset, true // replaying from the very start is always exact
			if w.merged {
				w.floor = math.MinInt64 // the starting watermark is the floor (newEngine)
			}
		}
		shut := addSat(start, sg)
		if start < w.floor || shut <= wm {
			o = op.appendLate(o, e, w.part, start, start+size)
			continue
		}
		if shut <= w.emitted {
			continue // a merged partition's replay: emitted before the commit, with this record
		}
		k := op.key(e.Value)
		b := w.cur
		if b == nil || b.start != start {
			b = w.lookup(start)
		}
		var j int32
		ok := false
		if b != nil {
			j, ok = b.idx[k]
		}
		if !ok && op.cfg.maxKeys > 0 && !op.admit(pc) {
			o = op.appendRefused(o, e, w.part, start, start+size)
			continue
		}
		if b == nil {
			b = w.bucket(start, e.Offset)
		}
		w.cur = b
		b.minOff = min(b.minOff, e.Offset)
		if !ok {
			j = int32(len(b.keys))
			b.idx[k] = j
			b.keys = append(b.keys, k)
			if n := len(b.vals); n < b.kept && op.reset != nil {
				b.vals = b.vals[:n+1]
				b.vals[n] = op.reset(b.vals[n]) // an earlier window's, emitted: its memory reused
			} else {
				b.vals = append(b.vals, agg.Zero())
			}
			if every {
				b.stamp = append(b.stamp, 0)
			}
		}
		b.vals[j] = op.add(b.vals[j], &e.Value)
		if every && b.stamp[j] != pc.Batch {
			b.stamp[j] = pc.Batch
			b.changed = append(b.changed, j)
		}
	}
	w.holdAtEnd(pc, w.retained)
	w.fwm = max(w.fwm, w.fireMark(pc))
	n := 0
	for _, b := range w.open {
		shut := addSat(b.start, sg)
		if shut > w.fwm {
			break
		}
		rose(&w.partClock, pc, in)
		at := w.closeAt(shut)
		sp := spanOf(b.start, b.start+size)
		o = slices.Grow(o, len(b.keys))
		for j, k := range b.keys {
			o = op.appendSpan(o, w.part, k, b.vals[j], &sp, true, at)
		}
		w.recycle(b)
		n++
	}
	if n > 0 {
		w.open = append(w.open[:0], w.open[n:]...)
		clear(w.open[len(w.open):cap(w.open)])
	}
	if every {
		for _, b := range w.open {
			slices.Sort(b.changed)
			sp := spanOf(b.start, b.start+size)
			o = slices.Grow(o, len(b.changed))
			for _, j := range b.changed {
				o = op.appendSpan(o, w.part, b.keys[j], b.vals[j], &sp, false, b.minOff)
			}
			b.changed = b.changed[:0]
		}
	}
	return o
}

// lookup returns the open window starting at start, or nil.
func (w *tumbling[T, K, V, A, R]) lookup(start int64) *bucket[K, A] {
	for i := len(w.open) - 1; i >= 0 && w.open[i].start >= start; i-- {
		if w.open[i].start == start {
			return w.open[i]
		}
	}
	return nil
}

// bucket returns the open window starting at start, opening it if needed.
func (w *tumbling[T, K, V, A, R]) bucket(start, off int64) *bucket[K, A] {
	i := len(w.open)
	for i > 0 && w.open[i-1].start >= start {
		if w.open[i-1].start == start {
			return w.open[i-1]
		}
		i--
	}
	var b *bucket[K, A]
	if n := len(w.free); n > 0 {
		b, w.free = w.free[n-1], w.free[:n-1]
	} else {
		b = &bucket[K, A]{idx: make(map[K]int32)}
	}
	b.start, b.minOff = start, off
	w.open = slices.Insert(w.open, i, b)
	if !w.hasNewest || start > w.newestStart {
		w.newestStart, w.newestOff, w.hasNewest = start, off, true
	}
	return b
}

func (w *tumbling[T, K, V, A, R]) recycle(b *bucket[K, A]) {
	if w.cur == b {
		w.cur = nil
	}
	// A bucket's map never shrinks: a bucket that held a burst of keys, far more than the
	// windows before it, is let go rather than kept to pin that memory; buckets of the
	// usual size are reused, so a steady load allocates no new maps.
	n := len(b.keys)
	burst := n > maxFreeKeys && n > 4*w.typicalKeys
	w.typicalKeys = (3*w.typicalKeys + n) / 4
	if burst {
		return
	}
	b.reset(w.op.reset != nil)
	if len(w.free) < maxFree {
		w.free = append(w.free, b)
	}
}

// retained: replay must start at the first record of the oldest open window, provided no
// newer window holds an older record and every earlier window was emitted; the replay's
// floor then suppresses exactly the windows that were already emitted. Otherwise the last
// such position stands.
//
// In a repartition's partition the windows' records interleave (a newer window often holds an
// older record than the oldest open one), so such a position would rarely come. There, when
// the commit keeps the watermark the windows fired on (stream.PartitionContext.KeepsFired),
// replay starts at the oldest record of any open window: the windows that fired before it are
// skipped by that watermark (ResumeFired), and every other window has all its records from
// there on.
func (w *tumbling[T, K, V, A, R]) retained() (int64, bool) {
	if w.keepsFired {
		if len(w.open) == 0 {
			return 0, false
		}
		lo := w.open[0].minOff
		for _, b := range w.open[1:] {
			lo = min(lo, b.minOff)
		}
		return lo, true
	}
	if w.hasEndCut {
		return w.endCut, true
	}
	if len(w.open) == 0 {
		if !w.hasNewest {
			return 0, false
		}
		return w.commit(w.newestOff, true, 0)
	}
	b0 := w.open[0]
	lo := b0.minOff
	valid := true
	for _, b := range w.open[1:] {
		if b.minOff < lo {
			lo, valid = b.minOff, false
		}
	}
	if b0.start > w.floor && addSat(b0.start, w.grace) > w.fwm {
		valid = false
	}
	return w.commit(b0.minOff, valid, lo)
}

func (w *tumbling[T, K, V, A, R]) entries() int {
	n := 0
	for _, b := range w.open {
		n += len(b.keys)
	}
	return n
}

// usage: the open buckets are the open windows; bytes count every bucket, open or kept for
// reuse, by the capacity of its slices and the entries its map was sized for.
func (w *tumbling[T, K, V, A, R]) usage() (int, int64) {
	n := int64(unsafe.Sizeof(*w)) + w.riseBytes() + int64(cap(w.open)+cap(w.free))*int64(unsafe.Sizeof(w.cur))
	for _, b := range w.open {
		n += b.bytes()
	}
	for _, b := range w.free {
		n += b.bytes()
	}
	return len(w.open), n
}

func (b *bucket[K, A]) bytes() int64 {
	var k K
	var a A
	return int64(unsafe.Sizeof(*b)) + int64(cap(b.keys))*int64(unsafe.Sizeof(k)) + int64(cap(b.vals))*int64(unsafe.Sizeof(a)) +
		int64(cap(b.stamp))*8 + int64(cap(b.changed))*4 + mapBytes(cap(b.keys), unsafe.Sizeof(k), 4)
}
