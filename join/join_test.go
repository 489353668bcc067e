package join_test

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// TestOracle: random out-of-order input on 3 left and 2 right upstream partitions (two
// sources), drifting apart in event time, with gaps, bursts, idle partitions and one-shot
// keys (genInput), random bounds or window size, inner and left-outer, through one
// repartition of 1-3 partitions. The rows are exactly the brute-force rows over the records
// that were not late, each once; every late record was late in its own upstream partition
// (without late input, none is late) unless an idle timeout made the watermark go on without
// its partition; the state is empty at the end.
func TestOracle(t *testing.T) {
	seeds := uint64(60)
	if testing.Short() {
		seeds = 15
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 99))
		lateRate := 0
		if seed%3 == 2 {
			lateRate = 10
		}
		in := genInput(rng, 2+rng.IntN(4), lateRate)
		sp := randSpec(rng, true)
		// One seed in four with an idle timeout: the idle stretches of genInput then let the
		// watermark go on without the idle partition, whose records may come late.
		var opts []stream.Option
		idle := seed%4 == 1
		if idle {
			opts = append(opts, stream.WithIdleTimeout(time.Duration(1+rng.IntN(3))*time.Second))
		}
		r := newRun(t, streamtest.NewExchangeLog[shuffled](1+rng.IntN(3)), in, sp, opts...)
		r.feed(in, nil, nil, -1)
		late := r.late.Slice()
		if !idle {
			checkLate(t, in, sp, late, false)
			if lateRate == 0 {
				require.Empty(t, late, "seed %d %v: no on-time record may be late after the repartition", seed, sp)
			}
		}
		got := rowCounts(r.rows.Slice())
		want := oracle(in, sp, lateSet(late))
		require.NotEmpty(t, want, "seed %d %v: the input makes no rows", seed, sp)
		require.Equal(t, want, got, "seed %d %v (idle timeout %v)", seed, sp, idle)
		require.EqualValues(t, len(late), r.out.LateCount())
		st := r.h.P.Stats()
		require.Zero(t, st.RetainedState, "seed %d: state left at the end", seed)
	}
}

// TestRowFields: a row's times, event time, window bounds and partition.
func TestRowFields(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := genInput(rng, 3, 0)
	for _, sp := range []spec{{lower: 3, upper: 5, kind: join.LeftOuter}, {window: true, size: 4, kind: join.LeftOuter}} {
		r := newRun(t, streamtest.NewExchangeLog[shuffled](2), in, sp)
		r.feed(in, nil, nil, -1)
		for _, j := range r.rows.Slice() {
			a := in.recs[recID(false, j.Left)]
			require.Equal(t, a.t, j.LeftTime.Unix())
			_, local := stream.PartitionSource(j.Partition)
			require.Equal(t, stream.HashKey(j.Key)%2, uint64(local))
			if !j.Matched {
				require.Equal(t, j.LeftTime, j.Time)
				require.True(t, j.RightTime.IsZero())
				require.Zero(t, j.Right)
			} else {
				b := in.recs[recID(true, j.Right)]
				require.Equal(t, b.t, j.RightTime.Unix())
				require.Equal(t, max(a.t, b.t), j.Time.Unix())
			}
			if sp.window {
				require.Equal(t, floorMul(a.t, sp.size), j.Start.Unix())
				require.Equal(t, floorMul(a.t, sp.size)+sp.size, j.End.Unix())
			} else {
				require.True(t, j.Start.IsZero() && j.End.IsZero())
			}
		}
	}
}

// TestReplayBatchSizes: the repartition log of a run, replayed in downstream batches of 1, 7
// and 500 records, gives the same rows and the same late records: the join judges each record
// on the watermark at its position, never on where a batch ends.
func TestReplayBatchSizes(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 5))
		in := genInput(rng, 3, 8)
		sp := randSpec(rng, true)
		parts := 1 + rng.IntN(2)
		log := streamtest.NewExchangeLog[shuffled](parts)
		r := newRun(t, log, in, sp)
		r.feed(in, nil, nil, -1)
		want, wantLate := rowCounts(r.rows.Slice()), lateSet(r.late.Slice())
		require.NotEmpty(t, want)
		for _, n := range []int{1, 7, 500} {
			again := streamtest.NewExchangeLog[shuffled](parts)
			ex := streamtest.NewExchange(again)
			for p := range int32(parts) {
				require.NoError(t, ex.Send(context.Background(), log.Records(p)))
			}
			r := newRun(t, again, &input{ooo: in.ooo}, sp, stream.WithBuffer(n, 0))
			r.feed(&input{}, nil, nil, -1)
			require.Equal(t, want, rowCounts(r.rows.Slice()), "seed %d %v: replay in batches of %d", seed, sp, n)
			require.Equal(t, wantLate, lateSet(r.late.Slice()), "seed %d %v: late records in batches of %d", seed, sp, n)
		}
	}
}

