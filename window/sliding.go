// Sliding windows: per-key panes of gcd(size, slide) in a slab of rings, when windows fire,
// pruning and replay position. Emitting a window (the two stacks) and partial results are in
// sliding_emit.go.

package window

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/fleetstream/fleetstream/stream"
)

// Sliding windows are computed from panes of width g = gcd(size, slide): a record updates
// one pane of its key, and a window is the merge of its size/g panes. Each key keeps its
// panes in a ring and merges them with the two-stacks scheme: panes enter the back stack
// (folded into one accumulator) once the window that first needs them fires, and when the
// front stack runs empty the back is flipped into suffix merges. Emitting a window then
// costs O(1) merges per key amortised, whatever size/slide is.

const noPane = math.MinInt64

type paneInfo struct{ idx, minOff int64 }

// slot is one pane accumulator of a key's ring: raw in the back stack and beyond, a suffix
// merge in the front stack.
type slot[A any] struct {
	id  int64 // the pane index held, or noPane
	acc A
}

// series is a key's two-stacks bookkeeping; its panes live in the slab (see sliding.ring).
type series[K comparable, A any] struct {
	key K
	// the two stacks hold panes [lo, hi]: front [lo, b) as suffix merges, back [b, hi]
	// folded into back.
	lo, b, hi int64
	back      A
	backN     int32
	// EveryBatch: panes changed in this batch.
	changed    bool
	chLo, chHi int64
}

type sliding[T any, K comparable, V, A, R any] struct {
	op *operator[T, K, V, A, R]
	partClock
	g, size, slide, n int64
	idx               map[K]int32 // key -> key number x
	meta              []series[K, A]
	newest            []int64 // by x: newest pane with data
	// slab holds every key's ring of ringCap panes, pane-major: key x's slot for pane j is
	// slab[(j&mask)*kcap+x], so the keys of the current pane share cache lines.
	slab          []slot[A]
	ringCap, mask int64
	kcap          int64
	order         []int32 // key numbers in order of first appearance
	freeX         []int32
	panes         []paneInfo // live panes by index: panes of windows not fired yet
	cur           int        // index in panes of the last pane used
	firstStart    int64      // first window start at or after the floor
	nextEnd       int64      // end of the next window to fire
	minNeeded     int64      // first pane of that window
	newestPane    paneInfo   // newest pane ever, the replay position once none is live
	hasNewest     bool
	parts         []partial[A]
	// the last pane used: its index, start and end, the end of its earliest window, and
	// that end plus the grace (when the record is late)
	cJ, cLo, cHi, cE1, cShut int64
	// lo and hi bound the event times whose windows (and the next ones) fit in int64 time:
	// the records outside, within about a window of its ends (a bad clock), are late.
	lo, hi int64
}

type partial[A any] struct {
	end int64
	x   int32
	acc A
}

func newSliding[T any, K comparable, V, A, R any](op *operator[T, K, V, A, R], c partClock) *sliding[T, K, V, A, R] {
	size, slide := int64(op.asg.size), int64(op.asg.slide)
	g := gcd(size, slide)
	n := size / g
	// The ring's first size: room for the panes the out-of-orderness and the grace keep, up
	// to a bound (a large grace would allocate terabytes up front); grow enlarges it on demand.
	lag := min(c.ooo/g, maxFirstLag) + min(c.grace/g, maxFirstLag) + 2
	ringCap := int64(1) << bits.Len64(uint64(n+lag-1))
	// The windows of a record and the next ones span size plus two slides around it; lo
	// and hi are in whole panes, so that the last pane used is either in or out.
	lo := addSat(addSat(addSat(math.MinInt64, size), slide), slide)
	hi := subSat(subSat(subSat(math.MaxInt64, size), slide), slide)
	lo, hi = addSat(floorMul(lo, g), g), subSat(floorMul(hi, g), 1)
	return &sliding[T, K, V, A, R]{
		op: op, partClock: c, g: g, size: size, slide: slide, n: n,
		ringCap: ringCap, mask: ringCap - 1,
		idx: make(map[K]int32),
		cur: -1,
		cLo: math.MaxInt64, cHi: math.MinInt64, // no pane yet
		lo: lo, hi: hi,
	}
}

