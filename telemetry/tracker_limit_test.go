// Tests of the tracker's bound on cabs (WithMaxCabs) and of an event
// stamped decades ahead.

package telemetry_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
)

// TestTrackMaxCabs: past WithMaxCabs, the events of new cabs are not tracked but
// go to the dead letters with reason key_limit, their JSON and origin; events
// of held cabs are tracked as usual; a cab that falls silent frees its place;
// every event is either tracked or dead-lettered; one warning is logged.
func TestTrackMaxCabs(t *testing.T) {
	var logs bytes.Buffer
	h := streamtest.New(t, time.Second, stream.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s, telemetry.WithMaxCabs(2), telemetry.WithSilentAfter(time.Minute))
	require.NoError(t, err)
	events, alerts, dead := streamtest.Collect(tr.Events()), streamtest.Collect(tr.Alerts()), streamtest.Collect(tr.DeadLetters())

	in := []telemetry.Event{
		ev("A", 0, 41.0, 10, avail),
		ev("B", 0, 41.2, 10, avail),
		ev("C", 5, 41.4, 10, avail), // a third cab: refused
		ev("A", 10, 41.0001, 10, avail),
		ev("C", 15, 41.4001, 10, avail), // still refused
		ev("B", 20, 41.2001, 10, avail),
		ev("A", 90, 41.001, 10, avail),   // B falls silent (watermark 90 > 20 + 60) after this event
		ev("C", 100, 41.4002, 10, avail), // tracked: B's place is free
	}
	for _, e := range in {
		q.Add(rec(e))
	}
	h.Run(len(in))
	require.EqualValues(t, 2, tr.Cabs(), "A and C")
	q.End()
	h.RunUntilDone()

	var tracked []string
	for _, e := range events.Slice() {
		tracked = append(tracked, e.CabID+"@"+e.Time.Sub(t0).String())
	}
	require.Equal(t, []string{"A@0s", "B@0s", "A@10s", "B@20s", "A@1m30s", "C@1m40s"}, tracked)

	dls := dead.Slice()
	require.Len(t, dls, 2)
	for i, off := range []int64{2, 4} {
		dl := dls[i]
		require.Equal(t, stream.ReasonKeyLimit, dl.Reason)
		require.Equal(t, "C", string(dl.Key))
		require.Equal(t, int32(0), dl.Partition)
		require.Equal(t, off, dl.Offset)
		require.Contains(t, dl.Err, "MaxCabs")
		e, err := telemetry.Decode(dl.Value)
		require.NoError(t, err)
		require.Equal(t, in[off], e)
	}
	require.EqualValues(t, 2, tr.KeyLimitCount())
	require.Equal(t, len(in), len(events.Slice())+len(dls), "every event tracked or dead-lettered")

	// B's device-silent alert; C's refused events started nothing.
	require.Len(t, alerts.Slice(), 1)
	require.Equal(t, telemetry.AlertDeviceSilent, alerts.Slice()[0].Type)
	require.Equal(t, "B", alerts.Slice()[0].CabID)

	require.Equal(t, 1, strings.Count(logs.String(), "key limit"), logs.String())
	require.Contains(t, logs.String(), "max_cabs=2")
	require.EqualValues(t, 2, tr.Cabs(), "the end of input keeps the cabs it holds, for the commit to stay where they need it")
}

// TestTrackWithoutLimit: without WithMaxCabs nothing is refused, and the
// tracker's state size counts the cabs it holds.
func TestTrackWithoutLimit(t *testing.T) {
	var state []int
	h := streamtest.New(t, time.Second, stream.WithStatsHook(func(st stream.BatchStats) { state = append(state, st.RetainedState) }))
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	dead := streamtest.Collect(tr.DeadLetters())
	var rs []stream.Record[telemetry.Event]
	for i := range 50 {
		rs = append(rs, rec(ev(string(rune('A'+i%26))+string(rune('a'+i/26)), float64(i), 41, 10, avail)))
	}
	q.Add(rs...)
	h.Run(1)
	require.EqualValues(t, 50, tr.Cabs())
	require.Equal(t, []int{50}, state)
	require.Empty(t, dead.Slice())
	require.Zero(t, tr.KeyLimitCount())
}

func TestMaxCabsOption(t *testing.T) {
	h := streamtest.New(t, time.Second)
	_, s := streamtest.NewQueue[telemetry.Event](h)
	_, err := telemetry.Track(s, telemetry.WithMaxCabs(-1))
	require.ErrorIs(t, err, telemetry.ErrInvalidOption)
	_, err = telemetry.Track(s, telemetry.WithMaxCabs(0))
	require.NoError(t, err)
}

