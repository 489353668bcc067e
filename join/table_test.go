package join_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// fakeTable is a versioned table: per key, versions sorted by valid-from time; an empty value
// is a tombstone. It answers like kafka.Table without WithOldestFallback.
type fakeTable struct {
	rows    map[string][]fakeVersion
	lookups int
}

type fakeVersion struct {
	from int64
	v    string
}

func newFakeTable() *fakeTable { return &fakeTable{rows: map[string][]fakeVersion{}} }

// set adds a version of key valid from at; v "" deletes the key from at on.
func (f *fakeTable) set(key string, at time.Time, v string) *fakeTable {
	vs := append(f.rows[key], fakeVersion{at.UnixNano(), v})
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].from < vs[j].from })
	f.rows[key] = vs
	return f
}

func (f *fakeTable) Lookup(key string, at time.Time) (string, bool) {
	f.lookups++
	vs := f.rows[key]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].from > at.UnixNano() }) - 1
	if i < 0 || vs[i].v == "" {
		return "", false
	}
	return vs[i].v, true
}

// nanoTable adds the LookupNano fast path to a fakeTable.
type nanoTable struct{ *fakeTable }

func (n nanoTable) LookupNano(key string, at int64) (string, bool) {
	return n.Lookup(key, time.Unix(0, at))
}

// ping is a cab's telemetry event in these tests.
type ping struct {
	Cab string
	N   int
}

// enriched is a ping with its cab's driver.
type enriched struct {
	Cab, Driver string
	N           int
	Found       bool
}

func mergePing(p ping, driver string, ok bool) enriched {
	return enriched{Cab: p.Cab, Driver: driver, N: p.N, Found: ok}
}

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// TestEnrich: the rows of Enrich as a left and an inner join, the records an inner join
// dropped counted in its stats (OperatorState.Unmatched).
func TestEnrich(t *testing.T) {
	drivers := func() *fakeTable {
		return newFakeTable().
			set("cab-1", at(0), "ana").set("cab-1", at(10), "bob").set("cab-1", at(20), "cid").
			set("cab-2", at(5), "dan").set("cab-2", at(15), ""). // deleted at 15
			set("cab-3", at(0), "eve").set("cab-3", at(10), "").set("cab-3", at(30), "fay")
	}
	type in struct {
		cab string
		at  int
	}
	cases := map[string]struct {
		inner bool
		in    []in
		want  []string // cab/driver, "-" for not found
	}{
		"versions by event time": {
			in:   []in{{"cab-1", -1}, {"cab-1", 0}, {"cab-1", 9}, {"cab-1", 10}, {"cab-1", 19}, {"cab-1", 500}},
			want: []string{"cab-1/-", "cab-1/ana", "cab-1/ana", "cab-1/bob", "cab-1/bob", "cab-1/cid"},
		},
		"out of order records see their own time": {
			in:   []in{{"cab-1", 25}, {"cab-1", 3}, {"cab-1", 12}},
			want: []string{"cab-1/cid", "cab-1/ana", "cab-1/bob"},
		},
		"tombstones": {
			in:   []in{{"cab-2", 4}, {"cab-2", 14}, {"cab-2", 15}, {"cab-3", 9}, {"cab-3", 20}, {"cab-3", 30}},
			want: []string{"cab-2/-", "cab-2/dan", "cab-2/-", "cab-3/eve", "cab-3/-", "cab-3/fay"},
		},
		"missing key": {
			in:   []in{{"cab-9", 10}, {"", 10}},
			want: []string{"cab-9/-", "/-"},
		},
		"inner drops the records without a value": {
			inner: true,
			in:    []in{{"cab-9", 10}, {"cab-2", 14}, {"cab-2", 15}, {"cab-1", -1}, {"cab-1", 10}},
			want:  []string{"cab-2/dan", "cab-1/bob"},
		},
	}
	for name, c := range cases {
		for _, fast := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/nano=%v", name, fast), func(t *testing.T) {
				var tab join.Table[string, string] = drivers()
				if fast {
					tab = nanoTable{tab.(*fakeTable)}
				}
				h := streamtest.New(t, time.Second, stream.WithMaxFutureEventTime(0))
				q, pings := streamtest.NewQueue[ping](h)
				var opts []join.Option
				if c.inner {
					opts = append(opts, join.WithKind(join.Inner))
				}
				out, err := join.Enrich(pings, tab, func(p ping) string { return p.Cab }, mergePing, opts...)
				require.NoError(t, err)
				require.Equal(t, "enrich", out.Name())
				got := streamtest.Collect(out)
				var times []int64
				stream.Apply(out, "times", timesOf[enriched](&times))
				recs := make([]stream.Record[ping], len(c.in))
				for i, r := range c.in {
					recs[i] = stream.Record[ping]{Value: ping{r.cab, i}, EventTime: at(r.at)}
				}
				q.Add(recs...)
				q.End()
				h.RunUntilDone()
				var rows []string
				for j, e := range got.Slice() {
					d := e.Driver
					if !e.Found {
						require.Empty(t, d)
						d = "-"
					}
					rows = append(rows, e.Cab+"/"+d)
					// the output keeps the record's event time
					require.Equal(t, at(c.in[e.N].at).UnixNano(), times[j])
				}
				require.Equal(t, c.want, rows)
				require.EqualValues(t, len(c.in), q.Committed(0), "nothing is held back")
				st := operatorState(t, h.P, "enrich")
				require.True(t, st.Reported)
				require.EqualValues(t, len(c.in)-len(c.want), st.Unmatched, "the records an inner join dropped are counted")
			})
		}
	}
}

