package kafka

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLateVersionsAfterZeroTimeLookup: a lookup at the zero time (clamped to math.MinInt64)
// does not lower the latest lookup's time (at-lookedStep wrapped and the CAS stored
// MinInt64), so a version that arrives after a lookup at sec(100) with a timestamp before it
// is still counted as late.
func TestLateVersionsAfterZeroTimeLookup(t *testing.T) {
	tab := newTestTable(t)
	tab.apply(rec("k", "a", 0))
	_, _ = tab.Lookup("k", sec(100))
	_, _ = tab.Lookup("k", time.Time{}) // e.g. TestTableLookupFarTimes does this
	tab.apply(rec("k", "b", 50))        // came after the lookup at 100: late
	require.EqualValues(t, 1, tab.Stats().LateVersions, "looked=%d", tab.all.looked.Load())
}

// TestVersionsBackingArrayBounded: a full key's history keeps no array of twice its limit (put
// inserted, growing the slice past the limit and doubling its capacity, before it trimmed).
func TestVersionsBackingArrayBounded(t *testing.T) {
	for _, limit := range []int{8, 64} {
		tab := newTestTable(t, WithVersions(limit))
		for i := range 3 * limit {
			tab.apply(rec("k", "v", i))
		}
		vs := tab.all.m["k"]
		require.Len(t, vs, limit)
		require.LessOrEqual(t, cap(vs), limit+1, "limit %d", limit)
	}
}
