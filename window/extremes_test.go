package window_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestEventTimeAtEndsOfInt64: a record stamped at the earliest or the latest event time a
// source accepts (stream.Input.CheckEventTime: the ends of int64 nanoseconds, years 1677 and
// 2262, a bad device clock; the latest only with WithMaxFutureEventTime off) is counted once,
// in the Late stream or in a result of its own key whose window holds it, and changes
// nothing else: the other keys' results and the state held after each batch (so the
// commits) are those of the same input without it. In 1677 it comes first in its partition
// or after other records; in 2262 it comes last, as it moves the watermark past every
// window. Before, a window's start or end wrapped to the other end of int64 time: a
// Tumbling window of 1677 started in 2262 and, first in its partition, became its floor, so
// every later record was late; Sliding windows wrapped the same way; a Session's end in
// 2262 wrapped to 1677; and a first record in 1677 wrapped the partition's watermark, less
// the out-of-orderness, to 2262.
func TestEventTimeAtEndsOfInt64(t *testing.T) {
	type run struct {
		rows      []row
		bad       []window.Result[string, int64]
		late      []window.Late[ev]
		retained  []int
		committed []int64
	}
	exec := func(t *testing.T, asg window.Assigner, ooo time.Duration, bad *stream.Record[ev], first bool) run {
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(ooo))
		q, s := streamtest.NewQueue[ev](h)
		w, err := window.Aggregate(s, evKey, evVal, asg, window.Count[float64](), window.WithGrace(time.Minute))
		require.NoError(t, err)
		res, late := streamtest.Collect(w.Results()), streamtest.Collect(w.Late())
		batches := [][]stream.Record[ev]{
			{at(0, "a", sec(10), 1), at(0, "b", sec(20), 1)},
			{at(0, "a", sec(30), 1), at(0, "b", 7*time.Minute, 1)},
			{at(0, "a", 8*time.Minute, 1)},
		}
		for i, b := range batches {
			for j := range b {
				b[j].Offset = int64(100*(i+1) + j) // the same with or without bad
			}
		}
		if bad != nil {
			bad.Offset = 1000
			if first {
				bad.Offset = 1
				batches = append([][]stream.Record[ev]{{*bad}}, batches...)
			} else {
				batches = append(batches, []stream.Record[ev]{*bad})
			}
		}
		var r run
		for _, b := range batches {
			q.Add(b...)
			h.Step()
			r.retained = append(r.retained, h.P.Stats().RetainedState)
			r.committed = append(r.committed, q.Committed(0))
		}
		q.End()
		h.RunUntilDone()
		require.Zero(t, h.P.Stats().RetainedState)
		for _, x := range res.Slice() {
			if x.Key == "x" {
				r.bad = append(r.bad, x)
			} else {
				r.rows = append(r.rows, rowsOf([]window.Result[string, int64]{x}, i64)...)
			}
		}
		r.late = late.Slice()
		return r
	}
	for _, asg := range []window.Assigner{window.Tumbling(5 * time.Minute), window.Sliding(5*time.Minute, time.Minute), window.Session(5 * time.Minute)} {
		for _, ooo := range []time.Duration{0, 10 * time.Second} {
			for _, end := range []int64{math.MinInt64 + 1, math.MaxInt64 - 1} {
				firsts := []bool{true, false}
				if end > 0 {
					firsts = firsts[1:]
				}
				for _, first := range firsts {
					t.Run(fmt.Sprintf("%v/ooo %v/at %d/first %v", asg, ooo, end, first), func(t *testing.T) {
						want := exec(t, asg, ooo, nil, false)
						require.NotEmpty(t, want.rows)
						require.Empty(t, want.late)
						bad := stream.Record[ev]{Value: ev{Key: "x", V: 1}, EventTime: time.Unix(0, end)}
						got := exec(t, asg, ooo, &bad, first)
						require.Equal(t, want.rows, got.rows)
						if first {
							got.retained, got.committed = got.retained[1:], got.committed[1:]
						} else {
							got.retained, got.committed = got.retained[:len(want.retained)], got.committed[:len(want.committed)]
						}
						require.Equal(t, want.retained, got.retained, "state held after each batch")
						require.Equal(t, want.committed, got.committed, "commits after each batch")
						for _, l := range got.late {
							require.Equal(t, bad.Value, l.Value)
							require.Equal(t, end, l.EventTime.UnixNano())
							require.Equal(t, stream.ReasonLate, l.Reason)
							require.LessOrEqual(t, l.Start.UnixNano(), end, "Late.Start")
							require.Greater(t, l.End.UnixNano(), end, "Late.End")
						}
						var counted int64
						for _, x := range got.bad {
							require.True(t, x.Final)
							require.LessOrEqual(t, x.Start.UnixNano(), end, "Start")
							require.Greater(t, x.End.UnixNano(), end, "End")
							counted += x.Value
						}
						if len(got.late) == 1 {
							require.Zero(t, counted, "late and counted")
						} else {
							require.Empty(t, got.late)
							require.NotZero(t, counted, "neither late nor counted")
						}
					})
				}
			}
		}
	}
}

// TestGraceAfterEndOfInt64: a window whose end plus the grace is after the end of int64 time
// (a grace of up to 100 years, records after 2162) stays open until the end of the input,
// as it does for earlier records: its records count. Before, the end plus the grace wrapped
// to 1677 and every record was late.
func TestGraceAfterEndOfInt64(t *testing.T) {
	run := func(t *testing.T, asg window.Assigner, base time.Time) []row {
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Minute))
		q, s := streamtest.NewQueue[ev](h)
		w, err := window.Aggregate(s, evKey, evVal, asg, window.Count[float64](), window.WithGrace(math.MaxInt64))
		require.NoError(t, err)
		res := streamtest.Collect(w.Results())
		rec := func(key string, d time.Duration) stream.Record[ev] {
			return stream.Record[ev]{Value: ev{Key: key, V: 1}, EventTime: base.Add(d)}
		}
		q.Add(rec("a", sec(10)), rec("b", sec(20)))
		q.Add(rec("a", 10*time.Minute), rec("a", sec(30)))
		q.End()
		h.RunUntilDone()
		require.Zero(t, w.LateCount())
		var rows []row
		for _, r := range res.Slice() {
			rows = append(rows, row{Key: r.Key, Start: r.Start.Sub(base), End: r.End.Sub(base), Value: float64(r.Value), Final: r.Final})
		}
		return rows
	}
	for _, asg := range []window.Assigner{window.Tumbling(5 * time.Minute), window.Sliding(5*time.Minute, time.Minute), window.Session(5 * time.Minute)} {
		t.Run(asg.String(), func(t *testing.T) {
			want := run(t, asg, t0)
			require.NotEmpty(t, want)
			require.Equal(t, want, run(t, asg, time.Date(2200, 1, 1, 10, 0, 0, 0, time.UTC)))
		})
	}
}
