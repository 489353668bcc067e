package stream_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestWatermarkAllIdleTakesSlowest is the defect of issue 11: two partitions pause for longer
// than the idle timeout; the pipeline watermark must not jump to the furthest partition, or
// the other one loses the records it brings when it returns.
func TestWatermarkAllIdleTakesSlowest(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(3*time.Second))
	q, src := streamtest.NewQueue[int](h)
	at := func(min int) time.Time { return streamtest.Epoch.Add(time.Duration(min) * time.Minute) }
	counts, err := window.Aggregate(src, func(int) int { return 0 }, func(v int) int { return v },
		window.Tumbling(time.Minute), window.Count[int]())
	require.NoError(t, err)
	res := streamtest.Collect(counts.Results())
	late := streamtest.Collect(counts.Late())

	// Partition 0 is at minute 10, partition 1 at minute 50; then both go quiet.
	q.Add(stream.Record[int]{Partition: 0, EventTime: at(10)}, stream.Record[int]{Partition: 1, EventTime: at(50)})
	q.AddEmpty(5)
	// Partition 0 comes back, in order after its own records.
	q.Add(stream.Record[int]{Partition: 0, Offset: 1, EventTime: at(11)}, stream.Record[int]{Partition: 0, Offset: 2, EventTime: at(12)})
	q.End()
	h.RunUntilDone()

	require.Empty(t, late.Slice(), "a partition that returns after an all-idle pause lost records")
	var total int64
	for _, r := range res.Slice() {
		total += r.Value
	}
	require.Equal(t, int64(4), total)
	for _, i := range res.Infos() {
		if i.Batch < 7 { // before partition 0 returns at batch 7
			require.LessOrEqual(t, i.Watermark.UnixNano(), at(10).UnixNano(), "batch %d: the watermark passed the slowest partition", i.Batch)
		}
	}
}

// TestWatermarkFutureEventCapped: a source that does not check event times pushes a record
// stamped in 2099; it must not move the watermark past the clock + WithMaxFutureEventTime
// (sources that check, like the Kafka source, dead-letter it instead), and nothing is lost.
func TestWatermarkFutureEventCapped(t *testing.T) {
	h := streamtest.New(t, time.Minute, stream.WithMaxFutureEventTime(time.Hour))
	q, src := streamtest.NewQueue[int](h)
	counts, err := window.Aggregate(src, func(int) int { return 0 }, func(v int) int { return v },
		window.Tumbling(time.Minute), window.Count[int]())
	require.NoError(t, err)
	res := streamtest.Collect(counts.Results())
	late := streamtest.Collect(counts.Late())
	now := streamtest.Epoch
	q.Add(stream.Record[int]{Offset: 0, EventTime: now})
	q.Add(stream.Record[int]{Offset: 1, EventTime: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)})
	q.AddEmpty(100)
	// 100 minutes later, a record 90 minutes after the first: 2099 would have made it late.
	q.Add(stream.Record[int]{Offset: 2, EventTime: now.Add(90 * time.Minute)})
	h.Run(103)
	for _, i := range res.Infos() {
		require.LessOrEqual(t, i.Watermark.UnixNano(), i.Time.Add(time.Hour).UnixNano(), "batch %d", i.Batch)
	}
	require.Empty(t, late.Slice(), "a good record after a bad clock was counted late")
	q.End()
	h.RunUntilDone()
	var total int64
	for _, r := range res.Slice() {
		total += r.Value
	}
	require.Equal(t, int64(3), total)
}

func TestCheckEventTime(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxFutureEventTime(time.Hour))
	var in *stream.Input[int]
	stream.From(h.P, stream.Source[int](binder(func(i *stream.Input[int]) { in = i })))
	require.NotNil(t, in)
	now := h.Clock.Now()
	for _, tc := range []struct {
		name string
		t    time.Time
		ok   bool
	}{
		{"zero means processing time", time.Time{}, true},
		{"now", now, true},
		{"an hour ahead", now.Add(time.Hour), true},
		{"past", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"just over the bound", now.Add(time.Hour + time.Millisecond), false},
		{"2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"year 1000", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"year 9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		err := in.CheckEventTime(tc.t)
		if tc.ok {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, stream.ErrEventTime, tc.name)
		}
	}
	h.Clock.Advance(2 * time.Hour) // the pipeline's clock, not the wall clock
	require.NoError(t, in.CheckEventTime(now.Add(2*time.Hour)))
}

// countingClock counts the readings of a manual clock.
type countingClock struct {
	*streamtest.Clock
	reads int
}

func (c *countingClock) Now() time.Time { c.reads++; return c.Clock.Now() }

