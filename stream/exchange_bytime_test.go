package stream_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// byTimeRun is one run of a two-phase graph: an event-time window sum per source partition
// (its assigner and options given), its final results through RepartitionByTime, keyed by
// key and window start, and a tumbling window sum of them after it, whose final results are
// the documents (by key and window start of the first phase: one per upstream window).
type byTimeRun struct {
	h    *streamtest.Harness
	q    *streamtest.Queue[keyed]
	ex   *streamtest.Exchange[stream.Pair[string, int64]]
	docs *streamtest.Collector[window.Result[string, int64]]
}

func newByTimeRun(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]], parts int, asg window.Assigner, opts ...window.Option) *byTimeRun {
	r := &byTimeRun{h: streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second), stream.WithIdleTimeout(0))}
	var src *stream.Stream[keyed]
	r.q, src = streamtest.NewQueue[keyed](r.h)
	r.q.SetPartitions(parts)
	local, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(k keyed) int64 { return k.V }, asg, window.Sum[int64](), opts...)
	require.NoError(t, err)
	partials := stream.Map(local.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }),
		func(x window.Result[string, int64]) stream.Pair[string, int64] {
			return stream.KV(fmt.Sprintf("%s@%d", x.Key, x.Start.Sub(streamtest.Epoch)/time.Second), x.Value)
		})
	r.ex = streamtest.NewExchange(log)
	merged, err := window.Aggregate(stream.RepartitionByTime(partials, "partials", r.ex, func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) }),
		func(p stream.Pair[string, int64]) string { return p.Key }, func(p stream.Pair[string, int64]) int64 { return p.Value },
		window.Tumbling(5*time.Second), window.Sum[int64]())
	require.NoError(t, err)
	r.h.AddExchange(r.ex)
	r.docs = streamtest.Collect(merged.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }))
	return r
}

// written adds the documents of the run to docs (a later write of a key overwrites).
func (r *byTimeRun) written(docs map[string]int64) {
	for _, d := range r.docs.Slice() {
		docs[d.Key] = d.Value
	}
}

// byTimeRec is a record of key k with value v at second s of partition p, at offset off.
func byTimeRec(p int32, off int64, s int, k string, v int64) stream.Record[keyed] {
	return stream.Record[keyed]{Value: keyed{k, v}, Partition: p, Offset: off, EventTime: streamtest.Epoch.Add(time.Duration(s) * time.Second)}
}

// byTimeCrash runs batches to the end without a crash, then again with a crash at batch
// crash (1-based: its send to the exchange fails after writing sent records, and the run
// stops there), and a restart from the committed positions over the same exchange log; it
// returns the documents of the run without a crash and of the two runs together.
func byTimeCrash(t *testing.T, batches [][]stream.Record[keyed], parts, crash, sent int, asg window.Assigner, opts ...window.Option) (want, got map[string]int64) {
	want, got = map[string]int64{}, map[string]int64{}
	full := newByTimeRun(t, streamtest.NewExchangeLog[stream.Pair[string, int64]](1), parts, asg, opts...)
	for _, b := range batches {
		full.q.AddWithOffsets(b...)
	}
	full.q.End()
	full.h.RunUntilDone()
	full.written(want)

	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](1)
	first := newByTimeRun(t, log, parts, asg, opts...)
	for i, b := range batches[:crash] {
		first.q.AddWithOffsets(b...)
		if i == crash-1 {
			first.ex.SendErr, first.ex.SendPartial = errors.New("crash"), sent
		}
		_, err := first.h.TryStep()
		if i < crash-1 {
			require.NoError(t, err, "batch %d", i+1)
		} else {
			require.Error(t, err, "the crash batch")
		}
	}
	first.written(got)
	var pos []stream.Position
	from := map[int32]int64{}
	for p := range int32(parts) {
		if cp, ok := first.q.CommittedPosition(p); ok {
			pos = append(pos, cp)
			from[p] = cp.Offset
		}
	}
	second := newByTimeRun(t, log, parts, asg, opts...)
	second.q.Resume(pos...)
	for _, b := range batches {
		var rest []stream.Record[keyed]
		for _, rec := range b {
			if rec.Offset >= from[rec.Partition] {
				rest = append(rest, rec)
			}
		}
		second.q.AddWithOffsets(rest...)
	}
	second.q.End()
	second.h.RunUntilDone()
	second.written(got)
	copies := 0
	seen := map[[3]int64]bool{}
	for _, x := range log.Records(0) {
		if id := [3]int64{int64(x.From), x.Seq, int64(x.Sub)}; !x.Mark {
			if seen[id] {
				copies++
			}
			seen[id] = true
		}
	}
	require.Positive(t, copies, "the replay sent nothing the crashed send had written: nothing was tested")
	return want, got
}