// timesOf is an operator that records the event times of its input.
func timesOf[T any](times *[]int64) stream.Operator[T, T] { return &timesOp[T]{times} }

type timesOp[T any] struct{ times *[]int64 }

func (o *timesOp[T]) Process(_ *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[T]) []stream.Elem[T] {
	for _, e := range in {
		*o.times = append(*o.times, e.Time)
	}
	return out
}
func (o *timesOp[T]) Retained(int32) (int64, bool) { return 0, false }
func (o *timesOp[T]) Drop(int32)                   {}
func (o *timesOp[T]) StateSize() int               { return 0 }

// TestEnrichReplay: a replay gives the same rows as long as the table holds the same
// versions; an update valid from before a record's time changes that record's row.
func TestEnrichReplay(t *testing.T) {
	tab := newFakeTable().set("cab-1", at(0), "ana").set("cab-1", at(10), "bob")
	run := func() []enriched {
		h := streamtest.New(t, time.Second, stream.WithMaxFutureEventTime(0))
		q, pings := streamtest.NewQueue[ping](h)
		out, err := join.Enrich(pings, tab, func(p ping) string { return p.Cab }, mergePing, join.WithName("drivers"))
		require.NoError(t, err)
		got := streamtest.Collect(out)
		q.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, EventTime: at(5)}, stream.Record[ping]{Value: ping{"cab-1", 1}, EventTime: at(15)})
		q.End()
		h.RunUntilDone()
		return got.Slice()
	}
	first := run()
	require.Equal(t, first, run(), "same versions, same rows")
	tab.set("cab-1", at(12), "cid") // a late update, valid from before the second record
	again := run()
	require.Equal(t, first[0], again[0])
	require.Equal(t, "cid", again[1].Driver)
}

func TestEnrichInvalid(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, pings := streamtest.NewQueue[ping](h)
	key := func(p ping) string { return p.Cab }
	var nilTable *fakeTable
	for name, f := range map[string]func() error{
		"nil stream": func() error { _, err := join.Enrich(nil, newFakeTable(), key, mergePing); return err },
		"nil table": func() error {
			_, err := join.Enrich[string, ping, string, enriched](pings, nil, key, mergePing)
			return err
		},
		"typed nil table": func() error { _, err := join.Enrich(pings, nilTable, key, mergePing); return err },
		"nil key":         func() error { _, err := join.Enrich(pings, newFakeTable(), nil, mergePing); return err },
		"nil merge": func() error {
			_, err := join.Enrich[string, ping, string, enriched](pings, newFakeTable(), key, nil)
			return err
		},
		"bad kind": func() error {
			_, err := join.Enrich(pings, newFakeTable(), key, mergePing, join.WithKind(7))
			return err
		},
		// Nothing loads a co-partitioned table's partitions for Enrich: every lookup missed,
		// the left join gave zero values and the inner join dropped every record, without
		// a word (helper-105's note).
		"co-partitioned table": func() error {
			_, err := join.Enrich(pings, kafkaDrivers(t, kafka.WithCoPartitioned("pings")), key, mergePing)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { require.ErrorIs(t, f(), join.ErrInvalidOption) })
	}
	_, err := join.Enrich(pings, kafkaDrivers(t), key, mergePing)
	require.NoError(t, err, "a table whole in every instance")
}

// kafkaDrivers returns a kafka.Table of drivers by cab, never loaded (Enrich only checks it).
func kafkaDrivers(t *testing.T, opts ...kafka.TableOption) *kafka.Table[string, string] {
	t.Helper()
	tab, err := kafka.NewTable(kafka.Config{Brokers: []string{"127.0.0.1:1"}}, "drivers",
		func(k, v []byte) (string, string, error) { return string(k), string(v), nil }, opts...)
	require.NoError(t, err)
	return tab
}

