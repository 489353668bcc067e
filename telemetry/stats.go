// Cab stats: the per-cab window figures (CabStats), their aggregator
// (CabStatsAgg), the one-line transform CabStatsStream and the cab-stats
// document.

package telemetry

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/fleetstream/fleetstream/internal/docid"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/window"
)

// CabStats is one cab's activity over one event-time window, shaped as a
// document of the cab-stats index. The aggregator fills the figures;
// [CabStatsDoc] adds the cab and the window.
type CabStats struct {
	CabID       string    `json:"cab_id"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Timestamp   time.Time `json:"@timestamp"` // the window start
	// Events counts the window's events; exact duplicates (same cab, ts, lat
	// and lon) count once.
	Events int64 `json:"events"`
	// DistanceKm is the great-circle length of the path through the window's
	// points in time order, GPS jumps left out.
	DistanceKm float64 `json:"distance_km"`
	// AvgSpeedKmh and MaxSpeedKmh summarise the speed readings, or the speed
	// derived from distance and time where an event has no reading. Both are
	// 0 when no speed is known (SpeedSamples 0).
	AvgSpeedKmh float64 `json:"avg_speed_kmh"`
	MaxSpeedKmh float64 `json:"max_speed_kmh"`
	// LastLocation is the cab's last good position in the window: the latest
	// point that the distance did not leave out as a GPS jump (a window that
	// ends on a jump does not put the cab where it could not have been).
	LastLocation Location `json:"last_location"`
	// LastStatus is the status of the latest event that reported one; it is
	// left out of the document when no event did.
	LastStatus Status `json:"last_status,omitempty"`
	// SpeedSamples counts the speeds behind the average; Jumps counts the
	// points left out as GPS jumps. Neither is part of the document.
	SpeedSamples int64 `json:"-"`
	Jumps        int64 `json:"-"`
	// Fleet, VehicleType and DriverID come from the fleet registry
	// ([CabStats.Register]); each is left out of the document when empty.
	Fleet       string `json:"fleet,omitempty"`
	VehicleType string `json:"vehicle_type,omitempty"`
	DriverID    string `json:"driver_id,omitempty"`
}

// CabStatsDoc returns the document of a window result: r.Value with the cab,
// the window bounds and @timestamp (the window start) filled in.
func CabStatsDoc(r window.Result[string, CabStats]) CabStats {
	s := r.Value
	s.CabID, s.WindowStart, s.WindowEnd, s.Timestamp = r.Key, r.Start, r.End, r.Start
	return s
}

// DocID returns the deterministic document ID of s in a pipeline: the same as
// opensearch.WindowID(pipeline, s.CabID, s.WindowStart, s.WindowEnd), so a
// replayed window overwrites its first copy.
func (s CabStats) DocID(pipeline string) string {
	var buf [32]byte
	return string(docid.AppendWindow(buf[:0], pipeline, s.CabID, s.WindowStart, s.WindowEnd))
}

// AppendJSON appends the document of s to dst: the fields of the JSON tags,
// with the same meaning as encoding/json would give them, without reflection.
// A figure that is NaN or infinite, or a time outside years 0000..9999, has no
// JSON encoding: the error wraps [ErrEncode] and dst is returned as it was.
func (s CabStats) AppendJSON(dst []byte) ([]byte, error) {
	var c encCheck
	c.time("window_start", s.WindowStart)
	c.time("window_end", s.WindowEnd)
	c.time("@timestamp", s.Timestamp)
	c.num("distance_km", s.DistanceKm)
	c.num("avg_speed_kmh", s.AvgSpeedKmh)
	c.num("max_speed_kmh", s.MaxSpeedKmh)
	c.num("last_location.lat", s.LastLocation.Lat)
	c.num("last_location.lon", s.LastLocation.Lon)
	if c.err != nil {
		return dst, fmt.Errorf("cab stats of %q: %w", s.CabID, c.err)
	}
	dst = append(dst, `{"cab_id":`...)
	dst = appendString(dst, s.CabID)
	dst = appendTimeField(dst, `,"window_start":`, s.WindowStart)
	dst = appendTimeField(dst, `,"window_end":`, s.WindowEnd)
	dst = appendTimeField(dst, `,"@timestamp":`, s.Timestamp)
	dst = append(dst, `,"events":`...)
	dst = appendDecimal(dst, s.Events, 0)
	dst = append(dst, `,"distance_km":`...)
	dst = appendFloat(dst, s.DistanceKm)
	dst = append(dst, `,"avg_speed_kmh":`...)
	dst = appendFloat(dst, s.AvgSpeedKmh)
	dst = append(dst, `,"max_speed_kmh":`...)
	dst = appendFloat(dst, s.MaxSpeedKmh)
	dst = append(dst, `,"last_location":`...)
	dst = appendLocation(dst, s.LastLocation)
	if s.LastStatus != StatusUnknown && s.LastStatus <= StatusOffline {
		dst = append(dst, `,"last_status":"`...)
		dst = append(dst, s.LastStatus.String()...)
		dst = append(dst, '"')
	}
	for _, f := range [...]struct{ name, v string }{{`,"fleet":`, s.Fleet}, {`,"vehicle_type":`, s.VehicleType}, {`,"driver_id":`, s.DriverID}} {
		if f.v != "" {
			dst = append(dst, f.name...)
			dst = appendString(dst, f.v)
		}
	}
	return append(dst, '}'), nil
}

