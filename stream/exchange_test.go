package stream_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// The repartition's invariants (package documentation, "Repartition"), proven offline with the
// in-memory exchange against brute-force global computations:
//
//   - one result per key: after a repartition, ReduceByKey and CountByValue give, batch by
//     batch, one result per key, and over the run the global totals (TestRepartitionReduceByKey);
//   - watermarks travel with the records: an event-time window after a repartition of
//     partitions whose event times are minutes apart (one catching up) loses no on-time record
//     and equals the global brute force (TestRepartitionWindowProperty, random inputs);
//   - exactly once: a crash at every batch, before or after the exchange's send was
//     acknowledged, and a second crash during the replay, give the documents of an
//     uninterrupted run, and no commit goes back over the runs (TestRepartitionCrashSweep).

func TestRepartitionReduceByKey(t *testing.T) {
	var inRecs, shuffledRecs int
	h := streamtest.New(t, time.Second, stream.WithStatsHook(func(st stream.BatchStats) {
		inRecs += st.InputRecords
		shuffledRecs += st.ShuffledRecords
	}))
	q, src := streamtest.NewQueue[string](h)
	log := streamtest.NewExchangeLog[stream.Pair[string, int]](3)
	_, shuffled := streamtest.NewRepartition(h, stream.Map(src, func(w string) stream.Pair[string, int] { return stream.KV(w, 1) }), "words", log)
	sums := streamtest.Collect(stream.ReduceByKey(shuffled, func(a, b int) int { return a + b }))
	counts := streamtest.Collect(stream.CountByValue(stream.Map(shuffled, func(p stream.Pair[string, int]) string { return p.Key })))

	// "a" on partitions 0 and 1 in one batch: Spark's reduceByKey gives (a,2), not (a,1) twice.
	q.Add(stream.Record[string]{Value: "a", Partition: 0}, stream.Record[string]{Value: "a", Partition: 1}, stream.Record[string]{Value: "b", Partition: 1})
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]int{"a": 2, "b": 1}
	offs := map[int32]int64{0: 1, 1: 2}
	for range 20 {
		var recs []stream.Record[string]
		for range rng.IntN(40) {
			w := string(rune('a' + rng.IntN(6)))
			p := int32(rng.IntN(4))
			recs = append(recs, stream.Record[string]{Value: w, Partition: p, Offset: offs[p]})
			offs[p]++
			want[w]++
		}
		q.Add(recs...)
	}
	q.End()
	h.RunUntilDone()

	got := map[string]int{}
	for _, b := range sums.Batches() {
		seen := map[string]bool{}
		for _, kv := range b {
			require.False(t, seen[kv.Key], "key %q twice in one batch: %v", kv.Key, b)
			seen[kv.Key] = true
			got[kv.Key] += kv.Value
		}
	}
	require.Equal(t, want, got)
	require.Contains(t, sums.Batches()[1], stream.KV("a", 2), "the first batch's a's meet in one partition")
	total := 0
	for _, n := range want {
		total += n
	}
	require.Equal(t, total, inRecs, "the input counts the sources' records only")
	require.Greater(t, shuffledRecs, total, "the repartition's records (values and marks) are counted apart")
	gotCounts := map[string]int64{}
	for kv := range counts.All() {
		gotCounts[kv.Key] += kv.Value
	}
	for k, v := range want {
		require.Equal(t, int64(v), gotCounts[k], "CountByValue of %q", k)
	}
}

// shuffleInput draws records on several partitions whose event times start minutes apart
// (one partition far behind, as when it catches up), each partition in event-time order
// within the out-of-orderness bound, cut into batches of random sizes.
func shuffleInput(rng *rand.Rand, ooo time.Duration) (batches [][]stream.Record[keyed], parts int, oracle map[string]int64) {
	batches, parts, oracle, _ = shuffleInputDeltas(rng, ooo)
	return batches, parts, oracle
}

// shuffleInputDeltas is shuffleInput with a second oracle: the sums of lastOfKey's deltas
// (each value minus the previous value of its key in its partition).
func shuffleInputDeltas(rng *rand.Rand, ooo time.Duration) (batches [][]stream.Record[keyed], parts int, oracle, deltas map[string]int64) {
	return shuffleInputLate(rng, ooo, 0)
}

// shuffleInputLate is shuffleInputDeltas with one record in lateRate (0: none) late in its
// own partition; the oracles then count them too (they are not what a run gives).
func shuffleInputLate(rng *rand.Rand, ooo time.Duration, lateRate int) (batches [][]stream.Record[keyed], parts int, oracle, deltas map[string]int64) {
	return shuffleInputGen(rng, ooo, lateRate, true)
}

// shuffleInputGen is shuffleInputLate; without outOfOrder, the records that are not late come
// in event-time order in each partition.
func shuffleInputGen(rng *rand.Rand, ooo time.Duration, lateRate int, outOfOrder bool) (batches [][]stream.Record[keyed], parts int, oracle, deltas map[string]int64) {
	parts = 2 + rng.IntN(3)
	n := 150 + rng.IntN(300)
	keys := []string{"a", "b", "c", "d", "e", "f"}[:2+rng.IntN(5)]
	t := make([]time.Time, parts)
	maxT := make([]time.Time, parts)
	off := make([]int64, parts)
	for p := range parts {
		t[p] = streamtest.Epoch.Add(time.Duration(rng.IntN(600)) * time.Second)
		maxT[p] = t[p]
	}
	oracle, deltas = map[string]int64{}, map[string]int64{}
	last := make([]map[string]int64, parts)
	for p := range parts {
		last[p] = map[string]int64{}
	}
	var all []stream.Record[keyed]
	for range n {
		p := rng.IntN(parts)
		t[p] = t[p].Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
		et := t[p]
		if lateRate > 0 && rng.IntN(lateRate) == 0 {
			et = et.Add(-time.Duration(30+rng.IntN(120)) * time.Second) // late in its own partition
		} else if outOfOrder && rng.IntN(4) == 0 { // out of order, but not behind the partition's watermark
			et = et.Add(-time.Duration(rng.Int64N(int64(ooo))))
			if et.Before(maxT[p].Add(-ooo)) {
				et = maxT[p].Add(-ooo)
			}
		}
		if et.After(maxT[p]) {
			maxT[p] = et
		}
		k := keys[rng.IntN(len(keys))]
		v := 1 + rng.Int64N(100)
		all = append(all, stream.Record[keyed]{Value: keyed{k, v}, Partition: int32(p), Offset: off[p], EventTime: et})
		off[p]++
		id := fmt.Sprintf("%s/%d", k, et.Truncate(10*time.Second).Unix())
		oracle[id] += v
		deltas[id] += v - last[p][k]
		last[p][k] = v
	}
	for len(all) > 0 {
		m := min(len(all), 1+rng.IntN(40))
		batches = append(batches, all[:m])
		all = all[m:]
	}
	return batches, parts, oracle, deltas
}

// shuffleRun is one run (one process) of source -> KeyBy -> Repartition -> window sum.
type shuffleRun struct {
	h     *streamtest.Harness
	q     *streamtest.Queue[keyed]
	ex    *streamtest.Exchange[stream.Pair[string, int64]]
	docs  *streamtest.Collector[window.Result[string, int64]]
	late  *streamtest.Collector[window.Late[stream.Pair[string, int64]]]
	crash int // the batch whose last output fails (after the exchange's send), 0 for none
	// upLate are the records late for the upstream window of a two-phase run.
	upLate *streamtest.Collector[window.Late[keyed]]
	// reader is a stateful operator reading the window's results in the same partition.
	reader *reads[window.Result[string, int64]]
}

// reads is a stateful operator that holds nothing: it passes its input on and records it,
// with the batch. What reaches it in a replay is what it had not accounted for before the
// start its checkpoint records.
type reads[T any] struct{ seen []readAt[T] }

type readAt[T any] struct {
	batch int64
	elem  stream.Elem[T]
}

func (o *reads[T]) Process(pc *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[T]) []stream.Elem[T] {
	for _, e := range in {
		o.seen = append(o.seen, readAt[T]{pc.Batch, e})
	}
	return append(out, in...)
}
func (*reads[T]) Retained(int32) (int64, bool) { return 0, false }
func (*reads[T]) Drop(int32)                   {}
func (*reads[T]) StateSize() int               { return 0 }

// The graphs of newShuffleRunMode.
const (
	plainShuffle    = iota // source -> KeyBy -> Repartition -> window sum
	trackedShuffle         // lastOfKey before the repartition (see newShuffleRunOf)
	twoPhaseShuffle        // a window sum per source partition -> RepartitionByTime -> window sum of the sums

	// otherGraph, added to a mode, adds an operator at the end of the graph: the commits'
	// checkpoints of the graph without it are of another graph fingerprint, and resume the
	// stateful operators by name.
	otherGraph = 1 << 4
	// renamedGraph, added to a mode, also renames every stateful operator: a checkpoint of
	// the graph without it then names none of them, as one of an earlier format is refused,
	// and every stateful operator starts afresh from the committed offset.
	renamedGraph = 1 << 6
	// slidingDown, added to a mode, makes the window after the repartition slide: 15 s every
	// 5 s (slidingSize, slidingSlide) instead of tumbling 10 s.
	slidingDown = 1 << 5
)

