// Tests, benchmark and fuzzing of the Porto reader and replay.

package fleetsim_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

// portoSample finds ../shared/data/porto/train.1k.csv next to the
// repository by walking up from the package directory. It skips the test
// when the file is absent, unless FLEETSTREAM_REQUIRE_SERVICES=1.
func portoSample(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	require.NoError(tb, err)
	for {
		p := filepath.Join(dir, "shared", "data", "porto", "train.1k.csv")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("FLEETSTREAM_REQUIRE_SERVICES") == "1" {
		tb.Fatal("Porto sample shared/data/porto/train.1k.csv not found above the package directory")
	}
	tb.Skip("Porto sample shared/data/porto/train.1k.csv not found; skipping")
	return ""
}

func TestLoadPorto(t *testing.T) {
	events, st, err := fleetsim.LoadPorto(portoSample(t), fleetsim.PortoOptions{})
	require.NoError(t, err)
	require.Len(t, events, 47304)
	require.Equal(t, time.Date(2013, 7, 1, 0, 0, 53, 0, time.UTC), events[0].Time)
	require.Equal(t, time.Date(2013, 7, 1, 9, 20, 40, 0, time.UTC), events[len(events)-1].Time)

	cabs := map[string]bool{}
	lastIndexOfTrip := map[string]telemetry.Event{}
	for i, e := range events {
		require.NoError(t, e.Validate())
		require.True(t, strings.HasPrefix(e.CabID, "PORTO-"))
		require.Equal(t, telemetry.StatusHired, e.Status)
		require.NotEmpty(t, e.TripID)
		cabs[e.CabID] = true
		if i > 0 {
			p := events[i-1]
			require.False(t, e.Time.Before(p.Time), "not in time order at %d", i)
			if e.Time.Equal(p.Time) {
				require.LessOrEqual(t, p.CabID, e.CabID, "ties not ordered by cab at %d", i)
			}
		}
		if prev, ok := lastIndexOfTrip[e.TripID]; ok {
			require.Equal(t, fleetsim.PortoInterval, e.Time.Sub(prev.Time))
		}
		lastIndexOfTrip[e.TripID] = e
	}
	require.Len(t, cabs, 308)

	require.Equal(t, fleetsim.PortoStats{
		Trips:            999,
		EmptyTrips:       1,
		SinglePointTrips: 9,
		Points:           47304,
		Taxis:            309,
		TaxisWithPoints:  308,
		RowsOutOfOrder:   498,
		RepeatedPoints:   554,
		Jumps:            107,
		Overlaps:         2,
		OverlapTaxis:     2,
		First:            events[0].Time,
		Last:             events[len(events)-1].Time,
	}, st)
	require.Len(t, lastIndexOfTrip, 998)
}

func TestLoadPortoShiftAndSpeedup(t *testing.T) {
	path := portoSample(t)
	orig, _, err := fleetsim.LoadPorto(path, fleetsim.PortoOptions{})
	require.NoError(t, err)
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("x", 3600))
	events, st, err := fleetsim.LoadPorto(path, fleetsim.PortoOptions{Start: start, Speedup: 60})
	require.NoError(t, err)
	require.Len(t, events, len(orig))
	require.True(t, events[0].Time.Equal(start))
	require.Equal(t, time.UTC, events[0].Time.Location())
	// 9h19m47s of data in 1/60 of the time.
	require.Equal(t, (9*time.Hour+19*time.Minute+47*time.Second)/60, events[len(events)-1].Time.Sub(events[0].Time))
	require.Equal(t, time.Date(2013, 7, 1, 0, 0, 53, 0, time.UTC), st.First)
	for i := range events {
		require.Equal(t, orig[i].CabID, events[i].CabID)
		require.Equal(t, orig[i].Point(), events[i].Point())
	}
}

func TestReadPortoQuirks(t *testing.T) {
	const header = `"TRIP_ID","CALL_TYPE","ORIGIN_CALL","ORIGIN_STAND","TAXI_ID","TIMESTAMP","DAY_TYPE","MISSING_DATA","POLYLINE"` + "\n"
	csv := header +
		`"t2","C","","","2","1000","A","False","[[-8.6,41.1],[-8.6,41.1],[-8.5,41.2]]"` + "\n" + // repeat, then a 14 km jump in 15 s
		`"t1","C","","","1","990","A","True","[[-8.61,41.15]]"` + "\n" + // out of order, single point
		`"t3","C","","","2","1030","A","False","[[-8.62,41.14],[-8.621,41.141]]"` + "\n" + // starts as t2 ends: overlap
		`"t4","C","","","3","1000","A","False","[]"` + "\n"
	events, st, err := fleetsim.ReadPorto(strings.NewReader(csv), fleetsim.PortoOptions{})
	require.NoError(t, err)
	var got []string
	for _, e := range events {
		got = append(got, e.Time.Format("05")+" "+e.CabID+" "+e.TripID)
	}
	require.Equal(t, []string{
		"30 PORTO-1 t1",
		"40 PORTO-2 t2",
		"55 PORTO-2 t2",
		"10 PORTO-2 t3", // a tie within a cab: point index 0 of t3 before index 2 of t2
		"10 PORTO-2 t2",
		"25 PORTO-2 t3",
	}, got)
	require.Equal(t, fleetsim.PortoStats{
		Trips: 4, EmptyTrips: 1, SinglePointTrips: 1, MissingData: 1, Points: 6, Taxis: 3, TaxisWithPoints: 2,
		RowsOutOfOrder: 2, RepeatedPoints: 1, Jumps: 1, Overlaps: 1, OverlapTaxis: 1,
		First: time.Unix(990, 0).UTC(), Last: time.Unix(1045, 0).UTC(),
	}, st)

	var msgs int
	for m := range fleetsim.Replay(events) {
		e, err := telemetry.Decode(m.Value)
		require.NoError(t, err)
		require.Equal(t, events[msgs], e)
		require.Equal(t, e.CabID, m.Key)
		msgs++
	}
	require.Equal(t, len(events), msgs)
}

