// A Table's rows: the versions of its keys (or of one partition's), the lookups as of a
// time, and how a record's version is put in place (the version limit, tombstones kept for
// WithTombstoneRetention).

package kafka

import (
	"container/heap"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// version is one record of a key: its value from its timestamp on (or its deletion).
type version[V any] struct {
	from    int64 // Unix ns
	deleted bool
	v       V
}

// rows are the versions of the keys of a table, or of one partition of it.
type rows[K comparable, V any] struct {
	m    map[K][]version[V] // each sorted by from, at most o.versions
	live int                // keys whose newest version is a value
	held int                // versions held
	// deleted are the keys whose newest version was a tombstone when put left them so, with
	// that tombstone's time (WithTombstoneRetention), a heap by that time: the first due is
	// on top, whatever the order the tombstones came in (a queue in that order waited
	// behind a tombstone dated far ahead, and kept every deleted key after it). An entry
	// whose key changed since is skipped when its turn comes. newest is the latest record
	// time put saw.
	deleted deletedKeys[K]
	newest  int64
	// looked is the latest time (Unix ns) a lookup in these rows asked for, to the
	// millisecond below (lookedStep), math.MinInt64 before any: a version put later with a
	// timestamp at or before it came late (TableStats.LateVersions). One number for all
	// keys, not one per key: a lookup per record must not write into the table's memory.
	looked *atomic.Int64
	// gen counts the times the rows were dropped because their topic was recreated (see
	// Table.reread): a partition reads for one generation.
	gen int
}

// deletedKey is a key whose newest version is a tombstone, at from.
type deletedKey[K comparable] struct {
	key  K
	from int64
}

// deletedKeys is a min-heap of deletedKey by from (container/heap).
type deletedKeys[K comparable] []deletedKey[K]

func (h deletedKeys[K]) Len() int           { return len(h) }
func (h deletedKeys[K]) Less(i, j int) bool { return h[i].from < h[j].from }
func (h deletedKeys[K]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deletedKeys[K]) Push(x any)        { *h = append(*h, x.(deletedKey[K])) }
func (h *deletedKeys[K]) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = deletedKey[K]{} // let go of the key
	*h = old[:len(old)-1]
	return d
}

// lookedStep is how far a lookup's time must pass rows.looked to raise it: lookups of
// records in time order then write it at most a thousand times per second of event time.
const lookedStep = int64(time.Millisecond)

func newRows[K comparable, V any]() rows[K, V] {
	r := rows[K, V]{m: make(map[K][]version[V]), looked: new(atomic.Int64), newest: math.MinInt64}
	r.looked.Store(math.MinInt64)
	return r
}

// lookup is LookupNano in r; the table's mu is held (for reading: looked is atomic).
func (r *rows[K, V]) lookup(key K, at int64, fallback, note bool) (V, bool) {
	// (A lookup within lookedStep of the start of int64 time, such as one at the zero
	// time.Time, cannot raise looked, and at-lookedStep would wrap.)
	if note && at >= math.MinInt64+lookedStep {
		for l := r.looked.Load(); at-lookedStep >= l && !r.looked.CompareAndSwap(l, at); l = r.looked.Load() {
		}
	}
	vs := r.m[key]
	i := len(vs) - 1
	for i >= 0 && vs[i].from > at {
		i--
	}
	if i < 0 && fallback && len(vs) > 0 {
		i = 0
	}
	if i < 0 || vs[i].deleted {
		var zero V
		return zero, false
	}
	return vs[i].v, true
}

// put inserts ver among key's versions in timestamp order (a version with the timestamp of
// one held replaces it), drops the oldest beyond limit, and forgets the key, history and
// all, keepDel of record time after its newest version became a tombstone (at once when
// only tombstones are left and keepDel is 0; see WithTombstoneRetention), then forgets the
// keys whose time is up. It reports whether r had a lookup at or after ver's
// time (late), and the latest lookup's time. The table's mu is held.
func (r *rows[K, V]) put(key K, ver version[V], limit int, keepDel time.Duration) (late bool, looked int64) {
	late, looked = r.insert(key, ver, limit, keepDel)
	r.newest = max(r.newest, ver.from)
	r.forgetDeleted(keepDel)
	return late, looked
}

// forgetDeleted forgets the keys whose newest version is a tombstone more than keepDel older
// than the newest record.
func (r *rows[K, V]) forgetDeleted(keepDel time.Duration) {
	if r.newest < math.MinInt64+int64(keepDel) {
		return // no record time yet, or too early for any to be due
	}
	due := r.newest - int64(keepDel)
	for len(r.deleted) > 0 && r.deleted[0].from < due {
		d := heap.Pop(&r.deleted).(deletedKey[K])
		vs := r.m[d.key]
		if len(vs) == 0 || vs[len(vs)-1].from != d.from || !vs[len(vs)-1].deleted {
			continue // changed since: forgotten already, or a later entry (or none) stands for it
		}
		r.held -= len(vs)
		delete(r.m, d.key)
	}
}

// insert is put's first part: ver in place, the key forgotten or noted as deleted.
func (r *rows[K, V]) insert(key K, ver version[V], limit int, keepDel time.Duration) (late bool, looked int64) {
	looked = r.looked.Load()
	vs := r.m[key]
	wasLive := len(vs) > 0 && !vs[len(vs)-1].deleted
	i := len(vs)
	for i > 0 && vs[i-1].from > ver.from {
		i--
	}
	switch {
	case i > 0 && vs[i-1].from == ver.from:
		vs[i-1] = ver
	case len(vs) == limit && i == 0:
		return false, looked // older than every version kept, and no room: it would be dropped at once
	case len(vs) == limit:
		// Full: the oldest goes, and ver takes its place in order, in the same array (an
		// insert first would grow it past the limit, doubling its capacity).
		copy(vs[:i-1], vs[1:i])
		vs[i-1] = ver
	default:
		if len(vs) == cap(vs) {
			nv := make([]version[V], len(vs), min(limit, max(2*len(vs), 2)))
			copy(nv, vs)
			vs = nv
		}
		vs = slices.Insert(vs, i, ver)
		r.held++
	}
	newest := vs[len(vs)-1]
	switch {
	case !newest.deleted:
		r.m[key] = vs
	case keepDel > 0 || slices.ContainsFunc(vs, func(v version[V]) bool { return !v.deleted }):
		// Deleted: kept, history and all, for keepDel of record time, so that lookups before
		// the tombstone still find the history and a version older than it, read later, goes
		// into the history instead of bringing the key back; then forgotten (forgetDeleted),
		// as compaction drops the key from the topic. A version put behind the newest
		// tombstone leaves its entry as it was.
		r.m[key] = vs
		if ver.deleted && ver.from == newest.from {
			heap.Push(&r.deleted, deletedKey[K]{key, newest.from})
		}
	default:
		r.held -= len(vs)
		delete(r.m, key)
		vs = nil
	}
	isLive := len(vs) > 0 && !vs[len(vs)-1].deleted
	switch {
	case isLive && !wasLive:
		r.live++
	case wasLive && !isLive:
		r.live--
	}
	// looked at math.MinInt64 means no lookup yet, which a version without a timestamp
	// (from math.MinInt64) must not count as being late for.
	return looked != math.MinInt64 && ver.from <= looked, looked
}