// maxFirstLag bounds the panes a ring first makes room for behind the newest, for the
// out-of-orderness and for the grace each.
const maxFirstLag = 1024

func ceilMul(t, m int64) int64 { return -floorMul(-t, m) }

func (w *sliding[T, K, V, A, R]) at(x int32, j int64) *slot[A] {
	return &w.slab[(j&w.mask)*w.kcap+int64(x)]
}

func (w *sliding[T, K, V, A, R]) process(pc *stream.PartitionContext, in []stream.Elem[T], o out[K, R]) out[K, R] {
	w.merged = pc.Merged
	merged := pc.Merged
	op := w.op
	agg := op.agg
	every := op.cfg.emit == EveryBatch
	in = begin(&w.partClock, pc, in)
	for i := range in {
		e := &in[i]
		t := e.Time
		wm := w.observeAt(pc, pc.CapEventTime(t), e.Offset)
		if (t < w.cLo || t >= w.cHi) && !w.usePane(t) { // most records fall in the last pane used
			o = w.outside(o, e)
			continue
		}
		j, e1 := w.cJ, w.cE1 // the pane, and the end of the earliest window holding t
		if !w.started {
			w.started = true
			w.cut, w.hasCut = e.Offset, true // replaying from the very start is always exact
			if merged {
				// The starting watermark is the floor (newEngine); the first window is the
				// first one holding this record, moved earlier by the records that follow.
				w.floor, w.firstStart = math.MinInt64, math.MinInt64
				w.setNextEnd(max(e1, w.endAfter(max(w.fwm, w.emitted))))
			} else {
				w.floor = floorMul(t, w.g)
				w.firstStart = ceilMul(w.floor+w.size, w.slide) - w.size
				w.setNextEnd(w.firstStart + w.size)
			}
		}
		if t < w.firstStart || w.cShut <= wm {
			o = op.appendLate(o, e, w.part, e1-w.size, e1)
			continue
		}
		if merged {
			if addSat(floorMul(t+w.size, w.slide), w.grace) <= w.emitted {
				continue // a merged partition's replay: every window of the record was emitted before the commit
			}
			if e1 < w.nextEnd {
				w.lower(e1)
			}
		}
		k := op.key(e.Value)
		x, ok := w.idx[k]
		if !ok && op.cfg.maxKeys > 0 && !op.admit(pc) {
			o = op.appendRefused(o, e, w.part, e1-w.size, e1)
			continue
		}
		if j-w.minNeeded > w.mask && !merged {
			// The record is far ahead of the next window to fire (a gap in event time, or
			// a first record whose clock was behind): fire now what the batch's end would
			// fire on the watermark so far, so that the rings need not span the gap. A
			// record after it in the batch is late for those windows either way.
			w.fwm = max(w.fwm, min(pc.PartitionWatermark, w.pwmAt(e.Offset)))
			o = w.fireClosed(pc, in, o)
		}
		w.touch(j, e.Offset)
		if !ok {
			x = w.newSeries(k)
		}
		if j-w.minNeeded > w.mask {
			w.grow(j)
		}
		sl := &w.slab[(j&w.mask)*w.kcap+int64(x)]
		if sl.id != j {
			sl.id, sl.acc = j, agg.Zero()
		}
		sl.acc = op.add(sl.acc, &e.Value)
		if j > w.newest[x] {
			w.newest[x] = j
		}
		if every {
			s := &w.meta[x]
			if !s.changed {
				s.changed, s.chLo, s.chHi = true, j, j
			} else {
				s.chLo, s.chHi = min(s.chLo, j), max(s.chHi, j)
			}
		}
	}
	w.holdAtEnd(pc, w.retained)
	w.fwm = max(w.fwm, w.fireMark(pc))
	if !w.started {
		return o
	}
	o = w.fireClosed(pc, in, o)
	if every {
		o = w.partials(o)
	}
	w.prune()
	return o
}

