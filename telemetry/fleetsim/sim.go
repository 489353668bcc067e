// The simulator: its Config and Faults, the Sim that generates a
// deterministic stream of messages, and each cab's tick (Sim.step).

package fleetsim

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fleetstream/fleetstream/telemetry"
)

// ErrInvalidOption is wrapped by the errors of [New] for a bad [Config].
var ErrInvalidOption = errors.New("fleetsim: invalid option")

// DefaultBounds is the area cabs move in when Config.Bounds is zero: a cell
// over central Porto, Portugal, where the real sample read by [ReadPorto] was
// recorded.
var DefaultBounds = telemetry.Cell{
	Min: telemetry.Point{Lat: 41.10, Lon: -8.70},
	Max: telemetry.Point{Lat: 41.20, Lon: -8.55},
}

// DefaultStart is the event time of the first event when Config.StartTime is
// zero. A fixed default keeps runs reproducible.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config describes a simulation. The zero value is valid: 100 cabs in
// [DefaultBounds] (central Porto), one event per cab per second from
// [DefaultStart], no faults.
type Config struct {
	// Seed selects the run; equal configs produce identical streams.
	Seed uint64
	// Cabs is the fleet size; 0 means 100.
	Cabs int
	// Bounds is the area cabs move in; the zero Cell means [DefaultBounds].
	Bounds telemetry.Cell
	// StartTime is the event time of the first event; zero means
	// [DefaultStart].
	StartTime time.Time
	// Interval is the event time between two events of one cab; 0 means
	// one second. Cabs are staggered evenly inside the interval, so the
	// stream is in event-time order apart from injected faults.
	Interval time.Duration
	// Faults are the injected anomalies; the zero value injects none.
	Faults Faults
}

// Faults sets how often anomalies are injected. Rates are probabilities per
// generated event, in [0, 1].
type Faults struct {
	// Speeding starts a stretch of 10 to 40 seconds above 120 km/h for a
	// moving cab.
	Speeding float64
	// HarshBraking makes a cab above 40 km/h brake at 5 to 8 m/s².
	HarshBraking float64
	// GPSJump reports a position 2 to 20 km away from the true one, for
	// one event.
	GPSJump float64
	// OutOfOrder holds an event back and emits it later, at most MaxDelay
	// of event time behind the newest event.
	OutOfOrder float64
	// MaxDelay bounds the lateness of out-of-order events; 0 means 30 s.
	MaxDelay time.Duration
	// Duplicate emits an event a second time, right after the first.
	Duplicate float64
	// Malformed replaces an event by bytes that [telemetry.Decode]
	// rejects: truncated JSON, garbage, or a field broken in value or type.
	Malformed float64
}

// Fault is a bit set naming the anomalies a [Message] carries; it is the
// ground truth for testing detectors.
type Fault uint8

// Fault bits.
const (
	FaultSpeeding     Fault = 1 << iota // speed above 120 km/h
	FaultHarshBraking                   // slowed by more than 4 m/s² since the cab's previous event
	FaultGPSJump                        // reported position far from the true one
	FaultLate                           // emitted after events with later event times
	FaultDuplicate                      // second copy of the previous message
	FaultMalformed                      // Value does not decode
)

// Message is one generated record, shaped for a Kafka producer.
type Message struct {
	Key   string          // the cab ID
	Value []byte          // the JSON event, or broken bytes if Malformed
	Event telemetry.Event // the event Value encodes (or was made from, if Malformed)
	// Malformed reports that Value is deliberately undecodable.
	Malformed bool
	// Faults lists the injected anomalies in this message.
	Faults Fault
}

// Stats counts what a [Sim] generated so far.
type Stats struct {
	Messages     int // messages returned, duplicates included
	Speeding     int // events above 120 km/h
	HarshBraking int
	GPSJumps     int
	Late         int
	Duplicates   int
	Malformed    int
}

