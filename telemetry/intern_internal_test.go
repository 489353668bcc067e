package telemetry

import (
	"strings"
	"testing"
	"unsafe"
)

// TestInternCacheHoldsLongIDs: IDs of up to 24 bytes, Porto's 19-digit trip
// IDs among them, are found again in the cache, not the map: with the map
// emptied behind the Decoder's back, each comes back as the string first
// interned and the map stays empty. Longer IDs go to the map.
func TestInternCacheHoldsLongIDs(t *testing.T) {
	var d Decoder
	ids := []string{"1372636858620000589", "1372636858620000598", "C", strings.Repeat("x", 16),
		strings.Repeat("x", 17), strings.Repeat("x", 23) + "y", strings.Repeat("x", 24)}
	first := make([]string, len(ids))
	for i, id := range ids {
		first[i] = d.intern([]byte(id))
	}
	clear(d.ids)
	for i, id := range ids {
		got := d.intern([]byte(id))
		if got != id {
			t.Fatalf("intern(%q) = %q", id, got)
		}
		if unsafe.StringData(got) != unsafe.StringData(first[i]) || len(d.ids) != 0 {
			// Not the cache's string: the slot was lost to another ID.
			t.Fatalf("intern(%q) missed the cache (%d in the map)", id, len(d.ids))
		}
	}
	long := strings.Repeat("x", 25)
	d.intern([]byte(long))
	clear(d.ids)
	d.intern([]byte(long))
	if len(d.ids) != 1 {
		t.Errorf("an ID of 25 bytes was not looked up in the map")
	}
}
