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
			h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
			qa, sa := streamtest.NewQueue[kv](h)
			qb, sb := streamtest.NewQueue[kv](h)
			qa.SetPartitions(1)
			qb.SetPartitions(1)
			_, co := streamtest.NewRepartition(h, join.Tag(sa, sb), "join", streamtest.NewExchangeLog[shuffled](1))
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