// Sim generates a deterministic stream of cab telemetry. A Sim is not safe
// for concurrent use.
type Sim struct {
	cfg      Config
	rng      *rand.Rand
	cabs     []cab
	dt       float64 // Interval in seconds
	seq      int64   // events generated, late ones included
	trips    int
	maxLag   int64 // out-of-order bound, in events
	late     []lateEvent
	dup      bool // emit the previous message again
	prev     Message
	stats    Stats
	corruptB []byte
	newest   time.Time // latest event time emitted
}

type lateEvent struct {
	due    int64
	e      telemetry.Event
	faults Fault
}

type cab struct {
	id        string
	pos       telemetry.Point
	heading   float64 // degrees
	speed     float64 // km/h, as last reported
	target    float64 // km/h
	status    telemetry.Status
	tripID    string
	stateLeft int // ticks left in the current status
	segLeft   int // ticks left before choosing a new target speed
	speeding  int // ticks left in a speeding stretch
	braking   float64
	parking   bool // stopping before going offline
	odometer  float64
	fuel      float64
	engine    float64
}

// New validates cfg, fills in defaults and returns a simulator.
func New(cfg Config) (*Sim, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Cabs == 0 {
		cfg.Cabs = 100
	}
	if cfg.Bounds == (telemetry.Cell{}) {
		cfg.Bounds = DefaultBounds
	}
	if cfg.StartTime.IsZero() {
		cfg.StartTime = DefaultStart
	}
	cfg.StartTime = cfg.StartTime.UTC().Round(0)
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Faults.MaxDelay == 0 {
		cfg.Faults.MaxDelay = 30 * time.Second
	}
	s := &Sim{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		dt:  cfg.Interval.Seconds(),
	}
	s.maxLag = int64(float64(cfg.Faults.MaxDelay) * float64(cfg.Cabs) / float64(cfg.Interval))
	width := max(4, len(strconv.Itoa(cfg.Cabs)))
	s.cabs = make([]cab, cfg.Cabs)
	for i := range s.cabs {
		c := &s.cabs[i]
		c.id = fmt.Sprintf("CAB-%0*d", width, i+1)
		b := cfg.Bounds
		c.pos = telemetry.Point{
			Lat: b.Min.Lat + s.rng.Float64()*(b.Max.Lat-b.Min.Lat),
			Lon: b.Min.Lon + s.rng.Float64()*(b.Max.Lon-b.Min.Lon),
		}
		c.heading = s.rng.Float64() * 360
		c.odometer = 20000 + s.rng.Float64()*300000
		c.fuel = 30 + s.rng.Float64()*70
		c.engine = 85 + s.rng.Float64()*10
		switch r := s.rng.Float64(); {
		case r < 0.3:
			s.startTrip(c)
			c.stateLeft = 1 + s.rng.IntN(c.stateLeft)
		case r < 0.35:
			c.status = telemetry.StatusOffline
			c.stateLeft = 1 + s.ticks(s.rng.Float64()*30*60)
			c.engine = 20 + s.rng.Float64()*60
		default:
			c.status = telemetry.StatusAvailable
			c.stateLeft = 1 + s.ticks(s.rng.Float64()*8*60)
		}
	}
	return s, nil
}

func (cfg Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
	}
	if cfg.Cabs < 0 || cfg.Cabs > 1_000_000 {
		return bad("Cabs %d outside 0..1000000", cfg.Cabs)
	}
	if cfg.Interval < 0 || (cfg.Interval > 0 && cfg.Interval < time.Millisecond) {
		return bad("Interval %v below 1ms", cfg.Interval)
	}
	if b := cfg.Bounds; b != (telemetry.Cell{}) {
		if !(b.Min.Lat < b.Max.Lat && b.Min.Lon < b.Max.Lon) ||
			b.Min.Lat < -85 || b.Max.Lat > 85 || b.Min.Lon < -180 || b.Max.Lon > 180 {
			return bad("Bounds %v must have Min < Max, latitudes within ±85 and longitudes within ±180", b)
		}
	}
	if y := cfg.StartTime.Year(); !cfg.StartTime.IsZero() && (y < 1 || y > 9000) {
		return bad("StartTime year %d outside 1..9000", y)
	}
	f := cfg.Faults
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"Speeding", f.Speeding}, {"HarshBraking", f.HarshBraking}, {"GPSJump", f.GPSJump},
		{"OutOfOrder", f.OutOfOrder}, {"Duplicate", f.Duplicate}, {"Malformed", f.Malformed},
	} {
		if !(r.v >= 0 && r.v <= 1) {
			return bad("Faults.%s rate %v outside [0, 1]", r.name, r.v)
		}
	}
	if f.MaxDelay < 0 {
		return bad("Faults.MaxDelay %v is negative", f.MaxDelay)
	}
	return nil
}