// statPoint is what cab stats keep of an event: 40 bytes.
type statPoint struct {
	t        int64
	lat, lon float64
	speed    float64 // < 0: no reading
	status   Status
}

// CabStatsAcc is the accumulator of [CabStatsAgg]: the window's points, in
// arrival order until the result sorts them.
type CabStatsAcc struct {
	pts []statPoint
	// ordered reports that pts is strictly increasing in time, so the result
	// need not sort.
	ordered bool
}

// CabStatsAgg is the window.Aggregator behind [CabStatsStream]. It keeps every
// point of a key's window (40 bytes each) and computes the figures when the
// window closes, so events may arrive in any order and windows of any kind
// merge exactly. The zero value uses the default [WithJumpSpeedKmh].
type CabStatsAgg struct {
	jumpKmh float64
}

var _ window.Aggregator[Event, CabStatsAcc, CabStats] = CabStatsAgg{}

// NewCabStatsAgg returns the cab stats aggregator. It uses [WithJumpSpeedKmh].
func NewCabStatsAgg(opts ...CabStatsAggOption) (CabStatsAgg, error) {
	c, err := newConfig(opts, CabStatsAggOption.applyCabStatsAgg)
	if err != nil {
		return CabStatsAgg{}, err
	}
	return CabStatsAgg{jumpKmh: c.jumpKmh}, nil
}

// CabStatsStream aggregates events into [CabStats] per cab and window of the
// assigner: one line in a pipeline.
//
//	stats, err := telemetry.CabStatsStream(events, window.Tumbling(time.Minute))
//	docs := stream.Map(stats.Results(), telemetry.CabStatsDoc)
//
// It uses [WithJumpSpeedKmh] and [WithWindowOptions]; errors wrap [ErrInvalidOption]
// or window.ErrInvalidOption.
func CabStatsStream(s *stream.Stream[Event], assigner window.Assigner, opts ...CabStatsOption) (*window.Windowed[string, CabStats, Event], error) {
	c, err := newConfig(opts, CabStatsOption.applyCabStats)
	if err != nil {
		return nil, err
	}
	wopts := append([]window.Option{window.WithName("cab-stats")}, c.winOpts...)
	return window.AggregateElements(s, cabKey, assigner, window.Aggregator[Event, CabStatsAcc, CabStats](CabStatsAgg{jumpKmh: c.jumpKmh}), wopts...)
}

func cabKey(e Event) string           { return e.CabID }
func (CabStatsAgg) Zero() CabStatsAcc { return CabStatsAcc{ordered: true} }

// Add appends e's point.
func (CabStatsAgg) Add(acc CabStatsAcc, e Event) CabStatsAcc {
	p := statPoint{t: e.Time.UnixNano(), lat: e.Lat, lon: e.Lon, speed: -1, status: e.Status}
	if e.Has&HasSpeed != 0 {
		p.speed = e.SpeedKmh
	}
	if n := len(acc.pts); n > 0 && p.t <= acc.pts[n-1].t {
		acc.ordered = false
	}
	if acc.pts == nil {
		acc.pts = make([]statPoint, 0, 4)
	}
	acc.pts = append(acc.pts, p)
	return acc
}

// Reset returns an empty accumulator that reuses acc's points' memory (window.Resetter): a
// tumbling window's bucket reused for a later window starts its cabs with an earlier window's
// storage instead of growing new slices. Result never keeps the points.
func (CabStatsAgg) Reset(acc CabStatsAcc) CabStatsAcc {
	return CabStatsAcc{pts: acc.pts[:0], ordered: true}
}

var _ window.Resetter[CabStatsAcc] = CabStatsAgg{}

// Merge returns the points of both, in new storage: window engines may share
// accumulators between panes.
func (CabStatsAgg) Merge(a, b CabStatsAcc) CabStatsAcc {
	if len(b.pts) == 0 {
		return a
	}
	pts := make([]statPoint, 0, len(a.pts)+len(b.pts))
	pts = append(append(pts, a.pts...), b.pts...)
	ordered := a.ordered && b.ordered && (len(a.pts) == 0 || a.pts[len(a.pts)-1].t < b.pts[0].t)
	return CabStatsAcc{pts: pts, ordered: ordered}
}

func comparePoints(a, b statPoint) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lat, b.lat); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lon, b.lon); c != 0 {
		return c
	}
	if c := cmp.Compare(a.speed, b.speed); c != 0 {
		return c
	}
	return cmp.Compare(a.status, b.status)
}

