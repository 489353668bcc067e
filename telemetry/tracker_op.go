// The cab tracker's operator: per partition, the cabs it holds and the marks a
// replay starts from; per event, the annotations and alerts; the cabs it refuses
// past the limit and the silent cabs it expires. The API and the per-cab state
// are in tracker.go.

package telemetry

import (
	"cmp"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/internal/lograte"
	"github.com/fleetstream/fleetstream/stream"
)

type trackPart struct {
	cabs map[string]*cabState
	// arrived is, for each cab with lateLast, the out-of-order event that it
	// sent last, so that its copy is a duplicate (an event redelivered right
	// after it: at-least-once devices, the simulator's duplicates of late
	// events). Created at the first out-of-order event.
	arrived map[string]arrival
	holds   []hold // by hi
	// nextExpiry is a lower bound of the earliest lastT + silentAfter.
	nextExpiry int64
	// maxT is the newest event time of the partition, in record order, and
	// maxOff the offset of the latest record that has it.
	maxT, maxOff int64
	// wm is the newest watermark the partition's cabs were judged silent on.
	wm int64
	// marks are where a replay could start for the output from a record on
	// to be what it was, taken every markEvery records, or every len(cabs)
	// records when the partition holds more cabs (see ReplayStart).
	marks     []mark
	sinceMark int
	// idBytes is the sum of the held cabs' ID lengths, for ReportState.
	idBytes int64
}

const (
	markEvery = 1024
	maxMarks  = 1024 // a million records of a partition
)

type tracker struct {
	cfg    config
	fences []fence
	parts  map[int32]*trackPart
	fired  []silentCab // scratch for device-silent alerts

	cabs     int // cabs held over all partitions
	cabsHeld atomic.Int64
	limited  atomic.Int64
	log      *slog.Logger
	clock    stream.Clock
	warn     *lograte.Limiter

	alerts *stream.SideOutput[Alert]
	dead   *stream.SideOutput[stream.DeadLetter]
}

// arrival is an event's time and position.
type arrival struct {
	t        int64
	lat, lon float64
}

type silentCab struct {
	alert Alert
	off   int64
}

var (
	_ stream.Operator[Event, Tracked] = (*tracker)(nil)
	_ stream.Identifier               = (*tracker)(nil)
	_ stream.ReplayStarter            = (*tracker)(nil)
	_ stream.StateReporter            = (*tracker)(nil)
)

func (tr *tracker) Process(pc *stream.PartitionContext, in []stream.Elem[Event], out []stream.Elem[Tracked]) []stream.Elem[Tracked] {
	tp := tr.parts[pc.Partition]
	if tp == nil {
		if len(in) == 0 {
			return out
		}
		tp = &trackPart{cabs: make(map[string]*cabState), nextExpiry: math.MaxInt64, maxT: math.MinInt64, wm: stream.NoWatermark}
		tr.parts[pc.Partition] = tp
	}
	ooo := int64(pc.MaxOutOfOrderness)
	for i := range in {
		// A mark costs a pass over the partition's cabs: with many cabs, marks
		// thin out so that the cost per record stays constant (a reader then
		// gets coarser starts, replaying more, never wrong ones).
		if tp.sinceMark++; tp.sinceMark >= max(markEvery, len(tp.cabs)) {
			tp.sinceMark = 0
			start, ok := tp.retained()
			if !ok {
				start = in[i].Offset // no state: the record itself is a fresh start
			}
			if len(tp.marks) == maxMarks {
				// Nobody asked (no stateful reader), or not for long: forget the older
				// half. A reader that needs them gets the pipeline's coarser starts.
				tp.marks = append(tp.marks[:0], tp.marks[maxMarks/2:]...)
			}
			tp.marks = append(tp.marks, mark{in[i].Offset, start})
		}
		if pc.Merged {
			// A repartition's partition interleaves several upstream partitions,
			// each at its own event time: its watermark is the upstream marks'
			// as of this record's position (not the newest time seen, which a
			// partition far ahead would set and make the others' cabs look
			// silent), so the alerts depend on the record order only, not on
			// where batches end.
			wm := pc.WatermarkAt(in[i].Offset)
			tp.wm = max(tp.wm, wm)
			if wm > tp.nextExpiry {
				tr.expire(tp, wm)
			}
			out = tr.event(pc, tp, &in[i], out)
			continue
		}
		out = tr.event(pc, tp, &in[i], out)
		// The partition's watermark, record by record, so that device-silent
		// alerts do not depend on how records fall into batches. A record
		// stamped further ahead of the pipeline clock than the pipeline allows
		// (a bad device clock) moves it no further than that bound, so it cannot
		// make every other cab look silent.
		switch t := pc.CapEventTime(in[i].Time); {
		case t > tp.maxT:
			tp.maxT, tp.maxOff = t, in[i].Offset
			tp.wm = max(tp.wm, t-ooo)
			if t-ooo > tp.nextExpiry {
				tr.expire(tp, t-ooo)
			}
		case t == tp.maxT:
			tp.maxOff = in[i].Offset
		default:
			// Replayed from here, the watermark would start behind the one this
			// run had, and cabs would fall silent at other records: a replay must
			// start at a record that holds the newest time so far.
			tp.holdBack(tp.maxOff, in[i].Offset)
		}
	}
	if pc.EndOfInput {
		// The input is over, not the cabs: no device-silent alerts, and the state stays, so
		// that the commit stays where it holds (Retained) and a run on the next records
		// (a bounded run after a bounded run, fleetpipeline -exit-when-idle) rebuilds the
		// cabs from there and goes on as one run would: a speeding stretch open at the end
		// is alerted once it lasted long enough, a pickup across the end is seen.
		return out
	}
	// An idle partition moves on with the pipeline.
	tp.wm = max(tp.wm, pc.PartitionWatermark)
	tr.expire(tp, pc.PartitionWatermark)
	tr.cabsHeld.Store(int64(tr.cabs))
	return out
}

