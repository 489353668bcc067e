package join_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// enrichHow is how TestEnrichOracle enriches: Enrich through Lookup, Enrich through the
// LookupNano fast path, or EnrichCoPartitioned.
type enrichHow int

const (
	viaLookup enrichHow = iota
	viaNano
	viaCoPartitioned
)

// enrichSpec is one TestEnrichOracle case: the input (3 partitions of kv records, as
// gen.parts makes them), the table (versions by key, a table per partition when
// co-partitioned), and the enrichment.
type enrichSpec struct {
	in      *input
	batches [][]stream.Record[kv]
	tables  []*fakeTable // one, or one per stream partition
	how     enrichHow
	inner   bool
	// failLoad: the first run's first LoadPartition calls fail for these partitions, as
	// many as given.
	failLoad map[int32]int
}

const enrichParts = 3

// genEnrich generates an enrichSpec: random input with gaps, bursts, idle partitions and
// one-shot keys, and a table whose keys (those of the input, some never used, none of the
// one-shot keys of single records) have 0 to 4 versions at distinct times around the input's,
// one in five a tombstone.
func genEnrich(rng *rand.Rand, how enrichHow) *enrichSpec {
	in := &input{recs: map[string]upRec{}, ooo: int64(1 + rng.IntN(4))}
	keys := 2 + rng.IntN(5)
	g := newGen(rng, in, keys, 10)
	es := &enrichSpec{in: in, how: how, inner: rng.IntN(3) == 0, failLoad: map[int32]int{}}
	es.batches = g.parts(enrichParts, func(int32) bool { return false }, "")
	lo, hi := int64(1<<62), int64(-1<<62)
	for _, r := range in.recs {
		lo, hi = min(lo, r.t), max(hi, r.t)
	}
	tables := 1
	if how == viaCoPartitioned {
		tables = enrichParts
	}
	var names []string
	for k := range keys + 2 { // two keys the input never has
		names = append(names, fmt.Sprintf("k%d", k))
	}
	for b := range g.batches {
		if rng.IntN(2) == 0 {
			names = append(names, fmt.Sprintf("o%d", b)) // a key of one batch only
		}
	}
	for p := range tables {
		tab := newFakeTable()
		for _, k := range names {
			used := map[int64]bool{}
			for range rng.IntN(5) {
				from := lo - 20 + rng.Int64N(hi-lo+41)
				if used[from] {
					continue
				}
				used[from] = true
				v := fmt.Sprintf("%s@%d/p%d", k, from, p)
				if rng.IntN(5) == 0 {
					v = "" // a tombstone
				}
				tab.set(k, time.Unix(from, 0), v)
			}
		}
		es.tables = append(es.tables, tab)
	}
	if how == viaCoPartitioned {
		// One partition's first loads fail: till after its first records come (it stalls),
		// or, if it has none at first, only before they come.
		p := int32(rng.IntN(enrichParts))
		b0 := firstBatchOf(es.batches, p)
		if b0 > 0 && rng.IntN(2) == 0 {
			es.failLoad[p] = 1 + rng.IntN(b0)
		} else {
			es.failLoad[p] = b0 + 1 + rng.IntN(3)
		}
	}
	return es
}

// want returns the row each record must get, by record id: a brute-force scan of the
// versions of its key in its partition's table ("" when an inner join emits none).
func (es *enrichSpec) want() map[int]string {
	w := map[int]string{}
	for _, r := range es.in.recs {
		tab := es.tables[0]
		if es.how == viaCoPartitioned {
			tab = es.tables[r.part]
		}
		v, found, best := "", false, int64(-1<<62)
		for _, ver := range tab.rows[r.key] {
			if from := ver.from / 1e9; from <= r.t && from >= best {
				best, v, found = from, ver.v, ver.v != ""
			}
		}
		if !found {
			v = ""
		}
		if row := enrichRow(r.id, v, found); !es.inner || found {
			w[r.id] = row
		}
	}
	return w
}

