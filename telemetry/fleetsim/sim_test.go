// Tests and benchmarks of the simulator and the pacer.

package fleetsim_test

import (
	"bytes"
	"context"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  fleetsim.Config
	}{
		{"negative cabs", fleetsim.Config{Cabs: -1}},
		{"too many cabs", fleetsim.Config{Cabs: 2_000_000}},
		{"negative interval", fleetsim.Config{Interval: -time.Second}},
		{"tiny interval", fleetsim.Config{Interval: time.Microsecond}},
		{"inverted bounds", fleetsim.Config{Bounds: telemetry.Cell{Min: telemetry.Point{Lat: 2, Lon: 0}, Max: telemetry.Point{Lat: 1, Lon: 1}}}},
		{"polar bounds", fleetsim.Config{Bounds: telemetry.Cell{Min: telemetry.Point{Lat: 80, Lon: 0}, Max: telemetry.Point{Lat: 89, Lon: 1}}}},
		{"start year", fleetsim.Config{StartTime: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"rate above one", fleetsim.Config{Faults: fleetsim.Faults{Speeding: 1.5}}},
		{"negative rate", fleetsim.Config{Faults: fleetsim.Faults{Malformed: -0.1}}},
		{"NaN rate", fleetsim.Config{Faults: fleetsim.Faults{GPSJump: math.NaN()}}},
		{"negative delay", fleetsim.Config{Faults: fleetsim.Faults{MaxDelay: -time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fleetsim.New(tt.cfg)
			require.ErrorIs(t, err, fleetsim.ErrInvalidOption)
			require.Contains(t, err.Error(), "fleetsim: ")
		})
	}
	s, err := fleetsim.New(fleetsim.Config{})
	require.NoError(t, err)
	cfg := s.Config()
	require.Equal(t, 100, cfg.Cabs)
	require.Equal(t, fleetsim.DefaultBounds, cfg.Bounds)
	require.Equal(t, time.Second, cfg.Interval)
	require.Equal(t, fleetsim.DefaultStart, cfg.StartTime)
	require.Len(t, s.CabIDs(), 100)
	require.Equal(t, "CAB-0001", s.CabIDs()[0])
}

func TestDeterministic(t *testing.T) {
	cfg := fleetsim.Config{Seed: 7, Cabs: 20, Faults: allFaults}
	a, err := fleetsim.New(cfg)
	require.NoError(t, err)
	b, err := fleetsim.New(cfg)
	require.NoError(t, err)
	cfg.Seed = 8
	c, err := fleetsim.New(cfg)
	require.NoError(t, err)
	differ := false
	for range 20000 {
		ma, mb, mc := a.Next(), b.Next(), c.Next()
		require.Equal(t, ma, mb)
		differ = differ || !bytes.Equal(ma.Value, mc.Value)
	}
	require.True(t, differ)
}

// TestCleanStream checks the physics of a fault-free run.
func TestCleanStream(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("x", 3600))
	s, err := fleetsim.New(fleetsim.Config{Seed: 1, Cabs: 30, StartTime: start, Interval: 2 * time.Second})
	require.NoError(t, err)
	last := map[string]telemetry.Event{}
	statuses := map[telemetry.Status]int{}
	trips := map[string]bool{}
	var prevTime time.Time
	for i := range 30 * 3600 { // an hour of event time
		m := s.Next()
		require.False(t, m.Malformed)
		require.Zero(t, m.Faults)
		require.Equal(t, m.Event.CabID, m.Key)
		e, err := telemetry.Decode(m.Value)
		require.NoError(t, err, "%s", m.Value)
		require.Equal(t, m.Event, e)
		if i == 0 {
			require.True(t, e.Time.Equal(start))
		}
		require.False(t, e.Time.Before(prevTime), "event time goes back")
		prevTime = e.Time
		require.True(t, fleetsim.DefaultBounds.Contains(e.Point()), "%v outside the default bounds", e.Point())
		require.GreaterOrEqual(t, e.SpeedKmh, 0.0)
		require.LessOrEqual(t, e.SpeedKmh, 80.0)
		statuses[e.Status]++
		require.Equal(t, e.Status == telemetry.StatusHired, e.Has&telemetry.HasTripID != 0)
		if e.Status == telemetry.StatusHired {
			trips[e.TripID] = true
		}
		if e.Status == telemetry.StatusOffline {
			require.Zero(t, e.SpeedKmh, "offline cabs stand still")
		}
		if p, ok := last[e.CabID]; ok {
			require.Equal(t, 2*time.Second, e.Time.Sub(p.Time))
			accel := (e.SpeedKmh - p.SpeedKmh) / 3.6 / 2
			require.LessOrEqual(t, accel, 2.5+0.03)
			require.GreaterOrEqual(t, accel, -3.0-0.03)
			// Distance covered matches the speeds (no teleports).
			maxKm := math.Max(p.SpeedKmh, e.SpeedKmh) * 2 / 3600
			require.LessOrEqual(t, telemetry.Haversine(p.Point(), e.Point()), maxKm+0.001)
		}
		last[e.CabID] = e
	}
	require.Len(t, last, 30)
	require.Positive(t, statuses[telemetry.StatusAvailable])
	require.Positive(t, statuses[telemetry.StatusHired])
	require.Positive(t, statuses[telemetry.StatusOffline])
	require.Greater(t, len(trips), 30)
	require.Zero(t, statuses[telemetry.StatusUnknown])
}