func (tr *tracker) event(pc *stream.PartitionContext, tp *trackPart, el *stream.Elem[Event], out []stream.Elem[Tracked]) []stream.Elem[Tracked] {
	e := &el.Value
	t := e.Time.UnixNano()
	pos := e.Point()
	spd := -1.0
	if e.Has&HasSpeed != 0 {
		spd = e.SpeedKmh
	}
	o := Tracked{Event: *e}
	c := tp.cabs[e.CabID]
	if c == nil {
		if tr.cfg.cabSeen != nil {
			tr.cfg.cabSeen(pc.Partition, e.CabID)
		}
		if t+int64(tr.cfg.silentAfter) < tp.wm {
			// Silent already: a stale copy of a cab the tracker forgot, or a cab
			// lagging its partition. Held, it would only fall silent again, and
			// repeat a device-silent alert per event.
			return append(out, stream.Elem[Tracked]{Value: o, Time: el.Time, Offset: el.Offset})
		}
		if tr.cfg.maxCabs > 0 && tr.cabs >= tr.cfg.maxCabs {
			tr.refuse(pc, el)
			return out
		}
		c = tr.seed(el, t, spd)
		tp.cabs[e.CabID] = c
		tp.idBytes += int64(len(e.CabID))
		tr.cabs++
		tp.nextExpiry = min(tp.nextExpiry, t+int64(tr.cfg.silentAfter))
		return append(out, stream.Elem[Tracked]{Value: o, Time: el.Time, Offset: el.Offset})
	}
	switch {
	case t == c.lastT && pos.Lat == c.last.lat && pos.Lon == c.last.lon:
		o.Duplicate = true
	case t <= c.lastT:
		o.OutOfOrder = true
		a := arrival{t, pos.Lat, pos.Lon}
		if c.lateLast && tp.arrived[e.CabID] == a {
			o.Duplicate = true // a copy of the late event before it
		} else {
			if tp.arrived == nil {
				tp.arrived = make(map[string]arrival)
			}
			tp.arrived[e.CabID] = a
			c.lateLast = true
		}
	case c.lateLast:
		delete(tp.arrived, e.CabID)
		c.lateLast = false
	}
	if o.Duplicate || o.OutOfOrder {
		// Replayed from here, the event would be the cab's first and look new.
		anchor := c.lastOff
		if o.OutOfOrder {
			// A jump too if the cab could not have been there, reaching it from (or
			// going on to) the latest good position, so that zone demand leaves it out;
			// the path stays as it was.
			g, gT := c.last, c.lastT
			if c.good != nil {
				g, gT = c.good.p, c.good.t
			}
			o.Jump = !plausibleMove(tr.cfg.jumpKmh, distance(g, newPathPoint(pos)), max(gT-t, t-gT))
			anchor = c.pathAnchor()
		}
		tp.holds = append(tp.holds, hold{anchor, el.Offset})
		return append(out, stream.Elem[Tracked]{Value: o, Time: el.Time, Offset: el.Offset})
	}
	cfg := &tr.cfg
	pathAnchor := c.pathAnchor()
	prevGood := c.goodPos()
	o.Jump = c.step(cfg.jumpKmh, t, newPathPoint(pos))
	o.Pickup = c.lastStat == StatusAvailable && e.Status == StatusHired
	trip := tripHash(e)
	o.TripStart = trip != 0 && trip != c.trip
	starts := o.Pickup || o.TripStart // decided by the event before
	switch {
	case o.Jump && starts:
		tp.holds = append(tp.holds, hold{min(pathAnchor, c.lastOff), el.Offset})
	case o.Jump:
		tp.holds = append(tp.holds, hold{pathAnchor, el.Offset})
	case starts:
		tp.holds = append(tp.holds, hold{c.lastOff, el.Offset})
	}
	out = append(out, stream.Elem[Tracked]{Value: o, Time: el.Time, Offset: el.Offset})
	emit := func(a Alert) {
		a.CabID = e.CabID
		a.ID = AlertID(e.CabID, a.Type, a.Details.Fence, a.Time)
		tr.alerts.Emit(stream.Elem[Alert]{Value: a, Time: el.Time, Offset: el.Offset})
	}
	here := Location{Lat: e.Lat, Lon: e.Lon}
	if o.Jump {
		here = Location(c.goodPos()) // not where the cab could not have been (as device_silent)
	}

	// Harsh braking: between two consecutive readings.
	if spd >= 0 && c.lastSpd >= 0 {
		dt := t - c.lastT
		if decel := (c.lastSpd - spd) / 3.6 / seconds(dt); decel > cfg.braking {
			sev := SeverityMedium
			if decel >= 2*cfg.braking {
				sev = SeverityHigh
			}
			emit(Alert{Type: AlertHarshBraking, Time: time.Unix(0, c.lastT).UTC(), Location: here, Severity: sev,
				Details: AlertDetails{Value: decel, Limit: cfg.braking, DurationS: seconds(dt)}})
		}
	}

	// Speeding: readings above the limit for at least speedingFor.
	switch {
	case spd > cfg.speedLimit:
		if c.speeding == epOff {
			c.speeding, c.spStart, c.spPred, c.spMax = epOn, t, c.spOffOff, spd
		}
		if c.speeding == epOn {
			c.spMax = max(c.spMax, spd)
			if d := t - c.spStart; d >= int64(cfg.speedingFor) {
				sev := SeverityMedium
				if c.spMax >= 1.25*cfg.speedLimit {
					sev = SeverityHigh
				}
				emit(Alert{Type: AlertSpeeding, Time: time.Unix(0, c.spStart).UTC(), Location: here, Severity: sev,
					Details: AlertDetails{Value: c.spMax, Limit: cfg.speedLimit, DurationS: seconds(d)}})
				c.speeding = epUnknown // fired: nothing more to fire, nothing to hold
			}
		}
	default:
		c.speeding, c.spOffOff = epOff, el.Offset
	}

	// Long idle: hired and standing still. A jump without a speed reading
	// says nothing about standing still and leaves the stretch as it is.
	if !(o.Jump && spd < 0) {
		still, byMove := false, false
		if spd >= 0 {
			still = spd < idleSpeedKmh
		} else {
			still, byMove = Haversine(prevGood, pos) <= idleMoveKm, true
		}
		if e.Status == StatusHired && still {
			if byMove {
				// Seen as the cab's first event, this one would not be idle.
				tp.holds = append(tp.holds, hold{min(c.lastOff, pathAnchor), el.Offset})
			}
			if c.idle == epOff {
				c.idle, c.idStart, c.idPred = epOn, t, c.idOffOff
			}
			if c.idle == epOn {
				if d := t - c.idStart; d >= int64(cfg.idleAfter) {
					emit(Alert{Type: AlertLongIdle, Time: time.Unix(0, c.idStart).UTC(), Location: here, Severity: SeverityLow,
						Details: AlertDetails{Value: seconds(d), Limit: seconds(int64(cfg.idleAfter)), DurationS: seconds(d)}})
					c.idle = epUnknown
				}
			}
		} else {
			c.idle, c.idOffOff = epOff, el.Offset
		}
	}

	// Geofences: transitions between good positions.
	if !o.Jump && len(tr.fences) > 0 {
		in := tr.inside(pos)
		for i := range tr.fences {
			bit := uint64(1) << i
			if (in^c.fences)&bit == 0 {
				continue
			}
			typ := AlertGeofenceExit
			if in&bit != 0 {
				typ = AlertGeofenceEnter
			}
			emit(Alert{Type: typ, Time: e.Time.UTC(), Location: here, Severity: SeverityInfo,
				Details: AlertDetails{Fence: tr.fences[i].name}})
		}
		c.fences = in
	}

	c.last, c.lastT, c.lastOff, c.lastSpd, c.lastStat, c.trip = newPathPoint(pos), t, el.Offset, spd, e.Status, trip
	return out
}

