// The cab tracker (Track): its API, what it adds to each event (Tracked) and
// the state it keeps per cab. The operator that follows each cab through its
// events, raises alerts, bounds the cabs it holds and holds commits back to
// what a replay needs is in tracker_op.go.

package telemetry

import (
	"time"
	"unsafe"

	"github.com/fleetstream/fleetstream/internal/lograte"
	"github.com/fleetstream/fleetstream/stream"
)

// Tracked is an event annotated by the cab tracker.
type Tracked struct {
	Event
	// Pickup: the cab's previous event said available and this one hired.
	Pickup bool
	// TripStart: this event is hired with a trip ID and the cab's previous
	// event was not of that trip: the trip's first event, its pickup (data
	// without an available status, such as the Porto sample, has no Pickup).
	// Never on a cab's first event, which the tracker cannot tell from the
	// middle of a trip (so a replay gives the same flags), nor on the first
	// event after a cab fell silent and was forgotten (device silent): data
	// with only the trips' points, such as the Porto sample, has TripStart on
	// the trips that follow another within WithSilentAfter only.
	TripStart bool
	// Jump: the position is a GPS jump (see [WithJumpSpeedKmh]). An OutOfOrder
	// event is one when the cab could not have been there, going from it to the
	// cab's latest good position or from that position to it (an event at the
	// same instant elsewhere is one); it does not move the path.
	Jump bool
	// Duplicate: an exact copy (same ts, lat and lon) of the cab's latest
	// event, or of the out-of-order event the cab sent last (a redelivery of
	// a late event, which is then OutOfOrder too). A copy of an older event
	// that arrives after others is not told from a new one.
	Duplicate bool
	// OutOfOrder: older than the cab's latest event (or as old, at another
	// position). The sequential detectors leave such events out.
	OutOfOrder bool
}

// Tracker is the output of [Track]: the annotated events, the alerts and the
// dead letters of cabs past the key limit.
type Tracker struct {
	events *stream.Stream[Tracked]
	alerts *stream.Stream[Alert]
	dead   *stream.Stream[stream.DeadLetter]
	op     *tracker
}

// Events returns every input event, annotated, in arrival order, but for the
// events [Tracker.DeadLetters] takes.
func (t *Tracker) Events() *stream.Stream[Tracked] { return t.events }

// Alerts returns the alerts.
func (t *Tracker) Alerts() *stream.Stream[Alert] { return t.alerts }

// DeadLetters returns the events the tracker did not follow because their
// cab was new and the tracker held [WithMaxCabs] cabs already: each with Reason
// stream.ReasonKeyLimit, the event's JSON as Value, its cab as Key, the
// pipeline partition and the offset of the record: after a repartition, of the
// input record where the batch tells it (stream.PartitionContext.UpstreamAt),
// as the repartition's own record is purged once committed. Topic is empty (the
// tracker does not know the source; stream.Pipeline.Origin maps the partition
// to a topic and Kafka partition, as the fleet job does with
// DeadLetter.SetOrigin). The stream is empty without WithMaxCabs.
func (t *Tracker) DeadLetters() *stream.Stream[stream.DeadLetter] { return t.dead }

// Cabs returns the number of cabs the tracker holds, over all partitions, as
// of the last batch. Safe for concurrent use.
func (t *Tracker) Cabs() int64 { return t.op.cabsHeld.Load() }

// KeyLimitCount returns the number of events sent to [Tracker.DeadLetters]
// so far. Safe for concurrent use.
func (t *Tracker) KeyLimitCount() int64 { return t.op.limited.Load() }

// Track follows every cab through its events and raises alerts: speeding,
// harsh braking, long idle, geofence enter and exit, and device silent (see
// "Cab tracker" in the package documentation). It uses [WithSpeedLimit],
// [WithHarshBraking], [WithIdleAfter], [WithSilentAfter], [WithGeofences] and [WithJumpSpeedKmh];
// errors wrap [ErrInvalidOption].
func Track(s *stream.Stream[Event], opts ...TrackOption) (*Tracker, error) {
	c, err := newConfig(opts, TrackOption.applyTrack)
	if err != nil {
		return nil, err
	}
	p := s.Pipeline()
	op := &tracker{cfg: c, parts: make(map[int32]*trackPart), log: p.Logger(), clock: p.Clock(),
		warn: lograte.New(1, time.Minute)}
	for _, f := range c.fences {
		op.fences = append(op.fences, fence{name: f.Name, area: f.Area, box: f.Area.Bounds()})
	}
	events := stream.Apply(s, "cab-tracker", stream.Operator[Event, Tracked](op))
	op.alerts = stream.NewSideOutput[Alert](events, "cab-alerts")
	op.dead = stream.NewSideOutput[stream.DeadLetter](events, "cab-tracker-dead-letters")
	return &Tracker{
		events: events,
		alerts: op.alerts.Stream(),
		dead:   op.dead.Stream(),
		op:     op,
	}, nil
}