const slidingSize, slidingSlide = 15 * time.Second, 5 * time.Second

// downAssigner returns the assigner of the window after the repartition in mode.
func downAssigner(mode int) window.Assigner {
	if mode&slidingDown != 0 {
		return window.Sliding(slidingSize, slidingSlide)
	}
	return window.Tumbling(10 * time.Second)
}

// slidingOracle sums the values of every record into each sliding window (slidingSize every
// slidingSlide) that holds its event time, by key and window start: the brute force.
func slidingOracle(batches [][]stream.Record[keyed]) map[string]int64 {
	oracle := map[string]int64{}
	for _, b := range batches {
		for _, r := range b {
			for end := r.EventTime.Truncate(slidingSlide).Add(slidingSlide); !end.Add(-slidingSize).After(r.EventTime); end = end.Add(slidingSlide) {
				oracle[fmt.Sprintf("%s/%d", r.Value.Key, end.Add(-slidingSize).Unix())] += r.Value.V
			}
		}
	}
	return oracle
}

func newShuffleRun(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]], parts int, ooo time.Duration) *shuffleRun {
	return newShuffleRunOf(t, log, parts, ooo, false)
}

// newShuffleRunOf builds the graph; with tracked, a stateful operator that emits each record
// once with its own offset (lastOfKey, like the fleet job's tracker) comes before the
// repartition, which then sums its deltas.
func newShuffleRunOf(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]], parts int, ooo time.Duration, tracked bool) *shuffleRun {
	if tracked {
		return newShuffleRunMode(t, log, parts, ooo, trackedShuffle)
	}
	return newShuffleRunMode(t, log, parts, ooo, plainShuffle)
}

func newShuffleRunMode(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]], parts int, ooo time.Duration, mode int, opts ...stream.Option) *shuffleRun {
	r := &shuffleRun{h: streamtest.New(t, time.Second, append([]stream.Option{stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(ooo)}, opts...)...)}
	var src *stream.Stream[keyed]
	r.q, src = streamtest.NewQueue[keyed](r.h)
	r.q.SetPartitions(parts)
	pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
	var shuffled *stream.Stream[stream.Pair[string, int64]]
	named := func(name string) string {
		if mode&renamedGraph != 0 {
			return name + "-renamed"
		}
		return name
	}
	var downOpts []window.Option
	if mode&renamedGraph != 0 {
		downOpts = append(downOpts, window.WithName(named("sums")))
	}
	switch mode &^ (otherGraph | slidingDown | renamedGraph) {
	case trackedShuffle:
		d := stream.Apply(src, named("lastOfKey"), stream.Operator[keyed, keyDelta](&lastOfKey{parts: map[int32]map[string][2]int64{}}))
		pairs = stream.Map(d, func(k keyDelta) stream.Pair[string, int64] { return stream.KV(k.Key, k.Delta) })
	case twoPhaseShuffle:
		// The filter drops a record in five, so the window sees fewer records than the
		// partition holds and fires behind the partition's watermark (WatermarkHolder).
		local, err := window.Aggregate(src.Filter(func(k keyed) bool { return k.V%5 != 0 }), func(k keyed) string { return k.Key }, func(k keyed) int64 { return k.V },
			window.Tumbling(10*time.Second), window.Sum[int64](), window.WithName(named("local")))
		require.NoError(t, err)
		r.upLate = streamtest.Collect(local.Late())
		partial := stream.Map(local.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }),
			func(x window.Result[string, int64]) stream.Pair[string, int64] { return stream.KV(x.Key, x.Value) })
		r.ex = streamtest.NewExchange(log)
		shuffled = stream.RepartitionByTime(partial, "keys", r.ex, func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) })
		r.h.AddExchange(r.ex)
	}
	if shuffled == nil {
		r.ex, shuffled = streamtest.NewRepartition(r.h, pairs, "keys", log)
	}
	sums, err := window.Aggregate(shuffled, func(p stream.Pair[string, int64]) string { return p.Key },
		func(p stream.Pair[string, int64]) int64 { return p.Value }, downAssigner(mode), window.Sum[int64](), downOpts...)
	require.NoError(t, err)
	r.docs = streamtest.Collect(sums.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }))
	r.late = streamtest.Collect(sums.Late())
	r.reader = &reads[window.Result[string, int64]]{}
	stream.Apply(sums.Results(), named("reader"), stream.Operator[window.Result[string, int64], window.Result[string, int64]](r.reader))
	if mode&otherGraph != 0 {
		streamtest.Collect(sums.Results().Filter(func(x window.Result[string, int64]) bool { return x.Value > 100 }))
	}
	stream.ForEachBatch(sums.Results(), func(_ context.Context, info stream.BatchInfo, _ []window.Result[string, int64]) error {
		if int(info.Batch) == r.crash {
			return errors.New("crash")
		}
		return nil
	})
	return r
}

// feed queues the input from the committed positions on and runs n batches (to the end if
// n < 0); a run with a crash batch stops there.
func (r *shuffleRun) feed(batches [][]stream.Record[keyed], pos []stream.Position, n int) {
	r.q.Resume(pos...)
	from := map[int32]int64{}
	for _, p := range pos {
		from[p.Partition] = p.Offset
	}
	for _, b := range batches {
		var rest []stream.Record[keyed]
		for _, rec := range b {
			if rec.Offset >= from[rec.Partition] {
				rest = append(rest, rec)
			}
		}
		if len(rest) > 0 {
			r.q.Add(rest...)
		}
	}
	if n < 0 {
		r.q.End()
		r.h.RunUntilDone()
		return
	}
	for range n {
		if _, err := r.h.TryStep(); err != nil {
			return // crashed: the batch was sent to the exchange but not acknowledged
		}
	}
}

func (r *shuffleRun) committed() []stream.Position {
	var pos []stream.Position
	for p := range int32(8) {
		if cp, ok := r.q.CommittedPosition(p); ok {
			pos = append(pos, cp)
		}
	}
	return pos
}

// keptCommits returns the positions a source resumes from after a run that committed later
// (and possibly none): as a Kafka broker keeps a partition's last commit, those of pos that
// later does not replace stay.
func keptCommits(pos, later []stream.Position) []stream.Position {
	last := map[int32]stream.Position{}
	for _, p := range slices.Concat(pos, later) {
		last[p.Partition] = p
	}
	return slices.Collect(maps.Values(last))
}

func (r *shuffleRun) written(docs map[string]int64) {
	for _, d := range r.docs.Slice() {
		docs[fmt.Sprintf("%s/%d", d.Key, d.Start.Unix())] = d.Value
	}
}

// splitBatches cuts every batch into batches of at most n records.
func splitBatches(batches [][]stream.Record[keyed], n int) [][]stream.Record[keyed] {
	var out [][]stream.Record[keyed]
	for _, b := range batches {
		for len(b) > n {
			out = append(out, b[:n])
			b = b[n:]
		}
		out = append(out, b)
	}
	return out
}

// read adds the final results the reader got in acknowledged batches (all but the one
// whose output failed), by document.
func (r *shuffleRun) read(counts map[string]int) {
	for _, x := range r.reader.seen {
		if d := x.elem.Value; d.Final && x.batch != int64(r.crash) {
			counts[fmt.Sprintf("%s/%d=%d", d.Key, d.Start.Unix(), d.Value)]++
		}
	}
}

func TestRepartitionWindowProperty(t *testing.T) {
	seeds := uint64(40)
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 7))
		ooo := time.Duration(1+rng.IntN(5)) * time.Second
		batches, up, oracle := shuffleInput(rng, ooo)
		parts := 1 + rng.IntN(4)
		for _, mode := range []int{plainShuffle, plainShuffle | slidingDown} {
			log := streamtest.NewExchangeLog[stream.Pair[string, int64]](parts)
			if seed%2 == 1 { // numbered as kafka.Exchange packs records into messages
				log = streamtest.NewPackedExchangeLog[stream.Pair[string, int64]](parts)
			}
			if mode&slidingDown != 0 {
				oracle = slidingOracle(batches)
			}
			run := newShuffleRunMode(t, log, up, ooo, mode)
			run.feed(batches, nil, -1)
			require.Empty(t, run.late.Slice(), "seed %d mode %d: no on-time record may be late after the repartition", seed, mode)
			got := map[string]int64{}
			seen := map[string]bool{}
			for _, d := range run.docs.Slice() {
				id := fmt.Sprintf("%s/%d", d.Key, d.Start.Unix())
				require.False(t, seen[id], "seed %d mode %d: window %s emitted twice (split over partitions)", seed, mode, id)
				seen[id] = true
				got[id] = d.Value
			}
			require.Equal(t, oracle, got, "seed %d mode %d", seed, mode)
		}
	}
}

