package join_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// pushSource is a Binder source that the benchmarks fill directly, batch by batch.
type pushSource[T any] struct{ in *stream.Input[T] }

func (s *pushSource[T]) Bind(in *stream.Input[T]) { s.in = in }
func (s *pushSource[T]) Run(ctx context.Context, _ *stream.Input[T]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (s *pushSource[T]) Commit(context.Context, []stream.Position) error { return nil }

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func keyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("CAB-%06d", i)
	}
	return ids
}

type joinFeeder struct {
	p    *stream.Pipeline
	src  *pushSource[shuffled]
	clk  *streamtest.Clock
	ids  []string
	recs []stream.Record[shuffled]
	gap  time.Duration
	off  int64
	rows int
	out  *join.Output[string, int, int]
}

// newJoinFeeder builds source -> IntervalOn(-1s, +1s): each key gets a record every second of
// event time, left and right in turn, so every left record matches the right records a
// second before and after it (one row per record), and about 40,000 records are held (the
// bounds plus the 2 s out-of-orderness plus a batch).
func newJoinFeeder(tb testing.TB, keys, batch int, gap time.Duration, with bool) *joinFeeder {
	return newFeederOf(tb, keys, batch, gap, with, func(s *stream.Stream[shuffled]) (*join.Output[string, int, int], error) {
		return join.IntervalOn(s, time.Second, time.Second)
	})
}

func newFeederOf(tb testing.TB, keys, batch int, gap time.Duration, with bool, mk func(*stream.Stream[shuffled]) (*join.Output[string, int, int], error)) *joinFeeder {
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(0), stream.WithIdleTimeout(0),
		stream.WithBuffer(2*batch, 0), stream.WithMaxOutOfOrderness(2*time.Second))
	require.NoError(tb, err)
	f := &joinFeeder{p: p, src: &pushSource[shuffled]{}, clk: clk, ids: keyIDs(keys), recs: make([]stream.Record[shuffled], batch), gap: gap}
	s := stream.From[shuffled](p, f.src)
	if !with {
		stream.ForEachBatch(s.Filter(func(shuffled) bool { return false }), func(context.Context, stream.BatchInfo, []shuffled) error { return nil })
		return f
	}
	f.out, err = mk(s)
	require.NoError(tb, err)
	stream.ForEachBatch(f.out.Joined(), func(_ context.Context, _ stream.BatchInfo, b []join.Joined[string, int, int]) error {
		f.rows += len(b)
		return nil
	})
	return f
}

func (f *joinFeeder) step(tb testing.TB) {
	keys := int64(len(f.ids))
	for i := range f.recs {
		r := &f.recs[i]
		right := (f.off/keys)%2 == 1
		r.Value = stream.KV(f.ids[f.off%keys], join.Side[int, int]{Left: int(f.off), Right: int(f.off), IsRight: right})
		r.EventTime = t0.Add(time.Duration(f.off) * f.gap)
		r.Offset = f.off
		f.off++
	}
	for i := range f.recs {
		if !f.src.in.TryPush(f.recs[i]) {
			tb.Fatal("input full")
		}
	}
	f.clk.Advance(time.Second)
	if _, err := f.p.Step(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkInterval measures the whole pipeline per record (source input, partitioning, the
// join, the late stream, an output that counts rows) in steady state: 10,000 keys, 10,000
// records per batch, one row per record. BenchmarkIntervalBaseline is the pipeline without
// the join. state-bytes/record is the join's own estimate (ReportState) per record held.
func BenchmarkInterval(b *testing.B) {
	benchJoin(b, newJoinFeeder(b, 10_000, 10_000, 100*time.Microsecond, true))
}

// BenchmarkWindow is BenchmarkInterval for Window(2s): each key's left and right record of a
// window match (half a row per record), and about 30,000 records are held.
func BenchmarkWindow(b *testing.B) {
	benchJoin(b, newFeederOf(b, 10_000, 10_000, 100*time.Microsecond, true, func(s *stream.Stream[shuffled]) (*join.Output[string, int, int], error) {
		return join.WindowOn(s, 2*time.Second)
	}))
}

func benchJoin(b *testing.B, f *joinFeeder) {
	const batch = 10_000
	for range 20 {
		f.step(b)
	}
	require.Positive(b, f.rows)
	require.Zero(b, f.out.LateCount())
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	n, rows := 0, f.rows
	for b.Loop() {
		f.step(b)
		n++
	}
	runtime.ReadMemStats(&ms1)
	st := f.p.Stats()
	var bytes int64
	for _, s := range st.State {
		bytes += s.Bytes
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*batch), "ns/record")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n*batch), "allocs/record")
	b.ReportMetric(float64(f.rows-rows)/float64(n*batch), "rows/record")
	b.ReportMetric(float64(st.RetainedState), "records-held")
	b.ReportMetric(float64(bytes)/float64(st.RetainedState), "state-bytes/record")
}