// Config returns the configuration in use, defaults filled in.
func (s *Sim) Config() Config { return s.cfg }

// Stats returns counts of what was generated so far.
func (s *Sim) Stats() Stats { return s.stats }

// CabIDs returns the IDs of the simulated cabs.
func (s *Sim) CabIDs() []string {
	ids := make([]string, len(s.cabs))
	for i := range s.cabs {
		ids[i] = s.cabs[i].id
	}
	return ids
}

// Next returns the next message. Its Value is freshly allocated and may be
// retained.
func (s *Sim) Next() Message {
	buf, m := s.AppendNext(make([]byte, 0, 320))
	m.Value = buf[:len(buf):len(buf)]
	return m
}

// AppendNext generates the next message, appends its Value to dst and
// returns the extended slice; m.Value aliases the appended bytes. It does
// not allocate when dst has room (apart from one string per new trip).
func (s *Sim) AppendNext(dst []byte) (out []byte, m Message) {
	start := len(dst)
	s.stats.Messages++
	if s.dup {
		s.dup = false
		m = s.prev
		m.Faults |= FaultDuplicate
		s.stats.Duplicates++
		return s.finish(dst, start, m)
	}
	for {
		if len(s.late) > 0 && s.late[0].due <= s.seq {
			l := s.late[0]
			copy(s.late, s.late[1:])
			s.late = s.late[:len(s.late)-1]
			return s.emit(dst, start, l.e, l.faults)
		}
		e, faults := s.step()
		if s.cfg.Faults.OutOfOrder > 0 && s.maxLag > 0 && s.rng.Float64() < s.cfg.Faults.OutOfOrder {
			s.hold(lateEvent{due: s.seq + 1 + s.rng.Int64N(s.maxLag), e: e, faults: faults})
			continue
		}
		return s.emit(dst, start, e, faults)
	}
}

// hold queues a late event, keeping the queue sorted by due.
func (s *Sim) hold(l lateEvent) {
	i := len(s.late)
	s.late = append(s.late, l)
	for i > 0 && s.late[i-1].due > l.due {
		s.late[i] = s.late[i-1]
		i--
	}
	s.late[i] = l
}

func (s *Sim) emit(dst []byte, start int, e telemetry.Event, faults Fault) ([]byte, Message) {
	m := Message{Key: e.CabID, Event: e, Faults: faults}
	// Held events are late only if something newer went out meanwhile.
	if e.Time.Before(s.newest) {
		m.Faults |= FaultLate
	} else {
		s.newest = e.Time
	}
	if f := s.cfg.Faults; f.Malformed > 0 && s.rng.Float64() < f.Malformed {
		m.Malformed = true
		m.Faults |= FaultMalformed
	}
	if f := s.cfg.Faults; f.Duplicate > 0 && s.rng.Float64() < f.Duplicate {
		s.dup = true
	}
	s.prev = m
	return s.finish(dst, start, m)
}

// finish encodes m (corrupting it if malformed) onto dst.
func (s *Sim) finish(dst []byte, start int, m Message) ([]byte, Message) {
	if m.Faults&FaultSpeeding != 0 {
		s.stats.Speeding++
	}
	if m.Faults&FaultHarshBraking != 0 {
		s.stats.HarshBraking++
	}
	if m.Faults&FaultGPSJump != 0 {
		s.stats.GPSJumps++
	}
	if m.Faults&FaultLate != 0 {
		s.stats.Late++
	}
	if m.Malformed {
		s.stats.Malformed++
		dst = s.corrupt(dst, m.Event, m.Faults&FaultDuplicate != 0)
	} else {
		var ok bool
		if dst, ok = appendEvent(dst, m.Event); !ok {
			s.stats.Malformed++
			m.Malformed, m.Faults = true, m.Faults|FaultMalformed
		}
	}
	m.Value = dst[start:]
	return dst, m
}

