package window_test

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// t0 is a minute-aligned event-time origin.
var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

type ev struct {
	Key string
	V   float64
}

func evKey(e ev) string           { return e.Key }
func evVal(e ev) float64          { return e.V }
func sec(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }

func at(part int32, key string, d time.Duration, v float64) stream.Record[ev] {
	return stream.Record[ev]{Value: ev{Key: key, V: v}, Partition: part, EventTime: t0.Add(d)}
}

// row is a Result with times relative to t0, for readable expectations.
type row struct {
	Key        string
	Start, End time.Duration
	Value      float64
	Final      bool
	Part       int32
}

func rowsOf[R any](rs []window.Result[string, R], v func(R) float64) []row {
	out := make([]row, 0, len(rs))
	for _, r := range rs {
		out = append(out, row{Key: r.Key, Start: r.Start.Sub(t0), End: r.End.Sub(t0), Value: v(r.Value), Final: r.Final, Part: r.Partition})
	}
	return out
}

func i64(n int64) float64 { return float64(n) }

func TestTumblingOutOfOrderAndLate(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(10*time.Second), stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Tumbling(time.Minute), window.Count[float64]())
	require.NoError(t, err)
	res, late := streamtest.Collect(w.Results()), streamtest.Collect(w.Late())

	// 0:58 arrives after 1:05 but within the 10 s bound: it still counts for [0, 1m).
	q.Add(at(0, "a", sec(10), 1), at(0, "a", sec(65), 1), at(0, "a", sec(58), 1))
	// 1:20 moves the watermark to 1:10, closing [0, 1m); 0:59 is then too late.
	q.Add(at(0, "a", sec(80), 1), at(0, "a", sec(59), 1))
	q.End()
	h.RunUntilDone()

	require.Equal(t, []row{
		{Key: "a", Start: 0, End: time.Minute, Value: 2, Final: true},
		{Key: "a", Start: time.Minute, End: 2 * time.Minute, Value: 2, Final: true},
	}, rowsOf(res.Slice(), i64))
	require.Len(t, late.Slice(), 1)
	l := late.Slice()[0]
	require.Equal(t, ev{"a", 1}, l.Value)
	require.Equal(t, t0.Add(sec(59)), l.EventTime)
	require.Equal(t, t0, l.Start)
	require.Equal(t, t0.Add(time.Minute), l.End)
	require.Equal(t, int64(4), l.Offset)
	require.Equal(t, int64(1), w.LateCount())
	// [0, 1m) was emitted in the second batch, once the watermark passed its end.
	require.Len(t, res.Batches()[1], 1)
}

func TestTumblingGrace(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(10*time.Second), stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Tumbling(time.Minute), window.Sum[float64](), window.WithGrace(30*time.Second))
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())

	q.Add(at(0, "a", sec(10), 1), at(0, "a", sec(65), 10))
	q.Add(at(0, "a", sec(80), 10), at(0, "a", sec(59), 2)) // late for the bound, within grace
	q.Add(at(0, "a", sec(101), 10))                        // watermark 1:31: [0, 1m) closes
	q.Add(at(0, "a", sec(30), 4))                          // now beyond the grace
	q.End()
	h.Run(2)
	require.Empty(t, res.Slice())
	h.Step()
	require.Equal(t, []row{{Key: "a", Start: 0, End: time.Minute, Value: 3, Final: true}}, rowsOf(res.Slice(), func(v float64) float64 { return v }))
	h.RunUntilDone()
	require.Equal(t, int64(1), w.LateCount())
	require.Equal(t, []row{
		{Key: "a", Start: 0, End: time.Minute, Value: 3, Final: true},
		{Key: "a", Start: time.Minute, End: 2 * time.Minute, Value: 30, Final: true},
	}, rowsOf(res.Slice(), func(v float64) float64 { return v }))
}

