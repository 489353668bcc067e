package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestRepartitionByTimeFilteredWindows: two tumbling windows of one grace over one source,
// each behind its own Filter. A window fires on the watermark of the records it saw (the
// lower of the partition's and its own), so a window whose Filter kept only older records
// fires a window end batches after the other one did: the results of one event time come in
// two batches, which RepartitionByTime cannot number. The graph must be refused when it is
// built, not fail at run time after the outputs of the batches before were written. Windows
// that see every record of the source (behind a Map only) fire together and are taken.
func TestRepartitionByTimeFilteredWindows(t *testing.T) {
	toPair := func(r window.Result[string, int64]) stream.Pair[string, int64] { return stream.KV(r.Key, r.Value) }
	hash := func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) }
	counts := func(in *stream.Stream[keyed], name string) *stream.Stream[stream.Pair[string, int64]] {
		w, err := window.Aggregate(in, func(k keyed) string { return k.Key }, func(keyed) int64 { return 1 }, window.Tumbling(10*time.Second), window.Sum[int64](),
			window.WithName(name))
		require.NoError(t, err)
		return stream.Map(w.Results(), toPair)
	}
	of := func(key string) func(keyed) bool { return func(k keyed) bool { return k.Key == key } }
	same := func(k keyed) keyed { return k }
	for _, tc := range []struct {
		name    string
		inputs  func(src *stream.Stream[keyed]) (*stream.Stream[keyed], *stream.Stream[keyed])
		refused bool
	}{
		{"behind filters", func(src *stream.Stream[keyed]) (*stream.Stream[keyed], *stream.Stream[keyed]) {
			return src.Filter(of("a")), src.Filter(of("b"))
		}, true},
		{"one behind a filter", func(src *stream.Stream[keyed]) (*stream.Stream[keyed], *stream.Stream[keyed]) {
			return src.Filter(of("a")), src
		}, true},
		{"behind maps", func(src *stream.Stream[keyed]) (*stream.Stream[keyed], *stream.Stream[keyed]) {
			return stream.Map(src, same), stream.Map(src, same)
		}, false},
		{"one filtered stream", func(src *stream.Stream[keyed]) (*stream.Stream[keyed], *stream.Stream[keyed]) {
			f := src.Filter(of("a"))
			return f, f
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second), stream.WithIdleTimeout(0))
			q, src := streamtest.NewQueue[keyed](h)
			in0, in1 := tc.inputs(src)
			pairs := counts(in0, "counts0").Union(counts(in1, "counts1"))
			ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int64]](2))
			stream.RepartitionByTime(pairs, "partials", ex, hash)
			h.AddExchange(ex)
			if tc.refused {
				err := h.P.Err()
				require.ErrorIs(t, err, stream.ErrGraph)
				require.ErrorContains(t, err, `"counts0" and "counts1"`)
				return
			}
			require.NoError(t, h.P.Err())
			fireApart(t, h, q, pairs, 0)
		})
	}
}

// TestRepartitionByTimeFilteredWindowsAfterRepartition: behind a repartition, windows fire on
// the watermark its marks give, whatever they saw, so windows of one grace behind their own
// Filters are taken, and run; windows of other graces are still refused.
func TestRepartitionByTimeFilteredWindowsAfterRepartition(t *testing.T) {
	toPair := func(r window.Result[string, int64]) stream.Pair[string, int64] { return stream.KV(r.Key, r.Value) }
	hash := func(p stream.Pair[string, int64]) uint64 { return stream.HashKey(p.Key) }
	of := func(key string) func(stream.Pair[string, int64]) bool {
		return func(p stream.Pair[string, int64]) bool { return p.Key == key }
	}
	for _, tc := range []struct {
		name    string
		graces  [2]time.Duration
		refused bool
	}{
		{"one grace", [2]time.Duration{0, 0}, false},
		{"other graces", [2]time.Duration{0, 5 * time.Second}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Second), stream.WithIdleTimeout(0))
			q, src := streamtest.NewQueue[keyed](h)
			ex1 := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int64]](1))
			moved := stream.Repartition(stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) }), "keys", ex1)
			h.AddExchange(ex1)
			counts := func(in *stream.Stream[stream.Pair[string, int64]], name string, grace time.Duration) *stream.Stream[stream.Pair[string, int64]] {
				w, err := window.Aggregate(in, func(p stream.Pair[string, int64]) string { return p.Key }, func(p stream.Pair[string, int64]) int64 { return p.Value },
					window.Tumbling(10*time.Second), window.Sum[int64](), window.WithGrace(grace), window.WithName(name))
				require.NoError(t, err)
				return stream.Map(w.Results(), toPair)
			}
			pairs := counts(moved.Filter(of("a")), "counts0", tc.graces[0]).Union(counts(moved.Filter(of("b")), "counts1", tc.graces[1]))
			ex2 := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, int64]](2))
			stream.RepartitionByTime(pairs, "partials", ex2, hash)
			h.AddExchange(ex2)
			if tc.refused {
				require.ErrorIs(t, h.P.Err(), stream.ErrGraph)
				require.ErrorContains(t, h.P.Err(), `"counts0" and "counts1", which read one source but fire an event time's results at other delays`)
				return
			}
			require.NoError(t, h.P.Err())
			fireApart(t, h, q, pairs, 2) // two more, for the repartition's marks
		})
	}
}

// fireApart runs the batches that make windows of one grace fire one end in different
// batches when one saw only "a" and the other "b" as well: "a" at 5 s, "b" at 6 s and 15 s in
// one batch, then "a" at 20 s (a window that saw "b" at 15 s fires [0 s, 10 s) in the first
// batch, one that saw only "a" in the second), then "b" at 32 s, and empty batches after. No
// batch may fail, and windows must fire.
func fireApart(t *testing.T, h *streamtest.Harness, q *streamtest.Queue[keyed], pairs *stream.Stream[stream.Pair[string, int64]], empty int) {
	t.Helper()
	at := func(s int) time.Time { return streamtest.Epoch.Add(time.Duration(s) * time.Second) }
	sent := streamtest.Collect(pairs)
	batches := [][]stream.Record[keyed]{
		{{Value: keyed{"a", 1}, Offset: 0, EventTime: at(5)}, {Value: keyed{"b", 1}, Offset: 1, EventTime: at(6)}, {Value: keyed{"b", 1}, Offset: 2, EventTime: at(15)}},
		{{Value: keyed{"a", 1}, Offset: 3, EventTime: at(20)}},
		{{Value: keyed{"b", 1}, Offset: 4, EventTime: at(32)}},
	}
	for i, batch := range append(batches, make([][]stream.Record[keyed], empty)...) {
		q.Add(batch...)
		_, err := h.TryStep()
		require.NoError(t, err, "batch %d", i)
	}
	require.NotEmpty(t, sent.Slice(), "windows fired")
}