// fireClosed fires the windows that close on the fire watermark fwm.
func (w *sliding[T, K, V, A, R]) fireClosed(pc *stream.PartitionContext, in []stream.Elem[T], o out[K, R]) out[K, R] {
	for addSat(w.nextEnd, w.grace) <= w.fwm {
		if len(w.panes) == 0 {
			if w.fwm != stream.EndOfTime {
				w.setNextEnd(max(w.nextEnd, w.endAfter(w.fwm)))
			}
			break
		}
		if first := w.panes[0].idx * w.g; first >= w.nextEnd {
			// no data in this window: jump to the first window holding the oldest live pane,
			// but not past the first window still open, which a record may yet reach
			w.setNextEnd(min(floorMul(first, w.slide)+w.slide, w.endAfter(w.fwm)))
			continue
		}
		rose(&w.partClock, pc, in)
		o = w.fire(o, w.nextEnd)
		w.setNextEnd(w.nextEnd + w.slide)
	}
	return o
}

// usePane makes the pane of t the last pane used, unless t is outside [lo, hi].
func (w *sliding[T, K, V, A, R]) usePane(t int64) bool {
	if t < w.lo || t > w.hi {
		return false
	}
	w.cJ = floorDiv(t, w.g)
	w.cLo = w.cJ * w.g
	w.cHi = w.cLo + w.g
	w.cE1 = floorMul(t, w.slide) + w.slide
	w.cShut = addSat(w.cE1, w.grace)
	return true
}

// outside sets aside a record outside [lo, hi], with its earliest window clamped to int64 time.
func (w *sliding[T, K, V, A, R]) outside(o out[K, R], e *stream.Elem[T]) out[K, R] {
	e1 := addSat(floorMul(e.Time, w.slide), w.slide)
	return w.op.appendLate(o, e, w.part, subSat(e1, w.size), e1)
}

func (w *sliding[T, K, V, A, R]) setNextEnd(e int64) {
	w.nextEnd = e
	w.minNeeded = floorDiv(e-w.size, w.g)
	n := 0
	for n < len(w.panes) && w.panes[n].idx < w.minNeeded {
		n++
	}
	if n > 0 {
		w.panes = append(w.panes[:0], w.panes[n:]...)
		w.cur = -1
	}
}

// endAfter returns the end of the first window that a firing on watermark m leaves open (its
// end plus the grace is after m): MinInt64 for NoWatermark, MaxInt64 for EndOfTime.
func (w *sliding[T, K, V, A, R]) endAfter(m int64) int64 {
	switch m {
	case stream.NoWatermark:
		return math.MinInt64
	case stream.EndOfTime:
		return math.MaxInt64
	}
	if m < math.MinInt64+w.grace {
		return math.MinInt64 // m-grace would wrap (a huge out-of-orderness and grace): none fired
	}
	return addSat(floorMul(m-w.grace, w.slide), w.slide)
}

// lower moves, in a merged partition, the next window to fire back to the one ending at e1,
// the first window of a record older than the partition's first: the partition's records
// interleave upstream partitions, so an older record that is not late may follow a newer
// one. No window after the firing watermark or the one emitted before a resume has fired, so
// the windows from there on are all still to fire. Only a merged partition's first windows
// move back (a later record for a window before nextEnd is late), before any key's stacks
// hold a merge: the keys' stacks restart at the new first pane.
func (w *sliding[T, K, V, A, R]) lower(e1 int64) {
	e := max(e1, w.endAfter(max(w.fwm, w.emitted)))
	if e >= w.nextEnd {
		return
	}
	w.setNextEnd(e)
	for _, x := range w.order {
		s := &w.meta[x]
		s.lo, s.b, s.hi = w.minNeeded, w.minNeeded, w.minNeeded-1
	}
	if w.hasNewest && w.newestPane.idx-w.minNeeded > w.mask {
		w.grow(w.newestPane.idx)
	}
}