// firstBatchOf returns the first batch with records of partition p, -1 if none.
func firstBatchOf(batches [][]stream.Record[kv], p int32) int {
	return slices.IndexFunc(batches, func(b []stream.Record[kv]) bool {
		return slices.ContainsFunc(b, func(r stream.Record[kv]) bool { return r.Partition == p })
	})
}

func enrichRow(id int, v string, found bool) string {
	if !found {
		return fmt.Sprintf("%d:-", id)
	}
	return fmt.Sprintf("%d:%s", id, v)
}

// loadFailer is a fakePartTable over an enrichSpec's tables whose loads fail as failLoad says.
type loadFailer struct {
	*fakePartTable
	failFirst map[int32]int
	attempts  map[int32]int
}

func (l *loadFailer) LoadPartition(ctx context.Context, p int32) error {
	l.attempts[p]++
	if l.attempts[p] <= l.failFirst[p] {
		return errors.New("table unavailable")
	}
	return l.fakePartTable.LoadPartition(ctx, p)
}

// enrichRun is one process of Queue(3) -> Enrich or EnrichCoPartitioned.
type enrichRun struct {
	h    *streamtest.Harness
	q    *streamtest.Queue[kv]
	sink *streamtest.Collector[string]
	// elems is what a stateful operator reading the output got: the elements with their
	// times and offsets (only read without a crash: a stateful reader misses rows that a
	// replay makes for the first time, see TestReaderOfStalledEnrichAfterRestart).
	elems []stream.Elem[string]
	crash int // the batch whose output fails, 0 for none
}

func newEnrichRun(t *testing.T, es *enrichSpec, failing bool) *enrichRun {
	t.Helper()
	r := &enrichRun{h: streamtest.New(t, time.Second, stream.WithIdleTimeout(0),
		stream.WithMaxOutOfOrderness(time.Duration(es.in.ooo)*time.Second))}
	var s *stream.Stream[kv]
	r.q, s = streamtest.NewQueue[kv](r.h)
	r.q.SetPartitions(enrichParts)
	var opts []join.Option
	if es.inner {
		opts = append(opts, join.WithKind(join.Inner))
	}
	key := func(r kv) string { return r.Key }
	merge := func(r kv, v string, found bool) string { return enrichRow(r.Value, v, found) }
	var out *stream.Stream[string]
	var err error
	switch es.how {
	case viaLookup:
		out, err = join.Enrich(s, join.Table[string, string](es.tables[0]), key, merge, opts...)
	case viaNano:
		out, err = join.Enrich(s, join.Table[string, string](nanoTable{es.tables[0]}), key, merge, opts...)
	case viaCoPartitioned:
		pt := newFakePartTable(t, enrichParts)
		for p, tab := range es.tables {
			pt.parts[int32(p)] = tab
		}
		lf := &loadFailer{fakePartTable: pt, failFirst: map[int32]int{}, attempts: map[int32]int{}}
		if failing {
			lf.failFirst = es.failLoad
		}
		out, err = join.EnrichCoPartitioned(s, join.PartitionedTable[string, string](lf), key, merge, opts...)
	}
	require.NoError(t, err)
	r.sink = streamtest.Collect(out)
	stream.Apply(out, "elems", stream.Operator[string, string](probe[string]{&r.elems}))
	stream.ForEachBatch(out, func(_ context.Context, info stream.BatchInfo, _ []string) error {
		if int(info.Batch) == r.crash {
			return errors.New("crash")
		}
		return nil
	})
	return r
}

// feed resumes the queue from pos, queues the batches from there on and runs n batches (to
// the end if n < 0); a run with a crash batch stops there.
func (r *enrichRun) feed(batches [][]stream.Record[kv], pos []stream.Position, n int) {
	queueFrom(r.q, batches, pos)
	runBatches(r.h, n, r.q.End)
}

