package window_test

import (
	"maps"
	"slices"
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
	runsInARow(t, recs, 4, func(t *testing.T, r inARow) {
		require.Empty(t, r.wantLate, "one run: no record is late")
		require.Empty(t, r.late1, "first run")
		require.Less(t, r.pos.Offset, int64(4), "the first run's commit")
		require.Equal(t, r.want, r.got, "final results of the two runs against one run")
		require.Empty(t, r.late2, "second run: records late only because the first run's end closed their windows")
	})
}

// TestBoundedRunsInARowLateAtBoundary: the spurious late records of bounded runs in a row
// (telemetry's TestZoneDemandBoundedRunsInARow, seeds 3, 29 and 34), in their smallest form.
// 0:55 comes after 1:02, the first record of [1m, 2m), out of order within the bound: the
// first run counts it in [0, 1m), which fires at 2:40 (watermark 2:10, past its end plus the
// grace, 1:30), and the replay position moves to 1:02, the first record of the oldest open
// window. The second run starts there, takes [1m, 2m) as its floor and judges 0:55 late: it
// cannot tell it from the same record after a fresh start at 1:02, which must judge it late
// (its window starts before the first record's); only the partition's floor as of the commit
// tells them apart, and the checkpoint does not carry it (see "Delivery and replay" in the
// package documentation). But 0:55 is before the end of the first run's last acknowledged
// batch, the late stream's replay start in the checkpoint, so the second run does not report
// it (before, it reported it again): the documents are one run's, and 0:20
// (behind the watermark) is late in both. The limit stays for such a record after the last
// acknowledged batch (a crash before its batch was acknowledged).
func TestBoundedRunsInARowLateAtBoundary(t *testing.T) {
	recs := []stream.Record[ev]{
		at(0, "a", sec(10), 1),
		at(0, "a", sec(50), 1),
		at(0, "a", sec(62), 1),  // [1m, 2m)
		at(0, "a", sec(55), 1),  // out of order, on time (watermark 0:32): counted in [0, 1m)
		at(0, "a", sec(160), 1), // watermark 2:10: [0, 1m) fires (and sliding [30s, 90s))
		// the second run's own records
		at(0, "a", sec(20), 1), // late: [0, 1m) fired
		at(0, "a", sec(170), 1),
	}
	runsInARow(t, recs, 5, func(t *testing.T, r inARow) {
		require.Equal(t, []int64{5}, r.wantLate, "one run: 0:20 is late")
		require.Empty(t, r.late1, "first run")
		require.EqualValues(t, 2, r.pos.Offset, "the first run's commit: 1:02")
		require.Equal(t, r.want, r.got, "final results of the two runs against one run")
		require.Equal(t, []int64{5}, r.late2, "second run: 0:20; 0:55, judged late again, was acknowledged by the first run")
	})
}

// TestBoundedRerunsReportLateOnce: a job that ends when idle (fleetpipeline -exit-when-idle),
// run again and again with no new input, reports each late record once. The commit stays at
// the first record of the window the end closed early, [1m, 2m), so every rerun replays the
// three late records after it; they were dead-lettered in the batches the first run
// acknowledged, which the checkpoint records as the late stream's replay start
// (stream.PartitionContext.SkippedBefore). Before, each rerun reported all three again (12
// dead letters over 4 runs). The reruns' results are the first run's.
func TestBoundedRerunsReportLateOnce(t *testing.T) {
	recs := []stream.Record[ev]{
		at(0, "a", sec(10), 1),
		at(0, "a", sec(50), 1),
		at(0, "a", sec(100), 1), // watermark 1:10: [1m, 2m) opens, [0, 1m) stays open until 1:30
		at(0, "a", sec(130), 1), // watermark 1:40: [0, 1m) fires
		at(0, "a", sec(20), 1),  // late
		at(0, "a", sec(30), 1),  // late
		at(0, "a", sec(40), 1),  // late
	}
	eachWindow(t, recs, func(t *testing.T, asg window.Assigner) {
		want, late, pos := boundedRun(t, asg, nil, recs)
		require.Equal(t, []int64{4, 5, 6}, late, "first run")
		require.Less(t, pos.Offset, int64(4), "the commit stays at the window the end closed early")
		for run := 2; run <= 4; run++ {
			got, late, next := boundedRun(t, asg, &pos, recs[pos.Offset:])
			require.Empty(t, late, "run %d, no new input: the late records were reported", run)
			for id, v := range got {
				require.Equal(t, want[id], v, "run %d: window %v", run, id)
			}
			require.Equal(t, pos.Offset, next.Offset, "run %d: the commit", run)
			pos = next
		}
		// New records after the reruns: a late one among them is reported.
		more := append(slices.Clone(recs), at(0, "a", sec(5), 1), at(0, "a", sec(140), 1))
		more[7].Offset, more[8].Offset = 7, 8
		_, late, _ = boundedRun(t, asg, &pos, more[pos.Offset:])
		require.Equal(t, []int64{7}, late, "the next run's own late record")
	})
}

// inARow is what runsInARow gives its check: one run's final results and late records, and
// those of a first run and of a second run from the first one's commit (got: the final
// results of both, the second's overwriting, as a sink does by document id).
type inARow struct {
	want, got              map[windowID]int64
	wantLate, late1, late2 []int64
	pos                    stream.Position
}

// runsInARow runs, for each window of eachWindow, the window over recs in one run, and over
// recs[:split] then from the first run's commit to the end in two, and calls check.
func runsInARow(t *testing.T, recs []stream.Record[ev], split int, check func(*testing.T, inARow)) {
	eachWindow(t, recs, func(t *testing.T, asg window.Assigner) {
		var r inARow
		r.want, r.wantLate, _ = boundedRun(t, asg, nil, recs)
		r.got, r.late1, r.pos = boundedRun(t, asg, nil, recs[:split])
		got2, late2, _ := boundedRun(t, asg, &r.pos, recs[r.pos.Offset:])
		maps.Copy(r.got, got2)
		r.late2 = late2
		check(t, r)
	})
}

// eachWindow numbers recs by offset and runs test for a Tumbling minute and a Sliding minute
// every 30 s.
func eachWindow(t *testing.T, recs []stream.Record[ev], test func(*testing.T, window.Assigner)) {
	for i := range recs {
		recs[i].Offset = int64(i)
	}
	for _, tc := range []struct {
		name string
		asg  window.Assigner
	}{
		{"tumbling", window.Tumbling(time.Minute)},
		{"sliding", window.Sliding(time.Minute, 30*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) { test(t, tc.asg) })
	}
}

type windowID struct {
	Key        string
	Start, End time.Duration
}

// boundedRun runs the window over recs (resuming from pos if not nil) until the input ends,
// and returns the final results, the offsets of the late records and the committed position
// (pos when the run committed nothing new).
func boundedRun(t *testing.T, asg window.Assigner, pos *stream.Position, recs []stream.Record[ev]) (map[windowID]int64, []int64, stream.Position) {
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
	var lateOffs []int64
	for _, l := range late.Slice() {
		lateOffs = append(lateOffs, l.Offset)
	}
	cp, ok := q.CommittedPosition(0)
	if !ok && pos != nil {
		return out, lateOffs, *pos // nothing new to commit: the position it resumed from
	}
	require.True(t, ok, "a commit")
	return out, lateOffs, cp
}
