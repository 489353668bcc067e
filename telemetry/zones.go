// Zone demand: the per-geohash-cell window figures (ZoneDemand), their
// aggregator (ZoneDemandAgg), the one-line transform ZoneDemandStream and the
// zone-demand document.

package telemetry

import (
	"fmt"
	"strconv"
	"time"

	"github.com/fleetstream/fleetstream/internal/docid"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/window"
)

// ZoneDemand is the activity in one geohash cell over one event-time window,
// shaped as a document of the zone-demand index.
//
// Zones are not the Kafka key (cabs are), so each source partition counts
// the events it holds: a ZoneDemand is a per-partition partial, and its
// document ID includes the partition (see [ZoneDemand.DocID]). Dashboards sum
// events and pickups over partitions; distinct cabs add up too, since the
// producer keys by cab and a cab lives in one partition.
type ZoneDemand struct {
	Zone        string    `json:"zone"`
	Partition   int32     `json:"partition"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Timestamp   time.Time `json:"@timestamp"` // the window start
	// Events counts the zone's events, without duplicates and GPS jumps.
	Events int64 `json:"events"`
	// Cabs counts distinct cabs.
	Cabs int64 `json:"cabs"`
	// Pickups counts events where a cab went from available to hired.
	Pickups int64 `json:"pickups"`
	// AvgSpeedKmh averages the speed readings; 0 without any (SpeedSamples 0).
	AvgSpeedKmh float64 `json:"avg_speed_kmh"`
	// Location is the centre of the cell.
	Location     Location `json:"location"`
	SpeedSamples int64    `json:"-"`
}

// ZoneDemandDoc returns the document of a window result: r.Value with the
// zone, partition, window bounds, @timestamp and cell centre filled in.
func ZoneDemandDoc(r window.Result[string, ZoneDemand]) ZoneDemand {
	z := r.Value
	z.Zone, z.Partition, z.WindowStart, z.WindowEnd, z.Timestamp = r.Key, r.Partition, r.Start, r.End, r.Start
	if c, err := DecodeGeohash(r.Key); err == nil {
		p := c.Center()
		z.Location = Location(p)
	}
	return z
}

// DocKey returns the key the document ID is made of: zone/partition.
func (z ZoneDemand) DocKey() string {
	return z.Zone + "/" + strconv.FormatInt(int64(z.Partition), 10)
}

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
	c.num("location.lat", z.Location.Lat)
	c.num("location.lon", z.Location.Lon)
	if c.err != nil {
		return dst, fmt.Errorf("zone demand of %q: %w", z.Zone, c.err)
	}
	dst = append(dst, `{"zone":`...)
	dst = appendString(dst, z.Zone)
	dst = append(dst, `,"partition":`...)
	dst = appendDecimal(dst, int64(z.Partition), 0)
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
	dst = append(dst, `,"location":`...)
	dst = appendLocation(dst, z.Location)
	return append(dst, '}'), nil
}

// ZoneAcc is the accumulator of [ZoneDemandAgg].
type ZoneAcc struct {
	events, pickups, speeds int64
	speedSum                float64
	cabs                    []string            // distinct, while few
	cabSet                  map[string]struct{} // once many
}

// zoneSmall is how many distinct cabs a zone keeps in a slice before a map.
const zoneSmall = 16

// ZoneDemandAgg is the window.Aggregator behind [ZoneDemandStream].
type ZoneDemandAgg struct{}

var _ window.Aggregator[Tracked, ZoneAcc, ZoneDemand] = ZoneDemandAgg{}

func (ZoneDemandAgg) Zero() ZoneAcc { return ZoneAcc{} }

func (ZoneDemandAgg) Add(acc ZoneAcc, t Tracked) ZoneAcc {
	acc.events++
	if t.Pickup {
		acc.pickups++
	}
	if t.Has&HasSpeed != 0 {
		acc.speeds++
		acc.speedSum += t.SpeedKmh
	}
	acc.addCab(t.CabID)
	return acc
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

func (ZoneDemandAgg) Result(acc ZoneAcc) ZoneDemand {
	z := ZoneDemand{Events: acc.events, Pickups: acc.pickups, SpeedSamples: acc.speeds, Cabs: int64(len(acc.cabs) + len(acc.cabSet))}
	if acc.speeds > 0 {
		z.AvgSpeedKmh = acc.speedSum / float64(acc.speeds)
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
// Results are per source partition (see [ZoneDemand]). It uses
// [WithGeohashPrecision] and [WithWindowOptions]; errors wrap [ErrInvalidOption] or
// window.ErrInvalidOption.
func ZoneDemandStream(s *stream.Stream[Tracked], assigner window.Assigner, opts ...ZoneDemandOption) (*window.Windowed[string, ZoneDemand, Tracked], error) {
	c, err := newConfig(opts, ZoneDemandOption.applyZoneDemand)
	if err != nil {
		return nil, err
	}
	clean := s.Filter(func(t Tracked) bool { return !t.Duplicate && !t.Jump })
	wopts := append([]window.Option{window.WithName("zone-demand")}, c.winOpts...)
	return window.Aggregate(clean, zoneKey(c.precision), identity, assigner,
		window.Aggregator[Tracked, ZoneAcc, ZoneDemand](ZoneDemandAgg{}), wopts...)
}

// zoneKey returns the key function: the geohash of the position, interned so
// that a steady stream allocates no strings. The pipeline calls it from its
// run loop only.
func zoneKey(precision int) func(Tracked) string {
	names := make(map[string]string)
	var buf [MaxGeohashPrecision]byte
	return func(t Tracked) string {
		b := AppendGeohash(buf[:0], t.Point(), precision)
		if s, ok := names[string(b)]; ok {
			return s
		}
		if len(names) >= 1<<16 {
			clear(names)
		}
		s := string(b)
		names[s] = s
		return s
	}
}
