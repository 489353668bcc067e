package join_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// fakePartTable is a co-partitioned table: a fakeTable per partition, loaded by LoadPartition
// unless fail says otherwise. It records what was loaded and released, and fails the test on
// a lookup in a partition not loaded.
type fakePartTable struct {
	t     testing.TB
	parts map[int32]*fakeTable
	// fail, if set, is LoadPartition's error for a partition (nil: load it).
	fail func(ctx context.Context, p int32) error

	mu      sync.Mutex
	loaded  map[int32]int // LoadPartition calls not released, by partition
	events  []string      // "load p", "release p"
	lookups int
}

func newFakePartTable(t testing.TB, parts int) *fakePartTable {
	f := &fakePartTable{t: t, parts: map[int32]*fakeTable{}, loaded: map[int32]int{}}
	for p := range int32(parts) {
		f.parts[p] = newFakeTable()
	}
	return f
}

func (f *fakePartTable) LoadPartition(ctx context.Context, p int32) error {
	if f.fail != nil {
		if err := f.fail(ctx, p); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loaded[p]++
	f.events = append(f.events, fmt.Sprint("load ", p))
	return nil
}

func (f *fakePartTable) Release(p int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loaded[p] == 0 {
		f.t.Errorf("Release(%d) of a partition not loaded", p)
	}
	if f.loaded[p]--; f.loaded[p] == 0 {
		delete(f.loaded, p)
	}
	f.events = append(f.events, fmt.Sprint("release ", p))
}

func (f *fakePartTable) LookupPartition(p int32, key string, at time.Time) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if f.loaded[p] == 0 {
		f.t.Errorf("lookup of %q in partition %d, which is not loaded", key, p)
	}
	return f.parts[p].Lookup(key, at)
}

func (f *fakePartTable) held() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ps []int32
	for p := range f.loaded {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// rowsOf renders enriched rows as cab/driver, "-" for none.
func rowsOf(es []enriched) []string {
	var rows []string
	for _, e := range es {
		d := e.Driver
		if !e.Found {
			d = "-"
		}
		rows = append(rows, fmt.Sprintf("%s/%s#%d", e.Cab, d, e.N))
	}
	return rows
}

func enrichCo(t *testing.T, h *streamtest.Harness, tab join.PartitionedTable[string, string], s *stream.Stream[ping], opts ...join.Option) *streamtest.Collector[enriched] {
	t.Helper()
	out, err := join.EnrichCoPartitioned(s, tab, func(p ping) string { return p.Cab }, mergePing, opts...)
	require.NoError(t, err)
	return streamtest.Collect(out)
}

// TestEnrichCoPartitioned: each record is looked up in the table partition of its stream
// partition (the same key has another value in each partition, so a wrong partition shows),
// after that partition was loaded; a revoked partition is released.
func TestEnrichCoPartitioned(t *testing.T) {
	tab := newFakePartTable(t, 3)
	for p := range int32(3) {
		tab.parts[p].set("cab-1", at(0), fmt.Sprint("ana", p)).set("cab-1", at(10), fmt.Sprint("bob", p))
	}
	tab.parts[2].set("cab-2", at(0), "cid").set("cab-2", at(5), "")

	h := streamtest.New(t, time.Second)
	q, pings := streamtest.NewQueue[ping](h)
	q.SetPartitions(3)
	got := enrichCo(t, h, tab, pings)

	h.Step() // assigned, no records: every partition is loaded at once
	require.Equal(t, []int32{0, 1, 2}, tab.held())
	require.Empty(t, got.Slice())

	rec := func(p int32, cab string, n, s int) stream.Record[ping] {
		return stream.Record[ping]{Value: ping{cab, n}, Partition: p, EventTime: at(s)}
	}
	q.Add(rec(0, "cab-1", 0, 5), rec(1, "cab-1", 1, 15), rec(2, "cab-1", 2, -1), rec(2, "cab-2", 3, 1), rec(2, "cab-2", 4, 7),
		rec(0, "cab-9", 5, 1))
	h.Step()
	rows := rowsOf(got.Slice())
	slices.Sort(rows)
	require.Equal(t, []string{"cab-1/-#2", "cab-1/ana0#0", "cab-1/bob1#1", "cab-2/-#4", "cab-2/cid#3", "cab-9/-#5"}, rows)

	revoked := q.Revoke(1)
	h.Step()
	<-revoked
	require.Equal(t, []int32{0, 2}, tab.held(), "the revoked partition is released")
	require.Equal(t, []string{"load 0", "load 1", "load 2", "release 1"}, tab.events)

	// assigned again (a rebalance gives it back): loaded again before its records
	q.Add(rec(1, "cab-1", 6, 20))
	h.Step()
	require.Equal(t, []string{"cab-1/bob1#6"}, rowsOf(got.Last()))
	require.Equal(t, []int32{0, 1, 2}, tab.held())
	require.Equal(t, "load 1", tab.events[len(tab.events)-1])
	q.End()
	h.RunUntilDone()
	for p, want := range []int64{2, 2, 3} {
		require.Equal(t, want, q.Committed(int32(p)), "partition %d: nothing held back", p)
	}
}

// TestEnrichCoPartitionedInner: WithKind(Inner) drops the records without a value, and
// counts them (OperatorState.Unmatched).
func TestEnrichCoPartitionedInner(t *testing.T) {
	tab := newFakePartTable(t, 1)
	tab.parts[0].set("cab-1", at(0), "ana")
	h := streamtest.New(t, time.Second)
	q, pings := streamtest.NewQueue[ping](h)
	got := enrichCo(t, h, tab, pings, join.WithKind(join.Inner), join.WithName("drivers"))
	q.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, EventTime: at(1)}, stream.Record[ping]{Value: ping{"cab-2", 1}, EventTime: at(1)},
		stream.Record[ping]{Value: ping{"cab-1", 2}, EventTime: at(-1)})
	q.End()
	h.RunUntilDone()
	require.Equal(t, []string{"cab-1/ana#0"}, rowsOf(got.Slice()))
	require.EqualValues(t, 2, operatorState(t, h.P, "drivers").Unmatched, "the records without a value are counted")
}