// TestHugeGrace: a grace of "for ever" (the largest Duration) keeps every window open until
// the end of the input, as a grace longer than the input's span does: a record far behind
// the watermark still counts. Before, a window's end plus the grace wrapped negative and
// every record went to Late (sliding windows also sized their ring of panes from it). After
// a repartition, where the watermark comes from marks, a huge out-of-orderness with it
// wrapped the first window to fire past every window: a record older than the partition's
// first was counted in no emitted window, nor set aside.
func TestHugeGrace(t *testing.T) {
	run := func(t *testing.T, asg window.Assigner, ooo time.Duration, merged bool, grace time.Duration) []row {
		h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(ooo), stream.WithIdleTimeout(0))
		q, s := streamtest.NewQueue[ev](h)
		q.SetPartitions(2)
		if merged {
			log := streamtest.NewExchangeLog[stream.Pair[string, ev]](2)
			_, sh := streamtest.NewRepartition(h, stream.Map(s, func(e ev) stream.Pair[string, ev] { return stream.KV(e.Key, e) }), "by-key", log)
			s = stream.Map(sh, func(p stream.Pair[string, ev]) ev { return p.Value })
		}
		w, err := window.Aggregate(s, evKey, evVal, asg, window.Count[float64](), window.WithGrace(grace))
		require.NoError(t, err)
		res := streamtest.Collect(w.Results())
		q.Add(at(0, "a", sec(10), 1), at(1, "a", sec(3), 1))
		q.Add(at(0, "a", sec(200), 1), at(1, "b", sec(12), 1))
		q.Add(at(0, "a", sec(11), 1), at(1, "b", sec(300), 1), at(1, "b", sec(4), 1))
		q.End()
		h.RunUntilDone()
		require.Zero(t, w.LateCount(), "grace %v", grace)
		got := rowsOf(res.Slice(), i64)
		slices.SortFunc(got, func(a, b row) int {
			return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Start, b.Start), cmp.Compare(a.Part, b.Part))
		})
		return got
	}
	for _, asg := range []window.Assigner{window.Tumbling(time.Minute), window.Sliding(10*time.Second, 5*time.Second), window.Session(time.Minute)} {
		for _, ooo := range []time.Duration{time.Second, math.MaxInt64} {
			for _, merged := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/ooo %v/merged %v", asg, ooo, merged), func(t *testing.T) {
					want := run(t, asg, ooo, merged, time.Hour) // more than the input's span
					require.NotEmpty(t, want)
					require.Equal(t, want, run(t, asg, ooo, merged, math.MaxInt64))
				})
			}
		}
	}
}

func TestSessionMergeAndSplit(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Minute), stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Session(10*time.Second), window.Count[float64]())
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())

	q.Add(at(0, "a", sec(0), 1), at(0, "a", sec(5), 1), at(0, "b", sec(0), 1))
	q.Add(at(0, "a", sec(18), 1), at(0, "b", sec(25), 1)) // a: a second session; b: split
	q.Add(at(0, "a", sec(10), 1))                         // bridges a's two sessions
	q.End()
	h.RunUntilDone()

	require.Equal(t, []row{
		{Key: "b", Start: 0, End: sec(10), Value: 1, Final: true},
		{Key: "a", Start: 0, End: sec(28), Value: 4, Final: true},
		{Key: "b", Start: sec(25), End: sec(35), Value: 1, Final: true},
	}, rowsOf(res.Slice(), i64))
}

func TestSessionLateJoin(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Session(10*time.Second), window.Count[float64]())
	require.NoError(t, err)
	res, late := streamtest.Collect(w.Results()), streamtest.Collect(w.Late())

	q.Add(at(0, "a", sec(0), 1), at(0, "a", sec(5), 1))
	q.Add(at(0, "b", sec(16), 1)) // watermark 0:16 closes a's session [0, 15)
	q.Add(at(0, "a", sec(8), 1))  // its own window [8, 18) is open, but it would join the closed session
	q.End()
	h.RunUntilDone()
	require.Equal(t, []row{
		{Key: "a", Start: 0, End: sec(15), Value: 2, Final: true},
		{Key: "b", Start: sec(16), End: sec(26), Value: 1, Final: true},
	}, rowsOf(res.Slice(), i64))
	require.Len(t, late.Slice(), 1)
	require.Equal(t, int64(1), w.LateCount())
}

