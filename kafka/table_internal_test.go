package kafka

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
)

func newTestTable(t testing.TB, opts ...TableOption) *Table[string, string] {
	t.Helper()
	tab, err := NewTable(Config{Brokers: []string{"127.0.0.1:1"}}, "t", func(k, v []byte) (string, string, error) {
		if string(v) == "bad" {
			return "", "", fmt.Errorf("bad value")
		}
		return string(k), string(v), nil
	}, opts...)
	require.NoError(t, err)
	return tab
}

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func sec(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// rec is a record of key k with value v ("" a tombstone) at second s.
func rec(k, v string, s int) *sarama.ConsumerMessage {
	m := &sarama.ConsumerMessage{Key: []byte(k), Timestamp: sec(s)}
	if v != "" {
		m.Value = []byte(v)
	}
	return m
}

func TestTableVersions(t *testing.T) {
	type look struct {
		at   int
		want string // "" none
	}
	for name, c := range map[string]struct {
		opts     []TableOption
		recs     []*sarama.ConsumerMessage
		looks    []look
		latest   string
		keys     int
		versions int
	}{
		"in order": {
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "b", 10)},
			looks: []look{{-1, ""}, {0, "a"}, {9, "a"}, {10, "b"}, {1000, "b"}}, latest: "b", keys: 1, versions: 2,
		},
		"out of order goes into history": {
			recs:  []*sarama.ConsumerMessage{rec("k", "b", 10), rec("k", "a", 0)},
			looks: []look{{0, "a"}, {10, "b"}}, latest: "b", keys: 1, versions: 2,
		},
		"same timestamp replaces": {
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 5), rec("k", "b", 5)},
			looks: []look{{5, "b"}}, latest: "b", keys: 1, versions: 1,
		},
		"tombstone ends validity": {
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "", 10)},
			looks: []look{{5, "a"}, {10, ""}, {20, ""}}, latest: "", keys: 0, versions: 2,
		},
		"tombstone then value": {
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "", 10), rec("k", "c", 20)},
			looks: []look{{5, "a"}, {15, ""}, {20, "c"}}, latest: "c", keys: 1, versions: 3,
		},
		"lone tombstone is not kept without retention": {
			opts: []TableOption{WithTombstoneRetention(0)},
			recs: []*sarama.ConsumerMessage{rec("k", "", 10)}, looks: []look{{20, ""}}, keys: 0, versions: 0,
		},
		"only tombstones left: forgotten without retention": {
			opts:  []TableOption{WithVersions(1), WithTombstoneRetention(0)},
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "", 10)},
			looks: []look{{5, ""}, {20, ""}}, keys: 0, versions: 0,
		},
		"without retention an older version revives a deleted key": {
			opts:  []TableOption{WithTombstoneRetention(0)},
			recs:  []*sarama.ConsumerMessage{rec("k", "", 10), rec("k", "a", 0)},
			looks: []look{{5, "a"}, {20, "a"}}, latest: "a", keys: 1, versions: 1,
		},
		"lone tombstone is kept": {
			recs: []*sarama.ConsumerMessage{rec("k", "", 10)}, looks: []look{{20, ""}}, keys: 0, versions: 1,
		},
		"an older version read after a tombstone goes into history": {
			recs:  []*sarama.ConsumerMessage{rec("k", "", 10), rec("k", "a", 0)},
			looks: []look{{-1, ""}, {5, "a"}, {10, ""}, {20, ""}}, keys: 0, versions: 2,
		},
		"only tombstones left: kept": {
			opts:  []TableOption{WithVersions(1)},
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "", 10), rec("k", "b", 5)},
			looks: []look{{5, ""}, {20, ""}}, keys: 0, versions: 1,
		},
		"deleted key kept up to the retention": {
			opts:  []TableOption{WithTombstoneRetention(time.Minute)},
			recs:  []*sarama.ConsumerMessage{rec("k", "", 10), rec("x", "v", 70), rec("k", "a", 0)},
			looks: []look{{5, "a"}, {20, ""}}, keys: 1, versions: 3,
		},
		"deleted key forgotten after the retention": {
			opts:  []TableOption{WithTombstoneRetention(time.Minute)},
			recs:  []*sarama.ConsumerMessage{rec("k", "", 10), rec("x", "v", 71), rec("k", "a", 0)},
			looks: []look{{5, "a"}, {20, "a"}}, latest: "a", keys: 2, versions: 2,
		},
		"a deleted key written again is not forgotten": {
			opts:  []TableOption{WithTombstoneRetention(time.Minute)},
			recs:  []*sarama.ConsumerMessage{rec("k", "", 10), rec("k", "b", 20), rec("x", "v", 200)},
			looks: []look{{15, ""}, {20, "b"}}, latest: "b", keys: 2, versions: 3,
		},
		"deleted again: kept from the newest tombstone": {
			opts:  []TableOption{WithTombstoneRetention(time.Minute)},
			recs:  []*sarama.ConsumerMessage{rec("k", "", 10), rec("k", "", 50), rec("x", "v", 100), rec("k", "a", 0)},
			looks: []look{{5, "a"}, {30, ""}}, keys: 1, versions: 4,
		},
		"version limit drops the oldest": {
			opts:  []TableOption{WithVersions(2)},
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "b", 10), rec("k", "c", 20)},
			looks: []look{{5, ""}, {10, "b"}, {20, "c"}}, latest: "c", keys: 1, versions: 2,
		},
		"older than a full history is ignored": {
			opts:  []TableOption{WithVersions(2)},
			recs:  []*sarama.ConsumerMessage{rec("k", "b", 10), rec("k", "c", 20), rec("k", "a", 0)},
			looks: []look{{5, ""}, {10, "b"}}, latest: "c", keys: 1, versions: 2,
		},
		"fallback to the oldest": {
			opts:  []TableOption{WithVersions(2), WithOldestFallback()},
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "b", 10), rec("k", "c", 20)},
			looks: []look{{-100, "b"}, {5, "b"}, {20, "c"}}, latest: "c", keys: 1, versions: 2,
		},
		"fallback never revives a tombstone": {
			opts:  []TableOption{WithVersions(2), WithOldestFallback()},
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "", 10), rec("k", "c", 20)},
			looks: []look{{5, ""}, {20, "c"}}, latest: "c", keys: 1, versions: 2,
		},
		"no timestamp: valid from the start": {
			recs:  []*sarama.ConsumerMessage{{Key: []byte("k"), Value: []byte("a")}},
			looks: []look{{-1e6, "a"}}, latest: "a", keys: 1, versions: 1,
		},
		"undecodable is skipped": {
			recs:  []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "bad", 10)},
			looks: []look{{20, "a"}}, latest: "a", keys: 1, versions: 1,
		},
	} {
		t.Run(name, func(t *testing.T) {
			tab := newTestTable(t, c.opts...)
			for _, m := range c.recs {
				tab.apply(m)
			}
			for _, l := range c.looks {
				v, ok := tab.Lookup("k", sec(l.at))
				require.Equal(t, l.want != "", ok, "at %d", l.at)
				require.Equal(t, l.want, v, "at %d", l.at)
			}
			v, ok := tab.Latest("k")
			require.Equal(t, c.latest != "", ok)
			require.Equal(t, c.latest, v)
			st := tab.Stats()
			require.Equal(t, c.keys, st.Keys)
			require.Equal(t, c.versions, st.Versions)
			require.EqualValues(t, len(c.recs), st.Records)
			require.Equal(t, st.Records, st.Updates+st.Tombstones+st.DecodeErrors)
		})
	}
}