// appendEvent appends the JSON of e and true or, for an event that has no
// JSON encoding (a NaN or infinite figure, a time outside years 0000..9999),
// the encoding error's text and false: undecodable bytes that a pipeline
// dead-letters, so the event is never silently dropped.
func appendEvent(dst []byte, e telemetry.Event) ([]byte, bool) {
	out, err := telemetry.Append(dst, e)
	if err != nil {
		return append(dst, err.Error()...), false
	}
	return out, true
}

// corrupt appends undecodable bytes derived from e. A duplicate repeats the
// corruption of its original, so it uses the saved bytes.
func (s *Sim) corrupt(dst []byte, e telemetry.Event, again bool) []byte {
	if again {
		return append(dst, s.corruptB...)
	}
	start := len(dst)
	dst, _ = appendEvent(dst, e)
	switch s.rng.IntN(5) {
	case 0: // truncated: no proper prefix of an object is valid JSON
		dst = dst[:start+1+s.rng.IntN(len(dst)-start-1)]
	case 1: // not JSON at all
		dst = append(dst[:start], "\x00\x01garbage"...)
	case 2: // latitude out of range
		ev := e
		ev.Lat = 91 + s.rng.Float64()*100
		dst, _ = appendEvent(dst[:start], ev)
	case 3: // wrong type: lon as a string
		dst = append(dst[:start], `{"cab_id":`...)
		dst = strconv.AppendQuote(dst, e.CabID)
		dst = append(dst, `,"ts":"`...)
		dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, `","lat":`...)
		dst = strconv.AppendFloat(dst, e.Lat, 'f', -1, 64)
		dst = append(dst, `,"lon":"`...)
		dst = strconv.AppendFloat(dst, e.Lon, 'f', -1, 64)
		dst = append(dst, `"}`...)
	default: // missing cab_id
		ev := e
		ev.CabID = ""
		dst, _ = appendEvent(dst[:start], ev)
	}
	s.corruptB = append(s.corruptB[:0], dst[start:]...)
	return dst
}

// All returns an endless sequence of [Sim.Next] messages; stop it with
// break.
func (s *Sim) All() iter.Seq[Message] {
	return func(yield func(Message) bool) {
		for {
			if !yield(s.Next()) {
				return
			}
		}
	}
}

// ticks converts seconds of event time to a number of ticks of one cab.
func (s *Sim) ticks(sec float64) int { return int(sec / s.dt) }

func (s *Sim) startTrip(c *cab) {
	s.trips++
	c.status = telemetry.StatusHired
	c.tripID = "T-" + strconv.Itoa(s.trips)
	c.stateLeft = 1 + s.ticks((4+s.rng.Float64()*21)*60)
	c.segLeft = 0
}

const (
	kmPerDegLat  = telemetry.EarthRadiusKm * math.Pi / 180
	maxAccel     = 2.5 // m/s², ordinary driving
	maxDecel     = 3.0 // m/s², ordinary braking, below the 4 m/s² harsh threshold
	speedingKmh  = 120
	harshDecelMS = 4.0
)

// accelerate moves c's speed towards its target over dt seconds, braking
// harder during a harsh braking, and returns the speed before.
func (c *cab) accelerate(dt float64) (prev float64) {
	prev = c.speed
	switch {
	case c.braking > 0:
		c.speed = math.Max(c.target, c.speed-c.braking*3.6*dt)
		if c.speed <= c.target {
			c.braking = 0
		}
	case c.target > c.speed:
		c.speed = math.Min(c.target, c.speed+maxAccel*3.6*dt)
	default:
		c.speed = math.Max(c.target, c.speed-maxDecel*3.6*dt)
	}
	c.speed = round(c.speed, 10)
	return prev
}

// round rounds v to 1/scale so that the JSON form is short and decodes to
// exactly the same float64.
func round(v, scale float64) float64 { return math.Round(v*scale) / scale }