// TestEnrichCoPartitionedTablePartition: WithTablePartition maps pipeline partition ids to
// table partitions (here a source whose ids are 10+p).
func TestEnrichCoPartitionedTablePartition(t *testing.T) {
	tab := newFakePartTable(t, 2)
	tab.parts[0].set("cab-1", at(0), "ana")
	tab.parts[1].set("cab-1", at(0), "bob")
	h := streamtest.New(t, time.Second)
	q, pings := streamtest.NewQueue[ping](h)
	got := enrichCo(t, h, tab, pings, join.WithTablePartition(func(part int32) int32 { return part - 10 }))
	q.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, Partition: 11, EventTime: at(1)})
	q.End()
	h.RunUntilDone()
	require.Equal(t, []string{"cab-1/bob#0"}, rowsOf(got.Slice()))
	require.Equal(t, []string{"load 1"}, tab.events)
}

// TestEnrichCoPartitionedLoadFails: a partition whose table partition cannot be loaded emits
// nothing and holds its commits before its first record (a replay enriches them); the other
// partitions go on. A load that fails before any record came is tried again.
func TestEnrichCoPartitionedLoadFails(t *testing.T) {
	tab := newFakePartTable(t, 2)
	tab.parts[0].set("cab-1", at(0), "ana")
	tab.parts[1].set("cab-2", at(0), "bob")
	failures := map[int32]int{}
	tab.fail = func(_ context.Context, p int32) error {
		failures[p]++
		if p == 1 || failures[p] == 1 { // partition 0 loads at its second try
			return errors.New("broker unreachable")
		}
		return nil
	}
	h := streamtest.New(t, time.Second)
	q, pings := streamtest.NewQueue[ping](h)
	q.SetPartitions(2)
	got := enrichCo(t, h, tab, pings)
	h.Step() // both fail, no record: nothing withheld
	require.Equal(t, map[int32]int{0: 1, 1: 1}, failures)
	q.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, Partition: 0, EventTime: at(1)},
		stream.Record[ping]{Value: ping{"cab-2", 1}, Partition: 1, EventTime: at(1)},
		stream.Record[ping]{Value: ping{"cab-2", 2}, Partition: 1, EventTime: at(2)})
	h.Step() // partition 0 loads; partition 1 fails again with records: stalled
	require.Equal(t, []string{"cab-1/ana#0"}, rowsOf(got.Slice()))
	q.Add(stream.Record[ping]{Value: ping{"cab-2", 3}, Partition: 1, EventTime: at(3)})
	h.Run(3)
	require.Len(t, got.Slice(), 1, "a stalled partition emits nothing")
	require.Equal(t, 2, failures[1], "a stalled partition is not loaded again")
	require.EqualValues(t, 1, q.Committed(0))
	require.EqualValues(t, 0, q.Committed(1), "commits stay before the first record withheld")
	require.Equal(t, []int32{0}, tab.held())
}