func TestIdlePartitionDoesNotStall(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(3*time.Second))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Tumbling(time.Minute), window.Count[float64]())
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())

	q.Add(at(0, "a", sec(10), 1), at(1, "b", sec(20), 1))
	q.Add(at(0, "a", sec(70), 1)) // partition 1 says nothing from now on
	h.Run(2)
	require.Equal(t, []row{
		{Key: "a", Start: 0, End: time.Minute, Value: 1, Final: true, Part: 0},
	}, rowsOf(res.Slice(), i64), "each partition's windows fire on its own watermark; partition 1 is at 0:20")
	for range 4 {
		q.Add(at(0, "a", sec(71), 1))
	}
	h.Run(4)
	require.Equal(t, []row{
		{Key: "a", Start: 0, End: time.Minute, Value: 1, Final: true, Part: 0},
		{Key: "b", Start: 0, End: time.Minute, Value: 1, Final: true, Part: 1},
	}, rowsOf(res.Slice(), i64), "once partition 1 is idle, the pipeline watermark closes its window")
	q.Add(at(1, "b", sec(30), 1)) // partition 1 wakes up with a record for the emitted window
	h.Step()
	require.Equal(t, int64(1), w.LateCount())
}

func TestEndOfInputClosesEverything(t *testing.T) {
	for _, tc := range []struct {
		name string
		asg  window.Assigner
		want int
	}{
		{"tumbling", window.Tumbling(time.Hour), 3},
		// [9:30, 10:30) starts before the partition's first pane and is not emitted (see
		// "Delivery and replay" in the package documentation).
		{"sliding", window.Sliding(time.Hour, 30*time.Minute), 3},
		{"session", window.Session(time.Hour), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
			q, s := streamtest.NewQueue[ev](h)
			w, err := window.Aggregate(s, evKey, evVal, tc.asg, window.Count[float64]())
			require.NoError(t, err)
			res := streamtest.Collect(w.Results())
			q.Add(at(0, "a", sec(1), 1), at(0, "b", sec(2), 1), at(1, "c", sec(3), 1))
			h.Run(3)
			require.Empty(t, res.Slice())
			q.End()
			h.RunUntilDone()
			require.Len(t, res.Slice(), tc.want)
			for _, r := range res.Slice() {
				require.True(t, r.Final)
				require.Equal(t, int64(1), r.Value)
			}
		})
	}
}

func TestEveryBatch(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Tumbling(time.Minute), window.Count[float64](), window.WithEmit(window.EveryBatch))
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())

	q.Add(at(0, "a", sec(10), 1))
	q.Add(at(0, "a", sec(20), 1))
	q.Add(at(0, "b", sec(30), 1))
	q.Add(at(0, "a", sec(65), 1))
	q.End()
	h.RunUntilDone()
	m := time.Minute
	require.Equal(t, [][]row{
		{{Key: "a", End: m, Value: 1}},
		{{Key: "a", End: m, Value: 2}},
		{{Key: "b", End: m, Value: 1}},
		{{Key: "a", End: m, Value: 2, Final: true}, {Key: "b", End: m, Value: 1, Final: true}, {Key: "a", Start: m, End: 2 * m, Value: 1}},
		{{Key: "a", Start: m, End: 2 * m, Value: 1, Final: true}},
	}, batchRows(res.Batches(), i64))
}

