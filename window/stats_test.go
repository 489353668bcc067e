package window_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// operatorState returns the stats of the operator named name after the last batch.
func operatorState(t *testing.T, h *streamtest.Harness, name string) stream.OperatorState {
	t.Helper()
	for _, s := range h.P.Stats().State {
		if s.Operator == name {
			return s
		}
	}
	t.Fatalf("no operator %q in the stats", name)
	return stream.OperatorState{}
}

// TestReportState: the window operator reports its open windows, set-aside records by reason
// and a byte estimate in BatchStats.State, for every kind of window. Out-of-orderness 10 s;
// batch 1 is a@0s, b@1s, a@65s, c@66s and d@67s, which the key limit refuses; batch 2 is
// a@80s (watermark 70 s: the windows up to 60 s close) and e@2s, late.
func TestReportState(t *testing.T) {
	for _, tc := range []struct {
		name         string
		asg          window.Assigner
		maxKeys      int
		open1, open2 int
	}{
		// [0,60) and [60,120); then [60,120).
		{"tumbling", window.Tumbling(time.Minute), 4, 2, 1},
		// Panes of 30 s at 0 and 60 s: windows ending at 60, 90 and 120; then 90 and 120.
		{"sliding", window.Sliding(time.Minute, 30*time.Second), 3, 3, 2},
		// Sessions a@0 and b@1 close at 57 s: a@65 and c@66 (d is a fourth key); then a@65-80
		// and c@66.
		{"session", window.Session(20 * time.Second), 3, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(10*time.Second))
			q, src := streamtest.NewQueue[ev](h)
			w, err := window.Aggregate(src, evKey, evVal, tc.asg, window.Count[float64](),
				window.WithMaxKeys(tc.maxKeys), window.WithName("w"))
			require.NoError(t, err)
			streamtest.Collect(w.Results())
			streamtest.Collect(w.Late())
			var off int64
			rec := func(key string, s float64) stream.Record[ev] {
				r := at(0, key, sec(s), 1)
				r.Offset, off = off, off+1
				return r
			}
			q.Add(rec("a", 0), rec("b", 1), rec("a", 65), rec("c", 66), rec("d", 67))
			h.Step()
			st := operatorState(t, h, "w")
			require.True(t, st.Reported)
			require.Equal(t, tc.open1, st.OpenWindows)
			require.Equal(t, int64(0), st.Late)
			require.Equal(t, int64(1), st.KeyLimit)
			require.Positive(t, st.Bytes)

			q.Add(rec("a", 80), rec("e", 2))
			h.Step()
			st = operatorState(t, h, "w")
			require.Equal(t, tc.open2, st.OpenWindows)
			require.Equal(t, int64(1), st.Late)
			require.Equal(t, int64(1), st.KeyLimit)
			require.Equal(t, w.LateCount(), st.Late)
			require.Equal(t, w.KeyLimitCount(), st.KeyLimit)

			drain := operatorState(t, h, "w.late")
			require.False(t, drain.Reported, "the late drain reports nothing of its own")

			q.End()
			h.RunUntilDone()
			require.Zero(t, operatorState(t, h, "w").OpenWindows, "the end of input closes every window")
		})
	}
}

// TestReportStateBytes: the byte estimate grows with the keys held, by at least their
// string headers and accumulators.
func TestReportStateBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		asg  window.Assigner
	}{
		{"tumbling", window.Tumbling(time.Minute)},
		{"sliding", window.Sliding(time.Minute, 30*time.Second)},
		{"session", window.Session(20 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bytes := func(keys int) int64 {
				h := streamtest.New(t, time.Second)
				q, src := streamtest.NewQueue[ev](h)
				_, err := window.Aggregate(src, evKey, evVal, tc.asg, window.Count[float64](), window.WithName("w"))
				require.NoError(t, err)
				recs := make([]stream.Record[ev], keys)
				for i := range recs {
					recs[i] = at(0, fmt.Sprint("k", i), time.Second, 1)
					recs[i].Offset = int64(i)
				}
				q.Add(recs...)
				h.Step()
				st := operatorState(t, h, "w")
				require.Equal(t, keys, st.Entries)
				return st.Bytes
			}
			small, large := bytes(10), bytes(10_000)
			t.Logf("10 keys: %d bytes, 10,000 keys: %d bytes", small, large)
			require.Greater(t, large-small, int64(9_990*(16+8)), "a string header and an int64 count per key at least")
			require.Less(t, large, int64(10_000*1024), "an estimate of the order of the state, not more")
		})
	}
}

// TestSlidingLongGraceState: a long grace does not allocate its panes up front. One key and
// one record with a 24 h grace over 1 s panes hold about 2 MB; before, the ring of panes was
// first sized for the whole grace: 131,072 panes for each of the first 64 key slots (134 MB).
func TestSlidingLongGraceState(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[ev](h)
	_, err := window.Aggregate(s, evKey, evVal, window.Sliding(time.Minute, time.Second), window.Count[float64](),
		window.WithGrace(24*time.Hour), window.WithName("w"))
	require.NoError(t, err)
	q.Add(at(0, "a", sec(10), 1))
	h.Step()
	require.Less(t, operatorState(t, h, "w").Bytes, int64(4<<20))
}

// TestOpenWindowsMatchBruteForce: after every batch, OpenWindows is the number of windows
// that hold a record that was not late and were not emitted yet (tumbling and sliding: by
// partition and window; sessions: by partition, key and session), as the brute force of
// property_test.go computes them from the records so far, over random windows and streams.
// Sliding counted windows whose starts, not ends, are multiples of the slide: with a size
// that is not a multiple of the slide (11.5 s every 1 s) it missed windows.
func TestOpenWindowsMatchBruteForce(t *testing.T) {
	for kind, name := range []string{"tumbling", "sliding", "session"} {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(100) {
				r := rand.New(rand.NewPCG(seed, uint64(kind)+1500))
				sp := randomSpec(r, kind)
				recs := randomRecords(r, 1+r.IntN(3), 20+r.IntN(200))
				h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(time.Duration(sp.ooo)), stream.WithIdleTimeout(0))
				q, s := streamtest.NewQueue[ev](h)
				w, err := window.Aggregate(s, evKey, evVal, sp.asg, stats, window.WithGrace(time.Duration(sp.grace)), window.WithName("w"))
				require.NoError(t, err)
				res := streamtest.Collect(w.Results())
				id := func(k wkey) wkey {
					if kind != 2 {
						k.key = "" // a tumbling or sliding window is open for all its keys
					}
					return k
				}
				emitted := map[wkey]bool{}
				for i := 0; i < len(recs); {
					n := min(1+r.IntN(10), len(recs)-i)
					q.Add(recs[i : i+n]...)
					i += n
					h.Step()
					for _, x := range res.Last() {
						emitted[id(wkey{x.Partition, x.Key, x.Start.UnixNano(), x.End.UnixNano()})] = true
					}
					want, _ := brute(sp, recs[:i])
					open := map[wkey]bool{}
					for k := range want {
						if k = id(k); !emitted[k] {
							open[k] = true
						}
					}
					require.Equal(t, len(open), operatorState(t, h, "w").OpenWindows, "seed %d spec %+v, after %d records", seed, sp, i)
				}
			}
		})
	}
}