// tripHash identifies the trip of a hired event with a trip ID (FNV-1a, 32
// bits, never 0), and is 0 for other events.
func tripHash(e *Event) uint32 {
	if e.Status != StatusHired || e.Has&HasTripID == 0 || e.TripID == "" {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(e.TripID); i++ {
		h ^= uint32(e.TripID[i])
		h *= 16777619
	}
	return max(h, 1)
}

// refuse sends the event of a new cab past WithMaxCabs to the dead letters, and
// logs a warning, at most one a minute.
func (tr *tracker) refuse(pc *stream.PartitionContext, el *stream.Elem[Event]) {
	e := &el.Value
	tr.limited.Add(1)
	dl := stream.DeadLetter{
		Reason:    stream.ReasonKeyLimit,
		Err:       "telemetry: cab tracker holds " + strconv.Itoa(tr.cabs) + " cabs (WithMaxCabs): event of a new cab not tracked",
		Partition: pc.Partition,
		Offset:    el.Offset,
		Key:       []byte(e.CabID),
	}
	if u, ok := pc.UpstreamAt(el.Offset, el.Time); ok {
		// After a repartition, the input record: the repartition's own is purged once
		// committed (see DeadLetters).
		dl.Partition, dl.Offset = u.Partition, u.Offset
	}
	v, err := Append(nil, *e)
	if err != nil { // decoded events always encode; keep the reason if not
		dl.Err += "; " + err.Error()
	}
	dl.Value = v
	if ok, suppressed := tr.warn.Allow(tr.clock.Now()); ok {
		tr.log.Warn("telemetry: cab tracker at its key limit; events of new cabs go to the dead letters (reason key_limit) until cabs fall silent",
			"max_cabs", tr.cfg.maxCabs, "partition", pc.Partition, "suppressed", suppressed)
	}
	tr.dead.Emit(stream.Elem[stream.DeadLetter]{Value: dl, Time: el.Time, Offset: el.Offset})
}

// seed starts the state of a cab from its first event, which starts no
// stretch, crosses no fence and picks nobody up.
func (tr *tracker) seed(el *stream.Elem[Event], t int64, spd float64) *cabState {
	e := &el.Value
	pos := e.Point()
	c := &cabState{
		last: newPathPoint(pos), lastT: t, lastOff: el.Offset, lastSpd: spd, lastStat: e.Status,
		spOffOff: el.Offset, idOffOff: el.Offset, trip: tripHash(e),
	}
	if spd > tr.cfg.speedLimit {
		c.speeding = epUnknown
	}
	if e.Status == StatusHired && spd >= 0 && spd < idleSpeedKmh {
		c.idle = epUnknown
	}
	if len(tr.fences) > 0 {
		c.fences = tr.inside(pos)
	}
	return c
}

func (tr *tracker) inside(p Point) uint64 {
	var in uint64
	for i := range tr.fences {
		if tr.fences[i].contains(p) {
			in |= 1 << i
		}
	}
	return in
}

// expire fires device-silent for every cab whose latest event is more than
// silentAfter behind the watermark, and forgets it.
func (tr *tracker) expire(tp *trackPart, wm int64) {
	if wm == stream.NoWatermark || wm <= tp.nextExpiry {
		return
	}
	silent := int64(tr.cfg.silentAfter)
	next := int64(math.MaxInt64)
	fired := tr.fired[:0]
	for id, c := range tp.cabs {
		deadline := c.lastT + silent
		if wm > deadline {
			start := time.Unix(0, c.lastT).UTC()
			fired = append(fired, silentCab{Alert{
				ID: AlertID(id, AlertDeviceSilent, "", start), Type: AlertDeviceSilent, CabID: id,
				Time: start, Location: Location(c.goodPos()),
				Severity: SeverityMedium, Details: AlertDetails{Limit: seconds(silent), DurationS: seconds(silent)},
			}, c.lastOff})
			delete(tp.cabs, id)
			if c.lateLast {
				delete(tp.arrived, id)
			}
			tp.idBytes -= int64(len(id))
			tr.cabs--
			continue
		}
		next = min(next, deadline)
	}
	tp.nextExpiry = next
	slices.SortFunc(fired, func(a, b silentCab) int {
		return cmp.Or(a.alert.Time.Compare(b.alert.Time), cmp.Compare(a.alert.CabID, b.alert.CabID))
	})
	for i := range fired {
		a := fired[i].alert
		tr.alerts.Emit(stream.Elem[Alert]{Value: a, Time: a.Time.UnixNano() + silent, Offset: fired[i].off})
	}
	clear(fired)
	tr.fired = fired[:0]
}
