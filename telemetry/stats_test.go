// Tests of cab stats, their document, the options' validation and the
// documents' refusal of unencodable values.

package telemetry_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
	"github.com/fleetstream/fleetstream/window"
)

func runCabStats(t *testing.T, asg window.Assigner, batches [][]telemetry.Event, opts ...telemetry.CabStatsOption) ([]telemetry.CabStats, []window.Late[telemetry.Event]) {
	t.Helper()
	return runCabStatsWith(t, nil, asg, batches, opts...)
}

func runCabStatsWith(t *testing.T, popts []stream.Option, asg window.Assigner, batches [][]telemetry.Event, opts ...telemetry.CabStatsOption) ([]telemetry.CabStats, []window.Late[telemetry.Event]) {
	t.Helper()
	h := streamtest.New(t, time.Second, popts...)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	w, err := telemetry.CabStatsStream(s, asg, opts...)
	require.NoError(t, err)
	res := streamtest.Collect(w.Results())
	late := streamtest.Collect(w.Late())
	for _, b := range batches {
		q.Add(recs(b...)...)
	}
	q.End()
	h.RunUntilDone()
	var docs []telemetry.CabStats
	for _, r := range res.Slice() {
		require.True(t, r.Final)
		docs = append(docs, telemetry.CabStatsDoc(r))
	}
	return docs, late.Slice()
}

func TestCabStatsHandComputed(t *testing.T) {
	e0 := ev("A", 0, 41.150, 20, avail)
	e1 := ev("A", 15, 41.151, 30, hired)
	e2 := ev("A", 30, 41.650, 40, hired) // GPS jump: 55 km in 15 s
	e3 := ev("A", 45, 41.153, -1, none)  // no speed, no status
	e4 := ev("A", 60, 41.154, 10, offline)
	e5 := ev("A", 75, 41.155, 12, offline)
	lateE := ev("A", 50, 41.152, 5, hired) // after the first window closed
	b0 := ev("B", 10, 41.0, 0, avail)

	docs, late := runCabStats(t, window.Tumbling(time.Minute), [][]telemetry.Event{
		{e0, e1, b0},
		{e3, e2, e1}, // out of order, and an exact duplicate of e1
		{e4, e5},     // watermark 75 s closes [0, 60)
		{lateE},
	})
	require.Len(t, late, 1)
	require.Equal(t, lateE, late[0].Value)
	require.Len(t, docs, 3)

	a := docs[0]
	require.Equal(t, "A", a.CabID)
	require.Equal(t, t0, a.WindowStart)
	require.Equal(t, t0.Add(time.Minute), a.WindowEnd)
	require.Equal(t, t0, a.Timestamp)
	require.EqualValues(t, 4, a.Events) // e0 e1 e2 e3; the copy of e1 counts once
	require.EqualValues(t, 1, a.Jumps)
	// e0 -> e1 -> (e2 skipped) -> e3: 0.003° of meridian.
	require.InDelta(t, 0.003*kmPerDeg, a.DistanceKm, 1e-9)
	// Readings 20, 30, 40 (the jump's reading is a reading), and for e3 the
	// speed derived from e1: 0.002° in 30 s.
	derived := 0.002 * kmPerDeg / (30.0 / 3600)
	require.InDelta(t, 26.687, derived, 1e-3)
	require.InDelta(t, (20+30+40+derived)/4, a.AvgSpeedKmh, 1e-9)
	require.Equal(t, 40.0, a.MaxSpeedKmh)
	require.EqualValues(t, 4, a.SpeedSamples)
	require.Equal(t, telemetry.Location{Lat: 41.153, Lon: lon0}, a.LastLocation) // e3, the latest
	require.Equal(t, hired, a.LastStatus)                                        // e3 has none: e2's

	b := docs[1]
	require.Equal(t, "B", b.CabID)
	require.EqualValues(t, 1, b.Events)
	require.Zero(t, b.DistanceKm)
	require.Equal(t, telemetry.Location{Lat: 41.0, Lon: lon0}, b.LastLocation)

	a2 := docs[2]
	require.Equal(t, t0.Add(time.Minute), a2.WindowStart)
	require.EqualValues(t, 2, a2.Events)
	require.InDelta(t, 0.001*kmPerDeg, a2.DistanceKm, 1e-9)
	require.InDelta(t, 11.0, a2.AvgSpeedKmh, 1e-12)
	require.Equal(t, 12.0, a2.MaxSpeedKmh)
	require.Equal(t, offline, a2.LastStatus)
}

