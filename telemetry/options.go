// The options of the ready-made transforms, one option type per transform,
// their defaults and their validation (ErrInvalidOption).

package telemetry

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fleetstream/fleetstream/window"
)

// ErrInvalidOption is wrapped by every construction error of the transforms
// ([CabStatsStream], [NewCabStatsAgg], [Track], [ZoneDemandStream]): an option
// out of range, a bad geofence.
var ErrInvalidOption = errors.New("telemetry: invalid option")

// TrackOption configures [Track].
type TrackOption interface{ applyTrack(*config) }

// CabStatsOption configures [CabStatsStream].
type CabStatsOption interface{ applyCabStats(*config) }

// CabStatsAggOption configures [NewCabStatsAgg].
type CabStatsAggOption interface{ applyCabStatsAgg(*config) }

// ZoneDemandOption configures [ZoneDemandStream].
type ZoneDemandOption interface{ applyZoneDemand(*config) }

type trackOption func(*config)

func (f trackOption) applyTrack(c *config) { f(c) }

type zoneDemandOption func(*config)

func (f zoneDemandOption) applyZoneDemand(c *config) { f(c) }

// JumpSpeedOption is the option [WithJumpSpeedKmh] returns: a [TrackOption],
// a [CabStatsOption] and a [CabStatsAggOption].
type JumpSpeedOption struct{ kmh float64 }

var (
	_ TrackOption       = JumpSpeedOption{}
	_ CabStatsOption    = JumpSpeedOption{}
	_ CabStatsAggOption = JumpSpeedOption{}
)

func (o JumpSpeedOption) applyTrack(c *config)       { o.apply(c) }
func (o JumpSpeedOption) applyCabStats(c *config)    { o.apply(c) }
func (o JumpSpeedOption) applyCabStatsAgg(c *config) { o.apply(c) }

func (o JumpSpeedOption) apply(c *config) {
	if !positive(o.kmh) {
		c.errs = append(c.errs, invalidOption("WithJumpSpeedKmh(%g): want a positive speed", o.kmh))
		return
	}
	c.jumpKmh = o.kmh
}

// WindowingOption is the option [WithWindowOptions] returns: a
// [CabStatsOption] and a [ZoneDemandOption].
type WindowingOption struct{ opts []window.Option }

var (
	_ CabStatsOption   = WindowingOption{}
	_ ZoneDemandOption = WindowingOption{}
)

func (o WindowingOption) applyCabStats(c *config)   { o.apply(c) }
func (o WindowingOption) applyZoneDemand(c *config) { o.apply(c) }

func (o WindowingOption) apply(c *config) { c.winOpts = append(c.winOpts, o.opts...) }

// Defaults of the transform options.
const (
	DefaultSpeedLimitKmh    = 120.0
	DefaultSpeedingFor      = 10 * time.Second
	DefaultJumpSpeedKmh     = 250.0
	DefaultHarshBraking     = 4.0 // m/s²
	DefaultIdleAfter        = 5 * time.Minute
	DefaultSilentAfter      = 2 * time.Minute
	DefaultGeohashPrecision = 6
	// MaxGeofences bounds the number of geofences of a tracker.
	MaxGeofences = 64
)

// Thresholds of the idle detector: a cab is stationary when it reports a speed
// below idleSpeedKmh or, without a speed reading, moved less than idleMoveKm
// since its previous event.
const (
	idleSpeedKmh = 1.0
	idleMoveKm   = 0.025
)

type config struct {
	speedLimit  float64
	speedingFor time.Duration
	jumpKmh     float64
	braking     float64
	idleAfter   time.Duration
	silentAfter time.Duration
	fences      []Geofence
	precision   int
	// precisionSet: WithGeohashPrecision was passed.
	precisionSet bool
	maxCabs      int
	cabSeen      func(partition int32, cab string)
	winOpts      []window.Option
	errs         []error
}

// newConfig applies opts, each through apply, over the defaults.
func newConfig[O any](opts []O, apply func(O, *config)) (config, error) {
	c := config{
		speedLimit:  DefaultSpeedLimitKmh,
		speedingFor: DefaultSpeedingFor,
		jumpKmh:     DefaultJumpSpeedKmh,
		braking:     DefaultHarshBraking,
		idleAfter:   DefaultIdleAfter,
		silentAfter: DefaultSilentAfter,
		precision:   DefaultGeohashPrecision,
	}
	for _, o := range opts {
		if any(o) == nil {
			c.errs = append(c.errs, invalidOption("nil option"))
			continue
		}
		apply(o, &c)
	}
	return c, errors.Join(c.errs...)
}

func invalidOption(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
}

func positive(v float64) bool { return v > 0 && !math.IsInf(v, 0) }

// WithSpeedLimit sets the speeding alert: a cab reporting more than kmh for at least
// d of event time (default 120 km/h for 10 s). kmh must be positive and d not
// negative; d 0 alerts on the first reading above the limit.
func WithSpeedLimit(kmh float64, d time.Duration) TrackOption {
	return trackOption(func(c *config) {
		if !positive(kmh) || d < 0 {
			c.errs = append(c.errs, invalidOption("WithSpeedLimit(%g, %v): want a positive limit and a duration >= 0", kmh, d))
			return
		}
		c.speedLimit, c.speedingFor = kmh, d
	})
}

