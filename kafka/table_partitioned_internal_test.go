package kafka

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
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

// loadedPartTable is a co-partitioned table of n partitions that Load checked, without
// connections.
func loadedPartTable(t *testing.T, n int32) *Table[string, string] {
	tab := newTestTable(t, WithCoPartitioned())
	tab.count = n
	tab.loaded.Store(true)
	return tab
}

// slowOffsets is a client whose offset reads wait until release is closed, then fail.
type slowOffsets struct {
	sarama.Client
	release chan struct{}
}

func (c slowOffsets) WritablePartitions(string) ([]int32, error) {
	<-c.release
	return nil, sarama.ErrClosedClient
}

func (c slowOffsets) RefreshMetadata(...string) error { return sarama.ErrClosedClient }

func (c slowOffsets) Close() error { return nil }

func (c slowOffsets) LeastLoadedBroker() *sarama.Broker { return nil }

// TestLoadPartitionHonoursContext: LoadPartition returns ctx's error (or ErrNotLoaded on
// Close) when ctx ends while it waits for the consumer of a partition released a moment
// ago to let go, or for the partition's offsets, without holding up Release meanwhile, and
// leaves nothing held or running behind. It waited for both under the partition lock,
// whatever ctx said (a rebalance's deadline).
func TestLoadPartitionHonoursContext(t *testing.T) {
	for _, wait := range []string{"released consumer", "offsets"} {
		for _, end := range []string{"cancel", "deadline", "close"} {
			t.Run(wait+"/"+end, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					tab := loadedPartTable(t, 2)
					release := make(chan struct{})
					if wait == "offsets" {
						tab.client = slowOffsets{release: release}
					} else {
						tab.released = map[int32]<-chan struct{}{0: release} // never lets go meanwhile
					}
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					if end == "deadline" {
						ctx, cancel = context.WithTimeout(ctx, time.Minute)
						defer cancel()
					}
					errc := make(chan error, 1)
					go func() { errc <- tab.LoadPartition(ctx, 0) }()
					synctest.Wait()
					require.Empty(t, errc, "LoadPartition returned before ctx ended")
					require.True(t, tab.pmu.TryLock(), "LoadPartition waits holding the partitions' lock (Release waits too)")
					tab.pmu.Unlock()
					closed := make(chan error, 1)
					switch end {
					case "cancel":
						cancel()
					case "close":
						go func() { closed <- tab.Close() }() // waits for an offset read under way
					}
					err := <-errc
					switch end {
					case "cancel":
						require.ErrorIs(t, err, context.Canceled)
					case "deadline":
						require.ErrorIs(t, err, context.DeadlineExceeded)
					case "close":
						require.ErrorIs(t, err, ErrNotLoaded)
					}
					close(release) // the offset read, if any, ends now: no consumer starts
					if end == "close" {
						require.NoError(t, <-closed)
					}
					tab.wg.Wait()
					require.Empty(t, tab.Stats().Partitions)
					tab.pmu.Lock()
					defer tab.pmu.Unlock()
					require.Empty(t, tab.held)
				})
			})
		}
	}
}

// TestLoadPartitionRefusalIsItsOwn: a partition whose fetch the ACLs refused fails its own
// LoadPartition, not another partition's: LoadPartition failed with the refusal of any
// partition refused before, even one that loaded, or was released since the ACLs let the
// user read the topic again.
func TestLoadPartitionRefusalIsItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := loadedPartTable(t, 2)
		for p := range int32(2) {
			tab.held[p] = &heldPart[string, string]{part: newPart(p), loaded: make(chan struct{}), stopped: make(chan struct{}),
				rows: newRows[string, string]()}
		}
		tab.refuseRead(tab.held[1].part, sarama.ErrTopicAuthorizationFailed)
		errs := make(chan error, 2)
		for p := range int32(2) {
			go func() { errs <- tab.LoadPartition(t.Context(), p) }()
		}
		synctest.Wait()
		require.ErrorIs(t, <-errs, ErrNotAuthorized, "partition 1's LoadPartition")
		require.Empty(t, errs, "partition 0, not refused, is still loading")
		close(tab.held[0].loaded)
		require.NoError(t, <-errs)
		require.Equal(t, 1, tab.held[0].refs)
	})
}