// TestRepartitionTwoPhase: a window sum per source partition, its final results through
// RepartitionByTime, and a window sum of them after it (two-phase aggregation) give, on
// random inputs with partitions minutes apart, out-of-order records and records late in their
// own partitions, the brute-force global sums minus exactly the records the upstream windows
// reported late; no partial result is late downstream, and each key and window has one
// result.
func TestRepartitionTwoPhase(t *testing.T) {
	seeds := uint64(40)
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 17))
		ooo := time.Duration(1+rng.IntN(5)) * time.Second
		lateRate := 0
		if seed%2 == 0 {
			lateRate = 10
		}
		batches, up, _, _ := shuffleInputLate(rng, ooo, lateRate)
		oracle := map[string]int64{} // the filter of the two-phase graph drops multiples of 5
		for _, b := range batches {
			for _, r := range b {
				if r.Value.V%5 != 0 {
					oracle[fmt.Sprintf("%s/%d", r.Value.Key, r.EventTime.Truncate(10*time.Second).Unix())] += r.Value.V
				}
			}
		}
		parts := 1 + rng.IntN(4)
		log := streamtest.NewExchangeLog[stream.Pair[string, int64]](parts)
		if seed%4 >= 2 { // numbered as kafka.Exchange packs records into messages
			log = streamtest.NewPackedExchangeLog[stream.Pair[string, int64]](parts)
		}
		run := newShuffleRunMode(t, log, up, ooo, twoPhaseShuffle)
		run.feed(batches, nil, -1)
		require.Empty(t, run.late.Slice(), "seed %d: a partial result was late after the repartition", seed)
		for _, l := range run.upLate.Slice() {
			id := fmt.Sprintf("%s/%d", l.Value.Key, l.EventTime.Truncate(10*time.Second).Unix())
			oracle[id] -= l.Value.V
			if oracle[id] == 0 {
				delete(oracle, id)
			}
		}
		if lateRate > 0 {
			require.NotEmpty(t, run.upLate.Slice(), "seed %d: the input has records late in their own partitions", seed)
		}
		got := map[string]int64{}
		for _, d := range run.docs.Slice() {
			id := fmt.Sprintf("%s/%d", d.Key, d.Start.Unix())
			_, dup := got[id]
			require.False(t, dup, "seed %d: window %s emitted twice", seed, id)
			got[id] = d.Value
		}
		require.Equal(t, oracle, got, "seed %d", seed)
	}
}

// TestRepartitionByTimeWindowOrder: window results fire in window order, and a later window
// may hold an older record than an earlier one: [20s, 30s) gets offset 1 before [10s, 20s)
// gets offset 2, and [10s, 20s) fires first. RepartitionBy would number them by offset (2,
// then 1) and fail; RepartitionByTime numbers them by time and delivers all three windows.
func TestRepartitionByTimeWindowOrder(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(5*time.Second), stream.WithIdleTimeout(0))
	q, src := streamtest.NewQueue[keyed](h)
	local, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(k keyed) int64 { return k.V }, window.Tumbling(10*time.Second), window.Sum[int64]())
	require.NoError(t, err)
	pairs := stream.Map(local.Results().Filter(func(r window.Result[string, int64]) bool { return r.Final }),
		func(r window.Result[string, int64]) stream.Pair[string, int64] { return stream.KV(r.Key, r.Value) })
	ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int64]](2))
	merged, err := window.Aggregate(stream.RepartitionByTime(pairs, "partials", ex, func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) }),
		func(p stream.Pair[string, int64]) string { return p.Key }, func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(10*time.Second), window.Sum[int64]())
	require.NoError(t, err)
	h.AddExchange(ex)
	docs := streamtest.Collect(merged.Results().Filter(func(r window.Result[string, int64]) bool { return r.Final }))
	at := func(s int) time.Time { return streamtest.Epoch.Add(time.Duration(s) * time.Second) }
	rec := func(off int64, s int, v int64) stream.Record[keyed] {
		return stream.Record[keyed]{Value: keyed{"a", v}, Offset: off, EventTime: at(s)}
	}
	q.Add(rec(0, 1, 1), rec(1, 21, 10), rec(2, 19, 100))
	q.Add(rec(3, 26, 1000)) // the watermark passes 20s: [0s, 10s) and [10s, 20s) fire
	q.Add(rec(4, 40, 10000))
	q.End()
	h.RunUntilDone()
	got := map[time.Duration]int64{}
	for _, d := range docs.Slice() {
		got[d.Start.Sub(streamtest.Epoch)] = d.Value
	}
	require.Equal(t, map[time.Duration]int64{0: 1, 10 * time.Second: 100, 20 * time.Second: 1010, 40 * time.Second: 10000}, got)
}

// TestRepartitionByTimeRefusesRepeatedTimes: two windows over one source whose ends
// coincide but fire in different batches (the same window with other graces, over a Union of
// their results) send one event time in two batches, which RepartitionByTime would number
// from 0 again and drop as copies. The graph is refused when it is built, naming both windows
// and their graces (stream.FireDelayer): it failed at run time only, with a permanent error
// once the data did so, after the outputs of the batches before were written. Windows with
// one grace, or other graces over other sources (each source partition is numbered by
// itself), are taken. An operator the graph cannot see so (a TimeOrderer that is no
// FireDelayer) still fails when it happens.
func TestRepartitionByTimeRefusesRepeatedTimes(t *testing.T) {
	toPair := func(r window.Result[string, int64]) stream.Pair[string, int64] { return stream.KV(r.Key, r.Value) }
	hash := func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) }
	counts := func(src *stream.Stream[keyed], name string, size, grace time.Duration) *stream.Stream[stream.Pair[string, int64]] {
		w, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(keyed) int64 { return 1 }, window.Tumbling(size), window.Sum[int64](),
			window.WithGrace(grace), window.WithName(name))
		require.NoError(t, err)
		return stream.Map(w.Results(), toPair)
	}
	for _, tc := range []struct {
		name        string
		sizes       [2]time.Duration
		graces      [2]time.Duration
		otherSource bool
		refused     bool
	}{
		{name: "other graces", sizes: [2]time.Duration{10 * time.Second, 10 * time.Second}, graces: [2]time.Duration{0, 5 * time.Second}, refused: true},
		{name: "other sizes and graces", sizes: [2]time.Duration{10 * time.Second, time.Minute}, graces: [2]time.Duration{2 * time.Second, 0}, refused: true},
		{name: "one grace, other sizes", sizes: [2]time.Duration{10 * time.Second, time.Minute}, graces: [2]time.Duration{5 * time.Second, 5 * time.Second}},
		{name: "other graces over other sources", sizes: [2]time.Duration{10 * time.Second, 10 * time.Second}, graces: [2]time.Duration{0, 5 * time.Second}, otherSource: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second))
			q, src := streamtest.NewQueue[keyed](h)
			qs, other := []*streamtest.Queue[keyed]{q}, src
			if tc.otherSource {
				var q2 *streamtest.Queue[keyed]
				q2, other = streamtest.NewQueue[keyed](h)
				qs = append(qs, q2)
			}
			pairs := counts(src, "counts0", tc.sizes[0], tc.graces[0]).Union(counts(other, "counts1", tc.sizes[1], tc.graces[1]))
			ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int64]](2))
			stream.RepartitionByTime(pairs, "partials", ex, hash)
			h.AddExchange(ex)
			err := h.P.Err()
			if !tc.refused {
				require.NoError(t, err)
				// Windows of both end at 10 s, 20 s, ..., 60 s; each batch closes some.
				sent := streamtest.Collect(pairs)
				for i, sec := range []int{1, 12, 17, 25, 38, 61, 75, 90} {
					for _, q := range qs {
						q.Add(stream.Record[keyed]{Value: keyed{"a", 1}, Offset: int64(i), EventTime: streamtest.Epoch.Add(time.Duration(sec) * time.Second)})
					}
					_, err := h.TryStep()
					require.NoError(t, err, "batch %d", i)
				}
				require.NotEmpty(t, sent.Slice(), "windows fired")
				return
			}
			require.ErrorIs(t, err, stream.ErrGraph)
			require.ErrorContains(t, err, fmt.Sprintf(`is made from the results of "counts0" and "counts1", which read one source but fire an event time's results at other delays (%v and %v: their graces)`, tc.graces[0], tc.graces[1]))
			_, stepErr := h.TryStep()
			require.ErrorIs(t, stepErr, stream.ErrGraph)
		})
	}

	t.Run("unseen by the graph", func(t *testing.T) {
		h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second))
		q, src := streamtest.NewQueue[keyed](h)
		pairs := stream.Apply(stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) }), "ordered", stream.Operator[stream.Pair[string, int64], stream.Pair[string, int64]](orderedOnly{}))
		ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int64]](2))
		stream.RepartitionByTime(pairs, "partials", ex, hash)
		h.AddExchange(ex)
		require.NoError(t, h.P.Err())
		at := func(s int) time.Time { return streamtest.Epoch.Add(time.Duration(s) * time.Second) }
		q.Add(stream.Record[keyed]{Value: keyed{"a", 1}, Offset: 0, EventTime: at(1)})
		_, err := h.TryStep()
		require.NoError(t, err)
		q.Add(stream.Record[keyed]{Value: keyed{"b", 1}, Offset: 1, EventTime: at(1)}) // the same time, a batch later
		_, err = h.TryStep()
		require.Error(t, err)
		require.True(t, stream.IsPermanent(err))
		require.ErrorContains(t, err, "RepartitionByTime needs each time's elements in one batch")
	})
}