func TestCabStatsJumpLimitAndReanchor(t *testing.T) {
	// 0.01° in 15 s is 266.9 km/h: a jump by default, a move under a 300 km/h limit.
	pts := []telemetry.Event{
		ev("A", 0, 41.10, -1, hired),
		ev("A", 15, 41.11, -1, hired),
		ev("A", 30, 41.111, -1, hired),
	}
	docs, _ := runCabStats(t, window.Tumbling(time.Minute), [][]telemetry.Event{pts})
	require.EqualValues(t, 1, docs[0].Jumps)
	require.InDelta(t, 0.011*kmPerDeg, docs[0].DistanceKm, 1e-9) // 41.10 -> 41.111 in 30 s

	docs, _ = runCabStats(t, window.Tumbling(time.Minute), [][]telemetry.Event{pts}, telemetry.WithJumpSpeedKmh(300))
	require.Zero(t, docs[0].Jumps)
	require.InDelta(t, 0.011*kmPerDeg, docs[0].DistanceKm, 1e-9)
	require.InDelta(t, 0.01*kmPerDeg/(15.0/3600), docs[0].MaxSpeedKmh, 1e-9)

	// A bad first point: the next two agree with each other, so the path
	// goes on from them and only the outlier is left out.
	docs, _ = runCabStats(t, window.Tumbling(time.Minute), [][]telemetry.Event{{
		ev("A", 0, 42.0, -1, hired),
		ev("A", 15, 41.100, -1, hired),
		ev("A", 30, 41.101, -1, hired),
		ev("A", 45, 41.102, -1, hired),
	}})
	require.EqualValues(t, 1, docs[0].Jumps)
	require.InDelta(t, 0.002*kmPerDeg, docs[0].DistanceKm, 1e-9)
	require.Equal(t, telemetry.Location{Lat: 41.102, Lon: lon0}, docs[0].LastLocation)
}

// A window that ends on a GPS jump: the cab's last location is its last good
// position, not the jump, which the distance leaves out too.
func TestCabStatsLastLocationIsNotAJump(t *testing.T) {
	docs, _ := runCabStats(t, window.Tumbling(time.Minute), [][]telemetry.Event{{
		ev("A", 0, 41.100, -1, hired),
		ev("A", 15, 41.101, -1, hired),
		ev("A", 30, 41.650, -1, hired), // 61 km in 15 s
		ev("A", 45, 41.102, -1, hired),
		ev("A", 50, 42.300, -1, avail), // the window's last event: 133 km in 5 s
	}})
	require.Len(t, docs, 1)
	require.EqualValues(t, 2, docs[0].Jumps)
	require.Equal(t, telemetry.Location{Lat: 41.102, Lon: lon0}, docs[0].LastLocation)
	require.Equal(t, avail, docs[0].LastStatus, "the status is the latest event's, jump or not")
	require.InDelta(t, 0.002*kmPerDeg, docs[0].DistanceKm, 1e-9)
}