// TestCheckEventTimeReadsClockOnlyPastBound: a source checks every record, so the check reads
// the clock only for a time past the last reading plus the bound, and still gives the answer
// of the clock now.
func TestCheckEventTimeReadsClockOnlyPastBound(t *testing.T) {
	for _, bound := range []time.Duration{time.Hour, math.MaxInt64} { // now + the second is past year 2262
		clk := &countingClock{Clock: streamtest.NewClock(streamtest.Epoch)}
		p, err := stream.New(time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(bound))
		require.NoError(t, err)
		var in *stream.Input[int]
		stream.From(p, stream.Source[int](binder(func(i *stream.Input[int]) { in = i })))
		now := clk.Now()
		clk.reads = 0

		for i := range 1000 {
			require.NoError(t, in.CheckEventTime(now.Add(time.Duration(i)*time.Second)))
		}
		require.Equal(t, 1, clk.reads, "bound %v: the clock was read for times within the bound", bound)
		// Out of range: refused, whatever the cached bound.
		require.ErrorIs(t, in.CheckEventTime(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)), stream.ErrEventTime)
		require.ErrorIs(t, in.CheckEventTime(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)), stream.ErrEventTime)
		if bound != time.Hour {
			continue
		}
		over := now.Add(time.Hour + time.Millisecond)
		require.ErrorIs(t, in.CheckEventTime(over), stream.ErrEventTime)
		reads := clk.reads
		require.ErrorIs(t, in.CheckEventTime(over), stream.ErrEventTime)
		require.Equal(t, reads+1, clk.reads, "a time past the cached bound reads the clock again")
		clk.Advance(time.Minute)
		require.NoError(t, in.CheckEventTime(over), "the clock moved on: within the bound now")
		require.NoError(t, in.CheckEventTime(now.Add(time.Hour+time.Minute)))
		require.ErrorIs(t, in.CheckEventTime(now.Add(time.Hour+time.Minute+time.Nanosecond)), stream.ErrEventTime)
	}
}

// TestWatermarkProperties runs random inputs (partitions, event times, pauses) and checks the
// watermark invariants of the package documentation against a brute-force model of each
// partition: its newest event time and when it last had records.
func TestWatermarkProperties(t *testing.T) {
	const (
		idle = 3 * time.Second
		ooo  = 2 * time.Second
	)
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(idle), stream.WithMaxOutOfOrderness(ooo))
		q, src := streamtest.NewQueue[int](h)
		var got []wmSeen
		stream.Transform(src, func(pc *stream.PartitionContext, vals []int) []int {
			got = append(got, wmSeen{pc.Partition, pc.Batch, pc.Watermark, pc.PartitionWatermark, pc.Idle, len(vals) > 0})
			return nil
		})
		parts := 1 + rng.IntN(4)
		maxEvent := make([]int64, parts)
		for i := range maxEvent {
			maxEvent[i] = math.MinInt64
		}
		offsets := make([]int64, parts)
		lastSeen := make([]int, parts) // batch
		batches := 20 + rng.IntN(30)
		type model struct{ ownMin, activeMin int64 }
		want := make([]model, 0, batches)
		for b := 1; b <= batches; b++ {
			var recs []stream.Record[int]
			for p := range parts {
				if rng.IntN(3) == 0 { // a pause
					continue
				}
				n := 1 + rng.IntN(3)
				for range n {
					ev := streamtest.Epoch.Add(time.Duration(rng.IntN(600)) * time.Second)
					recs = append(recs, stream.Record[int]{Partition: int32(p), Offset: offsets[p], EventTime: ev})
					offsets[p]++
					maxEvent[p] = max(maxEvent[p], ev.UnixNano())
				}
				lastSeen[p] = b
			}
			q.Add(recs...)
			m := model{math.MaxInt64, math.MaxInt64}
			for p := range parts {
				if maxEvent[p] == math.MinInt64 {
					continue
				}
				own := maxEvent[p] - int64(ooo)
				m.ownMin = min(m.ownMin, own)
				if time.Duration(b-lastSeen[p])*time.Second < idle {
					m.activeMin = min(m.activeMin, own)
				}
			}
			want = append(want, m)
		}
		h.Run(batches)
		prev := stream.NoWatermark
		for _, s := range got {
			m := want[s.batch-1]
			if s.wm == stream.NoWatermark {
				continue
			}
			require.GreaterOrEqual(t, s.wm, prev, "seed %d batch %d: the watermark moved back", seed, s.batch)
			prev = s.wm
			if m.activeMin != math.MaxInt64 {
				// Never ahead of an active partition (unless it was already there before).
				require.True(t, s.wm <= m.activeMin || s.wm == wmBefore(got, s.batch), "seed %d batch %d: watermark %d ahead of active partitions (%d)", seed, s.batch, s.wm, m.activeMin)
			} else {
				require.True(t, s.wm <= m.ownMin || s.wm == wmBefore(got, s.batch), "seed %d batch %d: all idle, watermark %d ahead of the slowest partition (%d)", seed, s.batch, s.wm, m.ownMin)
			}
			if !s.idle {
				require.LessOrEqual(t, s.own, maxEvent[s.part]-int64(ooo), "seed %d: an active partition fires beyond its own watermark", seed)
			}
		}
	}
}

// wmBefore returns the watermark of the last batch before b (it never moves back, so a
// batch may keep it even when the model's minimum dropped, e.g. a new partition appeared).
func wmBefore(got []wmSeen, b int64) int64 {
	w := stream.NoWatermark
	for _, s := range got {
		if s.batch < b {
			w = s.wm
		}
	}
	return w
}

