package kafka

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// filledPartTable is a co-partitioned table that holds parts partitions with n keys in all,
// each key in partition KeyHash(key) % parts with 4 versions a minute apart, as LoadPartition
// would have read them.
func filledPartTable(b *testing.B, n, parts int) (*Table[string, string], []string, []int32) {
	tab := newTestTable(b, WithCoPartitioned())
	keys := make([]string, n)
	of := make([]int32, n)
	for p := range int32(parts) {
		tab.held[p] = &heldPart[string, string]{part: &tablePart{id: p}, refs: 1, rows: newRows[string, string]()}
	}
	for i := range keys {
		keys[i] = fmt.Sprintf("cab-%06d", i)
		of[i] = int32(KeyHash(keys[i]) % uint64(parts))
		for v := range 4 {
			tab.applyTo(&tab.held[of[i]].rows, rec(keys[i], fmt.Sprintf("driver-%d", v), v*60))
		}
	}
	require.Equal(b, n, tab.Len())
	return tab, keys, of
}

// BenchmarkTableLookupPartition is BenchmarkTableLookup in a co-partitioned table of 4
// partitions (LookupPartitionNano, the path of join.EnrichCoPartitioned).
func BenchmarkTableLookupPartition(b *testing.B) {
	tab, keys, _ := filledPartTable(b, 100_000, 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// the partition from the key (as a stream partition would be), not from a slice:
		// a second random memory access would be the benchmark's own
		key := keys[(i*7919)%len(keys)]
		if _, ok := tab.LookupPartitionNano(int32(KeyHash(key)%4), key, sec(90+i%120).UnixNano()); !ok {
			b.Fatal("missing")
		}
		i++
	}
}

// TestTableLookupPartition: LookupPartition looks in one held partition, Lookup in every
// held one.
func TestTableLookupPartition(t *testing.T) {
	tab := newTestTable(t, WithCoPartitioned())
	for p := range int32(2) {
		tab.held[p] = &heldPart[string, string]{part: &tablePart{id: p}, refs: 1, rows: newRows[string, string]()}
	}
	tab.applyTo(&tab.held[1].rows, rec("k", "a", 0))
	v, ok := tab.LookupPartition(1, "k", sec(5))
	require.True(t, ok)
	require.Equal(t, "a", v)
	_, ok = tab.LookupPartition(0, "k", sec(5))
	require.False(t, ok)
	v, ok = tab.Lookup("k", sec(5)) // any held partition
	require.True(t, ok)
	require.Equal(t, "a", v)
	require.Equal(t, 1, tab.Len())
}