// TestEnrichCoPartitionedLoadTimeout: LoadPartition gets a context that ends after
// WithLoadTimeout on the pipeline's clock (here the harness's manual clock, in a synctest
// bubble whose own time does not move while the test waits): the load gives up when that
// clock passes the timeout, not before, and the partition stalls with its commit before the
// record. It used the wall clock: the load went on waiting after the pipeline's clock passed
// the timeout.
func TestEnrichCoPartitionedLoadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := newFakePartTable(t, 1)
		var loadErr error
		tab.fail = func(ctx context.Context, _ int32) error {
			<-ctx.Done() // never loads
			loadErr = context.Cause(ctx)
			return ctx.Err()
		}
		h := streamtest.New(t, time.Second)
		q, pings := streamtest.NewQueue[ping](h)
		got := enrichCo(t, h, tab, pings, join.WithLoadTimeout(time.Hour))
		q.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, EventTime: at(1)})
		wall := time.Now()
		stepped := make(chan struct{})
		go func() {
			defer close(stepped)
			h.Step()
		}()
		synctest.Wait() // the load waits
		h.Clock.Advance(time.Hour - time.Nanosecond)
		synctest.Wait()
		select {
		case <-stepped:
			t.Fatal("the load gave up before WithLoadTimeout")
		default:
		}
		h.Clock.Advance(time.Nanosecond)
		synctest.Wait()
		select {
		case <-stepped:
		default:
			t.Error("the load still waits after WithLoadTimeout passed on the pipeline's clock")
			<-stepped // (the bubble's time moves once every goroutine waits)
		}
		require.Zero(t, time.Since(wall), "no time passed but the pipeline's clock")
		require.ErrorIs(t, loadErr, context.DeadlineExceeded)
		h.Step()
		require.Empty(t, got.Slice())
		require.EqualValues(t, 0, q.Committed(0))
	})
}

func TestEnrichCoPartitionedInvalid(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, pings := streamtest.NewQueue[ping](h)
	key := func(p ping) string { return p.Cab }
	tab := newFakePartTable(t, 1)
	var nilTable *fakePartTable
	for name, f := range map[string]func() error{
		"nil stream": func() error { _, err := join.EnrichCoPartitioned(nil, tab, key, mergePing); return err },
		"nil table": func() error {
			_, err := join.EnrichCoPartitioned[string, ping, string, enriched](pings, nil, key, mergePing)
			return err
		},
		"typed nil table": func() error { _, err := join.EnrichCoPartitioned(pings, nilTable, key, mergePing); return err },
		"nil key":         func() error { _, err := join.EnrichCoPartitioned(pings, tab, nil, mergePing); return err },
		"nil merge": func() error {
			_, err := join.EnrichCoPartitioned[string, ping, string, enriched](pings, tab, key, nil)
			return err
		},
		"zero timeout": func() error {
			_, err := join.EnrichCoPartitioned(pings, tab, key, mergePing, join.WithLoadTimeout(0))
			return err
		},
		"nil partition function": func() error {
			_, err := join.EnrichCoPartitioned(pings, tab, key, mergePing, join.WithTablePartition(nil))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { require.ErrorIs(t, f(), join.ErrInvalidOption) })
	}
}

func ExampleEnrichCoPartitioned() {
	// a table in 2 partitions, like the stream: cab-1's rows in partition 1
	drivers := newFakePartTable(nil, 2)
	drivers.parts[1].set("cab-1", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), "ana")

	h := streamtest.New(nil, time.Second)
	q, pings := streamtest.NewQueue[ping](h)
	withDriver, err := join.EnrichCoPartitioned(pings, drivers, func(p ping) string { return p.Cab },
		func(p ping, driver string, ok bool) string {
			if !ok {
				driver = "unknown"
			}
			return fmt.Sprintf("%s#%d driven by %s", p.Cab, p.N, driver)
		})
	if err != nil {
		panic(err)
	}
	out := streamtest.Collect(withDriver)
	q.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, Partition: 1, EventTime: time.Date(2026, 12, 1, 10, 5, 0, 0, time.UTC)})
	q.End()
	h.RunUntilDone()
	for _, row := range out.Slice() {
		fmt.Println(row)
	}
	fmt.Println(drivers.events) // partition 1 only: the only one the stream has
	// Output:
	// cab-1#0 driven by ana
	// [load 1]
}