// TestReplayUnencodable: an event without a JSON encoding comes out as a
// malformed message (the encoding error as its value), between the others,
// so a pipeline dead-letters it instead of losing it.
func TestReplayUnencodable(t *testing.T) {
	good := telemetry.Event{CabID: "C", Time: time.Unix(1000, 0).UTC(), Lat: 41.1, Lon: -8.6}
	bad := good
	bad.SpeedKmh, bad.Has = math.NaN(), telemetry.HasSpeed
	var got []fleetsim.Message
	for m := range fleetsim.Replay([]telemetry.Event{good, bad, good}) {
		got = append(got, m)
	}
	require.Len(t, got, 3)
	for i, m := range got {
		_, err := telemetry.Decode(m.Value)
		if i != 1 {
			require.NoError(t, err)
			require.False(t, m.Malformed)
			continue
		}
		require.ErrorIs(t, err, telemetry.ErrMalformed)
		require.True(t, m.Malformed)
		require.Equal(t, fleetsim.FaultMalformed, m.Faults)
		require.Contains(t, string(m.Value), "speed_kmh")
		require.Equal(t, "C", m.Key)
	}
}

func TestReadPortoErrors(t *testing.T) {
	const header = `"TRIP_ID","TAXI_ID","TIMESTAMP","MISSING_DATA","POLYLINE"` + "\n"
	tests := []struct {
		name, csv, msg string
	}{
		{"empty input", ``, "header"},
		{"missing column", `"TRIP_ID","TAXI_ID"` + "\n", "no TIMESTAMP column"},
		{"bad timestamp", header + `"t","1","soon","False","[]"` + "\n", "line 2: TIMESTAMP"},
		{"bad polyline", header + `"t","1","10","False","[[1,2"` + "\n", "line 2: POLYLINE"},
		{"short point", header + `"t","1","10","False","[[1]]"` + "\n", "point 0 has 1 coordinates"},
		{"latitude out of range", header + `"t","1","10","False","[[1,2],[8,95]]"` + "\n", "point 1"},
		{"missing taxi", header + `"t","","10","False","[]"` + "\n", "empty TAXI_ID"},
		{"ragged row", header + `"t","1"` + "\n", "wrong number of fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := fleetsim.ReadPorto(strings.NewReader(tt.csv), fleetsim.PortoOptions{})
			require.ErrorIs(t, err, fleetsim.ErrPortoFormat)
			require.ErrorContains(t, err, tt.msg)
			require.True(t, strings.HasPrefix(err.Error(), "fleetsim: "))
		})
	}
	_, _, err := fleetsim.ReadPorto(strings.NewReader(header), fleetsim.PortoOptions{Speedup: -2})
	require.ErrorIs(t, err, fleetsim.ErrInvalidOption)
	_, _, err = fleetsim.LoadPorto(filepath.Join(t.TempDir(), "nope.csv"), fleetsim.PortoOptions{})
	require.ErrorIs(t, err, os.ErrNotExist)
}

func BenchmarkLoadPorto(b *testing.B) {
	path := portoSample(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := fleetsim.LoadPorto(path, fleetsim.PortoOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzReadPorto(f *testing.F) {
	const header = `"TRIP_ID","TAXI_ID","TIMESTAMP","MISSING_DATA","POLYLINE"` + "\n"
	f.Add(header + `"t2","2","1000","False","[[-8.6,41.1],[-8.6,41.1],[-8.5,41.2]]"` + "\n" + `"t1","1","990","True","[[-8.61,41.15]]"` + "\n")
	f.Add(header + `"t","3","1000","False","[]"` + "\n")
	f.Add(header + `"t","3","-5","False","[[1,2,3]]"` + "\n")
	f.Fuzz(func(t *testing.T, csv string) {
		events, st, err := fleetsim.ReadPorto(strings.NewReader(csv), fleetsim.PortoOptions{})
		if err != nil {
			require.ErrorIs(t, err, fleetsim.ErrPortoFormat)
			return
		}
		require.Len(t, events, st.Points)
		for i, e := range events {
			require.NoError(t, e.Validate())
			if i > 0 {
				require.False(t, e.Time.Before(events[i-1].Time))
			}
		}
	})
}
