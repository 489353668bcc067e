// The Interval engine: per key, the left and the right records held, each sorted by event
// time, and a heap of the keys by the time their oldest record expires.

package join

import (
	"math"
	"slices"
	"unsafe"
)

type intervalEngine[K comparable, A, B any] struct {
	lower, upper int64
	keys         map[K]*ikey[K, A, B]
	exp          expHeap[K, A, B]
	nA, nB       int
}

// ikey is one key's records. as and bs are sorted by event time (stable in arrival order),
// so the records a watermark expires are a prefix of each.
type ikey[K comparable, A, B any] struct {
	key K
	as  []rec[A]
	bs  []rec[B]
	// queued is the expiry of the side's live entry in the heap, MaxInt64 if none.
	queued [2]int64
}

type expEntry[K comparable, A, B any] struct {
	at    int64 // the side's first record expires once the watermark is past at
	k     *ikey[K, A, B]
	right bool
}

// expHeap is a min-heap by at, typed so that pushing and popping allocate nothing.
type expHeap[K comparable, A, B any] []expEntry[K, A, B]

func (h *expHeap[K, A, B]) push(x expEntry[K, A, B]) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *expHeap[K, A, B]) pop() expEntry[K, A, B] {
	s := *h
	x := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = expEntry[K, A, B]{}
	s = s[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && s[l].at < s[m].at {
			m = l
		}
		if r := l + 1; r < n && s[r].at < s[m].at {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return x
}

func newIntervalEngine[K comparable, A, B any](lower, upper int64) *intervalEngine[K, A, B] {
	return &intervalEngine[K, A, B]{lower: lower, upper: upper, keys: map[K]*ikey[K, A, B]{}}
}

// late: a record behind the watermark may have partners that were already dropped (a left
// record at ta needs right records from ta-lower, which are dropped once the watermark is
// past ta; likewise for a right record), so it is late.
func (e *intervalEngine[K, A, B]) late(t, wm int64) bool { return t < wm }

// insertAt returns where a record at time t goes in a slice sorted by time, after the records
// of the same time: near the end, since records come roughly in time order.
func insertAt[V any](rs []rec[V], t int64) int {
	i := len(rs)
	for i > 0 && rs[i-1].t > t {
		i--
		if len(rs)-i > 8 {
			j, _ := slices.BinarySearchFunc(rs[:i], t, func(r rec[V], t int64) int {
				if r.t <= t {
					return -1
				}
				return 1
			})
			return j
		}
	}
	return i
}

// firstFrom returns the index of the first record at or after time t.
func firstFrom[V any](rs []rec[V], t int64) int {
	i, _ := slices.BinarySearchFunc(rs, t, func(r rec[V], t int64) int {
		if r.t < t {
			return -1
		}
		return 1
	})
	return i
}

func (e *intervalEngine[K, A, B]) add(p *part[K, A, B], key K, v *Side[A, B], t, pos int64) {
	k := e.keys[key]
	if k == nil {
		k = &ikey[K, A, B]{key: key, queued: [2]int64{math.MaxInt64, math.MaxInt64}}
		e.keys[key] = k
	}
	if !v.IsRight {
		r := rec[A]{t: t, pos: pos, v: v.Left}
		// partners: right records with ta-lower <= tb <= ta+upper, all before this one
		hi := addSat(t, e.upper)
		lp := int64(-1)
		for i := firstFrom(k.bs, addSat(t, -e.lower)); i < len(k.bs) && k.bs[i].t <= hi; i++ {
			p.pair(key, &r, &k.bs[i], 0, 0)
			r.matched = true
			lp = max(lp, k.bs[i].pos)
		}
		if r.matched {
			r.hold = p.holdLeft(pos, lp)
		}
		r.seq = p.keep(pos)
		i := insertAt(k.as, t)
		k.as = slices.Insert(k.as, i, r)
		e.nA++
		if i == 0 {
			e.queue(k, false, addSat(t, e.upper))
		}
		return
	}
	r := rec[B]{t: t, pos: pos, v: v.Right}
	// partners: left records with tb-upper <= ta <= tb+lower, all before this one
	hi := addSat(t, e.lower)
	for i := firstFrom(k.as, addSat(t, -e.upper)); i < len(k.as) && k.as[i].t <= hi; i++ {
		p.pair(key, &k.as[i], &r, 0, 0)
		p.matchedLater(&k.as[i])
	}
	r.seq = p.keep(pos)
	i := insertAt(k.bs, t)
	k.bs = slices.Insert(k.bs, i, r)
	e.nB++
	if i == 0 {
		e.queue(k, true, addSat(t, e.lower))
	}
}

// queue puts a side of a key in the heap at its first record's expiry, if that is earlier than
// where it is queued. A later entry of the side becomes stale and is skipped when popped.
func (e *intervalEngine[K, A, B]) queue(k *ikey[K, A, B], right bool, at int64) {
	s := 0
	if right {
		s = 1
	}
	if at < k.queued[s] {
		k.queued[s] = at
		e.exp.push(expEntry[K, A, B]{at: at, k: k, right: right})
	}
}

// expire drops left records with ta+upper < wm and right records with tb+lower < wm: no
// record that is not late can match them any more.
func (e *intervalEngine[K, A, B]) expire(p *part[K, A, B], wm int64) {
	for len(e.exp) > 0 && e.exp[0].at < wm {
		x := e.exp.pop()
		k := x.k
		s := 0
		if x.right {
			s = 1
		}
		if k.queued[s] != x.at {
			continue // stale
		}
		k.queued[s] = math.MaxInt64
		if !x.right {
			var n int
			k.as, n = trim(k.as, e.upper, wm, func(r *rec[A]) {
				p.unmatched(k.key, r, 0, 0)
				p.dead(r.seq)
			})
			e.nA -= n
			if len(k.as) > 0 {
				e.queue(k, false, addSat(k.as[0].t, e.upper))
			}
		} else {
			var n int
			k.bs, n = trim(k.bs, e.lower, wm, func(r *rec[B]) { p.dead(r.seq) })
			e.nB -= n
			if len(k.bs) > 0 {
				e.queue(k, true, addSat(k.bs[0].t, e.lower))
			}
		}
		if len(k.as) == 0 && len(k.bs) == 0 {
			delete(e.keys, k.key)
		}
	}
	if len(e.keys) == 0 && cap(e.exp) > 1024 {
		e.exp = nil // give back a catch-up's heap
	}
}

// trim drops the records of rs (sorted by time) with t+d < wm, calling each on them first,
// and returns the rest and how many it dropped. A short rest moves to the front, so that the
// key's slice keeps its capacity and appending to it allocates nothing.
func trim[V any](rs []rec[V], d, wm int64, each func(*rec[V])) ([]rec[V], int) {
	n := 0
	for n < len(rs) && addSat(rs[n].t, d) < wm {
		each(&rs[n])
		n++
	}
	if rest := len(rs) - n; rest <= n || rest <= 32 {
		copy(rs, rs[n:])
		clear(rs[rest:])
		return rs[:rest], n
	}
	clear(rs[:n])
	return rs[n:], n
}

func (e *intervalEngine[K, A, B]) usage() (int, int64) {
	var k K
	b := int64(e.nA)*int64(unsafe.Sizeof(rec[A]{})) + int64(e.nB)*int64(unsafe.Sizeof(rec[B]{}))
	// a key: its map slot (key and pointer) and its ikey
	b += int64(len(e.keys)) * (int64(unsafe.Sizeof(k)+8+1)*8/7 + int64(unsafe.Sizeof(ikey[K, A, B]{})))
	b += int64(cap(e.exp)) * int64(unsafe.Sizeof(expEntry[K, A, B]{}))
	return 0, b
}