// BenchmarkEnrich measures a whole pipeline per record (source input over 4 partitions, the
// enrichment with a versioned table of 10,000 keys with 4 versions each, an output that
// counts rows), 10,000 records per batch; BenchmarkEnrichCoPartitioned is the same with the
// table split in 4 partitions like the input (EnrichCoPartitioned); BenchmarkEnrichBaseline
// is the same pipeline without an enrichment.
func BenchmarkEnrich(b *testing.B)              { benchEnrich(b, enrichGlobal) }
func BenchmarkEnrichCoPartitioned(b *testing.B) { benchEnrich(b, enrichCoPartitioned) }
func BenchmarkEnrichBaseline(b *testing.B)      { benchEnrich(b, enrichNone) }

type enrichMode int

const (
	enrichNone enrichMode = iota
	enrichGlobal
	enrichCoPartitioned
)

// benchPartTable is a co-partitioned table of fakeTables, always loaded.
type benchPartTable []*fakeTable

func (benchPartTable) LoadPartition(context.Context, int32) error { return nil }
func (benchPartTable) Release(int32)                              {}
func (t benchPartTable) LookupPartition(p int32, key string, at time.Time) (string, bool) {
	return t[p].Lookup(key, at)
}
func (t benchPartTable) LookupPartitionNano(p int32, key string, at int64) (string, bool) {
	return t[p].Lookup(key, time.Unix(0, at))
}

func benchEnrich(b *testing.B, mode enrichMode) {
	const keys, batch, parts = 10_000, 10_000, 4
	ids := keyIDs(keys)
	tab := newFakeTable()
	split := benchPartTable{newFakeTable(), newFakeTable(), newFakeTable(), newFakeTable()}
	for i, id := range ids {
		for v := range 4 {
			at, d := t0.Add(time.Duration(v)*time.Minute), fmt.Sprintf("driver-%d", v)
			tab.set(id, at, d)
			split[i%parts].set(id, at, d)
		}
	}
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(0), stream.WithIdleTimeout(0),
		stream.WithBuffer(2*batch, 0))
	require.NoError(b, err)
	src := &pushSource[ping]{}
	s := stream.From[ping](p, src)
	rows := 0
	count := func(_ context.Context, _ stream.BatchInfo, b []enriched) error { rows += len(b); return nil }
	key := func(p ping) string { return p.Cab }
	switch mode {
	case enrichGlobal:
		out, err := join.Enrich(s, nanoTable{tab}, key, mergePing)
		require.NoError(b, err)
		stream.ForEachBatch(out, count)
	case enrichCoPartitioned:
		out, err := join.EnrichCoPartitioned(s, split, key, mergePing)
		require.NoError(b, err)
		stream.ForEachBatch(out, count)
	default:
		stream.ForEachBatch(s, func(_ context.Context, _ stream.BatchInfo, b []ping) error { rows += len(b); return nil })
	}
	recs := make([]stream.Record[ping], batch)
	offs := make([]int64, parts)
	var n int64
	step := func() {
		for i := range recs {
			k := int((n * 7919) % keys)
			part := int32(k % parts)
			recs[i] = stream.Record[ping]{Value: ping{ids[k], int(n)}, Partition: part, Offset: offs[part],
				EventTime: t0.Add(time.Duration(n) * 10 * time.Microsecond)}
			offs[part]++
			n++
		}
		for i := range recs {
			if !src.in.TryPush(recs[i]) {
				b.Fatal("input full")
			}
		}
		clk.Advance(time.Second)
		if _, err := p.Step(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	for range 5 {
		step()
	}
	require.Equal(b, 5*batch, rows)
	b.ReportAllocs()
	steps := 0
	for b.Loop() {
		step()
		steps++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps*batch), "ns/record")
}

func ExampleEnrich() {
	// drivers as of event time: cab-1 is driven by ana from 10:00, by bob from 10:10
	drivers := newFakeTable().
		set("cab-1", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), "ana").
		set("cab-1", time.Date(2026, 12, 1, 10, 10, 0, 0, time.UTC), "bob")

	h := streamtest.New(nil, time.Second, stream.WithMaxFutureEventTime(0))
	q, pings := streamtest.NewQueue[ping](h)
	withDriver, err := join.Enrich(pings, drivers, func(p ping) string { return p.Cab },
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
	for i, m := range []int{5, 15, -5} {
		q.Add(stream.Record[ping]{Value: ping{"cab-1", i}, EventTime: time.Date(2026, 12, 1, 10, m, 0, 0, time.UTC)})
	}
	q.End()
	h.RunUntilDone()
	for _, row := range out.Slice() {
		fmt.Println(row)
	}
	// Output:
	// cab-1#0 driven by ana
	// cab-1#1 driven by bob
	// cab-1#2 driven by unknown
}
