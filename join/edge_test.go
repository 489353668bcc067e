// Edge cases of the joins' event time: bounds and times at the ends of int64.

package join_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestIntervalHugeBoundsEndOfInput: an Interval join whose bounds reach past the end of
// int64 time from the records' times (an "unbounded" interval, lower or upper of
// math.MaxInt64) still empties its state at the end of input, and a LeftOuter join emits
// its left records without partner then (invariants 4 and 5), so bounded input ends with
// no commit held back.
func TestIntervalHugeBoundsEndOfInput(t *testing.T) {
	const huge = time.Duration(math.MaxInt64)
	for _, c := range []struct {
		name         string
		lower, upper time.Duration
	}{
		{"upper", 0, huge},
		{"lower", huge, 0},
		{"both", huge, huge},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, qa, qb, co := onePartition(t)
			out, err := join.IntervalOn(co, c.lower, c.upper, join.WithKind(join.LeftOuter))
			require.NoError(t, err)
			rows := streamtest.Collect(out.Joined())
			at := func(sec int64) time.Time { return time.Unix(1_700_000_000+sec, 0) }
			qa.Add(stream.Record[kv]{Value: stream.KV("x", 1), EventTime: at(10)},
				stream.Record[kv]{Value: stream.KV("y", 2), EventTime: at(10)})
			qb.Add(stream.Record[kv]{Value: stream.KV("x", 1), EventTime: at(10)},
				stream.Record[kv]{Value: stream.KV("z", 2), EventTime: at(20)})
			h.Run(2)
			qa.End()
			qb.End()
			h.RunUntilDone()
			require.Equal(t, map[string]int{"x/1/1": 1, "y/2/-": 1}, rowCounts(rows.Slice()))
			require.Zero(t, h.P.Stats().RetainedState, "state left at the end of input")
		})
	}
}

// TestUnmatchedRowsDownstreamWindow: an unmatched row of a LeftOuter join carries its left
// record's time, and is made when the watermark has passed that time plus upper, so an
// event-time window downstream, in the same partition, takes it for late unless its grace
// covers upper and an expiry bucket (see "Limits" in the package documentation).
func TestUnmatchedRowsDownstreamWindow(t *testing.T) {
	for _, grace := range []time.Duration{0, 6 * time.Second} {
		h, qa, qb, co := onePartition(t)
		out, err := join.IntervalOn(co, 0, 5*time.Second, join.WithKind(join.LeftOuter))
		require.NoError(t, err)
		// count the rows per second, matched or not
		w, err := window.Aggregate(out.Joined(), func(j join.Joined[string, int, int]) bool { return j.Matched },
			func(join.Joined[string, int, int]) int { return 1 }, window.Tumbling(time.Second), window.Count[int](),
			window.WithGrace(grace))
		require.NoError(t, err)
		res := streamtest.Collect(w.Results())
		late := streamtest.Collect(w.Late())
		at := func(sec int64) time.Time { return time.Unix(1_700_000_000+sec, 0) }
		qa.Add(stream.Record[kv]{Value: stream.KV("y", 1), EventTime: at(10)}) // no partner
		qb.Add(stream.Record[kv]{Value: stream.KV("z", 1), EventTime: at(10)})
		h.Run(2)
		for s := int64(11); s < 30; s++ {
			qa.Add(stream.Record[kv]{Value: stream.KV("a", int(s)), EventTime: at(s)})
			qb.Add(stream.Record[kv]{Value: stream.KV("a", int(s)), EventTime: at(s)})
			h.Run(1)
		}
		qa.End()
		qb.End()
		h.RunUntilDone()
		unmatched := 0
		for _, r := range res.Slice() {
			if !r.Key {
				unmatched += int(r.Value)
			}
		}
		if grace == 0 {
			require.Len(t, late.Slice(), 1, "the unmatched row is late downstream")
			require.False(t, late.Slice()[0].Value.Matched)
			require.Zero(t, unmatched)
		} else {
			require.Empty(t, late.Slice(), "grace %v", grace)
			require.Equal(t, 1, unmatched)
		}
	}
}

// TestWindowEarliestEventTime: a record at the earliest event time a source accepts
// (stream.CheckEventTime: the start of int64 time, in 1677, a bad device clock) falls in a
// window that closed long ago: it goes to the Late stream. Its window's start overflowed to
// the end of int64 time, so it was held, never late and never emitted, until the end of
// input, and held the partition's commits back at it.
func TestWindowEarliestEventTime(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, s := streamtest.NewQueue[shuffled](h)
	out, err := join.WindowOn(s, 3*time.Second, join.WithKind(join.LeftOuter))
	require.NoError(t, err)
	rows := streamtest.Collect(out.Joined())
	late := streamtest.Collect(out.Late())
	rec := func(id int, t time.Time) stream.Record[shuffled] {
		return stream.Record[shuffled]{Value: stream.KV("k", join.Side[int, int]{Left: id}), EventTime: t}
	}
	q.Add(rec(1, time.Unix(100, 0)), rec(2, time.Unix(0, math.MinInt64+1)), rec(3, time.Unix(200, 0)))
	h.Run(3)
	require.Equal(t, map[string]bool{"L2": true}, lateSet(late.Slice()))
	require.Equal(t, map[string]int{"k/1/-": 1}, rowCounts(rows.Slice()))
	require.Equal(t, 1, h.P.Stats().RetainedState, "only the record at 200 s is held")
}
