// Tests of the tracker's replay marks (internal).

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
	c, err := newConfig(nil, TrackOption.applyTrack)
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

// With more cabs than markEvery, marks come every len(cabs) records, so that
// taking them (a pass over the cabs) costs a constant per record; they stay
// exact.
func TestTrackerReplayMarksThinOut(t *testing.T) {
	c, err := newConfig(nil, TrackOption.applyTrack)
	require.NoError(t, err)
	tr := &tracker{cfg: c, parts: map[int32]*trackPart{}}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	const cabs, n = 5000, 40_000
	in := make([]stream.Elem[Event], 0, n)
	for off := int64(0); off < n; off++ {
		at := t0.Add(time.Duration(off) * time.Millisecond)
		e := Event{CabID: fmt.Sprintf("CAB-%d", off%cabs), Time: at, Lat: 41.15 + float64(off)*1e-7, Lon: -8.61}
		in = append(in, stream.Elem[Event]{Value: e, Time: at.UnixNano(), Offset: off})
	}
	pc := &stream.PartitionContext{Partition: 0, PartitionWatermark: stream.NoWatermark, MaxOutOfOrderness: time.Second}
	tr.Process(pc, in, nil)
	marks := tr.parts[0].marks
	// The first after markEvery records, then every 5000 (the cabs held).
	require.Len(t, marks, 1+(n-markEvery)/cabs)
	require.Equal(t, int64(markEvery-1), marks[0].at)
	for i := 1; i < len(marks); i++ {
		require.Equal(t, int64(cabs), marks[i].at-marks[i-1].at)
		require.Equal(t, marks[i].at-cabs, marks[i].start)
	}
	start, at, ok := tr.ReplayStart(0, n)
	require.True(t, ok)
	require.Equal(t, at-cabs, start, "every cab's latest event is among the cabs records before the mark")
}