// A Porto-like trace: one point every 15 s, real coordinates, no speed
// readings. Expected values are summed with telemetry.Haversine.
func TestCabStatsPortoLike(t *testing.T) {
	coords := [][2]float64{
		{41.141412, -8.618643}, {41.141376, -8.618499}, {41.142510, -8.620326},
		{41.143815, -8.622153}, {41.144373, -8.623953}, {41.144778, -8.62668},
		{41.144697, -8.627373}, {41.14521, -8.630226}, {41.14692, -8.632746},
		{41.148225, -8.631738}, {41.150385, -8.629938}, {41.151213, -8.62911},
	}
	var es []telemetry.Event
	for i, c := range coords {
		es = append(es, telemetry.Event{CabID: "PORTO-20000589", Time: t0.Add(time.Duration(i) * 15 * time.Second), Lat: c[0], Lon: c[1], Status: hired})
	}
	docs, _ := runCabStats(t, window.Tumbling(time.Minute), [][]telemetry.Event{es[:5], es[5:]})
	require.Len(t, docs, 3)
	for w, d := range docs {
		pts := es[4*w : 4*w+4]
		var km, maxV float64
		for i := 1; i < len(pts); i++ {
			seg := telemetry.Haversine(pts[i-1].Point(), pts[i].Point())
			km += seg
			maxV = max(maxV, seg/(15.0/3600))
		}
		require.EqualValues(t, 4, d.Events)
		require.InDelta(t, km, d.DistanceKm, 1e-9*km)
		require.InDelta(t, km/(45.0/3600), d.AvgSpeedKmh, 1e-6) // 3 derived speeds over equal 15 s steps
		require.InDelta(t, maxV, d.MaxSpeedKmh, 1e-6)
		require.EqualValues(t, 3, d.SpeedSamples)
		require.Equal(t, telemetry.Location{Lat: pts[3].Lat, Lon: pts[3].Lon}, d.LastLocation)
	}
}

// Merge must agree with Add whatever the split and the order: sliding and
// session windows depend on it.
func TestCabStatsMergeAgreesWithAdd(t *testing.T) {
	agg, err := telemetry.NewCabStatsAgg()
	require.NoError(t, err)
	sim, err := fleetsim.New(fleetsim.Config{Seed: 7, Cabs: 1, Faults: fleetsim.Faults{GPSJump: 0.1, Duplicate: 0.1, OutOfOrder: 0.2}})
	require.NoError(t, err)
	var es []telemetry.Event
	for m := range sim.All() {
		if len(es) == 60 {
			break
		}
		es = append(es, m.Event)
	}
	all := agg.Zero()
	for _, e := range es {
		all = agg.Add(all, e)
	}
	want := agg.Result(all)
	require.Positive(t, want.DistanceKm)
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		perm := r.Perm(len(es))
		k := r.IntN(len(es))
		a, b := agg.Zero(), agg.Zero()
		for i, j := range perm {
			if i < k {
				a = agg.Add(a, es[j])
			} else {
				b = agg.Add(b, es[j])
			}
		}
		got := agg.Result(agg.Merge(a, b))
		require.Equal(t, want.Events, got.Events)
		require.InDelta(t, want.DistanceKm, got.DistanceKm, 1e-9)
		require.InDelta(t, want.AvgSpeedKmh, got.AvgSpeedKmh, 1e-9)
		require.Equal(t, want.MaxSpeedKmh, got.MaxSpeedKmh)
		require.Equal(t, want.LastLocation, got.LastLocation)
		require.Equal(t, want.LastStatus, got.LastStatus)
		// Merge must not change its arguments.
		require.Equal(t, got, agg.Result(agg.Merge(a, b)))
	}
}

func TestCabStatsSlidingAndSession(t *testing.T) {
	es := []telemetry.Event{
		ev("A", 0, 41.150, 10, hired), ev("A", 20, 41.151, 20, hired),
		ev("A", 40, 41.152, 30, hired), ev("A", 70, 41.153, 40, hired),
	}
	docs, _ := runCabStats(t, window.Sliding(time.Minute, 30*time.Second), [][]telemetry.Event{es})
	// Windows [0, 60), [30, 90), [60, 120): the window package starts with
	// the first window that starts at or after the first record.
	require.Len(t, docs, 3)
	want := []struct {
		events  int64
		deg     float64
		avg     float64
		startAt time.Duration
	}{
		{3, 0.002, 20, 0},
		{2, 0.001, 35, 30 * time.Second},
		{1, 0, 40, 60 * time.Second},
	}
	for i, w := range want {
		require.Equal(t, t0.Add(w.startAt), docs[i].WindowStart, i)
		require.Equal(t, w.events, docs[i].Events, i)
		require.InDelta(t, w.deg*kmPerDeg, docs[i].DistanceKm, 1e-9, i)
		require.InDelta(t, w.avg, docs[i].AvgSpeedKmh, 1e-12, i)
	}

	docs, _ = runCabStatsWith(t, []stream.Option{stream.WithMaxOutOfOrderness(30 * time.Second)},
		window.Session(25*time.Second), [][]telemetry.Event{{es[0], es[2]}, {es[1], es[3]}})
	// 0, 20, 40 merge into one session (20 bridges 0 and 40); 70 is alone.
	require.Len(t, docs, 2)
	require.EqualValues(t, 3, docs[0].Events)
	require.InDelta(t, 0.002*kmPerDeg, docs[0].DistanceKm, 1e-9)
	require.Equal(t, t0.Add(65*time.Second), docs[0].WindowEnd)
	require.EqualValues(t, 1, docs[1].Events)
}

