// Zone demand: the per-geohash-cell window figures (ZoneDemand), their
// aggregator (ZoneDemandAgg), the one-line transform ZoneDemandStream and the
// zone-demand document.

package telemetry

import (
	"fmt"
	"math"
	"time"

	"github.com/fleetstream/fleetstream/internal/docid"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/window"
)

// ZoneDemand is the activity in one geohash cell over one event-time window,
// shaped as a document of the zone-demand index: one document per zone and
// window for the whole input, its ID made of the zone and the window alone
// ([ZoneDemand.DocID]).
//
// Zones are not the Kafka key (cabs are), so a zone's events are spread over
// the source partitions: the figures are whole only when the stream was
// repartitioned by zone first ([KeyByZone], stream.Repartition,
// [ZoneDemandByZone]). Without that, each partition emits a partial of the
// same zone and window under the same document ID, and the last one written
// wins. SpeedSamples and SpeedSumKmh make averages over documents exact:
// sum(speed_sum_kmh) / sum(speed_samples), never an average of averages.
//
// Two limits follow from the tracker, which judges each event against the
// cab's latest one and the out-of-order event it sent last: a copy of one of
// those is a duplicate and counted once (a redelivery right after the event),
// but a copy of an older event that arrives after others (a retransmission of
// a backlog within the out-of-orderness bound) is counted again, events and
// speed sample; and an event that arrives after a newer one skips the trip
// detectors, so a pickup whose available event arrives late is not counted.
// Both make a zone's figures depend on arrival order for such input.
type ZoneDemand struct {
	Zone        string    `json:"zone"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Timestamp   time.Time `json:"@timestamp"` // the window start
	// Events counts the zone's events, without duplicates and GPS jumps.
	Events int64 `json:"events"`
	// Cabs counts distinct cabs.
	Cabs int64 `json:"cabs"`
	// Pickups counts events where a cab went from available to hired.
	Pickups int64 `json:"pickups"`
	// AvgSpeedKmh averages the speed readings: SpeedSumKmh / SpeedSamples,
	// 0 without any.
	AvgSpeedKmh float64 `json:"avg_speed_kmh"`
	// SpeedSamples counts the events with a speed reading (HasSpeed).
	SpeedSamples int64 `json:"speed_samples"`
	// SpeedSumKmh is the sum of those readings, each rounded to a micro-km/h:
	// summed as integers, so the figure does not depend on the order the
	// events arrived in (a replay after a crash writes the same value).
	SpeedSumKmh float64 `json:"speed_sum_kmh"`
	// Location is the centre of the cell.
	Location Location `json:"location"`
}

// ZoneDemandDoc returns the document of a window result: r.Value with the
// zone, window bounds, @timestamp and cell centre filled in.
func ZoneDemandDoc(r window.Result[string, ZoneDemand]) ZoneDemand {
	z := r.Value
	z.Zone, z.WindowStart, z.WindowEnd, z.Timestamp = r.Key, r.Start, r.End, r.Start
	if c, err := DecodeGeohash(r.Key); err == nil {
		p := c.Center()
		z.Location = Location(p)
	}
	return z
}

// DocKey returns the key the document ID is made of: the zone. It does not
// depend on the partition that computed the document, so a repartitioned
// pipeline writes one document per zone and window whichever instance and
// partition own the zone.
func (z ZoneDemand) DocKey() string { return z.Zone }

// DocID returns the deterministic document ID of z in a pipeline: the same as
// opensearch.WindowID(pipeline, z.DocKey(), z.WindowStart, z.WindowEnd).
func (z ZoneDemand) DocID(pipeline string) string {
	var buf [32]byte
	return string(docid.AppendWindow(buf[:0], pipeline, z.DocKey(), z.WindowStart, z.WindowEnd))
}

// AppendJSON appends the document of z to dst, with the fields and meaning of
// its JSON tags. A figure that is NaN or infinite, or a time outside years
// 0000..9999, has no JSON encoding: the error wraps [ErrEncode] and dst is
// returned as it was.
func (z ZoneDemand) AppendJSON(dst []byte) ([]byte, error) {
	var c encCheck
	c.time("window_start", z.WindowStart)
	c.time("window_end", z.WindowEnd)
	c.time("@timestamp", z.Timestamp)
	c.num("avg_speed_kmh", z.AvgSpeedKmh)
	c.num("speed_sum_kmh", z.SpeedSumKmh)
	c.num("location.lat", z.Location.Lat)
	c.num("location.lon", z.Location.Lon)
	if c.err != nil {
		return dst, fmt.Errorf("zone demand of %q: %w", z.Zone, c.err)
	}
	dst = append(dst, `{"zone":`...)
	dst = appendString(dst, z.Zone)
	dst = appendTimeField(dst, `,"window_start":`, z.WindowStart)
	dst = appendTimeField(dst, `,"window_end":`, z.WindowEnd)
	dst = appendTimeField(dst, `,"@timestamp":`, z.Timestamp)
	dst = append(dst, `,"events":`...)
	dst = appendDecimal(dst, z.Events, 0)
	dst = append(dst, `,"cabs":`...)
	dst = appendDecimal(dst, z.Cabs, 0)
	dst = append(dst, `,"pickups":`...)
	dst = appendDecimal(dst, z.Pickups, 0)
	dst = append(dst, `,"avg_speed_kmh":`...)
	dst = appendFloat(dst, z.AvgSpeedKmh)
	dst = append(dst, `,"speed_samples":`...)
	dst = appendDecimal(dst, z.SpeedSamples, 0)
	dst = append(dst, `,"speed_sum_kmh":`...)
	dst = appendFloat(dst, z.SpeedSumKmh)
	dst = append(dst, `,"location":`...)
	dst = appendLocation(dst, z.Location)
	return append(dst, '}'), nil
}

// ZoneAcc is the accumulator of [ZoneDemandAgg].
type ZoneAcc struct {
	events, pickups, speeds int64
	// speedSum is in micro-km/h: integer addition does not depend on the order
	// the events arrive in (through a repartition, it follows timing), so a
	// replay after a crash writes the same bits; float addition would not.
	speedSum int64
	cabs     []string            // distinct, while few
	cabSet   map[string]struct{} // once many
	// from is, in a partial of two-phase zone demand, its source partition plus one (0: not
	// known, a partial written by an older release).
	from int32
	// parts are, in ZoneMergeAgg's accumulator, the latest partial of each source
	// partition: a later one from the same partition replaces the earlier (see
	// ZoneDemandMerge); the fields above then sum the partials without a partition.
	parts []ZoneAcc
}

// speedUnit is the resolution of zone demand's speed sums: a micro-km/h. Speeds are at
// most 1000 km/h (Validate), so an int64 sum holds over 9 billion readings.
const speedUnit = 1e6

// zoneSmall is how many distinct cabs a zone keeps in a slice before a map.
const zoneSmall = 16

// ZoneDemandAgg is the window.Aggregator behind [ZoneDemandStream].
type ZoneDemandAgg struct{}

var _ window.Aggregator[Tracked, ZoneAcc, ZoneDemand] = ZoneDemandAgg{}

func (ZoneDemandAgg) Zero() ZoneAcc { return ZoneAcc{} }

func (ZoneDemandAgg) Add(acc ZoneAcc, t Tracked) ZoneAcc {
	acc.add(t.CabID, t.SpeedKmh, t.Has&HasSpeed != 0, t.Pickup)
	return acc
}

func (acc *ZoneAcc) add(cab string, speed float64, hasSpeed, pickup bool) {
	acc.events++
	if pickup {
		acc.pickups++
	}
	if hasSpeed {
		acc.speeds++
		acc.speedSum += int64(math.Round(speed * speedUnit))
	}
	acc.addCab(cab)
}

func (acc *ZoneAcc) addCab(id string) {
	if acc.cabSet != nil {
		acc.cabSet[id] = struct{}{}
		return
	}
	for _, c := range acc.cabs {
		if c == id {
			return
		}
	}
	if len(acc.cabs) < zoneSmall {
		acc.cabs = append(acc.cabs, id)
		return
	}
	acc.cabSet = make(map[string]struct{}, 2*zoneSmall)
	for _, c := range acc.cabs {
		acc.cabSet[c] = struct{}{}
	}
	acc.cabSet[id] = struct{}{}
	acc.cabs = nil
}

// Merge returns the union in new storage: window engines may share
// accumulators between panes.
func (ZoneDemandAgg) Merge(a, b ZoneAcc) ZoneAcc {
	m := ZoneAcc{
		events: a.events + b.events, pickups: a.pickups + b.pickups,
		speeds: a.speeds + b.speeds, speedSum: a.speedSum + b.speedSum,
	}
	for _, x := range [2]*ZoneAcc{&a, &b} {
		for _, c := range x.cabs {
			m.addCab(c)
		}
		for c := range x.cabSet {
			m.addCab(c)
		}
	}
	return m
}

func (ZoneDemandAgg) Result(acc ZoneAcc) ZoneDemand { return acc.result() }

// ZoneSampleAgg is the window.Aggregator behind [ZoneDemandByZone]: [ZoneDemandAgg] over
// the samples a zone repartition carries. Both give the same ZoneDemand for the same events.
type ZoneSampleAgg struct{}

var _ window.Aggregator[ZoneSample, ZoneAcc, ZoneDemand] = ZoneSampleAgg{}

func (ZoneSampleAgg) Zero() ZoneAcc { return ZoneAcc{} }

func (ZoneSampleAgg) Add(acc ZoneAcc, s ZoneSample) ZoneAcc {
	acc.add(s.CabID, s.SpeedKmh, s.HasSpeed, s.Pickup)
	return acc
}

func (ZoneSampleAgg) Merge(a, b ZoneAcc) ZoneAcc { return ZoneDemandAgg{}.Merge(a, b) }

func (ZoneSampleAgg) Result(acc ZoneAcc) ZoneDemand { return acc.result() }

func (acc ZoneAcc) result() ZoneDemand {
	z := ZoneDemand{Events: acc.events, Pickups: acc.pickups, SpeedSamples: acc.speeds, SpeedSumKmh: float64(acc.speedSum) / speedUnit,
		Cabs: int64(len(acc.cabs) + len(acc.cabSet))}
	if acc.speeds > 0 {
		z.AvgSpeedKmh = float64(acc.speedSum) / speedUnit / float64(acc.speeds)
	}
	return z
}

// ZoneDemandStream aggregates tracked events into [ZoneDemand] per geohash
// cell ([WithGeohashPrecision], default 6) and window of the assigner, leaving
// out duplicates and GPS jumps:
//
//	tr, err := telemetry.Track(events)
//	zones, err := telemetry.ZoneDemandStream(tr.Events(), window.Tumbling(5*time.Minute))
//	docs := stream.Map(zones.Results(), telemetry.ZoneDemandDoc)
//
// Its state is per partition, so its results are whole only when every
// event of a zone is in one partition: one source partition, or a stream
// repartitioned by zone. On a stream keyed by cab (the Kafka input), route
// the events through a repartition first: [KeyByZone], stream.Repartition
// with [TrackedCodec], then [ZoneDemandByZone]. ZoneDemandStream over
// stream.Map(repartitioned, pair.Value) gives the same results, since it
// keys by the same function ([ZoneOf]) as KeyByZone, at the cost of
// computing each geohash again.
//
// It uses [WithGeohashPrecision] and [WithWindowOptions]; errors wrap
// [ErrInvalidOption] or window.ErrInvalidOption.
func ZoneDemandStream(s *stream.Stream[Tracked], assigner window.Assigner, opts ...ZoneDemandOption) (*window.Windowed[string, ZoneDemand, Tracked], error) {
	c, err := newConfig(opts, ZoneDemandOption.applyZoneDemand)
	if err != nil {
		return nil, err
	}
	clean := s.Filter(countsForZones)
	wopts := append([]window.Option{window.WithName("zone-demand")}, c.winOpts...)
	return window.AggregateElements(clean, ZoneOf(c.precision), assigner,
		window.Aggregator[Tracked, ZoneAcc, ZoneDemand](ZoneDemandAgg{}), wopts...)
}

// KeyByZone prepares tracked events for a repartition by zone: it leaves out
// duplicates and GPS jumps (zone demand does not count them, so they need
// not travel), keys the others by [ZoneOf](precision) and keeps of each only
// its [ZoneSample] (cab, speed, pickup), about a sixth of the event's bytes
// in the repartition topic. precision 0 means [DefaultGeohashPrecision];
// others outside 1..[MaxGeohashPrecision] are an error wrapping
// [ErrInvalidOption]. The fleet job's zone demand:
//
//	keyed, err := telemetry.KeyByZone(tr.Events(), 0)
//	byZone := stream.Repartition(keyed, "zones", exchange) // codec: stream.PairCodec(stream.StringCodec{}, telemetry.ZoneSampleCodec{})
//	zones, err := telemetry.ZoneDemandByZone(byZone, window.Tumbling(5*time.Minute))
//
// The tracker emits each event once with its own offset, so its events may
// be repartitioned (see stream.Repartition).
func KeyByZone(s *stream.Stream[Tracked], precision int) (*stream.Stream[stream.Pair[string, ZoneSample]], error) {
	if precision == 0 {
		precision = DefaultGeohashPrecision
	}
	if precision < 1 || precision > MaxGeohashPrecision {
		return nil, invalidOption("KeyByZone: precision %d, want 1..%d", precision, MaxGeohashPrecision)
	}
	zone := ZoneOf(precision)
	return stream.Map(s.Filter(countsForZones), func(t Tracked) stream.Pair[string, ZoneSample] {
		return stream.Pair[string, ZoneSample]{Key: zone(t), Value: t.Sample()}
	}), nil
}

// ZoneDemandByZone is [ZoneDemandStream] over [KeyByZone]'s samples after a
// stream.Repartition: the keys are the zones (the geohash is not computed
// again) and every event of a zone is in one partition, so each zone and
// window gets one result for the whole input, equal to ZoneDemandStream's
// over all of it. Late samples come out of the window's Late stream as
// pairs. It takes [WithWindowOptions]; [WithGeohashPrecision] is an error
// (the keys fix the cells: pass the precision to KeyByZone). Errors wrap
// [ErrInvalidOption] or window.ErrInvalidOption.
func ZoneDemandByZone(s *stream.Stream[stream.Pair[string, ZoneSample]], assigner window.Assigner, opts ...ZoneDemandOption) (*window.Windowed[string, ZoneDemand, stream.Pair[string, ZoneSample]], error) {
	c, err := newConfig(opts, ZoneDemandOption.applyZoneDemand)
	if err != nil {
		return nil, err
	}
	if c.precisionSet {
		return nil, invalidOption("ZoneDemandByZone: WithGeohashPrecision does not apply, the stream's keys are the zones (pass the precision to KeyByZone)")
	}
	wopts := append([]window.Option{window.WithName("zone-demand")}, c.winOpts...)
	return window.Aggregate(s, func(p stream.Pair[string, ZoneSample]) string { return p.Key },
		func(p stream.Pair[string, ZoneSample]) ZoneSample { return p.Value }, assigner,
		window.Aggregator[ZoneSample, ZoneAcc, ZoneDemand](ZoneSampleAgg{}), wopts...)
}

// countsForZones reports whether zone demand counts t: not a duplicate, not
// a GPS jump.
func countsForZones(t Tracked) bool { return !t.Duplicate && !t.Jump }

// ZoneOf returns the zone key function of zone demand: the geohash of the
// event's position at precision (1..[MaxGeohashPrecision]; it panics
// otherwise, like [AppendGeohash]), the same cell as [EncodeGeohash]. Names
// are interned, so a steady stream allocates no strings. The function is
// not safe for concurrent use (pipelines call key functions from their run
// loop); call ZoneOf once per goroutine.
func ZoneOf(precision int) func(Tracked) string {
	if precision < 1 || precision > MaxGeohashPrecision {
		panic(fmt.Sprintf("telemetry: ZoneOf: geohash precision %d outside 1..%d", precision, MaxGeohashPrecision))
	}
	names := make(map[uint64]string) // by geohashCode
	return func(t Tracked) string {
		code := geohashCode(t.Point(), precision)
		if s, ok := names[code]; ok {
			return s
		}
		if len(names) >= 1<<16 {
			clear(names)
		}
		var buf [MaxGeohashPrecision]byte
		s := string(appendGeohashCode(buf[:0], code, precision))
		names[code] = s
		return s
	}
}