// oneRecord is a source of one record (offset 0) that then waits to be stopped; it keeps
// the positions committed.
type oneRecord struct {
	mu        sync.Mutex
	committed []stream.Position
}

func (*oneRecord) Run(ctx context.Context, in *stream.Input[ping]) error {
	if err := in.Push(ctx, stream.Record[ping]{Value: ping{"cab-1", 0}, EventTime: at(1)}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (o *oneRecord) Commit(_ context.Context, pos []stream.Position) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.committed = append(o.committed, pos...)
	return nil
}

// TestEnrichCoPartitionedStopWhileLoading: a pipeline stopped while the operator waits for a
// table partition that never loads returns promptly, not after WithLoadTimeout, and commits
// nothing past the record it could not enrich, so the next run replays it.
func TestEnrichCoPartitionedStopWhileLoading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := newFakePartTable(t, 1)
		entered := make(chan struct{})
		tab.fail = func(ctx context.Context, _ int32) error {
			close(entered)
			<-ctx.Done() // never loads
			return ctx.Err()
		}
		p, err := stream.New(time.Second, stream.WithIdleTimeout(0), stream.WithMaxFutureEventTime(0))
		require.NoError(t, err)
		src := &oneRecord{}
		out, err := join.EnrichCoPartitioned(stream.From[ping](p, src), tab, func(p ping) string { return p.Cab }, mergePing)
		require.NoError(t, err)
		stream.ForEachBatch(out, func(context.Context, stream.BatchInfo, []enriched) error { return nil })
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- p.Run(ctx) }()
		<-entered
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		default:
			err := <-done
			t.Fatalf("Run still waited for the table partition after it was stopped; it returned %v after %v", err, time.Since(start))
		}
		for _, pos := range src.committed {
			require.LessOrEqual(t, pos.Offset, int64(0), "committed past the record that was not enriched")
		}
	})
}

// TestEnrichCoPartitionedSplitKeys: a stream not keyed like the table looks its keys up in
// table partitions that do not hold them, silently wrong (a reviewer's stream keyed by
// another field: 3,583 of 6,000 rows enriched wrongly, exit 0). The operator now counts the
// sampled lookups of a key in another table partition than before (BatchStats.State's
// SplitKeys) and warns once; a stream keyed like the table counts none, also across a
// revocation and reassignment of a partition.
func TestEnrichCoPartitionedSplitKeys(t *testing.T) {
	run := func(t *testing.T, partOf func(cab, batch int) int32) (int64, string) {
		tab := newFakePartTable(t, 3)
		for c := range 12 {
			tab.parts[int32(c%3)].set(fmt.Sprint("cab-", c), at(0), fmt.Sprint("driver-", c))
		}
		var logs syncbuf.Buffer
		h := streamtest.New(t, time.Second, stream.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		q, pings := streamtest.NewQueue[ping](h)
		q.SetPartitions(3)
		got := enrichCo(t, h, tab, pings, join.WithName("drivers"))
		n := 0
		for batch := range 4 {
			for c := range 12 {
				for range 4 {
					q.Add(stream.Record[ping]{Value: ping{fmt.Sprint("cab-", c), n}, Partition: partOf(c, batch), EventTime: at(n)})
					n++
				}
			}
			h.Step()
			if batch == 1 {
				revoked := q.Revoke(1) // the partition comes back in the next batch, its table partition loaded again
				h.Step()
				<-revoked
			}
		}
		q.End()
		h.RunUntilDone()
		require.Len(t, got.Slice(), n, "a left join emits every record")
		for _, s := range h.P.Stats().State {
			if s.Operator == "drivers" {
				require.True(t, s.Reported)
				return s.SplitKeys, logs.String()
			}
		}
		t.Fatal("no operator drivers in the stats")
		return 0, ""
	}
	split, logs := run(t, func(c, batch int) int32 { return int32((c + batch) % 3) }) // a key moves every batch
	require.Positive(t, split, "keys looked up in several table partitions")
	require.Equal(t, 1, strings.Count(logs, "looked up in several table partitions"), "warned once:\n%s", logs)
	require.Contains(t, logs, "operator=drivers")

	split, logs = run(t, func(c, _ int) int32 { return int32(c % 3) }) // keyed like the table
	require.Zero(t, split)
	require.NotContains(t, logs, "several table partitions")
}