// wmSeen is what an operator saw of one partition in one batch.
type wmSeen struct {
	part             int32
	batch            int64
	wm, own          int64
	idle, hasRecords bool
}

// TestWatermarkOutOfOrderForever: WithMaxOutOfOrderness(math.MaxInt64), "for ever", keeps
// every window open until the input ends, for event times before 1970 too: the watermark,
// the newest event time less it, wrapped there to the far future, and every record was late.
func TestWatermarkOutOfOrderForever(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(math.MaxInt64))
	q, src := streamtest.NewQueue[int](h)
	at := func(min int) time.Time { return time.Date(1969, 7, 20, 20, min, 0, 0, time.UTC) }
	counts, err := window.Aggregate(src, func(int) int { return 0 }, func(v int) int { return v },
		window.Tumbling(time.Minute), window.Count[int]())
	require.NoError(t, err)
	res := streamtest.Collect(counts.Results())
	late := streamtest.Collect(counts.Late())
	q.Add(stream.Record[int]{EventTime: at(17)}, stream.Record[int]{Offset: 1, EventTime: at(18)})
	h.Run(2)
	q.Add(stream.Record[int]{Offset: 2, EventTime: at(17)})
	h.Run(2)
	require.Empty(t, res.Slice(), "a window fired before the end of the input")
	q.End()
	h.RunUntilDone()
	require.Empty(t, late.Slice())
	require.Len(t, res.Slice(), 2)
	require.EqualValues(t, 2, res.Slice()[0].Value, "the window of 20:17")
}

// TestFlatMapKeepsTimeAndOffset: what FlatMap emits carries its input's event time (a window
// after it puts each value in its input's window) and offset (the commit waits at the first
// record of a window still open), like Map and Filter.
func TestFlatMapKeepsTimeAndOffset(t *testing.T) {
	h := streamtest.New(t, time.Second)
	q, src := streamtest.NewQueue[int](h)
	at := func(min int) time.Time { return streamtest.Epoch.Add(time.Duration(min) * time.Minute) }
	twice := stream.FlatMap(src, func(v int, emit func(int)) {
		if v > 0 {
			emit(v)
			emit(v)
		}
	})
	counts, err := window.Aggregate(twice, func(int) int { return 0 }, func(v int) int { return v },
		window.Tumbling(time.Minute), window.Count[int]())
	require.NoError(t, err)
	res := streamtest.Collect(counts.Results())

	q.Add(stream.Record[int]{Value: 1, Offset: 0, EventTime: at(1)},
		stream.Record[int]{Value: 0, Offset: 1, EventTime: at(1)}, // emits nothing
		stream.Record[int]{Value: 2, Offset: 2, EventTime: at(3)},
		stream.Record[int]{Value: 3, Offset: 3, EventTime: at(3)})
	h.Step()
	require.Equal(t, int64(2), q.Committed(0), "the commit waits at the first record of the open window of minute 3")
	q.End()
	h.RunUntilDone()
	got := map[time.Time]int64{}
	for _, r := range res.Slice() {
		got[r.Start] = r.Value
	}
	require.Equal(t, map[time.Time]int64{at(1): 2, at(3): 4}, got)
}

// TestWatermarkEarliestEventTime: a partition whose newest event time is within the
// out-of-orderness of the start of int64 time (1677, which CheckEventTime accepts: a bad
// device clock) has a watermark at the start of time, not the newest time less the
// out-of-orderness wrapped to 2262, which the pipeline's watermark (it never moves back)
// would have kept for the rest of the run, so that every later record was late.
func TestWatermarkEarliestEventTime(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(10*time.Second))
	q, src := streamtest.NewQueue[int](h)
	counts, err := window.Aggregate(src, func(int) int { return 0 }, func(v int) int { return v },
		window.Tumbling(time.Minute), window.Count[int]())
	require.NoError(t, err)
	res := streamtest.Collect(counts.Results())
	late := streamtest.Collect(counts.Late())
	q.Add(stream.Record[int]{Offset: 0, EventTime: time.Unix(0, math.MinInt64+1)})
	q.Add(stream.Record[int]{Offset: 1, EventTime: streamtest.Epoch})
	h.Run(2)
	for _, i := range res.Infos() {
		require.LessOrEqual(t, i.Watermark.UnixNano(), streamtest.Epoch.UnixNano(), "batch %d: the watermark wrapped", i.Batch)
	}
	infos := res.Infos()
	require.Equal(t, streamtest.Epoch.Add(-10*time.Second), infos[len(infos)-1].Watermark, "the watermark follows the record of today")
	q.End()
	h.RunUntilDone()
	var total int64
	for _, r := range res.Slice() {
		total += r.Value
	}
	require.Equal(t, int64(1), total, "the record of today is counted")
	require.Len(t, late.Slice(), 1, "the record of 1677 is late (its window is before the start of int64 time)")
}