// orderedOnly is heldOnly (a WatermarkHolder that passes its input on) saying that
// RepartitionByTime may number its output (TimeOrderer), without saying when it fires
// (FireDelayer).
type orderedOnly struct{ heldOnly }

func (orderedOnly) TimeOrder() string { return "" }

func TestRepartitionCrashSweep(t *testing.T) {
	seeds := uint64(12)
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 13))
		ooo := 2 * time.Second
		// Seeds 4 and up put records that are late in their own partition in the input:
		// whether one is late downstream depends only on its position in the repartition
		// (WatermarkAt), so a replay must give the uninterrupted run's documents and late
		// records exactly, though not the oracle's.
		lateRate := 0
		if seed >= 4 {
			lateRate = 12
		}
		// Seeds 8 and up aggregate in two phases (a window per source partition before a
		// RepartitionByTime); the records late in their own partitions are then late upstream,
		// and a replay must report them as the uninterrupted run did. Their records come in
		// order within each partition but for the late ones: a per-partition window's replay
		// judges a record out of order across a window boundary at the commit differently
		// (package window, "Delivery and replay"), whatever comes after it.
		twoPhase := seed >= 8 || testing.Short() && seed == 2
		batches, up, oracle, deltas := shuffleInputGen(rng, ooo, lateRate, !twoPhase)
		parts := 1 + rng.IntN(3)
		// Odd seeds put a stateful operator before the repartition (the fleet job's tracker
		// before zone demand).
		mode := plainShuffle
		if seed%2 == 1 {
			mode = trackedShuffle
			oracle = deltas
		}
		if twoPhase {
			mode = twoPhaseShuffle
		}
		// Every third seed slides the window after the repartition (15 s every 5 s).
		if seed%3 == 2 {
			mode |= slidingDown
			if mode&^slidingDown == plainShuffle {
				oracle = slidingOracle(batches)
			}
		}
		newShuffleRun := func(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]], up int, ooo time.Duration, opts ...stream.Option) *shuffleRun {
			return newShuffleRunMode(t, log, up, ooo, mode, opts...)
		}
		// Seeds 2, 3, 6 and 7 number the exchange's records as kafka.Exchange packs them
		// (a Send's records of a partition share an offset, marks among them).
		newLog := func() *streamtest.ExchangeLog[stream.Pair[string, int64]] {
			if seed%4 >= 2 {
				return streamtest.NewPackedExchangeLog[stream.Pair[string, int64]](parts)
			}
			return streamtest.NewExchangeLog[stream.Pair[string, int64]](parts)
		}
		fullLog := newLog()
		full := newShuffleRun(t, fullLog, up, ooo)
		full.feed(batches, nil, -1)
		requireCommitsNeverGoBack(t, fmt.Sprintf("seed %d, the uninterrupted run's repartition", seed), fullLog.Commits())
		requireCommitsNeverGoBack(t, fmt.Sprintf("seed %d, the uninterrupted run's input", seed), full.q.Commits())
		want := map[string]int64{}
		full.written(want)
		wantLate := lateSet(full)
		// A stateful reader of the results in the same partition must get every document
		// exactly once over the runs, as the sink does.
		wantRead := map[string]int{}
		full.read(wantRead)
		for id, v := range want {
			require.Equal(t, 1, wantRead[fmt.Sprintf("%s=%d", id, v)], "seed %d: the reader got %s", seed, id)
		}
		require.Len(t, wantRead, len(want))
		switch {
		case twoPhase: // TestRepartitionTwoPhase holds it to the oracle
		case mode == trackedShuffle|slidingDown: // the deltas' oracle is by tumbling window
		case lateRate == 0:
			require.Equal(t, oracle, want, "seed %d: an uninterrupted run differs from the oracle", seed)
			require.Empty(t, wantLate)
		default:
			require.NotEmpty(t, wantLate, "seed %d: the input has late records", seed)
		}

		for crash := 1; crash <= len(batches)+3; crash++ {
			log := newLog()
			got := map[string]int64{}
			first := newShuffleRun(t, log, up, ooo)
			if crash%2 == 0 {
				first.crash = crash // the send went through, the batch was not acknowledged
				first.feed(batches, nil, crash)
			} else {
				first.feed(batches, nil, crash) // stopped after an acknowledged batch
			}
			first.written(got)
			gotLate := lateSet(first)
			gotRead := map[string]int{}
			first.read(gotRead)
			pos := first.committed()
			inputCommits := first.q.Commits()

			// Every other replay reads at most 8 records a batch from each source, so that it
			// reads the repartition's partitions in batches of its own, which straddle the end
			// of what the first run acknowledged. (Not with records late in their own
			// partitions: whether one is late downstream depends on the marks sent before it,
			// after each upstream batch, so other upstream batches judge it otherwise.)
			var small []stream.Option
			replay := batches
			if crash%4 < 2 && lateRate == 0 {
				small, replay = []stream.Option{stream.WithBuffer(8, 0)}, splitBatches(batches, 8)
			}
			second := newShuffleRun(t, log, up, ooo, small...)
			if crash%3 == 0 { // a second crash during the replay
				second.crash = 1 + rng.IntN(3)
				second.feed(replay, pos, 4)
				second.written(got)
				maps.Copy(gotLate, lateSet(second))
				second.read(gotRead)
				pos = keptCommits(pos, second.committed())
				inputCommits = append(inputCommits, second.q.Commits()...)
				second = newShuffleRun(t, log, up, ooo, small...)
			}
			second.feed(replay, pos, -1)
			inputCommits = append(inputCommits, second.q.Commits()...)
			requireCommitsNeverGoBack(t, fmt.Sprintf("seed %d crash %d, the repartition", seed, crash), log.Commits())
			requireCommitsNeverGoBack(t, fmt.Sprintf("seed %d crash %d, the input", seed, crash), inputCommits)
			second.written(got)
			maps.Copy(gotLate, lateSet(second))
			second.read(gotRead)
			require.Equal(t, wantLate, gotLate, "seed %d crash %d: the late records differ from the uninterrupted run's", seed, crash)
			require.Equal(t, wantRead, gotRead, "seed %d crash %d of %d: the documents a stateful reader got over the runs", seed, crash, len(batches))
			if !maps.Equal(want, got) {
				ids := slices.Sorted(maps.Keys(want))
				for _, id := range ids {
					if got[id] != want[id] {
						t.Fatalf("seed %d, crash at batch %d of %d: document %s = %d, want %d (committed %v)", seed, crash, len(batches), id, got[id], want[id], pos)
					}
				}
				for id, v := range got {
					if _, ok := want[id]; !ok {
						t.Fatalf("seed %d, crash at batch %d: extra document %s = %d", seed, crash, id, v)
					}
				}
			}
		}
	}
}

// TestRepartitionOfWindowResultsRefused: an event-time window's results carry the position
// where their window closed, shared by its keys and by windows that close together, in an
// order a replay need not reproduce; numbered by offset and rank downstream, a replay could
// shift the ranks and drop a result as a copy. So Repartition (by offset) of a stream derived
// from a window is a construction error that names the fix, even through a Map and a Late
// stream; RepartitionByTime of the same window's final results is not.
func TestRepartitionOfWindowResultsRefused(t *testing.T) {
	for _, byTime := range []bool{false, true} {
		h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(20*time.Second))
		_, src := streamtest.NewQueue[keyed](h)
		counts, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(keyed) int64 { return 1 }, window.Tumbling(10*time.Second), window.Sum[int64]())
		require.NoError(t, err)
		pairs := stream.Map(counts.Results(), func(r window.Result[string, int64]) stream.Pair[string, int64] { return stream.KV(r.Key, r.Value) })
		ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int64]](2))
		hash := func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) }
		if byTime {
			stream.RepartitionByTime(pairs, "after-window", ex, hash)
			require.NoError(t, h.P.Err())
			continue
		}
		stream.RepartitionBy(pairs, "after-window", ex, hash)
		err = h.P.Err()
		require.ErrorIs(t, err, stream.ErrGraph)
		require.ErrorContains(t, err, `reads the results of the window "window"`)
		require.ErrorContains(t, err, "RepartitionByTime")
	}
}