// TestCrashSweep: a crash at every batch, both ways (after the rows of the batch were
// written but before it was acknowledged, and right after the batch was acknowledged), and
// at one crash point in three a second crash during the replay, 1 to 5 batches into it in
// turn; each restart is a fresh pipeline that resumes both queues and the exchange from
// their committed positions and checkpoints. The input has gaps, bursts, idle partitions
// and one-shot keys (genInput). The rows written by all runs together, deduplicated, are the
// uninterrupted run's, which are the oracle's: none missing, none extra (no wrong unmatched
// row from a replay that did not see a partner), the late records are the uninterrupted
// run's, and a replay emits a left record's rows in the order the run before it did (the
// same first row).
func TestCrashSweep(t *testing.T) {
	seeds := uint64(8)
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 17))
		lateRate := 0
		if seed >= 4 {
			lateRate = 10
		}
		in := genInput(rng, 2+rng.IntN(3), lateRate)
		sp := randSpec(rng, false) // narrow: a wide join replays most of the input at every crash point
		// every kind of join, with and without late input
		sp.window, sp.kind = seed%2 == 1, join.Inner
		if seed/2%2 == 0 {
			sp.kind = join.LeftOuter
		}
		parts := 1 + rng.IntN(3)
		full := newRun(t, streamtest.NewExchangeLog[shuffled](parts), in, sp)
		full.feed(in, nil, nil, -1)
		wantLate := lateSet(full.late.Slice())
		want := set(rowCounts(full.rows.Slice()))
		require.Equal(t, set(oracle(in, sp, wantLate)), want, "seed %d %v", seed, sp)
		steps := len(full.rows.Batches())
		// A stateful reader of the rows (a window, a dedup) must get every row exactly once
		// over the runs, as a sink does.
		wantRead := map[string]int{}
		full.readAcked(wantRead)
		require.Equal(t, rowCounts(full.rows.Slice()), wantRead)

		for i := 2; i < 2*(steps+3); i++ {
			// every batch, both ways: its output fails (outputFails), or the process stops
			// after it was acknowledged
			crash, outputFails := i/2, i%2 == 0
			log := streamtest.NewExchangeLog[shuffled](parts)
			got := map[string]bool{}
			gotLate := map[string]bool{}
			gotRead := map[string]int{}
			firstRow := map[int]string{} // each left record's first row, over the runs
			collect := func(r *run) {
				for l, row := range firstRows(r.rows.Slice()) {
					if prev, ok := firstRow[l]; ok {
						require.Equal(t, prev, row, "seed %d %v crash %d (output fails %v): the first row of L%d", seed, sp, crash, outputFails, l)
					}
					firstRow[l] = row
				}
				maps.Copy(got, set(rowCounts(r.rows.Slice())))
				maps.Copy(gotLate, lateSet(r.late.Slice()))
				r.readAcked(gotRead)
			}
			first := newRun(t, log, in, sp)
			if outputFails {
				first.crash = crash
			}
			first.feed(in, nil, nil, crash)
			collect(first)
			posA, posB := committed(first.qa, 3), committed(first.qb, 2)

			second := newRun(t, log, in, sp)
			if i%3 == 0 {
				// a second crash, 1 to 5 batches into the replay, in turn
				second.crash = 1 + i/3%5
				second.feed(in, posA, posB, 6)
				collect(second)
				// Kafka keeps the commits of the first run where the second made none.
				posA, posB = keep(posA, committed(second.qa, 3)), keep(posB, committed(second.qb, 2))
				second = newRun(t, log, in, sp)
			}
			second.feed(in, posA, posB, -1)
			collect(second)
			require.Equal(t, wantLate, gotLate, "seed %d %v crash %d (output fails %v): late records", seed, sp, crash, outputFails)
			require.Equal(t, want, got, "seed %d %v crash %d of %d (output fails %v)", seed, sp, crash, steps, outputFails)
			require.Equal(t, wantRead, gotRead, "seed %d %v crash %d of %d (output fails %v): rows a stateful reader got, over the runs", seed, sp, crash, steps, outputFails)
		}
	}
}