// TestRepartitionByTimeReplayOrder: RepartitionByTime numbers a window's final results by
// event time and rank, so a replay after a crash must send them in the order the first run
// did: a crash whose send wrote part of a window's results, then a restart from the commit,
// give the documents of a run without the crash. A tumbling window's do (its keys in the
// order of their first records in the window). The windows whose replay sends them in
// another order are refused when the graph is built; with these inputs they gave, before,
// a result counted twice and another lost, with no error:
//
//   - sliding, 10 s every 5 s, over slide: the commit after [0s, 10s) fired is at b (the
//     first record of the pane [5s, 10s)), and the replay from there meets b before a (the
//     first run had met a at 1 s); the crash batch fires [5s, 15s), whose send wrote a only:
//     a@5 = 200, b@5 lost;
//   - sessions with a gap of 5 s, over a at 1 s; b and a at 7 s; c at 12 s; d at 17 s: the
//     sessions of b and a close together at 12 s, a's key first in the partition's state, b
//     first in the replay from the commit at b: a@7 = 200, b@7 lost;
//   - a key limit of 5 entries over limited: b is refused while partition 1 holds four keys
//     of [0s, 10s); the replay reads partition 0 without them (partition 1's commit is past
//     them), admits b, and sends [0s, 10s)'s results a, b, c where the first run sent a, c
//     and its send wrote both: c's rank went from 1 to 2, c@0 = 200.
func TestRepartitionByTimeReplayOrder(t *testing.T) {
	// One partition: a at 1 s, then b at 6 s before a at 7 s.
	slide := [][]stream.Record[keyed]{
		{byTimeRec(0, 0, 1, "a", 1)},
		{byTimeRec(0, 1, 6, "b", 10), byTimeRec(0, 2, 7, "a", 100)},
		{byTimeRec(0, 3, 12, "c", 1000)},
		{byTimeRec(0, 4, 17, "d", 10000)},
	}
	// Two partitions: q opens [10s, 20s) in partition 1 after its [0s, 10s) fired, so that
	// the commit before batch 4 has partition 1 past that window.
	limited := [][]stream.Record[keyed]{
		{byTimeRec(0, 0, 1, "a", 1), byTimeRec(1, 0, 1, "x", 2), byTimeRec(1, 1, 2, "y", 3), byTimeRec(1, 2, 3, "w", 4), byTimeRec(1, 3, 3, "v", 5)},
		{byTimeRec(0, 1, 3, "b", 10), byTimeRec(1, 4, 15, "z", 6)},
		{byTimeRec(1, 5, 16, "q", 7)},
		{byTimeRec(0, 2, 4, "c", 100), byTimeRec(0, 3, 12, "d", 1000)},
	}
	for _, tc := range []struct {
		name    string
		asg     window.Assigner
		opts    []window.Option
		batches [][]stream.Record[keyed]
		parts   int
		crash   int // the batch whose send fails after writing sent records
		sent    int
		refused string // what the graph error says of the window; "" if accepted
	}{
		// [0s, 10s) holds a, b, a and fires in batch 3 (a, b), whose send writes a; the
		// replay from the commit at a sends a, b again.
		{name: "tumbling", asg: window.Tumbling(10 * time.Second), batches: slide, parts: 1, crash: 3, sent: 1},
		// The key limit's input without the limit: [0s, 10s) of partition 0 fires in batch 4
		// (a, b, c), whose send writes a and b.
		{name: "tumbling, two partitions", asg: window.Tumbling(10 * time.Second), batches: limited, parts: 2, crash: 4, sent: 2},
		{name: "sliding", asg: window.Sliding(10*time.Second, 5*time.Second), refused: `"local" is a sliding window`},
		{name: "session", asg: window.Session(5 * time.Second), refused: `"local" is a session window`},
		{name: "key limit", asg: window.Tumbling(10 * time.Second), opts: []window.Option{window.WithMaxKeys(5)}, refused: `"local" has a key limit (WithMaxKeys)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]window.Option{window.WithName("local")}, tc.opts...)
			if tc.refused != "" {
				r := newByTimeRun(t, streamtest.NewExchangeLog[stream.Pair[string, int64]](1), 1, tc.asg, opts...)
				err := r.h.P.Err()
				require.ErrorIs(t, err, stream.ErrGraph)
				require.ErrorContains(t, err, `RepartitionByTime "partials": its stream "map" is made from the results of "local", which it cannot number by event time: `+tc.refused)
				return
			}
			want, got := byTimeCrash(t, tc.batches, tc.parts, tc.crash, tc.sent, tc.asg, opts...)
			require.Equal(t, want, got)
		})
	}
}

// heldOnly is a WatermarkHolder that passes its input on and does not implement
// TimeOrderer.
type heldOnly struct{}

func (heldOnly) Process(_ *stream.PartitionContext, in []stream.Elem[stream.Pair[string, int64]], out []stream.Elem[stream.Pair[string, int64]]) []stream.Elem[stream.Pair[string, int64]] {
	return append(out, in...)
}
func (heldOnly) Retained(int32) (int64, bool)      { return 0, false }
func (heldOnly) Drop(int32)                        {}
func (heldOnly) StateSize() int                    { return 0 }
func (heldOnly) HeldWatermark(int32) (int64, bool) { return 0, false }

// TestRepartitionByTimeOfUnorderedWindowsRefused: RepartitionByTime takes the results of a
// window only when the window says (stream.TimeOrderer) that it sends each event time's
// results once, in one batch, in an order a replay reproduces. EveryBatch partial results
// repeat their window's time in later batches, even behind a Filter of the final ones that
// the graph cannot see through, and sessions send the results of one time in the order of
// their keys in the window's state, which a replay need not rebuild
// (TestRepartitionByTimeReplayOrder). Such a graph is refused when it is built, naming the
// window and what it takes, before any record is read: EveryBatch used to fail at run time
// only, once a window had sent a partial result and sent its time again, after outputs had
// wrote the batches before; sessions lost a result and counted another twice after a crash.
// So is a WatermarkHolder that does not say.
func TestRepartitionByTimeOfUnorderedWindowsRefused(t *testing.T) {
	type pair = stream.Pair[string, int64]
	final := func(r window.Result[string, int64]) bool { return r.Final }
	toPair := func(r window.Result[string, int64]) pair { return stream.KV(r.Key, r.Value) }
	every := window.WithEmit(window.EveryBatch)
	for _, tc := range []struct {
		name   string
		asg    window.Assigner
		opts   []window.Option
		says   []string // what the error says of the window "w"
		union  bool     // the stream is a Union with a tumbling window's results
		custom bool     // the stream is made from heldOnly
	}{
		{name: "every batch", asg: window.Tumbling(10 * time.Second), opts: []window.Option{every},
			says: []string{`"w" emits EveryBatch partial results, which repeat a window's event time in later batches`, "use OnClose"}},
		{name: "sessions", asg: window.Session(5 * time.Second),
			says: []string{`"w" is a session window`, "use Tumbling"}},
		{name: "sessions every batch", asg: window.Session(5 * time.Second), opts: []window.Option{every},
			says: []string{`"w" emits EveryBatch partial results`, `; it is a session window`}},
		{name: "a union with sessions", asg: window.Session(5 * time.Second), union: true,
			says: []string{`"w" is a session window`}},
		{name: "sliding every batch with a key limit", asg: window.Sliding(10*time.Second, 5*time.Second), opts: []window.Option{every, window.WithMaxKeys(10)},
			says: []string{`"w" emits EveryBatch partial results`, "; it is a sliding window", "; it has a key limit (WithMaxKeys)"}},
		{name: "custom", custom: true,
			says: []string{`the results of "held", which it cannot number by event time: "held" does not say that a replay sends its results again in the same order (it implements WatermarkHolder but not TimeOrderer)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second))
			q, src := streamtest.NewQueue[keyed](h)
			read := streamtest.Collect(src)
			var pairs *stream.Stream[pair]
			if tc.custom {
				pairs = stream.Apply(stream.Map(src, func(k keyed) pair { return stream.KV(k.Key, k.V) }), "held", stream.Operator[pair, pair](heldOnly{}))
			} else {
				w, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(k keyed) int64 { return k.V }, tc.asg, window.Sum[int64](),
					append([]window.Option{window.WithName("w")}, tc.opts...)...)
				require.NoError(t, err)
				pairs = stream.Map(w.Results().Filter(final), toPair)
			}
			if tc.union {
				tumbling, err := window.Aggregate(src, func(k keyed) string { return k.Key }, func(k keyed) int64 { return k.V }, window.Tumbling(10*time.Second), window.Sum[int64]())
				require.NoError(t, err)
				pairs = stream.Map(tumbling.Results().Filter(final), toPair).Union(pairs)
			}
			ex := streamtest.NewExchange(streamtest.NewExchangeLog[pair](2))
			stream.RepartitionByTime(pairs, "by-time", ex, func(p pair) uint64 { return stream.HashKey(p.Key) })
			h.AddExchange(ex)
			q.Add(byTimeRec(0, 0, 1, "a", 1))
			q.Add(byTimeRec(0, 1, 2, "a", 1))
			err := h.P.Err()
			require.ErrorIs(t, err, stream.ErrGraph)
			require.ErrorContains(t, err, `RepartitionByTime "by-time": its stream "`+pairs.Name()+`" is made from the results of "`)
			for _, s := range tc.says {
				require.ErrorContains(t, err, s)
			}
			require.ErrorContains(t, err, "RepartitionByTime takes results that come once per event time, all of a time in one batch, in an order that a replay from any commit sends again")
			_, stepErr := h.TryStep()
			require.ErrorIs(t, stepErr, stream.ErrGraph)
			require.Empty(t, read.Slice(), "records were read")
		})
	}
}
