// One simulated event: Sim.step and its steps (status, target, driving faults, motion,
// consumption, the event itself and GPS jumps), in the order of their random draws.

package fleetsim

import (
	"math"
	"time"

	"github.com/fleetstream/fleetstream/telemetry"
)

// step advances the next cab by one tick and returns its event. The random
// draws happen in a fixed order, the order of the steps below, so a seed
// always gives the same stream.
func (s *Sim) step() (telemetry.Event, Fault) {
	n := s.seq
	s.seq++
	c := &s.cabs[int(n%int64(len(s.cabs)))]

	s.changeStatus(c)
	s.chooseTarget(c)
	s.injectDrivingFaults(c)
	prev := c.accelerate(s.dt)
	s.move(c, prev)
	s.consume(c)

	var faults Fault
	if c.speed > speedingKmh {
		faults |= FaultSpeeding
	}
	if (prev-c.speed)/3.6/s.dt > harshDecelMS {
		faults |= FaultHarshBraking
	}
	e := s.event(c, n)
	if s.gpsJump(c, &e) {
		faults |= FaultGPSJump
	}
	return e, faults
}

// changeStatus moves c to its next status when the current one has run its
// course: available cabs start a trip or, now and then, park and go offline;
// hired and offline cabs become available.
func (s *Sim) changeStatus(c *cab) {
	r := s.rng
	c.stateLeft--
	if c.stateLeft > 0 {
		return
	}
	switch c.status {
	case telemetry.StatusAvailable:
		switch {
		case c.parking && c.speed == 0:
			c.parking = false
			c.status = telemetry.StatusOffline
			c.stateLeft = 1 + s.ticks((10+r.Float64()*50)*60)
		case c.parking || r.Float64() < 0.1:
			// Stop first; go offline once stationary.
			c.parking = true
			c.speeding, c.target, c.segLeft, c.stateLeft = 0, 0, math.MaxInt, 1
		default:
			s.startTrip(c)
		}
	default: // hired or offline
		c.status = telemetry.StatusAvailable
		c.stateLeft = 1 + s.ticks((1+r.Float64()*9)*60)
		c.segLeft = 0
	}
}

// chooseTarget picks c's next target speed when its segment ends (or its
// speeding stretch does): a stop, or a cruising speed that depends on the
// status.
func (s *Sim) chooseTarget(c *cab) {
	r := s.rng
	c.segLeft--
	if c.speeding > 0 {
		c.speeding--
		if c.speeding == 0 {
			c.segLeft = 0
		}
	}
	if c.speeding != 0 || c.segLeft > 0 {
		return
	}
	c.segLeft = 1 + s.ticks(5+r.Float64()*40)
	switch {
	case c.status == telemetry.StatusOffline:
		c.target = 0
	case c.status == telemetry.StatusHired && r.Float64() < 0.15,
		c.status == telemetry.StatusAvailable && r.Float64() < 0.35:
		c.target = 0 // traffic light, rank, pick-up
	case c.status == telemetry.StatusHired:
		c.target = 20 + r.Float64()*55
	default:
		c.target = 10 + r.Float64()*30
	}
}

// injectDrivingFaults starts, with the configured probabilities, a speeding
// stretch or a harsh braking.
func (s *Sim) injectDrivingFaults(c *cab) {
	r := s.rng
	f := s.cfg.Faults
	if f.Speeding > 0 && c.status != telemetry.StatusOffline && !c.parking && c.speed > 20 && c.speeding == 0 &&
		c.braking == 0 && r.Float64() < f.Speeding {
		c.speeding = 1 + s.ticks(10+r.Float64()*30)
		c.target = 125 + r.Float64()*25
	}
	if f.HarshBraking > 0 && !c.parking && c.speed > 40 && c.braking == 0 && c.speed/3.6/s.dt > harshDecelMS+0.5 &&
		r.Float64() < f.HarshBraking {
		c.braking = 5 + r.Float64()*3
		c.speeding = 0
		c.target = r.Float64() * 15
		c.segLeft = 1 + s.ticks(5)
	}
}

