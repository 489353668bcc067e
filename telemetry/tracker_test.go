// Tests of the cab tracker: each alert, the annotations, and replay after a
// crash giving the same alerts and windows as an uninterrupted run.

package telemetry_test

import (
	"hash/fnv"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
	"github.com/fleetstream/fleetstream/window"
)

type trackRun struct {
	h      *streamtest.Harness
	q      *streamtest.Queue[telemetry.Event]
	alerts *streamtest.Collector[telemetry.Alert]
	events *streamtest.Collector[telemetry.Tracked]
}

func newTrackRun(t *testing.T, opts ...telemetry.TrackOption) *trackRun {
	t.Helper()
	h := streamtest.New(t, time.Second)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	tr, err := telemetry.Track(s, opts...)
	require.NoError(t, err)
	return &trackRun{h: h, q: q, alerts: streamtest.Collect(tr.Alerts()), events: streamtest.Collect(tr.Events())}
}

// oneByOne queues every event as a batch of its own.
func (r *trackRun) oneByOne(es ...telemetry.Event) {
	for _, e := range es {
		r.q.Add(rec(e))
	}
}

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func TestTrackSpeedingAndHarshBraking(t *testing.T) {
	r := newTrackRun(t, telemetry.WithSpeedLimit(100, 10*time.Second), telemetry.WithHarshBraking(4))
	speeds := []struct{ sec, kmh float64 }{
		{0, 80}, {5, 110}, {10, 120}, {15, 115}, {20, 90}, {25, 130}, {30, 95}, {32, 40},
	}
	for i, s := range speeds {
		r.oneByOne(ev("A", s.sec, 41.15+0.0005*float64(i), s.kmh, hired))
	}
	r.q.End()
	r.h.RunUntilDone()
	al := r.alerts.Slice()
	require.Len(t, al, 2)

	// 110, 120, 115 from 5 s to 15 s: 10 s above 100 km/h.
	sp := al[0]
	require.Equal(t, telemetry.AlertSpeeding, sp.Type)
	require.Equal(t, "A/speeding/2026-11-25T10:00:05Z", sp.ID)
	require.Equal(t, at(5), sp.Time)
	require.Equal(t, telemetry.AlertDetails{Value: 120, Limit: 100, DurationS: 10}, sp.Details)
	require.Equal(t, telemetry.SeverityMedium, sp.Severity)
	require.Equal(t, telemetry.Location{Lat: 41.15 + 0.0005*3, Lon: lon0}, sp.Location)
	// 130 at 25 s lasted 5 s: no alert. 95 -> 40 km/h in 2 s is 7.64 m/s².
	hb := al[1]
	require.Equal(t, telemetry.AlertHarshBraking, hb.Type)
	require.Equal(t, at(30), hb.Time)
	require.InDelta(t, 55/3.6/2, hb.Details.Value, 1e-12)
	require.Equal(t, 4.0, hb.Details.Limit)
	require.Equal(t, 2.0, hb.Details.DurationS)

	// Commits (recorded when they move) hold back to the event before an
	// open speeding stretch: offsets 0..7, one batch each; the stretch from
	// offset 1 (before it: 0) fires at offset 3, the one from offset 5
	// (before it: 4) ends at offset 6; the end of input keeps the commit at 7,
	// A's last event, from which a run on the next events rebuilds A's state.
	var committed []int64
	for _, c := range r.q.Commits() {
		committed = append(committed, c[0].Offset)
	}
	require.Equal(t, []int64{0, 3, 4, 6, 7}, committed)
}

