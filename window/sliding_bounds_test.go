package window_test

import (
	"fmt"
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
// state an hour later is about what it is without the burst, for every kind of window:
// Sliding kept its slab of rings sized for the burst's keys (and its key map) for ever.
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
			require.Less(t, after, 20*quiet+(1<<20), "state bytes an hour after a burst of keys that are all gone")
		})
	}
}