// firstRows returns the id of each left record's first row (telemetry.TimeToPickup keeps a
// request's first row, by request id: a replay must not emit another first).
func firstRows(rows []join.Joined[string, int, int]) map[int]string {
	m := map[int]string{}
	for _, j := range rows {
		if _, ok := m[j.Left]; !ok {
			m[j.Left] = rowID(j)
		}
	}
	return m
}

// keep returns the positions of next, and those of prev for partitions next has none of.
func keep(prev, next []stream.Position) []stream.Position {
	out := slices.Clone(next)
	for _, p := range prev {
		if !slices.ContainsFunc(next, func(n stream.Position) bool { return n.Partition == p.Partition }) {
			out = append(out, p)
		}
	}
	return out
}

func set(m map[string]int) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

// TestLateAndState: a hand-made run. Left records wait for right ones within [-2s, +3s];
// a right record far behind the watermark goes to the late stream with its reason and the
// watermark; the left record without partner is emitted unmatched once the watermark passes
// its time + 3s; StateSize and the stats' state go back to 0 once the watermark passed
// everything, before the end of input.
func TestLateAndState(t *testing.T) {
	h, qa, qb, co := onePartition(t)
	out, err := join.IntervalOn(co, 2*time.Second, 3*time.Second, join.WithKind(join.LeftOuter))
	require.NoError(t, err)
	rows := streamtest.Collect(out.Joined())
	late := streamtest.Collect(out.Late())
	at := func(sec int64) time.Time { return time.Unix(1_700_000_000+sec, 0) }
	a := func(id int, key string, sec int64) stream.Record[kv] {
		return stream.Record[kv]{Value: stream.KV(key, id), EventTime: at(sec)}
	}
	qa.Add(a(1, "x", 10), a(2, "y", 10))
	qb.Add(a(1, "x", 12), a(2, "z", 10))
	h.Run(2)
	require.Equal(t, map[string]int{"x/1/1": 1}, rowCounts(rows.Slice()))
	require.Equal(t, 4, h.P.Stats().RetainedState)

	// Both sides move to 30 s: the watermark passes every held record.
	qa.Add(a(3, "w", 30))
	qb.Add(a(3, "w", 30), a(4, "x", 5)) // behind the upstream watermark of 10 s
	h.Run(3)
	require.Equal(t, map[string]int{"x/1/1": 1, "y/2/-": 1, "w/3/3": 1}, rowCounts(rows.Slice()))
	ls := late.Slice()
	require.Len(t, ls, 1)
	require.Equal(t, "R4", lateID(ls[0]))
	require.Equal(t, stream.ReasonLate, ls[0].Reason)
	require.Equal(t, at(5).UTC(), ls[0].EventTime)
	require.Equal(t, at(12).UTC(), ls[0].Watermark, "the right partition's own watermark: the left one's mark at 30 s came before it")
	require.Equal(t, &stream.Upstream{Partition: 1 << 26, Offset: 3}, ls[0].Upstream, "the right input's record, not the repartition's")
	require.NotEqual(t, ls[0].Upstream.Partition, ls[0].Partition)
	dl := ls[0].DeadLetter(func(part int32) (string, int32, bool) {
		src, local := stream.PartitionSource(part)
		return []string{"orders", "payments", "join-repartition"}[src], local, true
	}, nil, nil)
	require.Equal(t, "payments", dl.Topic)
	require.EqualValues(t, 0, dl.Partition)
	require.EqualValues(t, 3, dl.Offset)
	require.EqualValues(t, 1, out.LateCount())
	st := h.P.Stats()
	require.Equal(t, 2, st.RetainedState, "only the records at 30 s are held")
	var js stream.OperatorState
	for _, s := range st.State {
		if s.Operator == "join" {
			js = s
		}
	}
	require.True(t, js.Reported)
	require.EqualValues(t, 1, js.Late)
	require.Positive(t, js.Bytes)

	qa.Add(a(5, "v", 60))
	qb.Add(a(5, "v", 60))
	h.Run(3)
	require.Equal(t, 2, h.P.Stats().RetainedState, "the records at 30 s expired, those at 60 s are held")
	qa.End()
	qb.End()
	h.RunUntilDone()
	require.Zero(t, h.P.Stats().RetainedState)
	require.Equal(t, map[string]int{"x/1/1": 1, "y/2/-": 1, "w/3/3": 1, "v/5/5": 1}, rowCounts(rows.Slice()))
}