func TestTrackIdlePickupSilent(t *testing.T) {
	r := newTrackRun(t, telemetry.WithIdleAfter(time.Minute), telemetry.WithSilentAfter(time.Minute))
	r.oneByOne(
		ev("C", 0, 41.0, 10, avail), // then silent
		ev("B", 0, 41.2, 30, avail),
		ev("B", 15, 41.2, 0, hired), // pickup; idle from here
		ev("B", 30, 41.2, 0, hired),
		ev("B", 45, 41.2, -1, hired), // no reading, did not move: still idle
		ev("B", 60, 41.2, 0.5, hired),
		ev("B", 75, 41.2, 0, hired), // idle for 60 s: alert
		ev("B", 90, 41.2, 0, hired), // no second alert
		ev("B", 105, 41.21, 20, hired),
	)
	r.q.End()
	r.h.RunUntilDone()

	var pickups []time.Time
	for _, e := range r.events.Slice() {
		if e.Pickup {
			pickups = append(pickups, e.Time)
		}
	}
	require.Equal(t, []time.Time{at(15)}, pickups)

	// Both alerts come with the 7th batch (B's 75 s event): B has stood
	// still for 60 s, and the watermark (75 s) passed C's deadline (its last
	// event at 0 + 60 s; at 60 s it had only reached it). The input ends
	// with B's state alive: no device-silent for B.
	batches := r.alerts.Batches()
	require.Len(t, batches[6], 2)
	require.Len(t, r.alerts.Slice(), 2)
	require.Equal(t, telemetry.Alert{
		ID: "B/long_idle/2026-11-25T10:00:15Z", Type: telemetry.AlertLongIdle, CabID: "B", Time: at(15),
		Location: telemetry.Location{Lat: 41.2, Lon: lon0}, Severity: telemetry.SeverityLow,
		Details: telemetry.AlertDetails{Value: 60, Limit: 60, DurationS: 60},
	}, batches[6][0])
	require.Equal(t, telemetry.Alert{
		ID: "C/device_silent/2026-11-25T10:00:00Z", Type: telemetry.AlertDeviceSilent, CabID: "C", Time: t0,
		Location: telemetry.Location{Lat: 41.0, Lon: lon0}, Severity: telemetry.SeverityMedium,
		Details: telemetry.AlertDetails{Limit: 60, DurationS: 60},
	}, batches[6][1])
}

func TestTrackGeofencesAndAnnotations(t *testing.T) {
	station := telemetry.Geofence{Name: "station", Area: square(41.3, -8.615, 0.01)}
	r := newTrackRun(t, telemetry.WithGeofences(station))
	r.oneByOne(
		ev("D", 0, 41.2995, 30, avail),
		ev("D", 15, 41.3005, 30, avail), // enters
		ev("D", 30, 41.3500, 30, avail), // GPS jump out of the fence: no exit
		ev("D", 45, 41.3095, 30, avail), // 0.009° in 30 s from the last good point
		ev("D", 45, 41.3095, 30, avail), // duplicate
		ev("D", 40, 41.3080, 30, avail), // out of order: no alert, no exit
		ev("D", 42, 41.3500, 30, avail), // out of order and a GPS jump (4.6 km in 3 s from the last)
		ev("D", 60, 41.3105, 30, avail), // leaves
	)
	r.q.End()
	r.h.RunUntilDone()
	al := r.alerts.Slice()
	require.Len(t, al, 2)
	require.Equal(t, telemetry.AlertGeofenceEnter, al[0].Type)
	require.Equal(t, "D/geofence_enter/station/2026-11-25T10:00:15Z", al[0].ID)
	require.Equal(t, "station", al[0].Details.Fence)
	require.Equal(t, telemetry.AlertGeofenceExit, al[1].Type)
	require.Equal(t, at(60), al[1].Time)

	type flags struct{ jump, dup, ooo bool }
	var got []flags
	for _, e := range r.events.Slice() {
		got = append(got, flags{e.Jump, e.Duplicate, e.OutOfOrder})
	}
	require.Equal(t, []flags{{}, {}, {jump: true}, {}, {dup: true}, {ooo: true}, {jump: true, ooo: true}, {}}, got)
}

func TestAlertDocument(t *testing.T) {
	mustJSON := func(doc []byte, err error) []byte {
		t.Helper()
		require.NoError(t, err)
		return doc
	}
	a := telemetry.Alert{
		ID: "D/geofence_enter/station/2026-11-25T10:00:15Z", Type: telemetry.AlertGeofenceEnter, CabID: "D",
		Time: at(15), Location: telemetry.Location{Lat: 41.3005, Lon: lon0}, Severity: telemetry.SeverityInfo,
		Details: telemetry.AlertDetails{Fence: "station"},
	}
	require.JSONEq(t, `{"alert_id":"D/geofence_enter/station/2026-11-25T10:00:15Z","type":"geofence_enter",
		"cab_id":"D","@timestamp":"2026-11-25T10:00:15Z","location":{"lat":41.3005,"lon":-8.61},
		"severity":"info","details":{"fence":"station"}}`, string(mustJSON(a.AppendJSON(nil))))
	a.Details = telemetry.AlertDetails{Value: 120.5, Limit: 100, DurationS: 10}
	doc := mustJSON(a.AppendJSON(nil))
	require.JSONEq(t, `{"value":120.5,"limit":100,"duration_s":10}`,
		string(doc)[len(`{"alert_id":"D/geofence_enter/station/2026-11-25T10:00:15Z","type":"geofence_enter","cab_id":"D","@timestamp":"2026-11-25T10:00:15Z","location":{"lat":41.3005,"lon":-8.61},"severity":"info","details":`):len(doc)-1])
}

