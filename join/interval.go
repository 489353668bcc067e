// The Interval engine: per key, the left and the right records held, each sorted by event
// time, and the keys by the bucket of time in which their oldest record expires.

package join

import (
	"math"
	"slices"
	"unsafe"

	"github.com/fleetstream/fleetstream/stream"
)

type intervalEngine[K comparable, A, B any] struct {
	lower, upper int64
	keys         map[K]*ikey[K, A, B]
	// due holds the keys by the bucket (expiry / width) of their first expiring record;
	// buckets is a min-heap of the bucket numbers in due.
	width   int64
	due     map[int64][]*ikey[K, A, B]
	buckets minHeap
	spare   [][]*ikey[K, A, B] // emptied bucket lists, for reuse
	nA, nB  int
}

// ikey is one key's records. as and bs are sorted by event time (stable in arrival order),
// so the records a watermark expires are a prefix of each.
type ikey[K comparable, A, B any] struct {
	key K
	as  []rec[A]
	bs  []rec[B]
	// queued is the bucket the key is due in, MaxInt64 if none; entries of the key in later
	// buckets are stale.
	queued int64
}

// expiryWidth returns the width of the expiry buckets: an eighth of the interval, between a
// millisecond and a second. Records are dropped (and unmatched left records emitted) once the
// watermark passes the end of their expiry's bucket, so at most that much after their expiry.
func expiryWidth(lower, upper int64) int64 {
	const ms, s = int64(1e6), int64(1e9)
	return min(max(addSat(lower, upper)/8, ms), s)
}

// minHeap is a min-heap of int64, typed so that pushing and popping allocate nothing.
type minHeap []int64

func (h *minHeap) push(x int64) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p] <= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *minHeap) pop() int64 {
	s := *h
	x := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && s[l] < s[m] {
			m = l
		}
		if r := l + 1; r < n && s[r] < s[m] {
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
	return &intervalEngine[K, A, B]{lower: lower, upper: upper, keys: map[K]*ikey[K, A, B]{},
		width: expiryWidth(lower, upper), due: map[int64][]*ikey[K, A, B]{}}
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
	if len(rs) <= 8 {
		i := 0
		for i < len(rs) && rs[i].t < t {
			i++
		}
		return i
	}
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
		k = &ikey[K, A, B]{key: key, queued: math.MaxInt64}
		e.keys[key] = k
	}
	if !v.IsRight {
		r := rec[A]{t: t, pos: pos, v: v.Left}
		// partners: right records with ta-lower <= tb <= ta+upper, all before this one
		hi := addSat(t, e.upper)
		lp := int64(math.MaxInt64)
		for i := firstFrom(k.bs, addSat(t, -e.lower)); i < len(k.bs) && k.bs[i].t <= hi; i++ {
			p.pair(key, &r, &k.bs[i], 0, 0)
			r.matched = true
			lp = min(lp, k.bs[i].pos)
		}
		if r.matched {
			p.holdLeft(pos, lp)
		}
		r.seq = p.keep(pos)
		i := insertAt(k.as, t)
		k.as = slices.Insert(k.as, i, r)
		e.nA++
		if i == 0 {
			e.queue(k, addSat(t, e.upper))
		}
		return
	}
	r := rec[B]{t: t, pos: pos, v: v.Right}
	// partners: left records with tb-upper <= ta <= tb+lower, all before this one
	hi := addSat(t, e.lower)
	for i := firstFrom(k.as, addSat(t, -e.upper)); i < len(k.as) && k.as[i].t <= hi; i++ {
		p.pair(key, &k.as[i], &r, 0, 0)
		k.as[i].matched = true
	}
	r.seq = p.keep(pos)
	i := insertAt(k.bs, t)
	k.bs = slices.Insert(k.bs, i, r)
	e.nB++
	if i == 0 {
		e.queue(k, addSat(t, e.lower))
	}
}

// queue makes the key due in the bucket of expiry at, if that is earlier than where it is due.
func (e *intervalEngine[K, A, B]) queue(k *ikey[K, A, B], at int64) {
	b := floorDiv(at, e.width)
	if b >= k.queued {
		return
	}
	k.queued = b
	l, ok := e.due[b]
	if !ok {
		e.buckets.push(b)
		if n := len(e.spare); n > 0 {
			l, e.spare = e.spare[n-1], e.spare[:n-1]
		}
	}
	e.due[b] = append(l, k)
}

// expire drops left records with ta+upper < wm and right records with tb+lower < wm, the keys
// of every bucket that ended at or before wm. Records expired but not dropped yet (in the
// bucket that wm is in) cannot match anything: a record that is not late is at or after wm,
// beyond their bounds. At the end of input (EndOfTime) everything expires, also the records
// whose expiry saturated at the end of int64 (huge bounds), which no bucket end passes.
func (e *intervalEngine[K, A, B]) expire(p *part[K, A, B], wm int64) {
	for len(e.buckets) > 0 && (addSat(e.buckets[0], 1) <= floorDiv(wm, e.width) || wm == stream.EndOfTime) {
		b := e.buckets.pop()
		l := e.due[b]
		delete(e.due, b)
		for i, k := range l {
			l[i] = nil
			if k.queued != b {
				continue // stale
			}
			k.queued = math.MaxInt64
			var n int
			k.as, n = trim(k.as, e.upper, wm, func(r *rec[A]) {
				p.unmatched(k.key, r, 0, 0)
				p.dead(r.seq)
			})
			e.nA -= n
			k.bs, n = trim(k.bs, e.lower, wm, func(r *rec[B]) { p.dead(r.seq) })
			e.nB -= n
			switch {
			case len(k.as) > 0 && len(k.bs) > 0:
				e.queue(k, min(addSat(k.as[0].t, e.upper), addSat(k.bs[0].t, e.lower)))
			case len(k.as) > 0:
				e.queue(k, addSat(k.as[0].t, e.upper))
			case len(k.bs) > 0:
				e.queue(k, addSat(k.bs[0].t, e.lower))
			default:
				delete(e.keys, k.key)
			}
		}
		e.spare = append(e.spare, l[:0])
	}
}

// floorDiv is t/m rounded towards minus infinity (m > 0).
func floorDiv(t, m int64) int64 {
	q := t / m
	if t%m < 0 {
		q--
	}
	return q
}

// trim drops the records of rs (sorted by time) with t+d < wm (every record at EndOfTime),
// calling each on them first, and returns the rest and how many it dropped. A short rest moves to the front, so that the
// key's slice keeps its capacity and appending to it allocates nothing.
func trim[V any](rs []rec[V], d, wm int64, each func(*rec[V])) ([]rec[V], int) {
	n := 0
	for n < len(rs) && (addSat(rs[n].t, d) < wm || wm == stream.EndOfTime) {
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
	b += int64(e.nA+e.nB) * 8 // a key's entry in its bucket, at most one per record
	b += int64(len(e.due)) * (8 + 24 + 1) * 8 / 7
	return 0, b
}
