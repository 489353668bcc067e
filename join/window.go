// The Window engine: per tumbling window, per key, the left and the right records held; a
// window's state is dropped when the watermark reaches its end.

package join

import (
	"math"
	"unsafe"
)

type windowEngine[K comparable, A, B any] struct {
	size   int64
	wins   map[int64]*win[K, A, B]
	starts minHeap         // the starts of the open windows
	spare  []*win[K, A, B] // closed windows, whose map and slices are reused
	nA, nB int
	cells  int
}

// win is one window's records: a cell per key, in order of the key's first record, so that a
// close emits in a replayable order.
type win[K comparable, A, B any] struct {
	idx   map[K]int32
	cells []cell[K, A, B]
}

type cell[K comparable, A, B any] struct {
	key K
	as  []rec[A]
	bs  []rec[B]
}

func newWindowEngine[K comparable, A, B any](size int64) *windowEngine[K, A, B] {
	return &windowEngine[K, A, B]{size: size, wins: map[int64]*win[K, A, B]{}}
}

// floorMul rounds t down to a multiple of m (m > 0), also for negative t; to the start of
// int64 time when that multiple is before it (t - r would overflow to the end).
func floorMul(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	if t < math.MinInt64+r {
		return math.MinInt64
	}
	return t - r
}

// late: the record's window has closed (the watermark reached its end).
func (e *windowEngine[K, A, B]) late(t, wm int64) bool {
	return addSat(floorMul(t, e.size), e.size) <= wm
}

func (e *windowEngine[K, A, B]) add(p *part[K, A, B], key K, v *Side[A, B], t, pos int64) {
	start := floorMul(t, e.size)
	end := addSat(start, e.size)
	w := e.wins[start]
	if w == nil {
		if n := len(e.spare); n > 0 {
			w, e.spare = e.spare[n-1], e.spare[:n-1]
		} else {
			w = &win[K, A, B]{idx: map[K]int32{}}
		}
		e.wins[start] = w
		e.starts.push(start)
	}
	i, ok := w.idx[key]
	if !ok {
		// reuse a closed window's cell and its slices' capacity
		i = int32(len(w.cells))
		if len(w.cells) < cap(w.cells) {
			w.cells = w.cells[:i+1]
		} else {
			w.cells = append(w.cells, cell[K, A, B]{})
		}
		w.cells[i].key = key
		w.idx[key] = i
		e.cells++
	}
	c := &w.cells[i]
	if !v.IsRight {
		r := rec[A]{t: t, pos: pos, v: v.Left}
		lp := int64(math.MaxInt64)
		for i := range c.bs {
			p.pair(key, &r, &c.bs[i], start, end)
			r.matched = true
			lp = min(lp, c.bs[i].pos)
		}
		if r.matched {
			p.holdLeft(pos, lp)
		}
		r.seq = p.keep(pos)
		c.as = append(c.as, r)
		e.nA++
		return
	}
	r := rec[B]{t: t, pos: pos, v: v.Right}
	for i := range c.as {
		p.pair(key, &c.as[i], &r, start, end)
		c.as[i].matched = true
	}
	r.seq = p.keep(pos)
	c.bs = append(c.bs, r)
	e.nB++
}

// expire closes the windows whose end the watermark reached, in order of start.
func (e *windowEngine[K, A, B]) expire(p *part[K, A, B], wm int64) {
	for len(e.starts) > 0 && addSat(e.starts[0], e.size) <= wm {
		start := e.starts.pop()
		w := e.wins[start]
		delete(e.wins, start)
		for i := range w.cells {
			c := &w.cells[i]
			for i := range c.as {
				p.unmatched(c.key, &c.as[i], start, addSat(start, e.size))
				p.dead(c.as[i].seq)
			}
			for i := range c.bs {
				p.dead(c.bs[i].seq)
			}
			e.nA -= len(c.as)
			e.nB -= len(c.bs)
			var zero K
			clear(c.as)
			clear(c.bs)
			c.key, c.as, c.bs = zero, c.as[:0], c.bs[:0]
		}
		e.cells -= len(w.cells)
		clear(w.idx)
		w.cells = w.cells[:0]
		if len(e.spare) < 4 {
			e.spare = append(e.spare, w)
		}
	}
}

func (e *windowEngine[K, A, B]) usage() (int, int64) {
	var k K
	b := int64(e.nA)*int64(unsafe.Sizeof(rec[A]{})) + int64(e.nB)*int64(unsafe.Sizeof(rec[B]{}))
	// a cell: its map slot (key and pointer), its cell and its key in the window's order
	b += int64(e.cells) * (int64(unsafe.Sizeof(k)+4+1)*8/7 + int64(unsafe.Sizeof(cell[K, A, B]{})))
	b += int64(len(e.wins)) * int64(unsafe.Sizeof(win[K, A, B]{})+8+8+8)
	return len(e.wins), b
}