func TestCabStatsDocument(t *testing.T) {
	s := telemetry.CabStats{
		CabID: `CAB-"7"`, WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0,
		Events: 4, DistanceKm: 0.3335852, AvgSpeedKmh: 29.17, MaxSpeedKmh: 40,
		LastLocation: telemetry.Location{Lat: 41.153, Lon: -8.61}, LastStatus: hired,
	}
	var got, want map[string]any
	doc, err := s.AppendJSON(nil)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(doc, &got))
	std, err := json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(std, &want))
	require.Equal(t, want, got)
	require.Equal(t, "2026-11-25T10:00:00Z", got["@timestamp"])
	require.Equal(t, map[string]any{"lat": 41.153, "lon": -8.61}, got["last_location"])
	require.Equal(t, "hired", got["last_status"])

	s.LastStatus = none
	doc, err = s.AppendJSON(nil)
	require.NoError(t, err)
	require.NotContains(t, string(doc), "last_status")
	require.Equal(t, opensearch.WindowID("p1", s.CabID, s.WindowStart, s.WindowEnd), s.DocID("p1"))
}

// TestOptionsValidation: a bad option makes the transform it belongs to return
// an error wrapping ErrInvalidOption. An option that does not belong to a
// transform does not compile with it.
func TestOptionsValidation(t *testing.T) {
	badJump := telemetry.WithJumpSpeedKmh(-1)
	badTrack := []telemetry.TrackOption{
		telemetry.WithSpeedLimit(0, time.Second),
		telemetry.WithSpeedLimit(100, -time.Second),
		badJump,
		telemetry.WithHarshBraking(0),
		telemetry.WithIdleAfter(0),
		telemetry.WithSilentAfter(-time.Second),
		telemetry.WithGeofences(telemetry.Geofence{Name: "x", Area: telemetry.Polygon{{Lat: 1, Lon: 1}}}),
		telemetry.WithGeofences(telemetry.Geofence{Area: square(0, 0, 1)}),
		telemetry.WithGeofences(telemetry.Geofence{Name: "a", Area: square(0, 0, 1)}, telemetry.Geofence{Name: "a", Area: square(0, 0, 1)}),
		nil,
	}
	h := streamtest.New(t, time.Second)
	_, s := streamtest.NewQueue[telemetry.Event](h)
	for i, o := range badTrack {
		_, err := telemetry.Track(s, o)
		require.ErrorIs(t, err, telemetry.ErrInvalidOption, i)
	}
	for i, o := range []telemetry.CabStatsOption{badJump, nil} {
		_, err := telemetry.CabStatsStream(s, window.Tumbling(time.Minute), o)
		require.ErrorIs(t, err, telemetry.ErrInvalidOption, i)
	}
	for i, o := range []telemetry.CabStatsAggOption{badJump, nil} {
		_, err := telemetry.NewCabStatsAgg(o)
		require.True(t, errors.Is(err, telemetry.ErrInvalidOption), i)
	}
	tr, err := telemetry.Track(s)
	require.NoError(t, err)
	for i, o := range []telemetry.ZoneDemandOption{telemetry.WithGeohashPrecision(0), telemetry.WithGeohashPrecision(13), nil} {
		_, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(time.Minute), o)
		require.ErrorIs(t, err, telemetry.ErrInvalidOption, i)
	}
	_, err = telemetry.CabStatsStream(s, window.Tumbling(0))
	require.ErrorIs(t, err, window.ErrInvalidOption)
}