// TestRepartitionByTimeOfOtherStreamsRefused: RepartitionByTime numbers its elements by event
// time, which only an event-time window's results allow (each window's results fire in one
// batch, later windows later); records, or a window's Late stream (late records in the order
// they came), number times more than once or out of order. Such a graph is refused when it
// is built, naming the repartition, the stream and what it takes, before any record is read;
// it used to pass, and fail at run time only once the data repeated an event time across
// batches, after outputs had written the batches before. A window's results through
// stateless operators (Map, Filter, a Union of two windows' results) are accepted.
func TestRepartitionByTimeOfOtherStreamsRefused(t *testing.T) {
	type pair = stream.Pair[string, int64]
	toPair := func(r window.Result[string, int64]) pair { return stream.KV(r.Key, r.Value) }
	for _, tc := range []struct {
		name  string
		build func(src *stream.Stream[keyed], counts func() *window.Windowed[string, int64, keyed]) *stream.Stream[pair]
		reads string // what the error says the stream reads; "" if accepted
	}{
		{"records", func(src *stream.Stream[keyed], _ func() *window.Windowed[string, int64, keyed]) *stream.Stream[pair] {
			return stream.Map(src, func(k keyed) pair { return stream.KV(k.Key, k.V) })
		}, `its stream "map" is made from the source's records`},
		{"late records", func(_ *stream.Stream[keyed], counts func() *window.Windowed[string, int64, keyed]) *stream.Stream[pair] {
			return stream.Map(counts().Late(), func(l window.Late[keyed]) pair { return stream.KV(l.Value.Key, l.Value.V) })
		}, `its stream "map" is made from the operator "window1.late"`},
		{"results and records", func(src *stream.Stream[keyed], counts func() *window.Windowed[string, int64, keyed]) *stream.Stream[pair] {
			return stream.Map(counts().Results(), toPair).Union(stream.Map(src, func(k keyed) pair { return stream.KV(k.Key, k.V) }))
		}, `its stream "union" is made from the source's records`},
		{"results", func(_ *stream.Stream[keyed], counts func() *window.Windowed[string, int64, keyed]) *stream.Stream[pair] {
			return stream.Map(counts().Results().Filter(func(r window.Result[string, int64]) bool { return r.Final }), toPair)
		}, ""},
		{"two windows' results", func(_ *stream.Stream[keyed], counts func() *window.Windowed[string, int64, keyed]) *stream.Stream[pair] {
			return stream.Map(counts().Results(), toPair).Union(stream.Map(counts().Results(), toPair))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(20*time.Second))
			q, src := streamtest.NewQueue[keyed](h)
			read := streamtest.Collect(src)
			n := 0
			counts := func() *window.Windowed[string, int64, keyed] {
				n++
				w, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(keyed) int64 { return 1 }, window.Tumbling(10*time.Second), window.Sum[int64](),
					window.WithName(fmt.Sprintf("window%d", n)))
				require.NoError(t, err)
				return w
			}
			ex := streamtest.NewExchange(streamtest.NewExchangeLog[pair](2))
			stream.RepartitionByTime(tc.build(src, counts), "by-time", ex, func(p pair) uint64 { return stream.HashKey(p.Key) })
			h.AddExchange(ex)
			q.AddValues(keyed{"a", 1}, keyed{"b", 2})
			if tc.reads == "" {
				require.NoError(t, h.P.Err())
				return
			}
			err := h.P.Err()
			require.ErrorIs(t, err, stream.ErrGraph)
			require.ErrorContains(t, err, `RepartitionByTime "by-time": `+tc.reads)
			require.ErrorContains(t, err, "not from the final results of an event-time window")
			require.ErrorContains(t, err, "Repartition or RepartitionBy")
			_, stepErr := h.TryStep()
			require.ErrorIs(t, stepErr, stream.ErrGraph)
			require.Empty(t, read.Slice(), "records were read")
		})
	}
}

// holdBack is a stateful operator that emits the last element of each batch of a partition
// at once and the others with the partition's next batch: out of source-offset order across
// batches.
type holdBack struct {
	held map[int32][]stream.Elem[stream.Pair[string, int64]]
}

func (h *holdBack) Process(pc *stream.PartitionContext, in []stream.Elem[stream.Pair[string, int64]], out []stream.Elem[stream.Pair[string, int64]]) []stream.Elem[stream.Pair[string, int64]] {
	if len(in) == 0 {
		return out
	}
	out = append(out, h.held[pc.Partition]...)
	h.held[pc.Partition] = append([]stream.Elem[stream.Pair[string, int64]](nil), in[:len(in)-1]...)
	return append(out, in[len(in)-1])
}
func (h *holdBack) Retained(part int32) (int64, bool) {
	if held := h.held[part]; len(held) > 0 {
		return held[0].Offset, true
	}
	return 0, false
}
func (h *holdBack) Drop(part int32) { delete(h.held, part) }
func (h *holdBack) StateSize() int  { return len(h.held) }

// TestRepartitionOutOfOrderFails: an operator that emits out of source-offset order cannot be
// told at construction; a repartition after it numbers its output out of order, a permanent
// error that names the fix when it happens, never a silent loss.
func TestRepartitionOutOfOrderFails(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[keyed](h)
	pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
	held := stream.Apply(pairs, "hold-back", stream.Operator[stream.Pair[string, int64], stream.Pair[string, int64]](&holdBack{held: map[int32][]stream.Elem[stream.Pair[string, int64]]{}}))
	streamtest.NewRepartition(h, held, "after-hold-back", streamtest.NewExchangeLog[stream.Pair[string, int64]](2))
	require.NoError(t, h.P.Err())
	// offset 1 in the first batch, offset 0 in the second
	q.Add(stream.Record[keyed]{Value: keyed{"x", 1}}, stream.Record[keyed]{Value: keyed{"y", 2}})
	q.Add(stream.Record[keyed]{Value: keyed{"z", 3}})
	q.End()
	var stepErr error
	for range 20 {
		done, err := h.TryStep()
		if err != nil {
			stepErr = err
			break
		}
		if done {
			break
		}
	}
	require.Error(t, stepErr)
	require.True(t, stream.IsPermanent(stepErr))
	require.ErrorContains(t, stepErr, "repartition before them")
}

// lateSet returns the late records of a run by value and event time (a replay may report a
// late record again; the set is what counts).
func lateSet(r *shuffleRun) map[string]bool {
	set := map[string]bool{}
	for _, l := range r.late.Slice() {
		set[fmt.Sprintf("%s=%d@%d", l.Value.Key, l.Value.Value, l.EventTime.UnixNano())] = true
	}
	if r.upLate != nil {
		for _, l := range r.upLate.Slice() {
			set[fmt.Sprintf("upstream %s=%d@%d", l.Value.Key, l.Value.V, l.EventTime.UnixNano())] = true
		}
	}
	return set
}

// TestRepartitionFiresInFirstBatch: a window that fires in the very batch that first brings
// records to a repartitioned partition (nothing held before it) still holds the commit back
// to its records until the commit passes the firing, so that a restart does not emit it again
// from part of them. Found by the fleet job's offline crash test.
func TestRepartitionFiresInFirstBatch(t *testing.T) {
	at := func(s int) time.Time { return streamtest.Epoch.Add(time.Duration(s) * time.Second) }
	rec := func(p int32, off int64, k string, s int) stream.Record[keyed] {
		return stream.Record[keyed]{Value: keyed{k, 1}, Partition: p, Offset: off, EventTime: at(s)}
	}
	batches := [][]stream.Record[keyed]{
		{rec(0, 0, "a", 1), rec(1, 0, "a", 2), rec(0, 1, "a", 3), rec(1, 1, "b", 25), rec(0, 2, "b", 26)},
		{rec(0, 3, "b", 27), rec(1, 2, "b", 28)},
		{rec(0, 4, "c", 45), rec(1, 3, "c", 46)},
	}
	ooo := 2 * time.Second
	full := newShuffleRun(t, streamtest.NewExchangeLog[stream.Pair[string, int64]](1), 2, ooo)
	full.feed(batches, nil, -1)
	want := map[string]int64{}
	full.written(want)
	require.Equal(t, int64(3), want[fmt.Sprintf("a/%d", at(0).Unix())])
	for crash := 1; crash <= 4; crash++ {
		log := streamtest.NewExchangeLog[stream.Pair[string, int64]](1)
		got := map[string]int64{}
		first := newShuffleRun(t, log, 2, ooo)
		first.feed(batches, nil, crash)
		first.written(got)
		second := newShuffleRun(t, log, 2, ooo)
		second.feed(batches, first.committed(), -1)
		second.written(got)
		require.Equal(t, want, got, "crash after batch %d", crash)
	}
}

