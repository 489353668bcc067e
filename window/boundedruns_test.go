package window_test

import (
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestBoundedRunsInARowCompleteOpenWindows: a bounded run (fleetpipeline -exit-when-idle)
// whose end closed windows that were still open, then a run on the next records of the
// topic from the committed position, give the results of one run over all the records: the
// later run rebuilds and completes every window the end closed early, not only the newest.
// Here [0, 1m) is still open when the first run ends (watermark 0:40, end plus grace 1:30):
// 0:45, out of order within the bound, comes in the second run and counts in it, as in one
// run. The commit stayed at the first record of the newest window, [1m, 2m): the second run
// took that window as its floor, reported 0:40 (counted by the first run) and 0:45 late, and
// [0, 1m) kept the first run's 3 (fleetpipeline: 41 late events, 30 cab-stats documents of
// the first minute one event short, against one run over the same 40,000 events).
func TestBoundedRunsInARowCompleteOpenWindows(t *testing.T) {
	recs := []stream.Record[ev]{
		at(0, "a", sec(10), 1),
		at(0, "a", sec(50), 1),
		at(0, "a", sec(70), 1), // the newest window, [1m, 2m)
		at(0, "a", sec(40), 1), // out of order, on time: the watermark is 0:40
		// the second run's own records
		at(0, "a", sec(45), 1), // on time too: [0, 1m) closes at 1:30
		at(0, "a", sec(80), 1),
	}
	for i := range recs {
		recs[i].Offset = int64(i)
	}
	const split = 4
	for _, tc := range []struct {
		name string
		asg  window.Assigner
	}{
		{"tumbling", window.Tumbling(time.Minute)},
		{"sliding", window.Sliding(time.Minute, 30*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantLate, _ := boundedRun(t, tc.asg, nil, recs)
			require.Zero(t, wantLate, "one run: no record is late")
			got, late1, pos := boundedRun(t, tc.asg, nil, recs[:split])
			require.Zero(t, late1, "first run")
			require.Less(t, pos.Offset, int64(split), "the first run's commit")
			got2, late2, _ := boundedRun(t, tc.asg, &pos, recs[pos.Offset:])
			maps.Copy(got, got2) // a sink overwrites a window's document
			require.Equal(t, want, got, "final results of the two runs against one run")
			require.Zero(t, late2, "second run: records late only because the first run's end closed their windows")
		})
	}
}

type windowID struct {
	Key        string
	Start, End time.Duration
}

// boundedRun runs the window over recs (resuming from pos if not nil) until the input ends,
// and returns the final results, the number of late records and the committed position.
func boundedRun(t *testing.T, asg window.Assigner, pos *stream.Position, recs []stream.Record[ev]) (map[windowID]int64, int, stream.Position) {
	t.Helper()
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(30*time.Second))
	q, s := streamtest.NewQueue[ev](h)
	w, err := window.Aggregate(s, evKey, evVal, asg, window.Count[float64](), window.WithGrace(30*time.Second))
	require.NoError(t, err)
	res, late := streamtest.Collect(w.Results()), streamtest.Collect(w.Late())
	if pos != nil {
		q.Resume(*pos)
	}
	for _, r := range recs {
		q.Add(r) // one record a batch
	}
	q.End()
	h.RunUntilDone()
	out := map[windowID]int64{}
	for _, r := range res.Slice() {
		if r.Final {
			out[windowID{r.Key, r.Start.Sub(t0), r.End.Sub(t0)}] = r.Value
		}
	}
	cp, ok := q.CommittedPosition(0)
	require.True(t, ok, "a commit")
	return out, len(late.Slice()), cp
}