// TestReplayReportsLateOnce: a restart replays from the committed offset, which the first
// left record holds back while it waits for a partner; the right records behind the
// watermark that came after it were reported late in acknowledged batches, so the replay does
// not report them again (the checkpoint records the late stream's replay start:
// stream.PartitionContext.SkippedBefore), while a late record of its own, after that start,
// is. Before, the replay reported R2 and R3 again. The rows are one run's.
func TestReplayReportsLateOnce(t *testing.T) {
	in := &input{recs: map[string]upRec{}, ooo: 1}
	rec := func(off int64, right bool, id int, key string, sec int64) stream.Record[shuffled] {
		side := join.Side[int, int]{Left: id}
		if right {
			side = join.Side[int, int]{Right: id, IsRight: true}
		}
		return stream.Record[shuffled]{Value: stream.KV(key, side), Offset: off, EventTime: time.Unix(1_700_000_000+sec, 0)}
	}
	batches := [][]stream.Record[shuffled]{
		{rec(0, false, 1, "x", 10)}, // waits for a partner until 13 s: holds the commit
		{rec(1, false, 4, "w", 12)}, // watermark 11 s
		{rec(2, true, 2, "y", 5)},   // late
		{rec(3, true, 3, "z", 6)},   // late
		{rec(4, true, 1, "x", 12)},  // x's partner
		{rec(5, true, 5, "v", 7)},   // the restart's own late record
	}
	sp := spec{lower: 2, upper: 3, kind: join.LeftOuter}
	first := newTagRun(t, in, 1, sp)
	first.feed(batches[:4], nil, 4)
	require.Equal(t, []string{"R2", "R3"}, lateIDs(first.late.Slice()), "first run")
	pos, ok := first.q.CommittedPosition(0)
	require.True(t, ok)
	require.Zero(t, pos.Offset, "L1 holds the commit")

	second := newTagRun(t, in, 1, sp)
	second.feed(batches, []stream.Position{pos}, -1)
	require.Equal(t, []string{"R5"}, lateIDs(second.late.Slice()), "the restart: only its own late record")
	require.EqualValues(t, 1, second.out.LateCount())
	require.Equal(t, map[string]int{"x/1/1": 1, "w/4/-": 1}, rowCounts(second.rows.Slice()))
}

func lateIDs(ls []join.Late[string, int, int]) []string {
	var ids []string
	for _, l := range ls {
		ids = append(ids, lateID(l))
	}
	return ids
}

// TestConstructionErrors: bad bounds, sizes, options and inputs wrap ErrInvalidOption and
// add nothing to the pipeline.
func TestConstructionErrors(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, sa := streamtest.NewQueue[kv](h)
	_, sb := streamtest.NewQueue[kv](h)
	other := streamtest.New(t, time.Second)
	_, so := streamtest.NewQueue[kv](other)
	ex := streamtest.NewExchange(streamtest.NewExchangeLog[shuffled](1))
	sec := time.Second
	cases := []struct {
		name string
		err  func() error
	}{
		{"negative lower", func() error { _, err := join.Interval(sa, sb, ex, -sec, sec); return err }},
		{"negative upper", func() error { _, err := join.Interval(sa, sb, ex, sec, -sec); return err }},
		{"zero size", func() error { _, err := join.Window(sa, sb, ex, 0); return err }},
		{"negative size", func() error { _, err := join.Window(sa, sb, ex, -sec); return err }},
		{"nil exchange", func() error { _, err := join.Interval(sa, sb, nil, sec, sec); return err }},
		{"nil exchange pointer", func() error {
			_, err := join.Window(sa, sb, (*streamtest.Exchange[shuffled])(nil), sec)
			return err
		}},
		{"nil left", func() error { _, err := join.Interval(nil, sb, ex, sec, sec); return err }},
		{"nil right", func() error { _, err := join.Window(sa, nil, ex, sec); return err }},
		{"different pipelines", func() error { _, err := join.Interval(sa, so, ex, sec, sec); return err }},
		{"empty name", func() error { _, err := join.Interval(sa, sb, ex, sec, sec, join.WithName("")); return err }},
		{"unknown kind", func() error { _, err := join.Window(sa, sb, ex, sec, join.WithKind(7)); return err }},
		{"nil option", func() error { _, err := join.Window(sa, sb, ex, sec, nil); return err }},
		{"IntervalOn nil stream", func() error { _, err := join.IntervalOn[string, int, int](nil, sec, sec); return err }},
		{"IntervalOn negative", func() error { _, err := join.IntervalOn(join.Tag(sa, sb), 0, -sec); return err }},
		{"WindowOn zero", func() error { _, err := join.WindowOn(join.Tag(sa, sb), 0); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			require.Error(t, err)
			require.ErrorIs(t, err, join.ErrInvalidOption)
			require.NotErrorIs(t, err, stream.ErrGraph)
		})
	}
	require.NoError(t, h.P.Err())
	// Zero bounds are valid: records of equal times match.
	_, err := join.Interval(sa, sb, ex, 0, 0)
	require.NoError(t, err)
	require.NoError(t, h.P.Err())
	require.False(t, errors.Is(nil, join.ErrInvalidOption))
}

