package kafka

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
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

// TestDeletedKeyWithHistoryForgotten: a key deleted by a tombstone after it had a value (the
// usual life of a key: written, then deleted) is forgotten, history and all, once
// WithTombstoneRetention of record time has passed its tombstone, as a reload after
// compaction would not find it either. Only keys whose versions were all tombstones were
// forgotten: with the default WithVersions every key deleted once stayed in memory for
// good, so a table of short-lived keys (trips, sessions) grew without bound.
func TestDeletedKeyWithHistoryForgotten(t *testing.T) {
	tab := newTestTable(t, WithTombstoneRetention(10*time.Minute))
	for i := range 100 {
		k := fmt.Sprintf("trip-%d", i)
		tab.apply(rec(k, "open", i))
		tab.apply(rec(k, "", i+1))
	}
	tab.apply(rec("live", "v", 100))
	st := tab.Stats()
	require.Equal(t, 1, st.Keys)
	require.Equal(t, 201, st.Versions, "within the retention the deleted keys keep their history")
	v, ok := tab.Lookup("trip-99", sec(99))
	require.True(t, ok)
	require.Equal(t, "open", v)

	tab.apply(rec("live", "w", 701)) // record time more than 10 minutes past every tombstone
	st = tab.Stats()
	require.Equal(t, 1, st.Keys)
	require.Equal(t, 2, st.Versions, "the deleted keys are forgotten after the retention")
	require.Len(t, tab.all.m, 1)
	require.Empty(t, tab.all.deleted)
	_, ok = tab.Lookup("trip-99", sec(99))
	require.False(t, ok)

	tab.apply(rec("trip-5", "late", 3)) // a version older than the forgotten tombstone brings the key back
	v, ok = tab.Latest("trip-5")
	require.True(t, ok)
	require.Equal(t, "late", v)
}

// TestNoTimestampVersionNotLateBeforeLookups: a record without a timestamp (valid from the
// beginning of time) read before any lookup is on time: it counted in LateVersions and was
// logged at Warn as having come after a lookup at 1677-09-21 (the "no lookup yet" mark,
// math.MinInt64, which such a version's time equals). After a lookup it is late.
func TestNoTimestampVersionNotLateBeforeLookups(t *testing.T) {
	var logs syncbuf.Buffer
	tab := newTestTable(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	tab.apply(&sarama.ConsumerMessage{Key: []byte("k"), Value: []byte("a")})
	require.Zero(t, tab.Stats().LateVersions)
	require.Empty(t, logs.String())

	_, _ = tab.Lookup("k", sec(10))
	tab.apply(&sarama.ConsumerMessage{Key: []byte("j"), Value: []byte("b")})
	require.EqualValues(t, 1, tab.Stats().LateVersions)
}

// TestDeletedKeysForgottenWhateverTheirOrder: a tombstone dated far ahead (a producer's
// clock, a record read out of time order) does not keep the keys deleted after it: each
// deleted key is forgotten once the retention passed its own tombstone. The keys waited in a
// queue in the order their tombstones came, behind the first (helper-105's note).
func TestDeletedKeysForgottenWhateverTheirOrder(t *testing.T) {
	tab := newTestTable(t, WithTombstoneRetention(10*time.Minute))
	tab.apply(rec("ahead", "v", 0))
	tab.apply(rec("ahead", "", 100_000)) // deleted, dated a day ahead
	for i := range 100 {
		k := fmt.Sprintf("trip-%d", i)
		tab.apply(rec(k, "open", i))
		tab.apply(rec(k, "", i+1))
	}
	tab.apply(rec("live", "w", 701)) // more than 10 minutes past the trips' tombstones
	st := tab.Stats()
	require.Equal(t, 1, st.Keys)
	require.Equal(t, 1+2, st.Versions, "the trips are forgotten; the key deleted ahead keeps its history")
	require.Len(t, tab.all.m, 2)
	require.Len(t, tab.all.deleted, 1)

	tab.apply(rec("live", "x", 100_000+601))
	require.Len(t, tab.all.m, 1, "the key deleted ahead is forgotten once its retention passed")
	require.Empty(t, tab.all.deleted)
}