func TestEveryBatchSlidingAndSession(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Hour))
	q, s := streamtest.NewQueue[ev](h)
	sl, err := window.Aggregate(s, evKey, evVal, window.Sliding(2*time.Minute, time.Minute), window.Sum[float64](), window.WithEmit(window.EveryBatch))
	require.NoError(t, err)
	se, err := window.Aggregate(s, evKey, evVal, window.Session(time.Minute), window.Sum[float64](), window.WithEmit(window.EveryBatch))
	require.NoError(t, err)
	slr, ser := streamtest.Collect(sl.Results()), streamtest.Collect(se.Results())

	q.Add(at(0, "a", sec(10), 1))
	q.Add(at(0, "a", sec(65), 2))
	q.End()
	h.RunUntilDone()
	id := func(v float64) float64 { return v }
	m := time.Minute
	require.Equal(t, [][]row{
		{{Key: "a", Start: 0, End: 2 * m, Value: 1}},
		{{Key: "a", Start: 0, End: 2 * m, Value: 3}, {Key: "a", Start: m, End: 3 * m, Value: 2}},
		{{Key: "a", Start: 0, End: 2 * m, Value: 3, Final: true}, {Key: "a", Start: m, End: 3 * m, Value: 2, Final: true}},
	}, batchRows(slr.Batches(), id))
	require.Equal(t, [][]row{
		{{Key: "a", Start: sec(10), End: sec(70), Value: 1}},
		{{Key: "a", Start: sec(10), End: sec(125), Value: 3}},
		{{Key: "a", Start: sec(10), End: sec(125), Value: 3, Final: true}},
	}, batchRows(ser.Batches(), id))
}

func batchRows[R any](bs [][]window.Result[string, R], v func(R) float64) [][]row {
	var out [][]row
	for _, b := range bs {
		if len(b) > 0 {
			out = append(out, rowsOf(b, v))
		}
	}
	return out
}

func TestRetainedHoldsCommits(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Tumbling(time.Minute), window.Count[float64]())
	require.NoError(t, err)
	streamtest.Collect(w.Results())

	q.Add(at(0, "a", sec(10), 1), at(0, "b", sec(20), 1)) // offsets 0, 1
	h.Step()
	require.Equal(t, int64(0), q.Committed(0), "[0, 1m) is open and needs offset 0")
	q.Add(at(0, "a", sec(30), 1)) // offset 2
	h.Step()
	require.Equal(t, int64(0), q.Committed(0))
	q.Add(at(0, "a", sec(70), 1)) // offset 3: closes [0, 1m)
	h.Step()
	require.Equal(t, int64(3), q.Committed(0), "after the close, the commit moves to the oldest record of the open window")
	q.Add(at(0, "a", sec(80), 1), at(0, "a", sec(130), 1)) // offsets 4, 5: close [1m, 2m)
	h.Step()
	require.Equal(t, int64(5), q.Committed(0))
	q.End()
	h.RunUntilDone()
	// Nothing is open any more, but a replay must still start at the newest window's first
	// record: records after it could belong to it.
	require.Equal(t, int64(5), q.Committed(0))
}

func TestInvalidOptions(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, s := streamtest.NewQueue[ev](h)
	for name, tc := range map[string]struct {
		asg  window.Assigner
		opts []window.Option
	}{
		"zero assigner":  {asg: window.Assigner{}},
		"tumbling 0":     {asg: window.Tumbling(0)},
		"slide > size":   {asg: window.Sliding(time.Second, time.Minute)},
		"session 0":      {asg: window.Session(0)},
		"negative grace": {asg: window.Tumbling(time.Minute), opts: []window.Option{window.WithGrace(-1)}},
		"empty name":     {asg: window.Tumbling(time.Minute), opts: []window.Option{window.WithName("")}},
		"bad emission":   {asg: window.Tumbling(time.Minute), opts: []window.Option{window.WithEmit(7)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := window.Aggregate(s, evKey, evVal, tc.asg, window.Count[float64](), tc.opts...)
			require.ErrorIs(t, err, window.ErrInvalidOption)
		})
	}
	_, err := window.Aggregate(s, evKey, evVal, window.Tumbling(time.Minute), window.Quantile[float64](1.5))
	require.ErrorIs(t, err, window.ErrInvalidOption)
}

