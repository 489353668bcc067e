package telemetry_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// TestZoneSampleCodec: samples of the Porto sample's events round-trip in a few bytes; bad
// samples are refused on both sides with the error kinds of the other binary codecs.
func TestZoneSampleCodec(t *testing.T) {
	var c telemetry.ZoneSampleCodec
	var tc telemetry.TrackedCodec
	var sampleBytes, trackedBytes int
	for i, e := range portoEvents(t) {
		tr := telemetry.Tracked{Event: e, Pickup: i%7 == 0}
		s := tr.Sample()
		b, err := c.Append(nil, s)
		require.NoError(t, err)
		back, err := c.Decode(b)
		require.NoError(t, err)
		require.Equal(t, s, back)
		tb, err := tc.Append(nil, tr)
		require.NoError(t, err)
		sampleBytes, trackedBytes = sampleBytes+len(b), trackedBytes+len(tb)
	}
	t.Logf("bytes per record: zone sample %.1f, tracked event %.1f", float64(sampleBytes)/47304, float64(trackedBytes)/47304)
	require.Less(t, 3*sampleBytes, trackedBytes, "a sample is far smaller than the tracked event")

	s := telemetry.ZoneSample{CabID: "CAB-1", SpeedKmh: 42.5, HasSpeed: true, Pickup: true}
	b, err := c.Append([]byte("x"), s)
	require.NoError(t, err)
	require.Equal(t, "x", string(b[:1]), "Append appends")
	b = b[1:]
	require.Len(t, b, 2+1+5+8)
	for name, bad := range map[string]telemetry.ZoneSample{
		"no cab":     {},
		"long cab":   {CabID: strings.Repeat("c", telemetry.MaxIDLen+1)},
		"NaN speed":  {CabID: "c", SpeedKmh: math.NaN(), HasSpeed: true},
		"fast speed": {CabID: "c", SpeedKmh: 1e6, HasSpeed: true},
	} {
		out, err := c.Append([]byte("y"), bad)
		require.ErrorIs(t, err, telemetry.ErrEncode, name)
		require.Equal(t, "y", string(out), name)
	}
	for name, in := range map[string][]byte{
		"empty":          nil,
		"tracked format": {0x81},
		"unknown format": {0x42, 0},
		"cut flags":      {0x41},
		"unknown flags":  append([]byte{0x41, 0x80}, b[2:]...),
		"cut short":      b[:len(b)-1],
		"left over":      append(append([]byte{}, b...), 0),
		"no speed bytes": b[:len(b)-8],
	} {
		_, err := c.Decode(in)
		require.ErrorIs(t, err, telemetry.ErrMalformed, name)
	}
	_, err = c.Decode([]byte{0x41, 0, 0})
	require.ErrorIs(t, err, telemetry.ErrInvalid, "an empty cab id")
}

// TestZoneSampleAggAgrees: over random tracked events, the sample aggregator of the
// repartitioned zone demand gives exactly what ZoneDemandAgg gives over the events, also
// merged from random splits, and in any order.
func TestZoneSampleAggAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var ta telemetry.ZoneDemandAgg
	var sa telemetry.ZoneSampleAgg
	var _ window.Aggregator[telemetry.ZoneSample, telemetry.ZoneAcc, telemetry.ZoneDemand] = sa
	for range 200 {
		n := rng.IntN(80)
		cut := 0
		if n > 0 {
			cut = rng.IntN(n + 1)
		}
		a1, a2, s1, s2 := ta.Zero(), ta.Zero(), sa.Zero(), sa.Zero()
		var events []telemetry.Tracked
		for i := range n {
			tr := telemetry.Tracked{Event: telemetry.Event{CabID: "c" + string(rune('a'+rng.IntN(30))), Time: time.Unix(int64(i), 0)},
				Pickup: rng.IntN(5) == 0}
			if rng.IntN(3) > 0 {
				tr.Has |= telemetry.HasSpeed
				tr.SpeedKmh = rng.Float64() * 130
			}
			events = append(events, tr)
			if i < cut {
				a1, s1 = ta.Add(a1, tr), sa.Add(s1, tr.Sample())
			} else {
				a2, s2 = ta.Add(a2, tr), sa.Add(s2, tr.Sample())
			}
		}
		want := ta.Result(ta.Merge(a1, a2))
		require.Equal(t, want, sa.Result(sa.Merge(s1, s2)))
		require.Equal(t, want, sa.Result(sa.Merge(s2, s1)))
		// The same events in another order (as a repartition may deliver them after a
		// crash) give the same bits.
		rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		again := ta.Zero()
		for _, tr := range events {
			again = ta.Add(again, tr)
		}
		require.Equal(t, want, ta.Result(again))
	}
}