var allFaults = fleetsim.Faults{
	Speeding: 0.01, HarshBraking: 0.01, GPSJump: 0.01, OutOfOrder: 0.02,
	MaxDelay: 10 * time.Second, Duplicate: 0.01, Malformed: 0.01,
}

// TestInjectedFaults is not a fault test of testenv.FaultTest's kind (it stops no service), so its
// name does not start with TestFault: make test runs those apart, one package at a time.
func TestInjectedFaults(t *testing.T) {
	const cabs, n = 50, 200000
	s, err := fleetsim.New(fleetsim.Config{Seed: 3, Cabs: cabs, Faults: allFaults})
	require.NoError(t, err)
	var (
		maxTime time.Time
		prev    fleetsim.Message
		count   = map[fleetsim.Fault]int{}
		byCab   = map[string][]telemetry.Event{}
		jumps   = map[string]map[time.Time]bool{}
	)
	for i := range n {
		m := s.Next()
		for f := fleetsim.FaultSpeeding; f <= fleetsim.FaultMalformed; f <<= 1 {
			if m.Faults&f != 0 {
				count[f]++
			}
		}
		require.Equal(t, m.Malformed, m.Faults&fleetsim.FaultMalformed != 0)
		e, err := telemetry.Decode(m.Value)
		if m.Malformed {
			require.Error(t, err, "%s", m.Value)
		} else {
			require.NoError(t, err)
			require.Equal(t, m.Event, e)
		}
		if m.Faults&fleetsim.FaultDuplicate != 0 {
			require.Equal(t, prev.Value, m.Value)
			require.Equal(t, prev.Event, m.Event)
			prev = m
			continue
		}
		ts := m.Event.Time
		if i > 0 {
			if m.Faults&fleetsim.FaultLate != 0 {
				require.True(t, ts.Before(maxTime), "late event is not late")
				require.LessOrEqual(t, maxTime.Sub(ts), allFaults.MaxDelay+time.Nanosecond)
			} else {
				require.False(t, ts.Before(maxTime), "event out of order without FaultLate")
			}
		}
		if ts.After(maxTime) {
			maxTime = ts
		}
		require.Equal(t, m.Event.SpeedKmh > 120, m.Faults&fleetsim.FaultSpeeding != 0)
		byCab[m.Key] = append(byCab[m.Key], m.Event)
		if m.Faults&fleetsim.FaultGPSJump != 0 {
			if jumps[m.Key] == nil {
				jumps[m.Key] = map[time.Time]bool{}
			}
			jumps[m.Key][ts] = true
		}
		prev = m
	}
	for f := fleetsim.FaultSpeeding; f <= fleetsim.FaultMalformed; f <<= 1 {
		require.Positive(t, count[f], "fault %d never injected", f)
	}
	st := s.Stats()
	require.Equal(t, n, st.Messages)
	require.Equal(t, count[fleetsim.FaultLate], st.Late)
	require.Equal(t, count[fleetsim.FaultDuplicate], st.Duplicates)
	require.Equal(t, count[fleetsim.FaultMalformed], st.Malformed)
	require.Equal(t, count[fleetsim.FaultSpeeding], st.Speeding)
	require.Equal(t, count[fleetsim.FaultGPSJump], st.GPSJumps)
	require.Equal(t, count[fleetsim.FaultHarshBraking], st.HarshBraking)

	// Harsh braking flags exactly the events that slowed by more than
	// 4 m/s² since the cab's previous event; GPS jumps land far away.
	harsh := 0
	for cab, evs := range byCab {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
		for i := 1; i < len(evs); i++ {
			dt := evs[i].Time.Sub(evs[i-1].Time).Seconds()
			if dt != 1 {
				continue // a gap from a late event still in flight at the end
			}
			if (evs[i-1].SpeedKmh-evs[i].SpeedKmh)/3.6/dt > 4 {
				harsh++
			}
			if jumps[cab][evs[i].Time] && !jumps[cab][evs[i-1].Time] {
				require.Greater(t, telemetry.Haversine(evs[i-1].Point(), evs[i].Point()), 1.5)
			}
		}
	}
	require.Positive(t, harsh)
}