// TestOutsideRepartition: IntervalOn over one source partition that already holds both
// inputs: the watermark runs with the records (newest time so far minus the
// out-of-orderness), so records in order within one batch are never late, whatever time the
// batch spans, and a record behind the newest time by more than the bound is.
func TestOutsideRepartition(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(2*time.Second))
	q, s := streamtest.NewQueue[shuffled](h)
	out, err := join.IntervalOn(s, time.Second, time.Second)
	require.NoError(t, err)
	rows := streamtest.Collect(out.Joined())
	late := streamtest.Collect(out.Late())
	at := func(sec int64) time.Time { return time.Unix(1_700_000_000+sec, 0) }
	rec := func(right bool, id int, sec int64) stream.Record[shuffled] {
		return stream.Record[shuffled]{Value: stream.KV("k", join.Side[int, int]{Left: id, Right: id, IsRight: right}), EventTime: at(sec)}
	}
	// one batch over 60 s of event time, in order, then a record 5 s behind
	q.Add(rec(false, 1, 0), rec(true, 1, 1), rec(false, 2, 30), rec(true, 2, 29), rec(false, 3, 60), rec(true, 3, 55))
	q.End()
	h.RunUntilDone()
	require.Equal(t, map[string]int{"k/1/1": 1, "k/2/2": 1}, rowCounts(rows.Slice()))
	require.Equal(t, map[string]bool{"R3": true}, lateSet(late.Slice()))
	require.Zero(t, h.P.Stats().RetainedState)
}

// TestRunOracle: Interval and Window themselves (CoPartition over the exchange passed in),
// run by Pipeline.Run over two bounded sources with batches cut by the clock, give the
// brute-force rows.
func TestRunOracle(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 23))
		in := genInput(rng, 3, 5)
		sp := randSpec(rng, true)
		flat := func(batches [][]stream.Record[kv]) []stream.Record[kv] {
			var all []stream.Record[kv]
			for _, b := range batches {
				all = append(all, b...)
			}
			return all
		}
		p, err := stream.New(time.Millisecond, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Duration(in.ooo)*time.Second),
			stream.WithBuffer(1+rng.IntN(50), 0))
		require.NoError(t, err)
		a := stream.From[kv](p, &sliceSource[kv]{recs: flat(in.left), parts: 3})
		b := stream.From[kv](p, &sliceSource[kv]{recs: flat(in.right), parts: 2})
		ex := streamtest.NewExchange(streamtest.NewExchangeLog[shuffled](1 + rng.IntN(3)))
		var out *join.Output[string, int, int]
		if sp.window {
			out, err = join.Window(a, b, ex, time.Duration(sp.size)*time.Second, join.WithKind(sp.kind))
		} else {
			out, err = join.Interval(a, b, ex, time.Duration(sp.lower)*time.Second, time.Duration(sp.upper)*time.Second, join.WithKind(sp.kind))
		}
		require.NoError(t, err)
		var rows []join.Joined[string, int, int]
		var late []join.Late[string, int, int]
		stream.ForEachBatch(out.Joined(), func(_ context.Context, _ stream.BatchInfo, b []join.Joined[string, int, int]) error {
			rows = append(rows, b...)
			return nil
		})
		stream.ForEachBatch(out.Late(), func(_ context.Context, _ stream.BatchInfo, b []join.Late[string, int, int]) error {
			late = append(late, b...)
			return nil
		})
		require.NoError(t, p.Run(t.Context()))
		checkLate(t, in, sp, late, true)
		require.Equal(t, oracle(in, sp, lateSet(late)), rowCounts(rows), "seed %d %v", seed, sp)
	}
}

