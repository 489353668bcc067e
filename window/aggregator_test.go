package window_test

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// fold adds vals one by one, and also as two merged halves, and checks both agree.
func fold[V, A, R any](t *testing.T, agg window.Aggregator[V, A, R], vals []V) R {
	t.Helper()
	acc := agg.Zero()
	for _, v := range vals {
		acc = agg.Add(acc, v)
	}
	l, r := agg.Zero(), agg.Zero()
	for i, v := range vals {
		if i < len(vals)/2 {
			l = agg.Add(l, v)
		} else {
			r = agg.Add(r, v)
		}
	}
	merged := agg.Merge(agg.Merge(agg.Zero(), l), r)
	require.Equal(t, agg.Result(acc), agg.Result(merged), "merge agrees with add")
	return agg.Result(acc)
}

func TestAggregators(t *testing.T) {
	vals := []float64{4, -1, 9, 2.5, 7}
	require.Equal(t, int64(5), fold(t, window.Count[float64](), vals))
	require.Equal(t, 21.5, fold(t, window.Sum[float64](), vals))
	require.Equal(t, -1.0, fold(t, window.Min[float64](), vals))
	require.Equal(t, 9.0, fold(t, window.Max[float64](), vals))
	require.Equal(t, 4.3, fold(t, window.Mean[float64](), vals))
	require.Equal(t, window.Summary{Count: 5, Sum: 21.5, Min: -1, Max: 9}, fold(t, window.Stats[float64](), vals))
	require.Equal(t, 4.3, fold(t, window.Stats[float64](), vals).Mean())
	require.Equal(t, 7, fold(t, window.Sum[int](), []int{3, 4}))
	require.Equal(t, "b", fold(t, window.Max[string](), []string{"a", "b"}))
	require.True(t, math.IsNaN(window.Mean[int]().Result(window.MeanState{})))
	require.True(t, math.IsNaN(window.Summary{}.Mean()))
}

func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dist := range []struct {
		name string
		gen  func() float64
	}{
		{"lognormal", func() float64 { return math.Exp(r.NormFloat64() * 2) }},
		{"uniform", func() float64 { return r.Float64() * 120 }},
		{"signed", func() float64 { return r.NormFloat64() * 50 }},
		{"with zeros", func() float64 { return float64(r.IntN(3)) }},
	} {
		t.Run(dist.name, func(t *testing.T) {
			vals := make([]float64, 10_000)
			for i := range vals {
				vals[i] = dist.gen()
			}
			sorted := slices.Sorted(slices.Values(vals))
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1} {
				got := fold(t, window.Quantile[float64](q), vals)
				exact := sorted[int(q*float64(len(sorted)-1))]
				require.InDelta(t, exact, got, math.Abs(exact)*window.SketchAccuracy+1e-12, "q=%v", q)
			}
		})
	}
	var s *window.Sketch
	require.True(t, math.IsNaN(s.Quantile(0.5)))
	require.Zero(t, s.Count())
	require.True(t, math.IsNaN(window.Quantile[float64](0.5).Result(nil)))
}

func TestSketchBoundedBins(t *testing.T) {
	var s window.Sketch
	for e := -300.0; e <= 300; e += 0.01 {
		s.Add(math.Pow(10, e))
	}
	require.Equal(t, int64(60001), s.Count())
	// 600 decades need more than MaxSketchBins: the bins nearest zero collapse, and the top
	// ~17 decades keep their accuracy.
	require.InEpsilon(t, 1e300, s.Quantile(1), window.SketchAccuracy)
	require.InEpsilon(t, math.Pow(10, 294), s.Quantile(0.99), window.SketchAccuracy)
}

// TestSketchInfinities: -Inf and +Inf (a rate over a zero duration) are counted below and
// above every finite value, and a quantile that falls on them is -Inf or +Inf. Before, Add
// gave them the bin index MinInt64 and panicked (makeslice: len out of range), so a single
// such value crashed the pipeline on every replay.
func TestSketchInfinities(t *testing.T) {
	inf := math.Inf(1)
	vals := []float64{inf, 3, -inf, -2, 0, 7, inf} // sorted: -Inf -2 0 3 7 +Inf +Inf
	for q, want := range map[float64]float64{0: -inf, 0.2: -2, 0.5: 3, 0.7: 7, 0.84: inf, 1: inf} {
		got := fold(t, window.Quantile[float64](q), vals)
		if math.IsInf(want, 0) {
			require.Equal(t, want, got, "q=%v", q)
		} else {
			require.InDelta(t, want, got, math.Abs(want)*window.SketchAccuracy, "q=%v", q)
		}
	}
	var s window.Sketch
	s.Add(-inf)
	s.Add(-inf)
	require.Equal(t, int64(2), s.Count())
	require.Equal(t, -inf, s.Quantile(1))
}

func TestQuantileInPipeline(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, window.Sliding(2*time.Minute, time.Minute), window.Quantile[float64](0.95))
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())
	for i := range 100 {
		q.Add(at(0, "a", sec(float64(i)), float64(i+1)))
	}
	q.End()
	h.RunUntilDone()
	got := rowsOf(res.Slice(), func(v float64) float64 { return v })
	require.Len(t, got, 2)
	require.Equal(t, time.Duration(0), got[0].Start)
	require.InEpsilon(t, 95, got[0].Value, window.SketchAccuracy) // 1..100
	require.InEpsilon(t, 98, got[1].Value, window.SketchAccuracy) // 61..100
}

// TestDropOnRevoke checks that a revoked partition's windows are discarded, not emitted.
func TestDropOnRevoke(t *testing.T) {
	clk := streamtest.NewClock(streamtest.Epoch)
	p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithIdleTimeout(0), stream.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	require.NoError(t, err)
	src := &pushSource[ev]{}
	w, err := window.Aggregate(stream.From[ev](p, src), evKey, evVal, window.Tumbling(time.Minute), window.Count[float64]())
	require.NoError(t, err)
	var got []window.Result[string, int64]
	stream.ForEachBatch(w.Results(), func(_ context.Context, _ stream.BatchInfo, b []window.Result[string, int64]) error {
		got = append(got, b...)
		return nil
	})
	step := func() {
		clk.Advance(time.Second)
		_, err := p.Step(t.Context())
		require.NoError(t, err)
	}
	require.True(t, src.in.TryPush(at(0, "a", sec(1), 1)))
	require.True(t, src.in.TryPush(at(1, "b", sec(1), 1)))
	step()
	require.Equal(t, 2, p.Stats().RetainedState)
	src.in.Revoke(1)
	step()
	require.Equal(t, 1, p.Stats().RetainedState)
	src.in.Close()
	step()
	require.Len(t, got, 1)
	require.Equal(t, "a", got[0].Key)
}