func TestAssignerIsTumbling(t *testing.T) {
	require.True(t, window.Tumbling(time.Minute).IsTumbling())
	require.False(t, window.Sliding(time.Minute, time.Minute).IsTumbling(), "a sliding window whose slide is its size")
	require.False(t, window.Session(time.Minute).IsTumbling())
	require.False(t, window.Assigner{}.IsTumbling())
}

// TestSlidingGapThenOutOfOrder: after a gap in the data, the firing must not jump past a
// window still open. The watermark after 1:40 is 1:37, so the window [1:25, 1:40) is open and
// 1:36, out of order within the bound, counts in it (it was dropped from it without a word).
func TestSlidingGapThenOutOfOrder(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(3*time.Second), stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Sliding(15*time.Second, 5*time.Second), window.Count[float64]())
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())
	q.Add(at(0, "a", 0, 1))
	q.Add(at(0, "a", sec(100), 1))
	q.Add(at(0, "a", sec(96), 1))
	q.End()
	h.RunUntilDone()
	require.Equal(t, []row{
		{Key: "a", Start: 0, End: sec(15), Value: 1, Final: true},
		{Key: "a", Start: sec(85), End: sec(100), Value: 1, Final: true},
		{Key: "a", Start: sec(90), End: sec(105), Value: 2, Final: true},
		{Key: "a", Start: sec(95), End: sec(110), Value: 2, Final: true},
		{Key: "a", Start: sec(100), End: sec(115), Value: 1, Final: true},
	}, rowsOf(res.Slice(), i64))
	require.Zero(t, w.LateCount())
}

// TestSplitKeys: a key whose records are in two partitions of a stream that was not
// repartitioned gets a result of the same window from each, which written by key and window
// overwrite each other: Aggregate counted nothing and said nothing (a reviewer grouped by a
// key other than the Kafka key: 979 of 2,600 documents wrong, exit 0, no log). SplitKeys
// counts such results (and so does BatchStats.State); the same key in other windows, a key in
// one partition, a repartitioned stream and WithPerPartitionResults count none.
func TestSplitKeys(t *testing.T) {
	run := func(t *testing.T, asg window.Assigner, merged bool, opts ...window.Option) int64 {
		h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second), stream.WithIdleTimeout(0))
		q, s := streamtest.NewQueue[ev](h)
		q.SetPartitions(2)
		if merged {
			log := streamtest.NewExchangeLog[stream.Pair[string, ev]](2)
			_, sh := streamtest.NewRepartition(h, stream.Map(s, func(e ev) stream.Pair[string, ev] { return stream.KV(e.Key, e) }), "by-key", log)
			s = stream.Map(sh, func(p stream.Pair[string, ev]) ev { return p.Value })
		}
		w, err := window.Aggregate(s, evKey, evVal, asg, window.Count[float64](), append(opts, window.WithName("w"))...)
		require.NoError(t, err)
		res := streamtest.Collect(w.Results())
		q.Add(at(0, "a", sec(1), 1), at(1, "a", sec(2), 1), at(0, "b", sec(3), 1), at(1, "c", sec(70), 1))
		q.Add(at(0, "c", sec(200), 1), at(1, "b", sec(130), 1))
		q.End()
		h.RunUntilDone()
		require.NotEmpty(t, res.Slice())
		require.Equal(t, w.SplitKeys(), operatorState(t, h, "w").SplitKeys, "BatchStats.State reports SplitKeys")
		return w.SplitKeys()
	}
	for _, asg := range []window.Assigner{window.Tumbling(time.Minute), window.Session(10 * time.Second)} {
		t.Run(asg.String(), func(t *testing.T) {
			require.EqualValues(t, 1, run(t, asg, false), `"a" in both partitions in one window`)
			require.Zero(t, run(t, asg, true), "repartitioned by the key")
			require.Zero(t, run(t, asg, false, window.WithPerPartitionResults()), "per-partition results meant")
		})
	}
	require.Positive(t, run(t, window.Sliding(time.Minute, 10*time.Second), false), "sliding")
}