// trackOut was the operator's output type when it also carried alerts and dead
// letters. A stateful operator's checkpoint identity hashes its element and state
// types (stream's "Restarts with another graph"), so the tracker keeps the identity
// it had with that type (Identity): a new one would start the tracker, and the
// windows that read it, as new after an upgrade, and they would emit windows again
// from part of their records.
type trackOut struct {
	Tracked
}

// Identity is the tracker's checkpoint identity from the releases whose operator
// emitted trackOut (stream.Identifier).
func (*tracker) Identity() string {
	return stream.ApplyIdentity[Event, trackOut]("cab-tracker")
}

type fence struct {
	name string
	area Polygon
	box  Cell
}

func (f *fence) contains(p Point) bool { return f.box.Contains(p) && f.area.Contains(p) }

// episode is a speeding or idle stretch. A stretch can fire only when the
// tracker saw it start (the cab's previous event was out of it); one that was
// already under way at the cab's first event, or that fired, is "unknown":
// it never fires and ends like any other. So a replay that starts inside a
// stretch cannot fire it again under another start time.
type episode uint8

const (
	epOff episode = iota
	epOn
	epUnknown
)

// cabState is one cab's tracker state: 128 bytes, the most a tracker holds
// per cab (a cab in the middle of a GPS jump holds 48 more, one whose last
// event came out of order about 46 more: trackPart.arrived). Offsets are
// source offsets in the partition; the oldest of those the state still needs
// bounds commits.
//
// The path follows pathState's rules with less memory: the latest accepted
// event is the path's good point, or, after a GPS jump, the pending jump,
// and then good keeps the last good point.
type cabState struct {
	last    pathPoint // position of the latest accepted event
	lastT   int64     // its event time
	lastOff int64     // its offset
	lastSpd float64   // its speed; < 0: no reading
	good    *goodPoint
	fences  uint64 // bit i: inside fence i

	spStart, spPred int64 // start time; offset of the event before it
	spOffOff        int64 // the latest event not above the limit
	spMax           float64
	idStart, idPred int64
	idOffOff        int64 // the latest event that was not idle

	lastStat       Status
	speeding, idle episode
	// lateLast: an out-of-order event came after the latest accepted one, and
	// the latest of those is in the partition's arrived map (its copy is a
	// duplicate too). Cleared by the next event in order.
	lateLast bool
	trip     uint32 // tripHash of the latest accepted event
}

// The per-cab cost that the package documents: cabState must fit in 128 bytes.
var _ [128 - unsafe.Sizeof(cabState{})]struct{}

// goodPoint is the last good point of a cab whose latest event was a GPS
// jump.
type goodPoint struct {
	p      pathPoint
	t, off int64
}

// goodPos returns the latest good position.
func (c *cabState) goodPos() Point {
	if c.good != nil {
		return Point{Lat: c.good.p.lat, Lon: c.good.p.lon}
	}
	return Point{Lat: c.last.lat, Lon: c.last.lon}
}

// pathAnchor returns the oldest offset the path depends on: the last good
// point and a pending jump.
func (c *cabState) pathAnchor() int64 {
	if c.good != nil {
		return min(c.good.off, c.lastOff)
	}
	return c.lastOff
}

// step moves the cab's path to p at t, with pathState's rules, and reports
// whether p is a GPS jump. It leaves the latest event (c.last...) to the
// caller.
func (c *cabState) step(jumpKmh float64, t int64, p pathPoint) (jump bool) {
	g, gT := c.last, c.lastT
	if c.good != nil {
		g, gT = c.good.p, c.good.t
	}
	if plausibleMove(jumpKmh, distance(g, p), t-gT) {
		c.good = nil
		return false
	}
	if c.good != nil {
		// Two jumps in a row that agree: the last good point was the outlier.
		if plausibleMove(jumpKmh, distance(c.last, p), t-c.lastT) {
			c.good = nil
			return false
		}
		return true // a new pending jump; the good point stays
	}
	c.good = &goodPoint{p: c.last, t: c.lastT, off: c.lastOff}
	return true
}

// anchor returns the oldest offset the state depends on: the latest event,
// the path's reference points and the event before an open stretch.
func (c *cabState) anchor() int64 {
	a := c.pathAnchor()
	if c.speeding == epOn {
		a = min(a, c.spPred)
	} else if c.speeding == epOff {
		a = min(a, c.spOffOff)
	}
	if c.idle == epOn {
		a = min(a, c.idPred)
	} else if c.idle == epOff {
		a = min(a, c.idOffOff)
	}
	return a
}