// TestIdleUpstream: a left upstream partition falls silent for ten batches (idle after 3 s)
// and then brings the records of those batches at once. Meanwhile the repartition's
// watermark went on without it, so those records are (in most seeds) behind the join's
// watermark: they go to
// the late stream, and when the partition is active again the watermark moves back but the
// join's does not (see Limits). Nothing is lost: the rows are still exactly the brute force
// over the records that were not late, and every left record is either late or in a row.
func TestIdleUpstream(t *testing.T) {
	withLate := 0
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 31))
		in := genInput(rng, 3, 0)
		// left partition 0 holds back its records of batches 10-19 until batch 20
		var held []stream.Record[kv]
		for b := 10; b < 20; b++ {
			kept := in.left[b][:0]
			for _, r := range in.left[b] {
				if r.Partition == 0 {
					held = append(held, r)
				} else {
					kept = append(kept, r)
				}
			}
			in.left[b] = kept
		}
		in.left[20] = append(held, in.left[20]...)
		sp := randSpec(rng, true)
		sp.kind = join.LeftOuter
		r := newRun(t, streamtest.NewExchangeLog[shuffled](2), in, sp, stream.WithIdleTimeout(3*time.Second))
		r.feed(in, nil, nil, -1)
		late := lateSet(r.late.Slice())
		if len(late) > 0 {
			withLate++ // the held-back records came behind the watermark
		}
		rows := r.rows.Slice()
		require.Equal(t, oracle(in, sp, late), rowCounts(rows), "seed %d %v", seed, sp)
		inRow := map[int]bool{}
		for _, j := range rows {
			inRow[j.Left] = true
		}
		for id, rec := range in.recs {
			if !rec.right {
				require.True(t, late[id] || inRow[rec.id], "seed %d: %s neither late nor joined", seed, id)
			}
		}
		require.Zero(t, r.h.P.Stats().RetainedState)
	}
	require.GreaterOrEqual(t, withLate, 4, "the held-back records of most seeds come late")
}

// TestOutsideRepartitionOracle: IntervalOn and WindowOn over the partitions of one source
// that hold both sides of their keys (no repartition), with random input (gaps, bursts,
// idle partitions, one-shot keys): the rows are exactly the brute force over the records
// that were not late, every late record was late in its partition, none without late input,
// and the state is empty at the end. Without late input, a crash at any batch (its output
// failing, or after it was acknowledged) and a restart from the committed offsets give the
// same rows: the replay's watermark starts lower, but no record was late in either run.
func TestOutsideRepartitionOracle(t *testing.T) {
	seeds := uint64(24)
	if testing.Short() {
		seeds = 8
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 41))
		lateRate := 0
		if seed%3 == 2 {
			lateRate = 10
		}
		parts := 1 + rng.IntN(3)
		in, batches := genTagged(rng, parts, 2+rng.IntN(4), lateRate)
		sp := randSpec(rng, true)
		full := newTagRun(t, in, parts, sp)
		full.feed(batches, nil, -1)
		late := full.late.Slice()
		checkLate(t, in, sp, late, true)
		if lateRate == 0 {
			require.Empty(t, late, "seed %d %v: no on-time record may be late", seed, sp)
		}
		want := oracle(in, sp, lateSet(late))
		require.NotEmpty(t, want, "seed %d %v: the input makes no rows", seed, sp)
		require.Equal(t, want, rowCounts(full.rows.Slice()), "seed %d %v", seed, sp)
		require.Zero(t, full.h.P.Stats().RetainedState, "seed %d: state left at the end", seed)
		if lateRate != 0 || seed%2 == 1 {
			continue
		}
		steps := len(full.rows.Batches())
		for i := 2; i < 2*(steps+2); i++ {
			crash, outputFails := i/2, i%2 == 0
			first := newTagRun(t, in, parts, sp)
			if outputFails {
				first.crash = crash
			}
			first.feed(batches, nil, crash)
			var pos []stream.Position
			for p := range int32(parts) {
				if cp, ok := first.q.CommittedPosition(p); ok {
					pos = append(pos, cp)
				}
			}
			second := newTagRun(t, in, parts, sp)
			second.feed(batches, pos, -1)
			got := set(rowCounts(first.rows.Slice()))
			maps.Copy(got, set(rowCounts(second.rows.Slice())))
			require.Empty(t, second.late.Slice(), "seed %d %v crash %d", seed, sp, crash)
			require.Equal(t, set(want), got, "seed %d %v crash %d of %d (output fails %v)", seed, sp, crash, steps, outputFails)
		}
	}
}