func TestAppendNextAndAll(t *testing.T) {
	cfg := fleetsim.Config{Seed: 11, Cabs: 5, Faults: allFaults}
	a, err := fleetsim.New(cfg)
	require.NoError(t, err)
	b, err := fleetsim.New(cfg)
	require.NoError(t, err)
	buf := []byte("prefix")
	var n int
	for m := range a.All() {
		var mb fleetsim.Message
		buf, mb = b.AppendNext(buf[:6])
		require.Equal(t, "prefix", string(buf[:6]))
		require.Equal(t, m.Value, mb.Value)
		require.Equal(t, m.Event, mb.Event)
		if n++; n == 1000 {
			break
		}
	}
	require.Equal(t, 1000, n)
}

var _ fleetsim.Clock = (*fakeClock)(nil)

// fakeClock advances only when the pacer sleeps.
type fakeClock struct {
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func TestPacer(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	p, err := fleetsim.NewPacer(4, clock)
	require.NoError(t, err)
	ctx := t.Context()
	for range 5 {
		require.NoError(t, p.Wait(ctx))
	}
	require.Equal(t, []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}, clock.slept)
	require.Equal(t, time.Unix(1001, 0), clock.now)

	// After a long stall, at most one second's worth (4 calls) goes
	// through without sleeping.
	clock.now = clock.now.Add(time.Hour)
	clock.slept = nil
	for range 6 {
		require.NoError(t, p.Wait(ctx))
	}
	require.Equal(t, []time.Duration{250 * time.Millisecond}, clock.slept)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, p.Wait(cctx), context.Canceled)

	for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		_, err := fleetsim.NewPacer(rate, nil)
		require.ErrorIs(t, err, fleetsim.ErrInvalidOption)
	}
}

func TestPacerSystemClock(t *testing.T) {
	p, err := fleetsim.NewPacer(1e6, nil)
	require.NoError(t, err)
	for range 10 {
		require.NoError(t, p.Wait(t.Context()))
	}
}

func BenchmarkSim(b *testing.B) {
	s, err := fleetsim.New(fleetsim.Config{Seed: 1, Cabs: 1000})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.AppendNext(buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkSimWithFaults(b *testing.B) {
	s, err := fleetsim.New(fleetsim.Config{Seed: 1, Cabs: 1000, Faults: allFaults})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.AppendNext(buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

var sinkMessage fleetsim.Message

func BenchmarkSimNext(b *testing.B) {
	s, err := fleetsim.New(fleetsim.Config{Seed: 1, Cabs: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkMessage = s.Next()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