// TestRepartitionPartitionComesBack: a partition revoked from an instance and later
// assigned to it again (a consumer group rebalance moving it away and back) resumes from its
// committed checkpoint, and the replay sends earlier offsets into the repartition again. That
// is no error (the instance used to stop with "records out of source order", found by running
// two instances of the fleet job while a third joined), and the documents are still the
// oracle's: the downstream drops what it already had.
func TestRepartitionPartitionComesBack(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 29))
		ooo := 2 * time.Second
		batches, up, _, deltas := shuffleInputLate(rng, ooo, 0)
		log := streamtest.NewExchangeLog[stream.Pair[string, int64]](1 + rng.IntN(3))
		// A stateful operator before the repartition holds the commit back, so the replay
		// starts before what the partition sent.
		r := newShuffleRunOf(t, log, up, ooo, true)
		half := len(batches) / 2
		for _, b := range batches[:half] {
			r.q.Add(b...)
			_, err := r.h.TryStep()
			require.NoError(t, err)
		}
		moved := int32(rng.IntN(up))
		done := r.q.Revoke(moved)
		_, err := r.h.TryStep()
		require.NoError(t, err)
		select {
		case <-done:
		default:
			t.Fatalf("seed %d: partition %d not dropped after a step", seed, moved)
		}
		pos, ok := r.q.CommittedPosition(moved)
		require.True(t, ok, "seed %d: partition %d committed", seed, moved)
		r.q.Resume(pos)
		var again []stream.Record[keyed]
		for _, b := range batches[:half] {
			for _, rec := range b {
				if rec.Partition == moved && rec.Offset >= pos.Offset {
					again = append(again, rec)
				}
			}
		}
		require.NotEmpty(t, again, "seed %d: the replay sends records again", seed)
		r.q.Add(again...)
		for _, b := range batches[half:] {
			r.q.Add(b...)
		}
		r.q.End()
		r.h.RunUntilDone()
		got := map[string]int64{}
		r.written(got)
		require.Equal(t, deltas, got, "seed %d: partition %d moved away and back at batch %d", seed, moved, half)
	}
}

// TestRepartitionEndTravelsWithoutTicks: once a bounded input ended, the next batches run at
// most a tenth of the interval apart while the repartition's end marks make their way back
// (at once when the repartition's input was already closed), so the run ends within 100 ms of
// fake time instead of waiting for the next tick (issue 15: a drain's tail), and every record
// still comes through the repartition. And the first of the values and end marks to arrive
// starts the batch that reads them, not a tenth of the interval later: with sends that reach
// the consumer 50 ms after they were made ("late"), the run ends 50 ms after its last input
// batch (it took 150 ms, the end marks arriving in two fetches: 100 ms of every hop at the
// end of a bounded run, and of the fleet job's drain). TestCatchUpTailThroughRepartition has
// the other case, the values of the batch that ended a backlog.
func TestRepartitionEndTravelsWithoutTicks(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late=%v", late), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, err := stream.New(time.Second, stream.WithBuffer(10, 0))
				require.NoError(t, err)
				src := &sliceSource{recs: make([]int, 25)}
				for i := range src.recs {
					src.recs[i] = i
				}
				in := stream.From(p, stream.Source[int](src))
				var ex stream.Exchange[stream.Pair[string, int]] = streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int]](3))
				bound := 100 * time.Millisecond
				if late {
					// The input's three batches back to back at once (the input ended), their
					// values and end marks back 50 ms later, read by the batches they wake.
					ex, bound = newLateExchange[stream.Pair[string, int]](2), 60*time.Millisecond
				}
				out := stream.Repartition(stream.Map(in, func(v int) stream.Pair[string, int] { return stream.KV(fmt.Sprint(v), v) }), "ints", ex)
				var got []int
				stream.ForEachBatch(out, func(_ context.Context, _ stream.BatchInfo, b []stream.Pair[string, int]) error {
					for _, kv := range b {
						got = append(got, kv.Value)
					}
					return nil
				})
				start := time.Now()
				require.NoError(t, p.Run(t.Context()))
				slices.Sort(got)
				require.Equal(t, src.recs, got)
				require.LessOrEqual(t, time.Since(start), bound, "the end marks waited for a tick or a tenth of the interval")
			})
		})
	}
}

// lateExchange is an in-memory exchange whose sends reach the log 50 ms after Send returns,
// in order, as a Kafka topic's records reach its consumer after a fetch, not during the batch
// that sent them (the in-memory log hands them over at once). Timing tests only: a send is
// not durable when Send returns.
type lateExchange[T any] struct {
	*streamtest.Exchange[T]
	mu      *sync.Mutex
	pending *[][]stream.Shuffled[T]
}

func newLateExchange[T any](parts int) lateExchange[T] {
	return lateExchange[T]{streamtest.NewExchange(streamtest.NewExchangeLog[T](parts)), new(sync.Mutex), new([][]stream.Shuffled[T])}
}

func (e lateExchange[T]) Send(_ context.Context, recs []stream.Shuffled[T]) error {
	e.mu.Lock()
	*e.pending = append(*e.pending, slices.Clone(recs))
	e.mu.Unlock()
	time.AfterFunc(50*time.Millisecond, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		first := (*e.pending)[0]
		*e.pending = (*e.pending)[1:]
		_ = e.Exchange.Send(context.Background(), first)
	})
	return nil
}

// TestCatchUpTailThroughRepartition: the batch that ends a backlog (the first one no longer
// behind) sends its values to a repartition; the batch that reads them back runs as soon as
// they arrive, not at the next tick nor a tenth of the interval later, so a drain's last
// values are not an interval late downstream (issue 15: a second of the fleet job's drain
// tail). The input stays open, as a Kafka topic's does.
func TestCatchUpTailThroughRepartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second, stream.WithBuffer(10, 0))
		require.NoError(t, err)
		src := &sliceSource{recs: make([]int, 25), wait: true}
		for i := range src.recs {
			src.recs[i] = i
		}
		in := stream.From(p, stream.Source[int](src))
		ex := newLateExchange[stream.Pair[string, int]](2)
		// One value in five goes through the repartition, never a full buffer of its own.
		fifth := in.Filter(func(v int) bool { return v%5 == 0 })
		out := stream.Repartition(stream.Map(fifth, func(v int) stream.Pair[string, int] { return stream.KV(fmt.Sprint(v), v) }), "ints", ex)
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		var all time.Duration
		got := 0
		stream.ForEachBatch(out, func(_ context.Context, _ stream.BatchInfo, b []stream.Pair[string, int]) error {
			if got += len(b); got == len(src.recs)/5 {
				all = time.Since(start)
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, p.Run(ctx), context.Canceled)
		require.Equal(t, len(src.recs)/5, got)
		// The input's 25 records by 100 ms (full batches back to back, then the rest a tenth
		// of the interval later), and the batch that reads the last values back from the
		// exchange as soon as they arrive, 50 ms later. It waited for the tick (1.1 s), then
		// a tenth of the interval (200 ms), before.
		require.LessOrEqual(t, all, 160*time.Millisecond, "the values of the batch that ended the backlog waited downstream")
	})
}

// TestRepartitionWindowCommitAdvances: after a repartition of partitions a minute apart in
// event time, each window's records interleave with the next ones' in every downstream
// partition (the partition ahead opens newer windows before the one behind closes older
// ones). The window's commit must still follow its oldest open window, not stay where the
// run started: a restart replays from the commit, and the repartition topic is purged only
// up to it. One phase and two, tumbling and sliding.
func TestRepartitionWindowCommitAdvances(t *testing.T) {
	for _, mode := range []int{plainShuffle, twoPhaseShuffle, plainShuffle | slidingDown, twoPhaseShuffle | slidingDown} {
		const n = 600 // records per upstream partition, one a second
		var all []stream.Record[keyed]
		for i := range n {
			for p := range 2 {
				et := streamtest.Epoch.Add(time.Duration(i+60*p) * time.Second) // partition 1 a minute ahead
				all = append(all, stream.Record[keyed]{Value: keyed{[]string{"a", "b", "c"}[i%3], int64(1 + i%7)}, Partition: int32(p), Offset: int64(i), EventTime: et})
			}
		}
		var batches [][]stream.Record[keyed]
		for len(all) > 0 {
			m := min(len(all), 20)
			batches, all = append(batches, all[:m]), all[m:]
		}
		log := streamtest.NewExchangeLog[stream.Pair[string, int64]](1)
		run := newShuffleRunMode(t, log, 2, time.Second, mode)
		run.feed(batches, nil, len(batches)+2) // every record read, the input not ended
		end := log.Len(0)
		pos := log.Committed()
		require.Len(t, pos, 1, "mode %d", mode)
		// The partition behind holds the oldest open window: its records since about a
		// window and a half before its newest one, a few dozen of the log's records.
		require.Greater(t, pos[0].Offset, int64(end)*3/4, "mode %d: the commit stayed behind (%d of %d records)", mode, pos[0].Offset, end)
	}
}

