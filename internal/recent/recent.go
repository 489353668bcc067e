// Package recent remembers a value for each of the keys seen lately, in bounded memory: the
// split-key checks of package window and package join ask it where a key was last seen.
package recent

import "unsafe"

// Map maps keys to the value last put for them, in two generations of at most Keep keys
// each: when the current one is full, it becomes the previous one and the oldest is
// forgotten. So it holds at most 2*Keep keys, and a key put within the last Keep puts is
// always found. The zero Map is empty and ready to use. It is not safe for concurrent use.
type Map[K comparable, V any] struct {
	cur, prev gen[K, V]
}

// gen is a generation: its map gives each key's index in vals, so that putting a key it
// holds costs one lookup, with the value replaced in place.
type gen[K comparable, V any] struct {
	idx  map[K]int32
	vals []V
}

// Keep is the size of a generation.
const Keep = 1 << 16

// Swap records v for k and returns the value k had, if it is remembered.
func (m *Map[K, V]) Swap(k K, v V) (old V, ok bool) {
	if i, found := m.cur.idx[k]; found {
		old, m.cur.vals[i] = m.cur.vals[i], v
		return old, true
	}
	if i, found := m.prev.idx[k]; found {
		old, ok = m.prev.vals[i], true
	}
	if len(m.cur.vals) >= Keep {
		// The oldest generation is forgotten, and its memory holds the next one.
		m.prev, m.cur = m.cur, m.prev
		clear(m.cur.idx)
		clear(m.cur.vals)
		m.cur.vals = m.cur.vals[:0]
	}
	if m.cur.idx == nil {
		m.cur.idx = make(map[K]int32)
	}
	m.cur.idx[k] = int32(len(m.cur.vals))
	m.cur.vals = append(m.cur.vals, v)
	return old, ok
}

// Len returns the number of entries held (a key in both generations counts twice).
func (m *Map[K, V]) Len() int { return len(m.cur.idx) + len(m.prev.idx) }

// Bytes estimates the memory the Map holds: each key's map slot (key, index and control
// byte, Go's maps being at most 7/8 full) and the values' arrays. What keys and values point
// to (a string's bytes) is not counted.
func (m *Map[K, V]) Bytes() int64 {
	var (
		k K
		v V
	)
	slots := int64(m.Len()) * int64(unsafe.Sizeof(k)+4+1) * 8 / 7
	return slots + int64(cap(m.cur.vals)+cap(m.prev.vals))*int64(unsafe.Sizeof(v))
}