func BenchmarkIntervalBaseline(b *testing.B) {
	const keys, batch = 10_000, 10_000
	f := newJoinFeeder(b, keys, batch, 100*time.Microsecond, false)
	for range 20 {
		f.step(b)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f.step(b)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*batch), "ns/record")
}

// heapPerRecord returns the heap held per open record by 100,000 records of 10,000 keys that
// an Interval join keeps (bounds of an hour: nothing expires): the heap growth of a pipeline
// with the join minus that of the same pipeline without it.
func heapPerRecord(tb testing.TB) (measured, reported float64) {
	const recs = 100_000
	measure := func(with bool) (uint64, float64) {
		clk := streamtest.NewClock(streamtest.Epoch)
		p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(0), stream.WithIdleTimeout(0), stream.WithBuffer(recs, 0))
		require.NoError(tb, err)
		src := &pushSource[shuffled]{}
		s := stream.From[shuffled](p, src)
		if with {
			out, err := join.IntervalOn(s, time.Hour, time.Hour)
			require.NoError(tb, err)
			stream.ForEachBatch(out.Joined(), func(context.Context, stream.BatchInfo, []join.Joined[string, int, int]) error { return nil })
		} else {
			stream.ForEachBatch(s.Filter(func(shuffled) bool { return false }), func(context.Context, stream.BatchInfo, []shuffled) error { return nil })
		}
		ids := keyIDs(10_000)
		for i := range recs {
			// left records only: no rows, only state
			require.True(tb, src.in.TryPush(stream.Record[shuffled]{Value: stream.KV(ids[i%len(ids)], join.Side[int, int]{Left: i}),
				Offset: int64(i), EventTime: t0.Add(time.Duration(i) * time.Millisecond)}))
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		clk.Advance(time.Second)
		_, err = p.Step(context.Background())
		require.NoError(tb, err)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(p)
		runtime.KeepAlive(ids)
		st := p.Stats()
		var bytes int64
		for _, s := range st.State {
			bytes += s.Bytes
		}
		if with {
			require.Equal(tb, recs, st.RetainedState)
		}
		return after.HeapAlloc - before.HeapAlloc, float64(bytes) / recs
	}
	base, _ := measure(false)
	with, rep := measure(true)
	return float64(int64(with)-int64(base)) / recs, rep
}

func TestOpenStateMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 100,000 records")
	}
	measured, reported := heapPerRecord(t)
	t.Logf("open interval-join state: %.0f bytes/record measured, %.0f estimated by ReportState", measured, reported)
	require.Less(t, measured, 200.0)
	require.InDelta(t, measured, reported, measured/2, "ReportState's estimate is off")
}

func BenchmarkOpenStateMemory(b *testing.B) {
	var measured, reported float64
	for b.Loop() {
		measured, reported = heapPerRecord(b)
	}
	b.ReportMetric(measured, "heap-bytes/record")
	b.ReportMetric(reported, "state-bytes/record")
}
