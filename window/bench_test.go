package window_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/cputime"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// pushSource is a Binder source that the benchmarks fill directly, batch by batch.
type pushSource[T any] struct{ in *stream.Input[T] }

func (s *pushSource[T]) Bind(in *stream.Input[T]) { s.in = in }
func (s *pushSource[T]) Run(ctx context.Context, _ *stream.Input[T]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (s *pushSource[T]) Commit(context.Context, []stream.Position) error { return nil }

type cab struct {
	ID    string
	Speed float64
}

func cabID(c cab) string     { return c.ID }
func cabSpeed(c cab) float64 { return c.Speed }
func cabIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("CAB-%06d", i)
	}
	return ids
}

// feeder pushes batches of records with event time advancing by gap per record.
type feeder struct {
	p      *stream.Pipeline
	src    *pushSource[cab]
	clk    *streamtest.Clock
	ids    []string
	recs   []stream.Record[cab]
	ev     time.Time
	gap    time.Duration
	off    int64
	result int
	// run is how many records in a row carry the same key (1 unless set).
	run int
}

func newFeeder(tb testing.TB, asg window.Assigner, keys, batch int, gap time.Duration) *feeder {
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(0), stream.WithIdleTimeout(0), stream.WithBuffer(2*batch, 0))
	require.NoError(tb, err)
	f := &feeder{p: p, src: &pushSource[cab]{}, clk: clk, ids: cabIDs(keys), recs: make([]stream.Record[cab], batch), ev: t0, gap: gap, run: 1}
	s := stream.From[cab](p, f.src)
	w, err := window.Aggregate(s, cabID, cabSpeed, asg, window.Stats[float64]())
	require.NoError(tb, err)
	stream.ForEachBatch(w.Results(), func(_ context.Context, _ stream.BatchInfo, b []window.Result[string, window.Summary]) error {
		f.result += len(b)
		return nil
	})
	return f
}

func (f *feeder) step(tb testing.TB) {
	for i := range f.recs {
		r := &f.recs[i]
		r.Value = cab{ID: f.ids[int(f.off)/f.run%len(f.ids)], Speed: float64(f.off % 97)}
		r.EventTime = f.ev
		r.Offset = f.off
		f.ev = f.ev.Add(f.gap)
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

// benchWindows measures the whole pipeline per record: source input, partitioning, the
// window operator and the split into results and late records.
func benchWindows(b *testing.B, asg window.Assigner) { benchWindowsRuns(b, asg, 1) }

// benchWindowsRuns is benchWindows with each key's records in runs of run in a row, as a
// partition's records of one zone (or of one cab sending a burst) often come: 10,000 keys,
// each with run records every run batches.
func benchWindowsRuns(b *testing.B, asg window.Assigner, run int) {
	const keys, batch = 10_000, 10_000
	// 10,000 records per second of event time: one record per key per batch.
	f := newFeeder(b, asg, keys, batch, 100*time.Microsecond)
	f.run = run
	for range 700 { // past the first windows' close, into steady state
		f.step(b)
	}
	if asg != window.Session(30*time.Second) {
		require.Positive(b, f.result, "steady state emits")
	}
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, cpuOK := cputime.Used()
	n := 0
	for b.Loop() {
		f.step(b)
		n++
	}
	cpu1, _ := cputime.Used()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*batch), "ns/record")
	if cpuOK {
		// the process's CPU time (the pipeline's and the collector's): on a shared machine
		// it varies far less than elapsed time
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(n*batch), "cpu-ns/record")
	}
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n*batch), "allocs/record")
}

func BenchmarkTumbling(b *testing.B) { benchWindows(b, window.Tumbling(time.Minute)) }

// BenchmarkTumblingRuns is BenchmarkTumbling with each key's records in runs of 4.
func BenchmarkTumblingRuns(b *testing.B) { benchWindowsRuns(b, window.Tumbling(time.Minute), 4) }

// BenchmarkTumblingShort is BenchmarkTumbling with windows of one batch: every key's window
// closes each batch, so a record costs a result as well (the emission path).
func BenchmarkTumblingShort(b *testing.B) { benchWindows(b, window.Tumbling(time.Second)) }

func BenchmarkSliding(b *testing.B) { benchWindows(b, window.Sliding(10*time.Minute, 10*time.Second)) }

// BenchmarkSlidingShort is BenchmarkSliding with windows of 10 s every second: every key's
// window fires each batch, so a record costs a result as well (the emission path).
func BenchmarkSlidingShort(b *testing.B) {
	benchWindows(b, window.Sliding(10*time.Second, time.Second))
}

func BenchmarkSession(b *testing.B) { benchWindows(b, window.Session(30*time.Second)) }

// BenchmarkPipelineBaseline is the same pipeline without the window operator, to separate
// the stream package's own per-record cost.
func BenchmarkPipelineBaseline(b *testing.B) {
	const batch = 10_000
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(0), stream.WithIdleTimeout(0), stream.WithBuffer(2*batch, 0))
	require.NoError(b, err)
	f := &feeder{p: p, src: &pushSource[cab]{}, clk: clk, ids: cabIDs(batch), recs: make([]stream.Record[cab], batch), ev: t0, gap: 100 * time.Microsecond, run: 1}
	s := stream.From[cab](p, f.src)
	stream.ForEachBatch(s.Filter(func(cab) bool { return false }), func(context.Context, stream.BatchInfo, []cab) error { return nil })
	for range 10 {
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

// openStateBytes returns the heap held per key by 100,000 keys with one open tumbling window
// each: the heap growth of a pipeline with the window operator minus that of the same
// pipeline without it.
func openStateBytes(tb testing.TB) float64 {
	const keys = 100_000
	measure := func(withWindow bool) uint64 {
		clk := streamtest.NewClock(streamtest.Epoch)
		p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(0), stream.WithIdleTimeout(0), stream.WithBuffer(keys, 0))
		require.NoError(tb, err)
		src := &pushSource[cab]{}
		s := stream.From[cab](p, src)
		if withWindow {
			w, err := window.Aggregate(s, cabID, cabSpeed, window.Tumbling(time.Hour), window.Stats[float64]())
			require.NoError(tb, err)
			stream.ForEachBatch(w.Results(), func(context.Context, stream.BatchInfo, []window.Result[string, window.Summary]) error { return nil })
		} else {
			stream.ForEachBatch(s.Filter(func(cab) bool { return false }), func(context.Context, stream.BatchInfo, []cab) error { return nil })
		}
		ids := cabIDs(keys)
		for i, id := range ids {
			require.True(tb, src.in.TryPush(stream.Record[cab]{Value: cab{ID: id, Speed: 1}, Offset: int64(i), EventTime: t0.Add(time.Duration(i) * time.Millisecond)}))
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
		return after.HeapAlloc - before.HeapAlloc
	}
	base := measure(false)
	with := measure(true)
	return float64(int64(with)-int64(base)) / keys
}

func TestOpenStateMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 keys")
	}
	perKey := openStateBytes(t)
	t.Logf("open tumbling state: %.0f bytes/key", perKey)
	require.Less(t, perKey, 400.0)
}

func BenchmarkOpenStateMemory(b *testing.B) {
	var perKey float64
	for b.Loop() {
		perKey = openStateBytes(b)
	}
	b.ReportMetric(perKey, "bytes/key")
}