// WithJumpSpeedKmh sets the implied speed above which a position is a GPS
// jump (default 250 km/h): such a point is left out of distances, geofences
// and idle detection, and the next point is measured from the last good one.
// It applies to [Track], [CabStatsStream] and [NewCabStatsAgg]; pass the same
// value to each so that they agree on which points are jumps.
func WithJumpSpeedKmh(kmh float64) JumpSpeedOption { return JumpSpeedOption{kmh: kmh} }

// WithHarshBraking sets the deceleration between two consecutive speed readings
// of a cab, in m/s², above which a harsh-braking alert fires (default 4).
func WithHarshBraking(mps2 float64) TrackOption {
	return trackOption(func(c *config) {
		if !positive(mps2) {
			c.errs = append(c.errs, invalidOption("WithHarshBraking(%g): want a positive deceleration", mps2))
			return
		}
		c.braking = mps2
	})
}

// WithIdleAfter sets how long a hired cab may stand still (in event time) before a
// long-idle alert fires (default 5 minutes).
func WithIdleAfter(d time.Duration) TrackOption {
	return trackOption(func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, invalidOption("WithIdleAfter(%v): want a positive duration", d))
			return
		}
		c.idleAfter = d
	})
}

// WithSilentAfter sets how long of event time a cab may send nothing before a
// device-silent alert fires and the tracker forgets the cab (default 2
// minutes).
func WithSilentAfter(d time.Duration) TrackOption {
	return trackOption(func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, invalidOption("WithSilentAfter(%v): want a positive duration", d))
			return
		}
		c.silentAfter = d
	})
}

// WithMaxCabs bounds the cabs the tracker holds, over all its partitions: once it
// holds n, the events of a cab it does not hold go to [Tracker.DeadLetters]
// with Reason stream.ReasonKeyLimit instead of being tracked (counted by
// [Tracker.KeyLimitCount], with a warning logged at most once a minute), until
// cabs fall silent ([WithSilentAfter]) and free their place. Events of cabs it
// holds are tracked as usual. A cab costs the tracker at most 128 bytes plus
// its ID and a map entry. Connect DeadLetters to the pipeline's dead-letter
// output so that nothing is lost. 0, the default, means no bound; n must not
// be negative.
//
// Which cabs are refused depends on which cabs were held when their events
// came, so a replay from an older position may track an event that the
// original run dead-lettered, or the reverse: each event is tracked or
// dead-lettered, never lost.
func WithMaxCabs(n int) TrackOption {
	return trackOption(func(c *config) {
		if n < 0 {
			c.errs = append(c.errs, invalidOption("WithMaxCabs(%d): want a limit >= 0", n))
			return
		}
		c.maxCabs = n
	})
}

// WithCabSeen has the tracker call f, from the pipeline's run loop (never
// concurrently; f must not block), with the pipeline partition and the cab of
// every event whose cab it holds no state for in that partition: a cab's first
// event there (and its first after it fell silent and was forgotten), and each
// event it does not hold ([WithMaxCabs], or a cab already silent). A program
// can so watch which partitions a cab's events come from (the fleet job warns
// of a cab on several partitions) without a pass over every event of its own.
func WithCabSeen(f func(partition int32, cab string)) TrackOption {
	return trackOption(func(c *config) { c.cabSeen = f })
}

// Geofence is a named area; the tracker alerts when a cab enters or leaves it.
type Geofence struct {
	Name string
	Area Polygon
}

// WithGeofences sets the geofences of the tracker (at most [MaxGeofences]), each
// with a unique non-empty name and at least three vertices. Several calls add
// up.
func WithGeofences(fences ...Geofence) TrackOption {
	return trackOption(func(c *config) {
		for _, f := range fences {
			if f.Name == "" || len(f.Area) < 3 {
				c.errs = append(c.errs, invalidOption("geofence %q: want a name and at least 3 vertices", f.Name))
				return
			}
			for _, g := range c.fences {
				if g.Name == f.Name {
					c.errs = append(c.errs, invalidOption("geofence %q defined twice", f.Name))
					return
				}
			}
			c.fences = append(c.fences, f)
		}
		if len(c.fences) > MaxGeofences {
			c.errs = append(c.errs, invalidOption("%d geofences, at most %d", len(c.fences), MaxGeofences))
		}
	})
}

// WithGeohashPrecision sets the length of the geohash cells of zone demand
// (default 6: cells of about 1.2 × 0.6 km).
func WithGeohashPrecision(n int) ZoneDemandOption {
	return zoneDemandOption(func(c *config) {
		if n < 1 || n > MaxGeohashPrecision {
			c.errs = append(c.errs, invalidOption("WithGeohashPrecision(%d): want 1..%d", n, MaxGeohashPrecision))
			return
		}
		c.precision, c.precisionSet = n, true
	})
}

// WithWindowOptions passes options (window.WithGrace, window.WithEmit,
// window.WithName, window.WithMaxKeys) to the window operator of
// [CabStatsStream] and [ZoneDemandStream]. Several calls add up.
func WithWindowOptions(opts ...window.Option) WindowingOption {
	return WindowingOption{opts: opts}
}