func TestTableLookupFarTimes(t *testing.T) {
	tab := newTestTable(t)
	tab.apply(&sarama.ConsumerMessage{Key: []byte("always"), Value: []byte("a")}) // no timestamp
	tab.apply(rec("k", "b", 0))
	for _, c := range []struct {
		key  string
		at   time.Time
		want bool
	}{
		{"always", time.Time{}, true}, {"k", time.Time{}, false},
		{"k", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), true}, {"k", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		_, ok := tab.Lookup(c.key, c.at)
		require.Equal(t, c.want, ok, "%s at %v", c.key, c.at)
	}
}

// TestTableConcurrent runs lookups while updates are applied (for -race).
func TestTableConcurrent(t *testing.T) {
	tab := newTestTable(t, WithVersions(3))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5000 {
			tab.apply(rec(fmt.Sprint(i%50), fmt.Sprint(i), i))
		}
	}()
	for {
		select {
		case <-done:
			require.Equal(t, 50, tab.Len())
			require.Equal(t, 150, tab.Stats().Versions)
			v, ok := tab.Latest("7")
			require.True(t, ok)
			require.Equal(t, "4957", v)
			return
		default:
			tab.Lookup("7", sec(100))
			tab.Stats()
		}
	}
}

// filledTable holds n keys with 4 versions each, a minute apart.
func filledTable(b *testing.B, n int) (*Table[string, string], []string) {
	tab := newTestTable(b)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("cab-%06d", i)
		for v := range 4 {
			tab.apply(rec(keys[i], fmt.Sprintf("driver-%d", v), v*60))
		}
	}
	require.Equal(b, n, tab.Len())
	return tab, keys
}

