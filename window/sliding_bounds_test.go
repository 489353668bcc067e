package window_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestSlidingPanesBounded: a window spans size/gcd(size, slide) panes, and each key keeps a
// ring of them. Sliding(1m, 1m/7) has panes of 3 ns, 2e10 a window: it passed validation and
// its first record asked for a ring of 2^35 panes, a fatal out-of-memory. It is refused with
// ErrInvalidOption, naming the panes; a day by seconds is accepted.
func TestSlidingPanesBounded(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, src := streamtest.NewQueue[ev](h)
	_, err := window.Aggregate(src, evKey, evVal, window.Sliding(time.Minute, time.Minute/7), window.Count[float64]())
	require.ErrorIs(t, err, window.ErrInvalidOption)
	require.ErrorContains(t, err, "panes")
	_, err = window.Aggregate(src, evKey, evVal, window.Sliding(24*time.Hour, time.Second), window.Count[float64](), window.WithName("day"))
	require.NoError(t, err)
}

// TestBurstOfKeysLetGo: a burst of 20,000 keys in one minute, then one key for an hour. The
// state an hour later is about what it is without the burst, for every kind of window, but
// for the split check's bounded memory of recent keys: Sliding kept its slab of rings sized
// for the burst's keys (and its key map) for ever.
func TestBurstOfKeysLetGo(t *testing.T) {
	for _, tc := range []struct {
		name string
		asg  window.Assigner
	}{
		{"tumbling", window.Tumbling(time.Minute)},
		{"sliding", window.Sliding(time.Minute, 10*time.Second)},
		{"session", window.Session(10 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := func(burst int) (int64, int) {
				h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
				q, src := streamtest.NewQueue[ev](h)
				w, err := window.Aggregate(src, evKey, evVal, tc.asg, window.Count[float64](), window.WithName("w"))
				require.NoError(t, err)
				res := streamtest.Collect(w.Results())
				var off int64
				var recs []stream.Record[ev]
				for i := range burst {
					r := at(0, fmt.Sprint("k", i), time.Second, 1)
					r.Offset, off = off, off+1
					recs = append(recs, r)
				}
				q.Add(recs...)
				for s := 2; s < 3600; s += 5 {
					r := at(0, "steady", sec(float64(s)), 1)
					r.Offset, off = off, off+1
					q.Add(r)
				}
				h.Run(1 + 3598/5 + 1)
				require.NotEmpty(t, res.Slice())
				st := operatorState(t, h, "w")
				return st.Bytes, st.Entries
			}
			quiet, qe := state(1)
			after, ae := state(20_000)
			t.Logf("an hour after the burst: %d entries, %d bytes; without it: %d entries, %d bytes", ae, after, qe, quiet)
			require.Equal(t, qe, ae)
			// The split check remembers the burst's keys (its bounded memory of recent keys,
			// about 50 bytes a key here, counted in Bytes): 20,000 keys, 1 MiB.
			require.Less(t, after, 20*quiet+(2<<20), "state bytes an hour after a burst of keys that are all gone")
		})
	}
}

// TestSlidingGapLetGo: 64 keys every second for 5 minutes, a gap of 3 hours in event time
// (a partition that had no data overnight), then 5 more minutes: the state is about what it
// is without the gap. Before, the first record after the gap grew the rings to span the
// panes from the oldest window still to fire to its own, 10,800 of 1 s, though its
// watermark closed those windows, and the rings kept their 16,384 panes a key for ever:
// 16.8 MB against 0.14 MB without the gap, 118 times as much.
func TestSlidingGapLetGo(t *testing.T) {
	state := func(gap time.Duration) int64 {
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(5*time.Second))
		q, src := streamtest.NewQueue[ev](h)
		w, err := window.Aggregate(src, evKey, evVal, window.Sliding(time.Minute, time.Second), window.Count[float64](), window.WithName("w"))
		require.NoError(t, err)
		res := streamtest.Collect(w.Results())
		var off int64
		for s := range 600 {
			d := sec(float64(s))
			if s >= 300 {
				d += gap
			}
			recs := make([]stream.Record[ev], 0, 64)
			for k := range 64 {
				r := at(0, fmt.Sprint("k", k), d, 1)
				r.Offset, off = off, off+1
				recs = append(recs, r)
			}
			q.Add(recs...)
		}
		h.Run(600)
		require.NotEmpty(t, res.Slice())
		return operatorState(t, h, "w").Bytes
	}
	quiet, after := state(0), state(3*time.Hour)
	t.Logf("state bytes after the gap: %d; without it: %d", after, quiet)
	require.Less(t, after, 4*quiet, "state bytes once the windows before the gap fired")
}

// TestSlidingGapNotSpanned: a partition whose first record's clock is a day behind (a device
// whose clock was not set yet; stream.Input.CheckEventTime bounds only the future), then a
// record a day later in the same batch. That record closes every window before it, so the
// rings need not span the day of 1 s panes between: they did, allocating 86,400 panes for
// every key column (134 MB for one key; with a clock at 1970 the terabytes that crash the
// process, and every replay again). The windows the batch's end would fire are fired before
// the ring grows, with the same results as the brute force.
func TestSlidingGapNotSpanned(t *testing.T) {
	sp := spec{asg: window.Sliding(time.Minute, time.Second), size: int64(time.Minute), slide: int64(time.Second), ooo: int64(5 * time.Second)}
	recs := []stream.Record[ev]{at(0, "a", -24*time.Hour, 1), at(0, "a", -24*time.Hour+sec(30), 2)}
	for i := range 100 {
		recs = append(recs, at(0, "a", sec(float64(i)), float64(i)))
	}
	for i := range recs {
		recs[i].Offset = int64(i)
	}
	for _, every := range []bool{false, true} {
		t.Run(fmt.Sprint("every batch ", every), func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Duration(sp.ooo)))
			q, src := streamtest.NewQueue[ev](h)
			opts := []window.Option{window.WithName("w")}
			if every {
				opts = append(opts, window.WithEmit(window.EveryBatch))
			}
			w, err := window.Aggregate(src, evKey, evVal, sp.asg, stats, opts...)
			require.NoError(t, err)
			res := streamtest.Collect(w.Results())
			q.Add(recs[:3]...) // the day-old records and the first of today's
			q.Add(recs[3:]...)
			q.End()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			h.Step()
			runtime.ReadMemStats(&after)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "bytes allocated by the batch with the gap")
			h.RunUntilDone()
			got := map[wkey]window.Summary{}
			for _, r := range res.Slice() {
				if r.Final {
					got[wkey{r.Partition, r.Key, r.Start.UnixNano(), r.End.UnixNano()}] = r.Value
				}
			}
			want, wantLate := brute(sp, recs)
			require.Empty(t, diff(want, got))
			require.Equal(t, int64(wantLate), w.LateCount())
		})
	}
}