// replayInput is a faulty fleet stream split into partitions by cab, as a
// Kafka producer keyed by cab would, in batches of arrival order.
type replayInput struct {
	batches [][]stream.Record[telemetry.Event]
}

func newReplayInput(t *testing.T) replayInput {
	t.Helper()
	sim, err := fleetsim.New(fleetsim.Config{Seed: 11, Cabs: 12, Interval: time.Second,
		StartTime: t0, Faults: fleetsim.Faults{
			Speeding: 0.02, HarshBraking: 0.03, GPSJump: 0.01, OutOfOrder: 0.02,
			MaxDelay: 3 * time.Second, Duplicate: 0.02,
		}})
	require.NoError(t, err)
	const parts = 3
	var next [parts]int64
	var in replayInput
	var cur []stream.Record[telemetry.Event]
	n := 0
	for m := range sim.All() {
		if n == 3000 {
			break
		}
		n++
		e := m.Event
		// CAB-0003 goes silent half way; CAB-0004 stands still, hired.
		if e.CabID == sim.CabIDs()[3] && n > 1500 {
			continue
		}
		if e.CabID == sim.CabIDs()[4] {
			e.Lat, e.Lon, e.Status, e.SpeedKmh, e.Has = 41.15, -8.61, hired, 0, telemetry.HasSpeed
		}
		h := fnv.New32a()
		h.Write([]byte(e.CabID))
		p := int32(h.Sum32() % parts)
		cur = append(cur, stream.Record[telemetry.Event]{Value: e, Partition: p, Offset: next[p], EventTime: e.Time})
		next[p]++
		if len(cur) == 60 {
			in.batches = append(in.batches, cur)
			cur = nil
		}
	}
	in.batches = append(in.batches, cur)
	return in
}

type replayOut struct {
	starts map[string]bool // cab@time of the events flagged TripStart
	alerts map[string]telemetry.Alert
	zones  map[string]telemetry.ZoneDemand
	stats  map[string]telemetry.CabStats
}

func newReplayOut() *replayOut {
	return &replayOut{starts: map[string]bool{}, alerts: map[string]telemetry.Alert{}, zones: map[string]telemetry.ZoneDemand{}, stats: map[string]telemetry.CabStats{}}
}

// merge writes what h's outputs wrote, overwriting by document ID.
func (o *replayOut) merge(h *replayHarness) {
	if h.alerts != nil {
		for _, a := range h.alerts.Slice() {
			o.alerts[a.ID] = a
		}
	}
	if h.starts != nil {
		for _, e := range h.starts.Slice() {
			o.starts[e.CabID+"@"+e.Time.String()] = true
		}
	}
	if h.zones != nil {
		for _, r := range h.zones.Slice() {
			// Without a repartition, partitions emit partials of a zone
			// under one document ID: keep them apart by partition.
			z := telemetry.ZoneDemandDoc(r)
			o.zones[z.DocID("replay")+"/"+strconv.Itoa(int(r.Partition))] = z
		}
	}
	if h.stats != nil {
		for _, r := range h.stats.Slice() {
			s := telemetry.CabStatsDoc(r)
			o.stats[s.DocID("replay")] = s
		}
	}
}

type replayHarness struct {
	h      *streamtest.Harness
	q      *streamtest.Queue[telemetry.Event]
	alerts *streamtest.Collector[telemetry.Alert]
	starts *streamtest.Collector[telemetry.Tracked]
	zones  *streamtest.Collector[window.Result[string, telemetry.ZoneDemand]]
	stats  *streamtest.Collector[window.Result[string, telemetry.CabStats]]
}