func BenchmarkTableLookup(b *testing.B) {
	tab, keys := filledTable(b, 100_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// the key of a pseudo-random record, at a time between its versions
		k := keys[(i*7919)%len(keys)]
		if _, ok := tab.LookupNano(k, sec(90+i%120).UnixNano()); !ok {
			b.Fatal("missing")
		}
		i++
	}
}

func BenchmarkTableLookupParallel(b *testing.B) {
	tab, keys := filledTable(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tab.LookupNano(keys[(i*7919)%len(keys)], sec(90+i%120).UnixNano())
			i++
		}
	})
}

// A record is counted in Stats only once its version is in place: a reader that waits for
// Records to reach n then finds the n-th record's version (TestTableLoadLookupFollow does).
func TestTableCountsAfterApply(t *testing.T) {
	var seen []int64
	var tab *Table[string, string]
	tab, err := NewTable(Config{Brokers: []string{"127.0.0.1:1"}}, "t", func(k, v []byte) (string, string, error) {
		st := tab.Stats()
		seen = append(seen, st.Records, st.Updates+st.Tombstones)
		return string(k), string(v), nil
	})
	require.NoError(t, err)
	for i, m := range []*sarama.ConsumerMessage{rec("k", "a", 0), rec("k", "", 10), rec("k", "c", 20)} {
		tab.apply(m)
		st := tab.Stats()
		require.EqualValues(t, i+1, st.Records)
		require.EqualValues(t, i+1, st.Updates+st.Tombstones)
	}
	require.Equal(t, []int64{0, 0, 1, 1, 2, 2}, seen, "counted while being applied")
}

// TestTableLateVersions: a version read after a lookup at or after its timestamp counts in
// TableStats.LateVersions and is logged (a reviewer's table written two minutes of event
// time late enriched 68 of 6,000 rows with the older version, and nothing showed it). A
// version after every lookup, a version read before the lookups and Latest count none; a
// tombstone counts like a value, and so does a version of another key; a co-partitioned
// table counts by partition.
func TestTableLateVersions(t *testing.T) {
	var logs syncbuf.Buffer
	tab := newTestTable(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	tab.apply(rec("k", "a", 0))
	tab.apply(rec("other", "x", 0))
	tab.apply(rec("k", "b", 5)) // read before any lookup: on time

	v, _ := tab.Lookup("k", sec(10))
	require.Equal(t, "b", v)
	tab.Latest("other")              // not a lookup at a time
	tab.apply(rec("k", "c", 20))     // after the lookup's time: on time
	tab.apply(rec("other", "y", 30)) // after the lookup's time too
	require.Zero(t, tab.Stats().LateVersions)
	require.Empty(t, logs.String())

	tab.apply(rec("k", "d", 8))     // the lookup at 10 answered b; it would have been d
	tab.apply(rec("k", "", 10))     // a tombstone at the lookup's own time
	tab.apply(rec("other", "z", 9)) // a lookup of other at 9 (after the table was read) would have missed it
	require.EqualValues(t, 3, tab.Stats().LateVersions)
	require.Equal(t, 3, strings.Count(logs.String(), "table version came after a lookup"), logs.String())
	require.Contains(t, logs.String(), "looked_up_at=2026-12-01T00:00:10.000Z")
	_, ok := tab.Lookup("k", sec(10))
	require.False(t, ok, "the late tombstone answers lookups from now on")

	part := newTestTable(t, WithCoPartitioned())
	part.held[0] = &heldPart[string, string]{part: &tablePart{id: 0}, refs: 1, rows: newRows[string, string]()}
	part.held[1] = &heldPart[string, string]{part: &tablePart{id: 1}, refs: 1, rows: newRows[string, string]()}
	part.applyTo(&part.held[0].rows, rec("k", "a", 0))
	part.LookupPartition(0, "k", sec(60))
	part.applyTo(&part.held[1].rows, rec("j", "a", 30)) // partition 1 had no lookup
	require.Zero(t, part.late.Load())
	part.applyTo(&part.held[0].rows, rec("k", "b", 30))
	require.EqualValues(t, 1, part.late.Load(), "what Stats reports as LateVersions") // Stats needs a consumer
}
