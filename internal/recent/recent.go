// Package recent remembers a value for each of the keys seen lately, in bounded memory: the
// split-key checks of package window and package join ask it where a key was last seen.
package recent

// Map maps keys to the value last put for them, in two generations of at most Keep keys
// each: when the current one is full, it becomes the previous one and the oldest is
// forgotten. So it holds at most 2*Keep keys, and a key put within the last Keep puts is
// always found. The zero Map is empty and ready to use. It is not safe for concurrent use.
type Map[K comparable, V any] struct {
	cur, prev map[K]V
}

// Keep is the size of a generation.
const Keep = 1 << 16

// Swap records v for k and returns the value k had, if it is remembered.
func (m *Map[K, V]) Swap(k K, v V) (old V, ok bool) {
	old, ok = m.cur[k]
	if !ok {
		old, ok = m.prev[k]
	}
	if len(m.cur) >= Keep {
		m.prev, m.cur = m.cur, nil
	}
	if m.cur == nil {
		m.cur = make(map[K]V)
	}
	m.cur[k] = v
	return old, ok
}

// Len returns the number of entries held (a key in both generations counts twice).
func (m *Map[K, V]) Len() int { return len(m.cur) + len(m.prev) }