// Result walks the points in time order (ties broken by position, speed and
// status, so arrival order never matters).
func (a CabStatsAgg) Result(acc CabStatsAcc) CabStats {
	pts := acc.pts
	if !acc.ordered {
		// Sort a copy: the stored points may be shared with other windows.
		pts = slices.Clone(pts)
		slices.SortFunc(pts, comparePoints)
	}
	var (
		s        CabStats
		path     pathState
		speedSum float64
	)
	path.jumpKmh = a.jumpKmh
	if path.jumpKmh == 0 { // the zero CabStatsAgg
		path.jumpKmh = DefaultJumpSpeedKmh
	}
	for i := range pts {
		p := &pts[i]
		if i > 0 {
			q := &pts[i-1]
			if p.t == q.t && p.lat == q.lat && p.lon == q.lon {
				continue // exact duplicate
			}
		}
		s.Events++
		if p.status != StatusUnknown {
			s.LastStatus = p.status
		}
		seg := path.step(p.t, Point{Lat: p.lat, Lon: p.lon})
		if seg.jump {
			s.Jumps++
		}
		s.DistanceKm += seg.km
		v := p.speed
		if v < 0 && seg.ok {
			v = seg.kmh()
		}
		if v >= 0 {
			speedSum += v
			s.SpeedSamples++
			s.MaxSpeedKmh = max(s.MaxSpeedKmh, v)
		}
	}
	if s.SpeedSamples > 0 {
		s.AvgSpeedKmh = speedSum / float64(s.SpeedSamples)
	}
	if path.hasGood {
		s.LastLocation = Location{Lat: path.good.lat, Lon: path.good.lon}
	}
	return s
}

// pathState follows a cab's path point by point, leaving out GPS jumps: a
// point whose implied speed from the last good point exceeds jumpKmh is a
// jump and skipped, and the next point is measured from the last good one.
// Two consecutive jumps that agree with each other (the second is within
// jumpKmh of the first) show that the last good point was the outlier: the
// path goes on from the first of them.
type pathState struct {
	jumpKmh  float64
	good     pathPoint
	goodT    int64
	hasGood  bool
	jump     pathPoint // the previous point, if it was a jump
	jumpT    int64
	lastJump bool
}

// segment is the move to a point: ok when the point is good and has a
// predecessor, jump when it was left out.
type segment struct {
	km   float64
	dt   int64
	ok   bool
	jump bool
}

func (s segment) kmh() float64 { return s.km / (float64(s.dt) / float64(time.Hour)) }

func (ps *pathState) plausible(km float64, dt int64) bool { return plausibleMove(ps.jumpKmh, km, dt) }

// plausibleMove reports whether moving km in dt nanoseconds is possible at up
// to jumpKmh.
func plausibleMove(jumpKmh, km float64, dt int64) bool {
	return dt > 0 && km/(float64(dt)/float64(time.Hour)) <= jumpKmh
}

func (ps *pathState) step(t int64, pos Point) segment {
	p := newPathPoint(pos)
	if !ps.hasGood {
		ps.good, ps.goodT, ps.hasGood = p, t, true
		return segment{}
	}
	km, dt := distance(ps.good, p), t-ps.goodT
	if ps.plausible(km, dt) {
		ps.good, ps.goodT, ps.lastJump = p, t, false
		return segment{km: km, dt: dt, ok: true}
	}
	if ps.lastJump {
		if km2, dt2 := distance(ps.jump, p), t-ps.jumpT; ps.plausible(km2, dt2) {
			ps.good, ps.goodT, ps.lastJump = p, t, false
			return segment{km: km2, dt: dt2, ok: true}
		}
	}
	ps.jump, ps.jumpT, ps.lastJump = p, t, true
	return segment{jump: true}
}

// pathPoint is a position with the cosine of its latitude, which every
// distance from it needs.
type pathPoint struct {
	lat, lon float64 // degrees
	cosLat   float64
}

func newPathPoint(p Point) pathPoint {
	return pathPoint{lat: p.Lat, lon: p.Lon, cosLat: math.Cos(p.Lat * degToRad)}
}

// distance is Haversine for two pathPoints, with the cosines computed once
// per point and, for the short moves between telemetry points, the arcsine
// taken from its series (exact to float64 precision below 1e-3).
func distance(a, b pathPoint) float64 {
	sdLat := sinHalf((b.lat - a.lat) * degToRad)
	sdLon := sinHalf((b.lon - a.lon) * degToRad)
	h := sdLat*sdLat + a.cosLat*b.cosLat*sdLon*sdLon
	x := math.Sqrt(math.Min(h, 1))
	if x < 1e-3 {
		x2 := x * x
		return 2 * EarthRadiusKm * x * (1 + x2*(1.0/6+x2*(3.0/40+x2*(5.0/112))))
	}
	return 2 * EarthRadiusKm * math.Asin(x)
}

// sinHalf returns sin(d/2), from its series for the small angles of
// consecutive points (exact to float64 precision below 1e-2).
func sinHalf(d float64) float64 {
	x := d / 2
	if math.Abs(x) < 1e-2 {
		x2 := x * x
		return x * (1 - x2*(1.0/6-x2*(1.0/120-x2*(1.0/5040))))
	}
	return math.Sin(x)
}
