// Keyed state across batches: UpdateStateByKey, MapWithState and its State, and the
// per-partition keyed state that holds commits back to its oldest record.

package stream

import (
	"fmt"
	"slices"
	"time"
)

// keyedState is per-partition keyed state that remembers, for each key, the oldest source
// offset its state was built from, so that commits hold back until the key's state is removed.
type keyedState[K comparable, S any] struct {
	idx   map[K]int
	keys  []K
	vals  []S
	first []int64 // oldest offset each key's state depends on (-1: none)
	last  []int64 // when the key was last updated: batch time (Unix ns; UpdateStateByKey), batch number (MapWithState)
	minOf int64
	hasOf bool
}

func newKeyedState[K comparable, S any]() *keyedState[K, S] {
	return &keyedState[K, S]{idx: make(map[K]int)}
}

func (k *keyedState[K, S]) add(key K, v S, off, now int64) {
	k.idx[key] = len(k.keys)
	k.keys = append(k.keys, key)
	k.vals = append(k.vals, v)
	k.first = append(k.first, off)
	k.last = append(k.last, now)
}

// compact removes the keys marked in gone, keeping the others in order, and recomputes the
// oldest offset held.
func (k *keyedState[K, S]) compact(gone []bool) {
	n := 0
	for i := range k.keys {
		if gone != nil && gone[i] {
			delete(k.idx, k.keys[i])
			continue
		}
		k.keys[n], k.vals[n], k.first[n], k.last[n] = k.keys[i], k.vals[i], k.first[i], k.last[i]
		k.idx[k.keys[n]] = n
		n++
	}
	clear(k.keys[n:])
	clear(k.vals[n:])
	k.keys, k.vals, k.first, k.last = k.keys[:n], k.vals[:n], k.first[:n], k.last[:n]
	k.hasOf = false
	for _, o := range k.first {
		if o >= 0 && (!k.hasOf || o < k.minOf) {
			k.minOf, k.hasOf = o, true
		}
	}
}

type keyedParts[K comparable, S any] struct {
	p *partitioned[keyedState[K, S]]
}

func (k keyedParts[K, S]) retained(part int32) (int64, bool) {
	if s, ok := k.p.m[part]; ok {
		return s.minOf, s.hasOf
	}
	return 0, false
}
func (k keyedParts[K, S]) drop(part int32) { k.p.drop(part) }
func (k keyedParts[K, S]) stateSize() int {
	n := 0
	for _, s := range k.p.m {
		n += len(s.keys)
	}
	return n
}

// UpdateStateByKey keeps a state per key across batches, like Spark's updateStateByKey: every
// batch, update is called for every key that has state or new values (values in arrival
// order; exists is false for a new key) and returns the new state and whether to keep it.
// The stream carries every key's state after every batch. State is per partition; while a
// key's state is kept, commits hold back to the oldest record it was built from, so replay
// rebuilds it after a crash: remove state you no longer need. It goes after a repartition,
// never before one: as it emits every key's state again in every batch, a Repartition or
// RepartitionByTime that reads it is a construction error (ErrGraph).
func UpdateStateByKey[K comparable, V, S any](s *Stream[Pair[K, V]], update func(key K, values []V, state S, exists bool) (S, bool)) *Stream[Pair[K, S]] {
	parts := newPartitioned(newKeyedState[K, S])
	g := newGroups[K, []V]()
	var gone []bool
	out := derive(s, "updateStateByKey", func(pc *PartitionContext, in []Elem[Pair[K, V]], out []Elem[Pair[K, S]]) []Elem[Pair[K, S]] {
		st := parts.get(pc.Partition)
		now := pc.BatchTime.UnixNano()
		g.reset()
		for i := range in {
			e := &in[i]
			j, _ := g.slot(e.Value.Key, nil, e.Time, e.Offset)
			g.vals[j] = append(g.vals[j], e.Value.Value)
		}
		gone = slices.Grow(gone[:0], len(st.keys)+len(g.keys))[:len(st.keys)]
		clear(gone)
		for i, k := range st.keys {
			var vals []V
			if j, ok := g.idx[k]; ok {
				vals = g.vals[j]
				if st.first[i] < 0 {
					st.first[i] = g.meta[j].offset
				}
				st.last[i] = now
			}
			v, keep := update(k, vals, st.vals[i], true)
			st.vals[i], gone[i] = v, !keep
		}
		for j, k := range g.keys {
			if _, ok := st.idx[k]; ok {
				continue
			}
			var zero S
			if v, keep := update(k, g.vals[j], zero, false); keep {
				st.add(k, v, g.meta[j].offset, now)
				gone = append(gone, false)
			}
		}
		st.compact(gone)
		for i, k := range st.keys {
			out = append(out, Elem[Pair[K, S]]{Value: Pair[K, S]{Key: k, Value: st.vals[i]}, Time: now, Offset: st.first[i]})
		}
		return out
	})
	out.state = keyedParts[K, S]{parts}
	out.reemits = "it emits every key's state in every batch, with the offset of the key's first record"
	return out
}