// collect adds the rows the run's sink got to got, by record id, checking that no record
// gets two different rows.
func (r *enrichRun) collect(t *testing.T, got map[int]string, msg string) {
	t.Helper()
	for _, row := range r.sink.Slice() {
		var id int
		_, err := fmt.Sscanf(row, "%d:", &id)
		require.NoError(t, err)
		if prev, ok := got[id]; ok {
			require.Equal(t, prev, row, "%s: record %d enriched twice differently", msg, id)
		}
		got[id] = row
	}
}

// TestEnrichOracle: Enrich (Lookup and LookupNano) and EnrichCoPartitioned, left and inner,
// over random input (gaps, bursts, idle partitions, one-shot keys, late records, which
// Enrich does not judge) and random versioned tables (tombstones, keys never in the input,
// keys of one batch): every record gets exactly the brute-force row, with its event time.
// A crash at every batch (its output failing, or after it was acknowledged, in turn) and a
// restart from the committed offsets give the same rows to a sink, none lost; and a
// co-partitioned table partition that fails to load in the first run when records come
// stalls its stream partition (nothing of it emitted, nothing committed) without losing a
// record for a sink: the restart enriches them (a stateful reader loses them, see
// TestReaderOfStalledEnrichAfterRestart); one that fails before records come is loaded at
// a later batch.
func TestEnrichOracle(t *testing.T) {
	seeds := uint64(12)
	if testing.Short() {
		seeds = 6
	}
	stalls, retried := 0, 0
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 77))
		es := genEnrich(rng, enrichHow(seed%3))
		want := es.want()
		full := newEnrichRun(t, es, false)
		full.feed(es.batches, nil, -1)
		got := map[int]string{}
		full.collect(t, got, fmt.Sprintf("seed %d", seed))
		require.Len(t, full.sink.Slice(), len(want), "seed %d: a row per record, once", seed)
		require.Equal(t, want, got, "seed %d", seed)
		require.Len(t, full.elems, len(want))
		for _, e := range full.elems {
			var id int
			_, err := fmt.Sscanf(e.Value, "%d:", &id)
			require.NoError(t, err)
			rec := es.in.recs[recID(false, id)]
			require.Equal(t, rec.t, time.Unix(0, e.Time).Unix(), "seed %d: %s keeps its event time", seed, e.Value)
			require.Equal(t, want[id], e.Value)
		}

		// A partition whose loads fail stalls when its first records come while they do:
		// at the step of batch b0 (the first step feeds batch 0), the (b0+1)-th load.
		stalled := map[int32]bool{}
		for p, n := range es.failLoad {
			if b0 := firstBatchOf(es.batches, p); b0 >= 0 && b0 < n {
				stalled[p] = true
				stalls++
			} else {
				retried++
			}
		}
		steps := len(es.batches) + 2
		for crash := 1; crash <= steps; crash++ {
			outputFails := (crash+int(seed))%2 == 0 // both ways, in turn
			msg := fmt.Sprintf("seed %d crash %d (output fails %v)", seed, crash, outputFails)
			first := newEnrichRun(t, es, true)
			if outputFails {
				first.crash = crash
			}
			first.feed(es.batches, nil, crash)
			got := map[int]string{}
			first.collect(t, got, msg)
			for p := range stalled {
				for id := range got {
					require.NotEqual(t, p, es.in.recs[recID(false, id)].part, "%s: partition %d stalled, yet enriched record %d", msg, p, id)
				}
				require.LessOrEqual(t, first.q.Committed(p), int64(0), "%s: partition %d stalled, yet committed", msg, p)
			}
			var pos []stream.Position
			for p := range int32(enrichParts) {
				if cp, ok := first.q.CommittedPosition(p); ok {
					pos = append(pos, cp)
				}
			}
			second := newEnrichRun(t, es, false)
			second.feed(es.batches, pos, -1)
			second.collect(t, got, msg)
			require.Equal(t, want, got, msg)
		}
	}
	t.Logf("%d partitions stalled, %d loaded after failed loads", stalls, retried)
	if testing.Short() {
		return // the six seeds of -short (make check) need not cover both cases
	}
	require.Positive(t, stalls, "a table partition fails to load as records come")
	require.Positive(t, retried, "a table partition fails to load before records come, then loads")
}
