package telemetry

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// The tracker's replay marks: where a replay can start for its output from a record on, taken
// every markEvery records and bounded when nobody asks for them.
func TestTrackerReplayMarks(t *testing.T) {
	c, err := newConfig(nil)
	require.NoError(t, err)
	tr := &tracker{cfg: c, parts: map[int32]*trackPart{}}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	const cabs = 10
	batch := func(from, n int64) []stream.Elem[Event] {
		in := make([]stream.Elem[Event], 0, n)
		for off := from; off < from+n; off++ {
			at := t0.Add(time.Duration(off) * 100 * time.Millisecond)
			e := Event{CabID: fmt.Sprintf("CAB-%d", off%cabs), Time: at, Lat: 41.15 + float64(off)*1e-6, Lon: -8.61}
			in = append(in, stream.Elem[Event]{Value: e, Time: at.UnixNano(), Offset: off})
		}
		return in
	}
	pc := &stream.PartitionContext{Partition: 0, PartitionWatermark: stream.NoWatermark, MaxOutOfOrderness: time.Second}

	_, _, ok := tr.ReplayStart(0, 0)
	require.False(t, ok, "no marks before any record")
	tr.Process(pc, batch(0, 5000), nil)
	start, at, ok := tr.ReplayStart(0, 3000)
	require.True(t, ok)
	require.True(t, at <= 3000 && at > 3000-markEvery, "the newest mark at or before the asked offset, not %d", at)
	// Every cab's latest event is among the cabs records before the mark.
	require.Equal(t, at-cabs, start)
	_, _, ok = tr.ReplayStart(0, markEvery)
	require.False(t, ok, "marks before the last answer are forgotten")

	// A tracker nobody asks keeps at most maxMarks marks.
	for off := int64(5000); off < 5000+int64(maxMarks+10)*markEvery; off += 100_000 {
		tr.Process(pc, batch(off, 100_000), nil)
	}
	require.LessOrEqual(t, len(tr.parts[0].marks), maxMarks)
	start, at, ok = tr.ReplayStart(0, 1<<40)
	require.True(t, ok)
	require.Equal(t, at-cabs, start)
}