// Pipelines under test.
const (
	withTracker = iota // tracker, zone demand on its events, cab stats
	zonesOnly
	statsOnly
	trackerOnly // the tracker alone decides the commits
)

// newReplayHarness builds the pipeline under test.
func newReplayHarness(t *testing.T, mode int) *replayHarness {
	h := streamtest.New(t, time.Second, stream.WithMaxOutOfOrderness(5*time.Second))
	q, s := streamtest.NewQueue[telemetry.Event](h)
	rh := &replayHarness{h: h, q: q}
	tracked := stream.Map(s, func(e telemetry.Event) telemetry.Tracked { return telemetry.Tracked{Event: e} })
	if mode == withTracker || mode == trackerOnly {
		tr, err := telemetry.Track(s,
			telemetry.WithSpeedLimit(100, 3*time.Second), telemetry.WithIdleAfter(20*time.Second), telemetry.WithSilentAfter(10*time.Second),
			telemetry.WithGeofences(telemetry.Geofence{Name: "centre", Area: square(41.13, -8.63, 0.03)},
				telemetry.Geofence{Name: "west", Area: square(41.18, -8.66, 0.02)}))
		require.NoError(t, err)
		rh.alerts = streamtest.Collect(tr.Alerts())
		rh.starts = streamtest.Collect(tr.Events().Filter(func(e telemetry.Tracked) bool { return e.TripStart }))
		tracked = tr.Events()
	}
	if mode == trackerOnly {
		return rh
	}
	if mode != statsOnly {
		zones, err := telemetry.ZoneDemandStream(tracked, window.Tumbling(30*time.Second))
		require.NoError(t, err)
		rh.zones = streamtest.Collect(zones.Results())
	}
	if mode != zonesOnly {
		stats, err := telemetry.CabStatsStream(s, window.Sliding(time.Minute, 20*time.Second))
		require.NoError(t, err)
		rh.stats = streamtest.Collect(stats.Results())
	}
	return rh
}

// crashAndReplay runs the first k batches, "crashes", and runs a new
// pipeline on what is left from the committed offsets, batch boundaries kept.
func crashAndReplay(t *testing.T, in replayInput, k int, mode int) *replayOut {
	got := newReplayOut()
	first := newReplayHarness(t, mode)
	for _, b := range in.batches[:k] {
		first.q.Add(b...)
	}
	first.h.Run(k)
	got.merge(first)
	from := map[int32]int64{}
	for p := int32(0); p < 3; p++ {
		from[p] = max(first.q.Committed(p), 0)
	}
	second := newReplayHarness(t, mode)
	for _, b := range in.batches {
		var rest []stream.Record[telemetry.Event]
		for _, r := range b {
			if r.Offset >= from[r.Partition] {
				rest = append(rest, r)
			}
		}
		if len(rest) > 0 {
			second.q.Add(rest...)
		}
	}
	second.q.End()
	second.h.RunUntilDone()
	got.merge(second)
	return got
}

func uninterrupted(t *testing.T, in replayInput, mode int) (*replayOut, int) {
	full := newReplayOut()
	h := newReplayHarness(t, mode)
	for _, b := range in.batches {
		h.q.Add(b...)
	}
	h.q.End()
	h.h.RunUntilDone()
	full.merge(h)
	n := 0
	if h.alerts != nil {
		n = len(h.alerts.Slice())
	}
	return full, n
}

// TestTrackReplayDeterminism crashes a pipeline after k batches, restarts a
// new one from the committed offsets, and checks that the alerts both wrote,
// replayed ones overwriting by ID, are those of one uninterrupted run. The
// commits are the minimum over the tracker and two windows, so the tracker
// is also replayed from further back than it needed.
func TestTrackReplayDeterminism(t *testing.T) {
	for _, mode := range []int{withTracker, trackerOnly} {
		testTrackReplay(t, mode)
	}
}

