package recent_test

import (
	"testing"

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