// TestRepartitionRefusedCheckpoint: a restart with another graph (a new release, other flags)
// resumes the stateful operators by name; one whose operators all have other names (as one
// that reads a checkpoint of an earlier format, without names) starts every stateful operator
// afresh from the committed offset. The window after the repartition must then still skip the
// windows that fired before the commit, by the fire watermark kept with the marks, rather
// than emit them again from the records after the commit (its commit follows its oldest open
// window, which is after those windows' first records). A crash at every batch of random
// inputs, one phase and two, each way, against the uninterrupted run's documents.
func TestRepartitionRefusedCheckpoint(t *testing.T) {
	seeds := uint64(8)
	if testing.Short() {
		seeds = 3
	}
	advanced := 0 // downstream partitions restarted past their first offset
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 23))
		ooo := 2 * time.Second
		mode := plainShuffle
		if seed%2 == 1 {
			mode = twoPhaseShuffle
		}
		batches, up, _, _ := shuffleInputGen(rng, ooo, 0, mode == plainShuffle)
		if seed%4 >= 2 {
			mode |= slidingDown
		}
		parts := 1 + rng.IntN(3)
		full := newShuffleRunMode(t, streamtest.NewExchangeLog[stream.Pair[string, int64]](parts), up, ooo, mode)
		full.feed(batches, nil, -1)
		want := map[string]int64{}
		full.written(want)
		for crash := 1; crash <= len(batches); crash++ {
			log := streamtest.NewExchangeLog[stream.Pair[string, int64]](parts)
			first := newShuffleRunMode(t, log, up, ooo, mode)
			first.feed(batches, nil, crash)
			got := map[string]int64{}
			first.written(got)
			for _, p := range log.Committed() {
				if p.Offset > 0 {
					advanced++
				}
			}
			next := mode | otherGraph
			if crash%2 == int(seed%2) {
				next |= renamedGraph
			}
			second := newShuffleRunMode(t, log, up, ooo, next)
			second.feed(batches, first.committed(), -1)
			second.written(got)
			require.Equal(t, want, got, "seed %d, stopped after batch %d of %d, restarted with another graph (renamed: %v)", seed, crash, len(batches), next&renamedGraph != 0)
		}
	}
	require.Positive(t, advanced, "the repartition's commits never moved: nothing was tested")
}

// repartitionedSums is a pipeline of two partitions whose values go through a repartition on
// log, by key, into tumbling sums of the given size.
func repartitionedSums(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]], size time.Duration) (*streamtest.Harness, *streamtest.Queue[keyed], *window.Windowed[string, int64, stream.Pair[string, int64]]) {
	t.Helper()
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Second))
	q, src := streamtest.NewQueue[keyed](h)
	q.SetPartitions(2)
	pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
	_, shuffled := streamtest.NewRepartition(h, pairs, "keys", log)
	sums, err := window.Aggregate(shuffled, func(p stream.Pair[string, int64]) string { return p.Key },
		func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(size), window.Sum[int64]())
	require.NoError(t, err)
	return h, q, sums
}

// TestRepartitionBoundedRunsInARow: bounded runs one after the other through a repartition
// (a daily backfill), each on the next records of the topic, each get their own windows. The
// end of a run's input is that run's alone: the downstream checkpoint once kept the
// upstream's end and its EndOfTime watermark, and the fire watermark EndOfTime, so in the
// next run every record was late downstream, or, with the end forgotten but not the fire
// watermark, skipped as already emitted: no result, no late record. A window still open on
// the marks at a run's end (the end fired it) is written again by the next run, complete
// (here with the same sum, as no record of it came since): the repartition's partitions
// commit where they could before the end (TestRepartitionEndHoldsCommit).
func TestRepartitionBoundedRunsInARow(t *testing.T) {
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	var pos []stream.Position
	for run := range 3 {
		h, q, sums := repartitionedSums(t, log, 10*time.Second)
		final := streamtest.Collect(sums.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }))
		late := streamtest.Collect(sums.Late())
		q.Resume(pos...)
		key := fmt.Sprintf("run%d", run)
		for p := range int32(2) {
			for i := range int64(5) {
				off := int64(run)*5 + i
				at := streamtest.Epoch.Add(time.Duration(run)*time.Hour + time.Duration(i)*time.Second)
				q.Add(stream.Record[keyed]{Value: keyed{key, 1}, Partition: p, Offset: off, EventTime: at})
			}
		}
		q.End()
		h.RunUntilDone()
		require.Empty(t, late.Slice(), "run %d: records on time in their partitions were late downstream", run)
		got := map[string]int64{}
		for _, r := range final.Slice() {
			_, dup := got[r.Key]
			require.False(t, dup, "run %d: window of %s emitted twice", run, r.Key)
			got[r.Key] = r.Value
		}
		want := map[string]int64{key: 10}
		if run > 0 {
			want[fmt.Sprintf("run%d", run-1)] = 10 // open on the marks at the last run's end
		}
		require.Equal(t, want, got, "run %d: the windows' sums", run)
		pos = pos[:0]
		for p := range int32(2) {
			cp, ok := q.CommittedPosition(p)
			require.True(t, ok)
			require.EqualValues(t, (run+1)*5, cp.Offset)
			pos = append(pos, cp)
		}
	}
}

// TestRepartitionEndHoldsCommit: at the end of a bounded run, a repartition's partition
// commits where it could before the end fired every window (the window's first record here,
// which the open window holds), with the entry that the end marks read so far are this run's
// ("l,"): it committed past every record, so the next run on the next records of the topic
// never read again the values of the windows the end had closed early.
func TestRepartitionEndHoldsCommit(t *testing.T) {
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	h, q, _ := repartitionedSums(t, log, 10*time.Second)
	for p := range int32(2) {
		q.Add(stream.Record[keyed]{Value: keyed{"a", 1}, Partition: p, Offset: 0, EventTime: streamtest.Epoch})
	}
	h.Run(2)
	before := map[int32]stream.Position{}
	for _, cp := range log.Committed() {
		before[cp.Partition] = cp
	}
	part := int32(stream.HashKey("a") % 2)
	require.Contains(t, before, part, "the repartition's partition committed before the end")
	require.Less(t, before[part].Offset, int64(log.Len(part)), "the open window holds the commit")
	for p := range int32(2) {
		q.Add(stream.Record[keyed]{Value: keyed{"a", 1}, Partition: p, Offset: 1, EventTime: streamtest.Epoch.Add(time.Second)})
	}
	q.End()
	h.RunUntilDone()
	var end stream.Position
	for _, cp := range log.Committed() {
		if cp.Partition == part {
			end = cp
		}
	}
	require.Equal(t, before[part].Offset, end.Offset, "the commit at the end: where the batch before it could commit")
	require.Contains(t, end.Meta, ";l,", "the end marks read are this run's")
	require.Less(t, end.Offset, int64(log.Len(part)))
}

// twoPhaseSumRun runs one bounded run of a two-phase window sum (a tumbling window per
// partition, RepartitionByTime, a window.Sum of the partials) over recs from pos, on log,
// and returns the final sums by window start and the committed positions.
func twoPhaseSumRun(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]], recs []stream.Record[keyed], pos []stream.Position) (map[time.Duration]int64, []stream.Position) {
	t.Helper()
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second), stream.WithIdleTimeout(0))
	q, src := streamtest.NewQueue[keyed](h)
	q.SetPartitions(2)
	local, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(k keyed) int64 { return k.V }, window.Tumbling(10*time.Second), window.Sum[int64]())
	require.NoError(t, err)
	pairs := stream.Map(local.Results().Filter(func(r window.Result[string, int64]) bool { return r.Final }),
		func(r window.Result[string, int64]) stream.Pair[string, int64] { return stream.KV(r.Key, r.Value) })
	ex := streamtest.NewExchange(log)
	h.AddExchange(ex)
	merged, err := window.Aggregate(stream.RepartitionByTime(pairs, "partials", ex, func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) }),
		func(p stream.Pair[string, int64]) string { return p.Key }, func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(10*time.Second), window.Sum[int64]())
	require.NoError(t, err)
	docs := streamtest.Collect(merged.Results().Filter(func(r window.Result[string, int64]) bool { return r.Final }))
	q.Resume(pos...)
	from := map[int32]int64{}
	for _, p := range pos {
		from[p.Partition] = p.Offset
	}
	for _, r := range recs {
		if r.Offset >= from[r.Partition] {
			q.Add(r)
		}
	}
	q.End()
	h.RunUntilDone()
	got := map[time.Duration]int64{}
	for _, d := range docs.Slice() {
		got[d.Start.Sub(streamtest.Epoch)] = d.Value
	}
	var next []stream.Position
	for p := range int32(2) {
		if cp, ok := q.CommittedPosition(p); ok {
			next = append(next, cp)
		}
	}
	return got, next
}