func testTrackReplay(t *testing.T, mode int) {
	in := newReplayInput(t)
	full, n := uninterrupted(t, in, mode)
	types := map[telemetry.AlertType]int{}
	for _, a := range full.alerts {
		types[a.Type]++
	}
	for _, typ := range []telemetry.AlertType{telemetry.AlertSpeeding, telemetry.AlertHarshBraking, telemetry.AlertLongIdle,
		telemetry.AlertGeofenceEnter, telemetry.AlertGeofenceExit, telemetry.AlertDeviceSilent} {
		require.Positive(t, types[typ], typ)
	}
	require.Equal(t, n, len(full.alerts), "alert IDs are unique")
	require.NotEmpty(t, full.starts)
	for k := 1; k < len(in.batches); k++ {
		got := crashAndReplay(t, in, k, mode)
		require.Equal(t, full.alerts, got.alerts, "mode %d: crash after %d batches", mode, k)
		require.Equal(t, full.starts, got.starts, "mode %d: crash after %d batches: trip starts", mode, k)
	}
}

// TestWindowsReplayDeterminism is the same for zone demand and cab stats
// documents, each in a pipeline where its window alone decides the commits
// (see the package doc's note on replays that start before a window's own
// replay position).
func TestWindowsReplayDeterminism(t *testing.T) {
	in := newReplayInput(t)
	for _, mode := range []int{zonesOnly, statsOnly} {
		full, _ := uninterrupted(t, in, mode)
		require.NotEmpty(t, len(full.zones)+len(full.stats))
		for k := 1; k < len(in.batches); k++ {
			got := crashAndReplay(t, in, k, mode)
			require.Equal(t, full.stats, got.stats, "crash after %d batches", k)
			require.Equal(t, full.zones, got.zones, "crash after %d batches", k)
		}
	}
}

// Device-silent alerts follow the partition's records, not the batches: the
// same records in one batch or one by one give the same alerts.
func TestTrackSilentIndependentOfBatches(t *testing.T) {
	es := []telemetry.Event{
		ev("C", 0, 41.0, 10, avail),
		ev("B", 0, 41.2, 30, avail),
		ev("B", 61, 41.2, 30, avail), // C silent from here
		ev("C", 62, 41.0, 10, avail), // back: a new start
		ev("B", 130, 41.2, 30, avail),
	}
	var runs [][]telemetry.Alert
	for _, oneBatch := range []bool{false, true} {
		r := newTrackRun(t, telemetry.WithSilentAfter(time.Minute))
		if oneBatch {
			r.q.Add(recs(es...)...)
		} else {
			r.oneByOne(es...)
		}
		r.q.End()
		r.h.RunUntilDone()
		runs = append(runs, r.alerts.Slice())
	}
	require.Equal(t, runs[0], runs[1])
	var ids []string
	for _, a := range runs[0] {
		ids = append(ids, a.ID)
	}
	require.Equal(t, []string{"C/device_silent/2026-11-25T10:00:00Z", "C/device_silent/2026-11-25T10:01:02Z"}, ids)
}

// A cab's commit position can be held by another cab. Here B's open
// speeding stretch holds the commit at its event before (offset 2), which
// falls between A's last good point (1) and A's GPS jump (3): replayed from
// 2, the jump would be A's first event and taken for good, and A's return to
// the road would look like leaving the fence around the jump. The tracker
// moves the commit back to 1.
func TestTrackCommitNotInsideAJump(t *testing.T) {
	es := []telemetry.Event{
		ev("A", 0, 41.000, 30, hired),   // 0
		ev("A", 15, 41.001, 30, hired),  // 1
		ev("B", 15, 41.200, 60, hired),  // 2
		ev("A", 30, 41.500, 30, hired),  // 3: jump into the fence
		ev("B", 30, 41.201, 130, hired), // 4: speeding from here
		ev("A", 45, 41.002, 30, hired),  // 5
		ev("A", 60, 41.003, 30, hired),  // 6
		ev("B", 45, 41.202, 130, hired), // 7
		ev("A", 75, 41.004, 30, hired),  // 8
	}
	opts := []telemetry.TrackOption{telemetry.WithSpeedLimit(100, time.Hour),
		telemetry.WithGeofences(telemetry.Geofence{Name: "far", Area: square(41.45, -8.65, 0.1)})}

	full := newTrackRun(t, opts...)
	full.oneByOne(es...)
	full.q.End()
	full.h.RunUntilDone()
	require.Empty(t, full.alerts.Slice())

	first := newTrackRun(t, opts...)
	first.oneByOne(es[:6]...)
	first.h.Run(6)
	from := first.q.Committed(0)
	second := newTrackRun(t, opts...)
	for i := from; i < int64(len(es)); i++ {
		r := rec(es[i])
		r.Offset = i
		second.q.Add(r)
	}
	second.q.End()
	second.h.RunUntilDone()
	require.Empty(t, second.alerts.Slice())
	// The replay annotates every event as the first run did.
	require.Equal(t, full.events.Slice()[from:], second.events.Slice())
	require.EqualValues(t, 1, from)
}