// touch notes that pane j holds a record at offset off.
func (w *sliding[T, K, V, A, R]) touch(j, off int64) {
	if w.cur >= 0 && w.panes[w.cur].idx == j {
		w.panes[w.cur].minOff = min(w.panes[w.cur].minOff, off)
		return
	}
	i, found := slices.BinarySearchFunc(w.panes, j, func(p paneInfo, j int64) int { return cmp.Compare(p.idx, j) })
	if !found {
		w.panes = slices.Insert(w.panes, i, paneInfo{idx: j, minOff: off})
		if !w.hasNewest || j > w.newestPane.idx {
			w.newestPane, w.hasNewest = paneInfo{idx: j, minOff: off}, true
		}
	}
	w.panes[i].minOff = min(w.panes[i].minOff, off)
	w.cur = i
}

func (w *sliding[T, K, V, A, R]) newSeries(k K) int32 {
	var x int32
	if n := len(w.freeX); n > 0 {
		x, w.freeX = w.freeX[n-1], w.freeX[:n-1]
	} else {
		x = int32(len(w.meta))
		w.meta = append(w.meta, series[K, A]{})
		w.newest = append(w.newest, noPane)
		if int64(x) >= w.kcap {
			w.resize(w.ringCap, max(64, 2*w.kcap))
		}
	}
	w.meta[x] = series[K, A]{key: k, lo: w.minNeeded, b: w.minNeeded, hi: w.minNeeded - 1, back: w.op.agg.Zero()}
	w.newest[x] = noPane
	w.idx[k] = x
	w.order = append(w.order, x)
	return x
}

// grow doubles the rings until pane j fits beside every pane still needed.
func (w *sliding[T, K, V, A, R]) grow(j int64) {
	c := w.ringCap
	for j-w.minNeeded >= c {
		c *= 2
	}
	w.resize(c, w.kcap)
}

// resize reallocates the slab for rings of c panes and kcap keys, keeping the panes still
// needed.
func (w *sliding[T, K, V, A, R]) resize(c, kcap int64) {
	slab := make([]slot[A], c*kcap)
	for i := range slab {
		slab[i].id = noPane
	}
	for i, sl := range w.slab {
		if sl.id != noPane && sl.id >= w.minNeeded {
			x := int64(i) % w.kcap
			slab[(sl.id&(c-1))*kcap+x] = sl
		}
	}
	w.slab, w.ringCap, w.mask, w.kcap = slab, c, c-1, kcap
}

// prune drops the keys without data in any window still to fire.
func (w *sliding[T, K, V, A, R]) prune() {
	n := 0
	for _, x := range w.order {
		if w.newest[x] >= w.minNeeded {
			w.order[n] = x
			n++
			continue
		}
		delete(w.idx, w.meta[x].key)
		w.meta[x] = series[K, A]{}
		for r := range w.ringCap {
			w.slab[r*w.kcap+int64(x)] = slot[A]{id: noPane}
		}
		w.freeX = append(w.freeX, x)
	}
	w.order = w.order[:n]
	w.shrink()
}

// shrink gives back the memory of a burst of keys gone by: the slab only grows with the
// keys (resize), so once at most an eighth of its key columns is live it renumbers the live
// keys from 0 and reallocates the slab, the keys' bookkeeping and the key map (a Go map
// never shrinks) for them, keeping room for four to eight times as many.
func (w *sliding[T, K, V, A, R]) shrink() {
	n := int64(len(w.order))
	kcap := w.kcap
	for kcap > 64 && n <= kcap/8 {
		kcap /= 2
	}
	if kcap == w.kcap {
		return
	}
	slab := make([]slot[A], w.ringCap*kcap)
	meta := make([]series[K, A], n, max(n, 16))
	newest := make([]int64, n, max(n, 16))
	idx := make(map[K]int32, n)
	for nx, x := range w.order {
		meta[nx], newest[nx] = w.meta[x], w.newest[x]
		idx[meta[nx].key] = int32(nx)
		for r := range w.ringCap {
			slab[r*kcap+int64(nx)] = w.slab[r*w.kcap+int64(x)]
		}
	}
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	for r := range w.ringCap {
		for x := n; x < kcap; x++ {
			slab[r*kcap+x].id = noPane
		}
	}
	w.slab, w.kcap, w.meta, w.newest, w.idx, w.order = slab, kcap, meta, newest, idx, order
	w.freeX = nil
}