// move advances c's position by the distance driven at the mean of prev and
// its speed: a random walk of the heading, turns at junctions, and a bounce
// off the area's edges. The odometer and the fuel follow the distance.
func (s *Sim) move(c *cab, prev float64) {
	r := s.rng
	distKm := (prev + c.speed) / 2 * s.dt / 3600
	if !(distKm > 0) {
		return
	}
	c.heading += (r.Float64() - 0.5) * 20
	if r.Float64() < 0.03 {
		c.heading += float64(90 * (1 + 2*r.IntN(2))) // left or right
	}
	c.heading = math.Mod(c.heading+360, 360)
	sin, cos := math.Sincos(c.heading * math.Pi / 180)
	c.pos.Lat += distKm * cos / kmPerDegLat
	c.pos.Lon += distKm * sin / (kmPerDegLat * math.Cos(c.pos.Lat*math.Pi/180))
	b := s.cfg.Bounds
	if c.pos.Lat < b.Min.Lat || c.pos.Lat > b.Max.Lat {
		c.heading = math.Mod(540-c.heading, 360)
		c.pos.Lat = math.Min(math.Max(c.pos.Lat, b.Min.Lat), b.Max.Lat)
	}
	if c.pos.Lon < b.Min.Lon || c.pos.Lon > b.Max.Lon {
		c.heading = 360 - c.heading
		if c.heading >= 360 {
			c.heading -= 360
		}
		c.pos.Lon = math.Min(math.Max(c.pos.Lon, b.Min.Lon), b.Max.Lon)
	}
	c.odometer += distKm
	c.fuel -= distKm * 0.08
}

// consume refuels an available cab running low and moves the engine
// temperature towards 90 °C when running, 20 °C when offline.
func (s *Sim) consume(c *cab) {
	r := s.rng
	dt := s.dt
	if c.fuel < 8 && c.status == telemetry.StatusAvailable {
		c.fuel = 95 + r.Float64()*5 // refuelled
	}
	c.fuel = math.Max(c.fuel, 0)
	if c.status == telemetry.StatusOffline {
		c.engine += (20 - c.engine) * 0.002 * dt
	} else {
		c.engine += (90-c.engine)*0.01*dt + (r.Float64()-0.5)*0.2
	}
}

// event returns the n-th event of the simulation, c's readings: every field
// present but the trip ID, which only hired cabs have.
func (s *Sim) event(c *cab, n int64) telemetry.Event {
	r := s.rng
	e := telemetry.Event{
		CabID:       c.id,
		Time:        s.cfg.StartTime.Add(time.Duration(n * int64(s.cfg.Interval) / int64(len(s.cabs)))),
		Lat:         round(c.pos.Lat, 1e6),
		Lon:         round(c.pos.Lon, 1e6),
		Status:      c.status,
		SpeedKmh:    c.speed,
		HeadingDeg:  round(c.heading, 10),
		EngineTempC: round(c.engine, 10),
		FuelPct:     round(c.fuel, 10),
		OdometerKm:  round(c.odometer, 10),
		Has: telemetry.HasSpeed | telemetry.HasHeading | telemetry.HasEngineTemp | telemetry.HasFuel |
			telemetry.HasBattery | telemetry.HasOdometer,
	}
	if e.HeadingDeg >= 360 {
		e.HeadingDeg = 0
	}
	if c.status == telemetry.StatusOffline {
		e.BatteryV = round(12.4+r.Float64()*0.3, 100)
	} else {
		e.BatteryV = round(13.8+r.Float64()*0.6, 100)
	}
	if c.status == telemetry.StatusHired {
		e.TripID = c.tripID
		e.Has |= telemetry.HasTripID
	}
	return e
}

// gpsJump, with the configured probability, moves e's position 2 to 20 km
// away from c's true one (c keeps its position) and reports whether it did.
func (s *Sim) gpsJump(c *cab, e *telemetry.Event) bool {
	r := s.rng
	f := s.cfg.Faults
	if !(f.GPSJump > 0 && r.Float64() < f.GPSJump) {
		return false
	}
	d := 2 + r.Float64()*18
	sin, cos := math.Sincos(r.Float64() * 2 * math.Pi)
	e.Lat = round(math.Min(math.Max(c.pos.Lat+d*cos/kmPerDegLat, -90), 90), 1e6)
	e.Lon = round(math.Min(math.Max(c.pos.Lon+d*sin/(kmPerDegLat*math.Cos(c.pos.Lat*math.Pi/180)), -180), 180), 1e6)
	return true
}