// TestTrackTripStart: TripStart marks the first event of each trip (status hired, a new trip
// ID), with or without an available status before it, never a cab's first event, a
// duplicate, an out-of-order event or an event without a trip.
func TestTrackTripStart(t *testing.T) {
	r := newTrackRun(t)
	trip := func(e telemetry.Event, id string) telemetry.Event {
		if id != "" {
			e.TripID, e.Has = id, e.Has|telemetry.HasTripID
		}
		return e
	}
	in := []telemetry.Event{
		trip(ev("A", 0, 41.15, 20, hired), "T1"),    // the cab's first event: unknown
		trip(ev("A", 15, 41.1501, 20, hired), "T1"), // same trip
		ev("A", 30, 41.1502, 20, avail),
		trip(ev("A", 45, 41.1503, 20, hired), "T2"), // start (and a Pickup)
		trip(ev("A", 45, 41.1503, 20, hired), "T2"), // duplicate
		trip(ev("A", 60, 41.1504, 20, hired), "T3"), // start, hired all along (Porto)
		trip(ev("A", 55, 41.1505, 20, hired), "T4"), // out of order
		ev("A", 75, 41.1506, 20, hired),             // hired without a trip ID
		trip(ev("A", 90, 41.1507, 20, hired), "T3"), // T3 again after an event without trip
	}
	for _, e := range in {
		r.q.Add(rec(e))
	}
	r.q.End()
	r.h.RunUntilDone()
	var starts []bool
	var pickups []bool
	for _, e := range r.events.Slice() {
		starts = append(starts, e.TripStart)
		pickups = append(pickups, e.Pickup)
	}
	require.Equal(t, []bool{false, false, false, true, false, true, false, false, true}, starts)
	require.Equal(t, []bool{false, false, false, true, false, false, false, false, false}, pickups)
}

// TestTrackRunsInARow: a bounded run ends inside a speeding stretch, and a run on the next
// events (resumed at the committed position, as a Kafka source resumes) alerts the stretch as
// one run over all the events does. The tracker dropped its state at the end of the input,
// so the commit moved past the stretch's start and the next run saw only its last 5 s.
func TestTrackRunsInARow(t *testing.T) {
	speeds := []struct{ sec, kmh float64 }{{0, 80}, {5, 110}, {10, 120}, {15, 115}, {20, 90}}
	recsAt := func(from int) []stream.Record[telemetry.Event] {
		var out []stream.Record[telemetry.Event]
		for i := from; i < len(speeds); i++ {
			r := rec(ev("A", speeds[i].sec, 41.15+0.0005*float64(i), speeds[i].kmh, hired))
			r.Offset = int64(i)
			out = append(out, r)
		}
		return out
	}
	one := newTrackRun(t, telemetry.WithSpeedLimit(100, 10*time.Second))
	one.q.Add(recsAt(0)...)
	one.q.End()
	one.h.RunUntilDone()
	require.Len(t, one.alerts.Slice(), 1, "one run")

	first := newTrackRun(t, telemetry.WithSpeedLimit(100, 10*time.Second))
	first.q.Add(recsAt(0)[:3]...) // ends at 10 s, 5 s into the stretch
	first.q.End()
	first.h.RunUntilDone()
	require.Empty(t, first.alerts.Slice())
	cp, ok := first.q.CommittedPosition(0)
	require.True(t, ok)
	require.LessOrEqual(t, cp.Offset, int64(1), "the commit moved past the stretch's start")

	next := newTrackRun(t, telemetry.WithSpeedLimit(100, 10*time.Second))
	next.q.Resume(cp)
	next.q.Add(recsAt(int(cp.Offset))...)
	next.q.End()
	next.h.RunUntilDone()
	require.Equal(t, one.alerts.Slice(), next.alerts.Slice())
}