// retained: replay starts at the first record of the oldest live pane, provided no newer
// pane holds an older record and every window starting before that pane was emitted.
//
// After a repartition, when the commit keeps the watermark the windows fired on
// (stream.PartitionContext.KeepsFired), replay starts at the oldest record of any live pane,
// as for Tumbling: a record before it is only in windows that fired, which the replay skips.
func (w *sliding[T, K, V, A, R]) retained() (int64, bool) {
	if w.keepsFired {
		if len(w.panes) == 0 {
			return 0, false
		}
		lo := w.panes[0].minOff
		for _, p := range w.panes[1:] {
			lo = min(lo, p.minOff)
		}
		return lo, true
	}
	if w.hasEndCut {
		return w.endCut, true
	}
	if len(w.panes) == 0 {
		if !w.hasNewest {
			if w.started {
				// Every record so far came before the first window (a size that is not a
				// multiple of the slide: the first window may start after the first pane): a
				// replay from a later record would set an earlier floor, and emit windows
				// with records that were late.
				return w.cut, true
			}
			return 0, false
		}
		return w.commit(w.newestPane.minOff, true, 0)
	}
	p0 := w.panes[0]
	lo, valid := p0.minOff, true
	for _, p := range w.panes[1:] {
		if p.minOff < lo {
			lo, valid = p.minOff, false
		}
	}
	fs := ceilMul(p0.idx*w.g+w.size, w.slide) - w.size // the replay's first window start
	if prev := fs - w.slide; prev >= w.firstStart && addSat(prev+w.size, w.grace) > w.fwm {
		valid = false
	}
	return w.commit(p0.minOff, valid, lo)
}

func (w *sliding[T, K, V, A, R]) entries() int { return len(w.order) }

// usage: the open windows are those still to fire that hold a live pane; bytes count the
// slab of rings, the keys' bookkeeping and the key map.
func (w *sliding[T, K, V, A, R]) usage() (int, int64) {
	var k K
	n := int64(unsafe.Sizeof(*w)) + w.riseBytes() + int64(cap(w.slab))*int64(unsafe.Sizeof(slot[A]{})) +
		int64(cap(w.meta))*int64(unsafe.Sizeof(series[K, A]{})) + int64(cap(w.newest))*8 +
		int64(cap(w.order)+cap(w.freeX))*4 + int64(cap(w.panes))*int64(unsafe.Sizeof(paneInfo{})) +
		int64(cap(w.parts))*int64(unsafe.Sizeof(partial[A]{})) + mapBytes(len(w.idx), unsafe.Sizeof(k), 4)
	return w.openWindows(), n
}

// openWindows counts the windows ending at nextEnd or later that hold a live pane. Pane j
// is in the windows that end at a multiple of slide in (j*g, j*g + size] (their starts are
// multiples of slide only when size is); the panes are in order, so the ends they cover are
// merged in one pass.
func (w *sliding[T, K, V, A, R]) openWindows() int {
	if !w.started {
		return 0
	}
	n, next := 0, w.nextEnd // next: the lowest end not counted yet, a multiple of slide
	for _, p := range w.panes {
		t := p.idx * w.g
		lo := max(floorMul(t, w.slide)+w.slide, next)
		hi := floorMul(t+w.size, w.slide)
		if lo <= hi {
			n += int((hi-lo)/w.slide) + 1
			next = hi + w.slide
		}
	}
	return n
}