// TestRepartitionByTimeBoundedRerun: a bounded run done again over the same records (a
// backfill run twice, or restarted after a crash at its end) writes the sums of one run. The
// window open on the marks at the end ([10s, 20s)) is written by the first run, and again by
// the second (the repartition's commit held before the end); the second run sends its
// partials again, copies that a merge adding them (window.Sum) must not get twice: without
// WithRevisions the values sent at an end raise the highest number as every value does. (It
// failed, 2200 for 1100, with a rule for such values that did not ask for WithRevisions.)
func TestRepartitionByTimeBoundedRerun(t *testing.T) {
	rec := func(p int32, off int64, s int, v int64) stream.Record[keyed] {
		return stream.Record[keyed]{Value: keyed{"a", v}, Partition: p, Offset: off, EventTime: streamtest.Epoch.Add(time.Duration(s) * time.Second)}
	}
	recs := []stream.Record[keyed]{rec(0, 0, 1, 1), rec(1, 0, 2, 10), rec(0, 1, 12, 100), rec(1, 1, 13, 1000)}
	want := map[time.Duration]int64{0: 11, 10 * time.Second: 1100}
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	got, pos := twoPhaseSumRun(t, log, recs, nil)
	require.Equal(t, want, got, "first run")
	got, _ = twoPhaseSumRun(t, log, recs, pos)
	for w, v := range got {
		require.Equal(t, want[w], v, "second run over the same records: window %v written with another sum", w)
	}
}

// TestRepartitionCheckpointMemory: what a downstream partition keeps for its next checkpoint
// while a long window holds its commit back grows with the messages read, not with the
// records: it kept an entry per record (60,600 here for 60,000 records), about 40 bytes
// each, so an hour's window after a repartition held an hour of records in memory.
func TestRepartitionCheckpointMemory(t *testing.T) {
	log := streamtest.NewPackedExchangeLog[stream.Pair[string, int64]](1)
	h, q, sums := repartitionedSums(t, log, time.Hour)
	res := streamtest.Collect(sums.Results())
	const batches, perPart = 300, 100
	for b := range batches {
		var recs []stream.Record[keyed]
		for p := range int32(2) {
			for i := range perPart {
				at := streamtest.Epoch.Add(time.Duration(b*perPart+i) * 100 * time.Millisecond)
				recs = append(recs, stream.Record[keyed]{Value: keyed{fmt.Sprintf("k%d", i%4), 1}, Partition: p, Offset: int64(b*perPart + i), EventTime: at})
			}
		}
		q.Add(recs...)
	}
	h.Run(batches + 2)
	require.Empty(t, res.Slice(), "the hour's window is still open")
	n := stream.RepartitionHistLen(h.P)
	t.Logf("records through the repartition %d, checkpoint entries kept %d", batches*perPart*2, n)
	require.Less(t, n, 10*batches, "entries kept for the checkpoint while the window holds the commit")
	q.End()
	h.RunUntilDone()
	var sum int64
	for _, r := range res.Slice() {
		sum += r.Value
	}
	require.EqualValues(t, batches*perPart*2, sum)
}

// TestRepartitionInputChanged: a pipeline started under the same name on another input (a
// new topic in place of the old one) must not resume the repartition's committed state,
// which numbers each upstream record by its upstream partition and offset: the new topic's
// records at offsets the old one's had reached were dropped downstream as their copies,
// without a word (found by a review). The run stops with ErrInputChanged before its first
// batch's outputs, and commits nothing; the same input, or one more topic after it, resumes.
func TestRepartitionInputChanged(t *testing.T) {
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	run := func(pos []stream.Position, first int64, inputs ...string) (map[string]int64, *streamtest.Queue[keyed], error) {
		h, q, sums := repartitionedSums(t, log, 10*time.Second)
		q.SetInputs(inputs...)
		final := streamtest.Collect(sums.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }))
		q.Resume(pos...)
		for p := range int32(2) {
			for i := range int64(5) {
				at := streamtest.Epoch.Add(time.Duration(first+i) * time.Minute)
				q.Add(stream.Record[keyed]{Value: keyed{fmt.Sprint("k", i), 1}, Partition: p, Offset: first + i, EventTime: at})
			}
		}
		q.End()
		for range 1000 {
			done, err := h.TryStep()
			if err != nil {
				return nil, q, err
			}
			if done {
				got := map[string]int64{}
				for _, r := range final.Slice() {
					got[fmt.Sprint(r.Key, "@", r.Start.Sub(streamtest.Epoch))] += r.Value
				}
				return got, q, nil
			}
		}
		t.Fatal("the run did not end")
		return nil, q, nil
	}
	got, q, err := run(nil, 0, "rides")
	require.NoError(t, err)
	require.Len(t, got, 5, "the first run's windows")
	var pos []stream.Position
	for p := range int32(2) {
		cp, ok := q.CommittedPosition(p)
		require.True(t, ok)
		pos = append(pos, cp)
	}

	// Another topic in place of "rides", read from its start: same offsets, other records.
	got, q, err = run(nil, 0, "rides-v2")
	require.ErrorIs(t, err, stream.ErrInputChanged)
	require.True(t, stream.IsPermanent(err))
	require.ErrorContains(t, err, `"rides-v2"`)
	require.Empty(t, got)
	require.Empty(t, q.Commits(), "a run on another input committed")

	// The same input goes on, and so does one with a topic added after it.
	got, _, err = run(pos, 5, "rides")
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"k0@5m0s": 2, "k1@6m0s": 2, "k2@7m0s": 2, "k3@8m0s": 2, "k4@9m0s": 2,
		"k4@4m0s": 2}, got, "the same input's next records, and the window open at the first run's end")
	_, _, err = run(pos, 10, "rides", "rides-eu")
	require.NoError(t, err, "a topic added after the others")
}

// TestRepartitionRetriedSend: a Send that fails after writing part of its records (a broker
// that took some messages before the connection broke) is retried with the same records
// (Exchange: "records written twice are dropped downstream"), values and marks alike. Over
// random inputs with partitions minutes apart and sends failing at random, after any number
// of their records, the window sums after the repartition are the brute force's, with no
// late record, and the downstream dropped the copies the retries wrote.
func TestRepartitionRetriedSend(t *testing.T) {
	const ooo = 2 * time.Second
	allCopies := int64(0)
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 71))
		batches, up, oracle := shuffleInput(rng, ooo)
		parts := 1 + rng.IntN(3)
		log := streamtest.NewExchangeLog[stream.Pair[string, int64]](parts)
		if seed%2 == 1 {
			log = streamtest.NewPackedExchangeLog[stream.Pair[string, int64]](parts)
		}
		var dups int64
		r := newShuffleRunMode(t, log, up, ooo, plainShuffle, stream.WithStatsHook(func(st stream.BatchStats) { dups = st.Duplicates }))
		for _, b := range batches {
			r.q.Add(b...)
		}
		r.q.End()
		failed, done := 0, false
		for range 10 * len(batches) {
			r.ex.SendErr = nil
			if rng.IntN(3) == 0 {
				r.ex.SendErr, r.ex.SendPartial = errors.New("broker connection lost"), rng.IntN(30)
				failed++
			}
			var err error
			done, err = r.h.TryStep()
			if err != nil {
				require.NotErrorIs(t, err, stream.ErrGraph, "seed %d", seed)
				require.False(t, stream.IsPermanent(err), "seed %d: %v", seed, err)
			}
			if done {
				break
			}
		}
		r.ex.SendErr = nil
		if !done {
			r.h.RunUntilDone()
		}
		got := map[string]int64{}
		r.written(got)
		// The copies of values the retries wrote, each one dropped downstream.
		copies := int64(0)
		for p := range int32(parts) {
			seen := map[[3]int64]bool{}
			for _, x := range log.Records(p) {
				if id := [3]int64{int64(x.From), x.Seq, int64(x.Sub)}; !x.Mark {
					if seen[id] {
						copies++
					}
					seen[id] = true
				}
			}
		}
		allCopies += copies
		require.Positive(t, failed, "seed %d: no send failed", seed)
		require.Equal(t, oracle, got, "seed %d: %d sends failed", seed, failed)
		require.Equal(t, copies, dups, "seed %d: the copies dropped downstream", seed)
		require.Empty(t, r.late.Slice(), "seed %d: late records downstream", seed)
	}
	require.Positive(t, allCopies, "no retry wrote a copy: nothing was tested")
}