// TestTrackReplayKeepsTheWatermark: a cab lagging the partition (C) falls silent on the
// partition's watermark, which the newest event time so far sets. A replay that started after
// the record that set it (A's, at offset 1, while B held the commit at 2) saw a lower
// watermark, kept C that the first run had forgotten, and raised a harsh braking the first
// run never did. The tracker keeps the commit at a record that holds the newest time.
func TestTrackReplayKeepsTheWatermark(t *testing.T) {
	batches := [][]telemetry.Event{
		{
			ev("B", 150, 41.20, 30, hired),
			ev("A", 200, 41.10, 30, hired), // the newest time
			ev("B", 155, 41.2001, 30, hired),
			ev("C", 120, 41.30, 100, hired), // C lags: silent at the batch's end
		},
		{
			ev("C", 125, 41.3001, 0, hired), // a new start for C, no braking
			ev("A", 205, 41.1001, 30, hired),
		},
		{ev("A", 210, 41.1002, 30, hired)},
	}
	opts := []telemetry.TrackOption{telemetry.WithSilentAfter(time.Minute)}
	run := func(from int64, crashAfter int) (*trackRun, []telemetry.Tracked) {
		r := newTrackRun(t, opts...)
		off := int64(0)
		for _, b := range batches {
			var rs []stream.Record[telemetry.Event]
			for _, e := range b {
				if off >= from {
					x := rec(e)
					x.Offset = off
					rs = append(rs, x)
				}
				off++
			}
			if len(rs) > 0 {
				r.q.Add(rs...)
			}
		}
		if crashAfter > 0 {
			r.h.Run(crashAfter)
		} else {
			r.q.End()
			r.h.RunUntilDone()
		}
		return r, r.events.Slice()
	}
	ids := func(r *trackRun, into map[string]bool) {
		for _, a := range r.alerts.Slice() {
			into[a.ID] = true
		}
	}
	full, fullEvents := run(0, 0)
	want := map[string]bool{}
	ids(full, want)
	require.NotContains(t, want, "C/harsh_braking/2026-11-25T10:02:00Z")
	for k := 1; k < len(batches); k++ {
		first, _ := run(0, k)
		from := max(first.q.Committed(0), 0)
		second, events := run(from, 0)
		got := map[string]bool{}
		ids(first, got)
		ids(second, got)
		require.Equal(t, want, got, "crash after %d batches, replay from %d", k, from)
		require.Equal(t, fullEvents[from:], events, "crash after %d batches, replay from %d", k, from)
	}
}

// TestTrackSilentOncePerSilence: events of a cab the tracker forgot that come in already past
// their silence (a stale copy delivered again, a backlog a device uploads late) are passed on
// but start no state: each of them used to make the cab new, then silent again at once, so one
// silence raised a device-silent alert per late event (one of them under an earlier start
// than the first alert, from an event older than the cab's latest).
func TestTrackSilentOncePerSilence(t *testing.T) {
	var es []telemetry.Event
	for sec := 0.0; sec <= 300; sec += 10 {
		es = append(es, ev("A", sec, 41.10+sec*1e-5, 30, hired))
		if sec <= 60 {
			es = append(es, ev("X", sec, 41.20+sec*1e-5, 30, hired))
		}
	}
	es = append(es,
		ev("X", 30, 41.2003, 30, hired), // stale copies of X's events
		ev("X", 60, 41.2006, 30, hired),
		ev("X", 70, 41.2007, 30, hired), // a late backlog
		ev("X", 80, 41.2008, 0, hired),
		ev("A", 310, 41.1031, 30, hired),
	)
	r := newTrackRun(t, telemetry.WithSilentAfter(time.Minute))
	r.oneByOne(es...)
	r.q.End()
	r.h.RunUntilDone()
	var silent []string
	for _, a := range r.alerts.Slice() {
		if a.CabID == "X" {
			silent = append(silent, a.ID)
		}
	}
	require.Equal(t, []string{"X/device_silent/2026-11-25T10:01:00Z"}, silent)
	require.Len(t, r.events.Slice(), len(es), "every event is passed on")
}

