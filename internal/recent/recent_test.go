package recent_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/recent"
)

// TestMap: a key's last value is returned by the next Swap; a key put within the last Keep
// puts is always remembered, one not put for two generations is forgotten, and the memory
// stays at most two generations.
func TestMap(t *testing.T) {
	var m recent.Map[int, string]
	if _, ok := m.Swap(1, "a"); ok {
		t.Fatal("an empty map remembered a key")
	}
	if v, ok := m.Swap(1, "b"); !ok || v != "a" {
		t.Fatalf("Swap(1) = %q, %v; want a, true", v, ok)
	}
	// Fill past two generations with other keys: every key put within the last Keep puts
	// is found, with its value.
	for k := 2; k < 2+3*recent.Keep; k++ {
		m.Swap(k, "x")
		if m.Len() > 2*recent.Keep {
			t.Fatalf("after %d keys: %d entries, more than two generations", k, m.Len())
		}
	}
	last := 2 + 3*recent.Keep - 1
	for k := last - recent.Keep + 1; k <= last; k += 997 {
		if v, ok := m.Swap(k, "y"); !ok || v != "x" {
			t.Fatalf("key %d, put within the last Keep puts: Swap = %q, %v", k, v, ok)
		}
	}
	if _, ok := m.Swap(1, "c"); ok {
		t.Fatal("key 1, not put for three generations, is still remembered")
	}
}

// TestMapGenerations: putting a key of the current generation replaces its value without
// adding an entry; a key found in the previous generation moves to the current one with its
// new value, and stays found after the next turn; the generation forgotten at a turn holds
// none of its keys in the next one.
func TestMapGenerations(t *testing.T) {
	var m recent.Map[int, int]
	for v := range 3 {
		m.Swap(-1, v)
	}
	if old, ok := m.Swap(-1, 3); !ok || old != 2 || m.Len() != 1 {
		t.Fatalf("Swap(-1) = %d, %v with %d entries; want 2, true with 1", old, ok, m.Len())
	}
	for k := 1; k < recent.Keep; k++ { // the first generation is full with -1
		m.Swap(k, k)
	}
	m.Swap(recent.Keep, recent.Keep) // the turn
	if old, ok := m.Swap(-1, 4); !ok || old != 3 {
		t.Fatalf("after a turn: Swap(-1) = %d, %v; want 3, true", old, ok)
	}
	for k := recent.Keep + 1; k <= 2*recent.Keep; k++ { // the second turn forgets 1..Keep-1
		m.Swap(k, k)
	}
	if old, ok := m.Swap(-1, 5); !ok || old != 4 {
		t.Fatalf("after a second turn: Swap(-1) = %d, %v; want 4, true", old, ok)
	}
	for k := 1; k < recent.Keep; k += 4099 {
		if old, ok := m.Swap(k, 0); ok {
			t.Fatalf("key %d, put two turns ago, is remembered with %d", k, old)
		}
	}
	if m.Len() > 2*recent.Keep {
		t.Fatalf("%d entries, more than two generations", m.Len())
	}
}

// Bytes grows with the keys held, by at least each key's map slot and value, and stops
// growing once two generations are full.
func TestBytes(t *testing.T) {
	var m recent.Map[int64, int64]
	require.Zero(t, m.Bytes())
	for k := range int64(1000) {
		m.Swap(k, k)
	}
	small := m.Bytes()
	require.GreaterOrEqual(t, small, int64(1000*(8+8)))
	for k := range int64(4 * recent.Keep) {
		m.Swap(k, k)
	}
	full := m.Bytes()
	require.Less(t, full, int64(2*recent.Keep*64), "two generations' worth at most")
	for k := range int64(4 * recent.Keep) {
		m.Swap(-k, k)
	}
	require.Equal(t, full, m.Bytes(), "bounded")
}