// square returns a square fence with its south-west corner at lat, lon.
func square(lat, lon, side float64) telemetry.Polygon {
	return telemetry.Polygon{{Lat: lat, Lon: lon}, {Lat: lat + side, Lon: lon}, {Lat: lat + side, Lon: lon + side}, {Lat: lat, Lon: lon + side}}
}

// TestDocumentsRefuseUnencodable: every document encoder returns an error
// wrapping ErrEncode for a NaN or infinite figure or an unwritable time,
// leaves dst as it was, and writes valid JSON otherwise.
func TestDocumentsRefuseUnencodable(t *testing.T) {
	stats := telemetry.CabStats{CabID: "C", WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0, Events: 2}
	zone := telemetry.ZoneDemand{Zone: "ez3fh", WindowStart: t0, WindowEnd: t0.Add(time.Minute), Timestamp: t0, Events: 2}
	alert := telemetry.Alert{ID: "a", Type: telemetry.AlertSpeeding, CabID: "C", Time: t0, Severity: telemetry.SeverityHigh}
	type encoder = func(dst []byte) ([]byte, error)
	cab := func(edit func(*telemetry.CabStats)) encoder {
		s := stats
		edit(&s)
		return s.AppendJSON
	}
	zd := func(edit func(*telemetry.ZoneDemand)) encoder {
		z := zone
		edit(&z)
		return z.AppendJSON
	}
	al := func(edit func(*telemetry.Alert)) encoder {
		a := alert
		edit(&a)
		return a.AppendJSON
	}
	tests := []struct {
		name    string
		enc     encoder
		wantErr bool
	}{
		{"cab stats", stats.AppendJSON, false},
		{"zone demand", zone.AppendJSON, false},
		{"alert", alert.AppendJSON, false},
		{"cab stats avg +Inf", cab(func(s *telemetry.CabStats) { s.AvgSpeedKmh = math.Inf(1) }), true},
		{"cab stats max NaN", cab(func(s *telemetry.CabStats) { s.MaxSpeedKmh = math.NaN() }), true},
		{"cab stats distance -Inf", cab(func(s *telemetry.CabStats) { s.DistanceKm = math.Inf(-1) }), true},
		{"cab stats location NaN", cab(func(s *telemetry.CabStats) { s.LastLocation.Lon = math.NaN() }), true},
		{"cab stats year 10000", cab(func(s *telemetry.CabStats) { s.WindowEnd = s.WindowEnd.AddDate(8000, 0, 0) }), true},
		{"cab stats huge but finite", cab(func(s *telemetry.CabStats) { s.AvgSpeedKmh = math.MaxFloat64 }), false},
		{"zone demand avg +Inf", zd(func(z *telemetry.ZoneDemand) { z.AvgSpeedKmh = math.Inf(1) }), true},
		{"zone demand location NaN", zd(func(z *telemetry.ZoneDemand) { z.Location.Lat = math.NaN() }), true},
		{"zone demand year -5", zd(func(z *telemetry.ZoneDemand) { z.Timestamp = time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC) }), true},
		{"alert value +Inf", al(func(a *telemetry.Alert) { a.Details.Value = math.Inf(1) }), true},
		{"alert limit NaN", al(func(a *telemetry.Alert) { a.Details.Limit = math.NaN() }), true},
		{"alert duration -Inf", al(func(a *telemetry.Alert) { a.Details.DurationS = math.Inf(-1) }), true},
		{"alert location NaN", al(func(a *telemetry.Alert) { a.Location.Lat = math.NaN() }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.enc([]byte("prefix"))
			if !tt.wantErr {
				require.NoError(t, err)
				require.True(t, json.Valid(got[len("prefix"):]), "%s", got)
				return
			}
			require.ErrorIs(t, err, telemetry.ErrEncode)
			require.Equal(t, "prefix", string(got))
		})
	}
}