// State is the state of one key in MapWithState.
type State[S any] struct {
	value     S
	exists    bool
	timingOut bool
}

// Get returns the state and whether there is one.
func (s *State[S]) Get() (S, bool) { return s.value, s.exists }

// Exists reports whether the key has state.
func (s *State[S]) Exists() bool { return s.exists }

// Update sets the state. It has no effect while the state is timing out.
func (s *State[S]) Update(v S) {
	if !s.timingOut {
		s.value, s.exists = v, true
	}
}

// Remove deletes the state.
func (s *State[S]) Remove() {
	var zero S
	s.value, s.exists = zero, false
}

// IsTimingOut reports whether this call is the timeout call of an idle key.
func (s *State[S]) IsTimingOut() bool { return s.timingOut }

// MapWithState calls f for every record of a keyed stream with the key's state, like Spark's
// mapWithState, and emits what f returns when its bool is true. With a timeout > 0, a key
// that received no record for that long is called once more with ok false and
// state.IsTimingOut() true, and its state is then removed. The timeout counts batch
// intervals (rounded up), as the processing-time windows do, not the clock: batches run
// back to back while the pipeline catches up, and a replay gives the same results. The second stream carries
// every key's state after every batch (Spark's stateSnapshots). State is per partition and
// holds commits back like UpdateStateByKey. The snapshots, and the first stream with a
// timeout (its timeout calls emit with the offset of the key's first record), go after a
// repartition, never before one (a construction error, ErrGraph).
func MapWithState[K comparable, V, S, U any](s *Stream[Pair[K, V]], f func(key K, value V, ok bool, state *State[S]) (U, bool), timeout time.Duration) (*Stream[U], *Stream[Pair[K, S]]) {
	if timeout < 0 {
		s.p.fail(invalid("MapWithState: negative timeout %v", timeout))
	}
	parts := newPartitioned(newKeyedState[K, S])
	var gone []bool
	// The timeout counts batches, as the processing-time windows do: batch times are the
	// times batches started at, which a catch-up's batches, run back to back, compress.
	// st.last holds the batch of a key's last record.
	var idle int64
	if timeout > 0 {
		idle = int64((timeout + s.p.interval - 1) / s.p.interval)
	}
	mapped := derive(s, "mapWithState", func(pc *PartitionContext, in []Elem[Pair[K, V]], out []Elem[U]) []Elem[U] {
		st := parts.get(pc.Partition)
		now, batch := pc.BatchTime.UnixNano(), pc.Batch
		gone = slices.Grow(gone[:0], len(st.keys)+len(in))[:len(st.keys)]
		clear(gone)
		var state State[S]
		for i := range in {
			e := &in[i]
			k := e.Value.Key
			j, had := st.idx[k]
			state = State[S]{}
			if had && !gone[j] {
				state.value, state.exists = st.vals[j], true
			}
			u, emit := f(k, e.Value.Value, true, &state)
			if emit {
				out = append(out, Elem[U]{Value: u, Time: e.Time, Offset: e.Offset})
			}
			switch {
			case had:
				st.vals[j], gone[j], st.last[j] = state.value, !state.exists, batch
				if state.exists && st.first[j] < 0 {
					st.first[j] = e.Offset
				}
			case state.exists:
				st.add(k, state.value, e.Offset, batch)
				gone = append(gone, false)
			}
		}
		if timeout > 0 {
			for j, k := range st.keys {
				if gone[j] || batch-st.last[j] < idle {
					continue
				}
				state = State[S]{value: st.vals[j], exists: true, timingOut: true}
				var zero V
				if u, emit := f(k, zero, false, &state); emit {
					out = append(out, Elem[U]{Value: u, Time: now, Offset: st.first[j]})
				}
				gone[j] = true
			}
		}
		st.compact(gone)
		return out
	})
	mapped.state = keyedParts[K, S]{parts}
	mapped.params = fmt.Sprintf("timeout=%v", timeout)
	if timeout > 0 {
		mapped.reemits = "its timeout calls emit with the offset of the key's first record, which an earlier batch read"
	}
	snaps := derive(mapped, "stateSnapshots", func(pc *PartitionContext, _ []Elem[U], out []Elem[Pair[K, S]]) []Elem[Pair[K, S]] {
		st := parts.get(pc.Partition)
		for i, k := range st.keys {
			out = append(out, Elem[Pair[K, S]]{Value: Pair[K, S]{Key: k, Value: st.vals[i]}, Time: pc.BatchTime.UnixNano(), Offset: st.first[i]})
		}
		return out
	})
	snaps.reemits = "it emits every key's state in every batch, with the offset of the key's first record"
	return mapped, snaps
}