// A cab whose last event before a silence was a GPS jump: device_silent puts it
// at its last good position.
func TestTrackSilentAfterAJumpAtTheLastGoodPosition(t *testing.T) {
	r := newTrackRun(t, telemetry.WithSilentAfter(time.Minute))
	r.oneByOne(
		ev("A", 0, 41.100, 30, hired),
		ev("A", 10, 41.101, 30, hired),
		ev("A", 20, 41.800, 30, hired), // 78 km in 10 s: a jump, then nothing from A
	)
	for sec := 0.0; sec <= 120; sec += 10 {
		r.oneByOne(ev("B", sec, 41.20+sec*1e-5, 30, hired))
	}
	r.q.End()
	r.h.RunUntilDone()
	al := r.alerts.Slice()
	require.Len(t, al, 1)
	require.Equal(t, telemetry.AlertDeviceSilent, al[0].Type)
	require.Equal(t, "A", al[0].CabID)
	require.Equal(t, at(20), al[0].Time, "the silence starts after the last event, jump or not")
	require.Equal(t, telemetry.Location{Lat: 41.101, Lon: lon0}, al[0].Location)
}

// A late event redelivered right after itself is a duplicate (and out of
// order); a copy of it after an event in order is not told from a new one.
func TestTrackLateRedeliveryIsDuplicate(t *testing.T) {
	r := newTrackRun(t)
	late := ev("A", 5, 41.1005, 30, hired)
	r.oneByOne(
		ev("A", 0, 41.1000, 30, hired),
		ev("A", 10, 41.1010, 30, hired),
		late,
		late,                           // redelivered
		ev("A", 8, 41.1008, 30, hired), // another late event
		late,                           // a copy of the late event before the last one
		ev("A", 20, 41.1020, 30, hired),
		ev("A", 8, 41.1008, 30, hired), // a copy after an event in order
	)
	r.q.End()
	r.h.RunUntilDone()
	type flags struct{ dup, ooo bool }
	var got []flags
	for _, e := range r.events.Slice() {
		got = append(got, flags{e.Duplicate, e.OutOfOrder})
	}
	require.Equal(t, []flags{{}, {}, {false, true}, {true, true}, {false, true}, {false, true}, {}, {false, true}}, got)
}

// TestTrackAlertLocationIsNotAJump (helper-96's review): an alert that fires on
// a GPS jump puts the cab at its last good position, as device_silent does:
// speeding, harsh braking and long idle fire on the event that completes them,
// jump or not, and took its position.
func TestTrackAlertLocationIsNotAJump(t *testing.T) {
	r := newTrackRun(t, telemetry.WithSpeedLimit(100, 10*time.Second), telemetry.WithHarshBraking(4))
	r.oneByOne(
		ev("A", 0, 41.1000, 90, hired),
		ev("A", 5, 41.1030, 110, hired),  // the stretch starts
		ev("A", 10, 41.1060, 110, hired), // last good position
		ev("A", 15, 42.5000, 110, hired), // GPS jump, 155 km away: the stretch reaches 10 s here
		ev("A", 17, 41.1100, 40, hired),  // back: 70 -> 40 km/h in 2 s, harsh braking (from the jump's reading)
	)
	r.q.End()
	r.h.RunUntilDone()
	al := r.alerts.Slice()
	require.Len(t, al, 2)
	require.Equal(t, telemetry.AlertSpeeding, al[0].Type)
	require.True(t, r.events.Slice()[3].Jump)
	require.Equal(t, telemetry.Location{Lat: 41.1060, Lon: lon0}, al[0].Location, "the speeding alert at the last good position, not the jump")
}

// TestTrackReplayEveryRecord (helper-96's review): randomTrackInput one record
// a batch, so that a crash lands after every record and commits land at every
// offset a hold allows (a duplicate's and a redelivered late event's included).
func TestTrackReplayEveryRecord(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		var batches [][]stream.Record[telemetry.Event]
		for _, b := range randomTrackInput(seed+1000, 120) {
			for _, x := range b {
				batches = append(batches, []stream.Record[telemetry.Event]{x})
			}
		}
		full, _ := runRandomTrack(t, batches, 0, 0)
		for k := 1; k < len(batches); k++ {
			first, committed := runRandomTrack(t, batches, 0, k)
			from := max(committed, 0)
			second, _ := runRandomTrack(t, batches, from, 0)
			got := maps.Clone(first.alerts)
			maps.Copy(got, second.alerts)
			require.Equal(t, full.alerts, got, "seed %d: crash after %d records, replay from %d", seed, k, from)
			for off, e := range second.events {
				require.Equal(t, full.events[off], e, "seed %d: crash after %d records, replay from %d: event %d", seed, k, from, off)
			}
		}
	}
}