// TestTrackBadClockBounded: an event stamped decades ahead moves the
// tracker's watermark no further than the pipeline's future bound, so cabs
// that keep reporting are not declared silent.
func TestTrackBadClockBounded(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxFutureEventTime(time.Hour))
	h.Clock.Set(t0)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s, telemetry.WithSilentAfter(2*time.Hour))
	require.NoError(t, err)
	alerts := streamtest.Collect(tr.Alerts())
	bad := ev("X", 0, 41.5, 10, avail)
	bad.Time = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	q.Add(rec(ev("A", 0, 41.0, 10, avail)), rec(bad), rec(ev("A", 15, 41.0001, 10, avail)))
	h.Run(3)
	require.Empty(t, alerts.Slice(), "the bad clock made cabs silent")
}

// TestTrackReportState: the tracker reports in the pipeline's stats the events
// refused by the key limit and a byte estimate that follows the cabs held: at
// least their 128-byte states, and less once a cab falls silent.
func TestTrackReportState(t *testing.T) {
	var got []stream.OperatorState
	h := streamtest.New(t, time.Second, stream.WithStatsHook(func(st stream.BatchStats) {
		for _, o := range st.State {
			if o.Operator == "cab-tracker" {
				got = append(got, o)
			}
		}
	}))
	q, s := streamtest.NewQueue[telemetry.Event](h)
	_, err := telemetry.Track(s, telemetry.WithMaxCabs(2), telemetry.WithSilentAfter(time.Minute))
	require.NoError(t, err)
	q.Add(rec(ev("A", 0, 41.0, 10, avail)), rec(ev("B", 0, 41.2, 10, avail)), rec(ev("C", 5, 41.4, 10, avail)))
	h.Run(1)
	q.Add(rec(ev("A", 90, 41.001, 10, avail))) // B falls silent
	h.Run(1)
	require.Len(t, got, 2)
	for _, o := range got {
		require.True(t, o.Reported)
		require.Zero(t, o.OpenWindows)
		require.Zero(t, o.Late)
		require.EqualValues(t, 1, o.KeyLimit, "C refused")
	}
	require.Equal(t, 2, got[0].Entries)
	require.Equal(t, 1, got[1].Entries)
	require.GreaterOrEqual(t, got[0].Bytes, int64(2*128))
	require.Less(t, got[1].Bytes, got[0].Bytes, "B's state is gone")
}

// TestTrackCabSeen: WithCabSeen is called with the partition and cab of each cab's first event
// in a partition (each partition its own: the pipeline runs a batch's partitions one after
// the other) and of every event the tracker does not hold (past WithMaxCabs); not for the
// events of cabs it holds.
func TestTrackCabSeen(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	q.SetPartitions(2)
	var seen []string
	tr, err := telemetry.Track(s, telemetry.WithMaxCabs(2), telemetry.WithSilentAfter(time.Minute),
		telemetry.WithCabSeen(func(p int32, cab string) { seen = append(seen, fmt.Sprintf("%s/%d", cab, p)) }))
	require.NoError(t, err)
	streamtest.Collect(tr.Events())
	streamtest.Collect(tr.DeadLetters())
	var recs []stream.Record[telemetry.Event]
	off := map[int32]int64{}
	add := func(p int32, e telemetry.Event) {
		recs = append(recs, stream.Record[telemetry.Event]{Value: e, Partition: p, Offset: off[p], EventTime: e.Time})
		off[p]++
	}
	add(0, ev("A", 0, 41.0, 10, avail))
	add(0, ev("A", 10, 41.0001, 10, avail)) // held: not seen again
	add(1, ev("A", 12, 41.0002, 10, avail)) // the same cab on another partition
	add(0, ev("B", 15, 41.2, 10, avail))    // the tracker holds two cabs now (A and B on 0)
	add(1, ev("C", 16, 41.4, 10, avail))    // past the limit: refused, seen
	add(1, ev("C", 17, 41.4001, 10, avail)) // refused again, seen again
	add(0, ev("A", 20, 41.0003, 10, avail))
	q.AddWithOffsets(recs...)
	q.End()
	h.RunUntilDone()
	require.Equal(t, []string{"A/0", "B/0", "A/1", "C/1", "C/1"}, seen)
}
