// Supply and demand per zone: the observations that meet in a repartition by zone (SupplyObs:
// an available cab, a ride request made or cancelled), their aggregator and the zone-supply
// document (ZoneSupply).

package telemetry

import (
	"fmt"
	"sync"
	"time"

	"github.com/fleetstream/fleetstream/internal/docid"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/window"
)

// SupplyObs is one observation of a zone's supply or demand, keyed by zone in a
// stream.Pair: a cab seen available there (CabID), or a ride request made (Status requested)
// or cancelled (Status cancelled) there (RequestID). Its time is the element's event time.
type SupplyObs struct {
	CabID     string        `json:"cab,omitempty"`
	RequestID string        `json:"req,omitempty"`
	Status    RequestStatus `json:"st,omitempty"`
}

// ZoneSupply is the supply and demand of one geohash cell over one event-time window, shaped
// as a document of the zone-supply index (one per zone and window, its ID made of the zone and
// the window alone, as [ZoneDemand]'s).
type ZoneSupply struct {
	Zone        string    `json:"zone"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Timestamp   time.Time `json:"@timestamp"` // the window start
	// Requests counts the ride requests made in the zone (distinct request IDs).
	Requests int64 `json:"requests"`
	// Cancelled counts the distinct request IDs cancelled in the zone and window, by the
	// pickup location and time of the cancellation record: a request made in an earlier
	// window, or whose request record this input never had, counts all the same, so Cancelled
	// is not a part of Requests and may exceed it.
	Cancelled int64 `json:"cancelled"`
	// AvailableCabs counts the distinct cabs that reported status available in the zone.
	AvailableCabs int64 `json:"available_cabs"`
	// SupplyDemandRatio is AvailableCabs / Requests, the surge signal (below 1: more requests
	// than free cabs). Absent (nil) without requests.
	SupplyDemandRatio *float64 `json:"supply_demand_ratio,omitempty"`
	// Location is the centre of the cell.
	Location Location `json:"location"`
}

// ZoneSupplyDoc returns the document of a window result: r.Value with the zone, window bounds,
// @timestamp and cell centre filled in.
func ZoneSupplyDoc(r window.Result[string, ZoneSupply]) ZoneSupply {
	z := r.Value
	z.Zone, z.WindowStart, z.WindowEnd, z.Timestamp = r.Key, r.Start, r.End, r.Start
	if c, err := DecodeGeohash(r.Key); err == nil {
		z.Location = Location(c.Center())
	}
	return z
}

// DocID returns the deterministic document ID of z in a pipeline, the same as
// opensearch.WindowID(pipeline, z.Zone, z.WindowStart, z.WindowEnd).
func (z ZoneSupply) DocID(pipeline string) string {
	var buf [32]byte
	return string(docid.AppendWindow(buf[:0], pipeline, z.Zone, z.WindowStart, z.WindowEnd))
}

// AppendJSON appends the document of z to dst, with the fields and meaning of its JSON tags;
// errors wrap [ErrEncode] and leave dst as it was.
func (z ZoneSupply) AppendJSON(dst []byte) ([]byte, error) {
	var c encCheck
	c.time("window_start", z.WindowStart)
	c.time("window_end", z.WindowEnd)
	c.time("@timestamp", z.Timestamp)
	if z.SupplyDemandRatio != nil {
		c.num("supply_demand_ratio", *z.SupplyDemandRatio)
	}
	c.num("location.lat", z.Location.Lat)
	c.num("location.lon", z.Location.Lon)
	if c.err != nil {
		return dst, fmt.Errorf("zone supply of %q: %w", z.Zone, c.err)
	}
	dst = append(dst, `{"zone":`...)
	dst = appendString(dst, z.Zone)
	dst = appendTimeField(dst, `,"window_start":`, z.WindowStart)
	dst = appendTimeField(dst, `,"window_end":`, z.WindowEnd)
	dst = appendTimeField(dst, `,"@timestamp":`, z.Timestamp)
	dst = append(dst, `,"requests":`...)
	dst = appendDecimal(dst, z.Requests, 0)
	dst = append(dst, `,"cancelled":`...)
	dst = appendDecimal(dst, z.Cancelled, 0)
	dst = append(dst, `,"available_cabs":`...)
	dst = appendDecimal(dst, z.AvailableCabs, 0)
	if z.SupplyDemandRatio != nil {
		dst = append(dst, `,"supply_demand_ratio":`...)
		dst = appendFloat(dst, *z.SupplyDemandRatio)
	}
	dst = append(dst, `,"location":`...)
	dst = appendLocation(dst, z.Location)
	return append(dst, '}'), nil
}

// SupplyAcc is the accumulator of [ZoneSupplyAgg]: the distinct cabs, requests made and
// requests cancelled.
type SupplyAcc struct {
	cabs, made, cancelled map[string]struct{}
}

// ZoneSupplyAgg is the window.Aggregator behind [ZoneSupplyByZone].
type ZoneSupplyAgg struct{}

var _ window.Aggregator[SupplyObs, SupplyAcc, ZoneSupply] = ZoneSupplyAgg{}

func (ZoneSupplyAgg) Zero() SupplyAcc { return SupplyAcc{} }

func addTo(m *map[string]struct{}, k string) {
	if *m == nil {
		*m = make(map[string]struct{}, 4)
	}
	(*m)[k] = struct{}{}
}

func (ZoneSupplyAgg) Add(acc SupplyAcc, o SupplyObs) SupplyAcc {
	switch {
	case o.CabID != "":
		addTo(&acc.cabs, o.CabID)
	case o.Status == RequestRequested:
		addTo(&acc.made, o.RequestID)
	case o.Status == RequestCancelled:
		addTo(&acc.cancelled, o.RequestID)
	}
	return acc
}

// Merge returns the union in new storage: window engines may share accumulators between panes.
func (ZoneSupplyAgg) Merge(a, b SupplyAcc) SupplyAcc {
	var m SupplyAcc
	for _, x := range [2]SupplyAcc{a, b} {
		for k := range x.cabs {
			addTo(&m.cabs, k)
		}
		for k := range x.made {
			addTo(&m.made, k)
		}
		for k := range x.cancelled {
			addTo(&m.cancelled, k)
		}
	}
	return m
}

func (ZoneSupplyAgg) Result(acc SupplyAcc) ZoneSupply {
	z := ZoneSupply{Requests: int64(len(acc.made)), Cancelled: int64(len(acc.cancelled)), AvailableCabs: int64(len(acc.cabs))}
	if z.Requests > 0 {
		r := float64(z.AvailableCabs) / float64(z.Requests)
		z.SupplyDemandRatio = &r
	}
	return z
}

// SupplyFromCabs keys the available cabs of tracked events by zone ([ZoneOf](precision),
// precision 0 meaning [DefaultGeohashPrecision]) for [ZoneSupplyByZone]: events with status
// available that are neither duplicates nor GPS jumps. Since the zone supply counts distinct
// cabs, a cab's further events in the same zone and slot of width every (the supply window's
// size) are left out while it is remembered (a cab's last zone and slot, one memory for all
// partitions, for the life of the stream), so that few records travel through the repartition. An event
// left out always follows one of the same cab, zone and slot that was sent before, which the
// window after the repartition counts wherever it would have counted the one left out (a copy
// late in its own partition, sent first, is on time there if the other copy was on time in
// its partition). A replay in the same process (a rebalance that gives a partition back) sends
// only the events it does not remember, the earlier sending of the others being in the
// repartition already; a replay after a restart remembers nothing. So the counts do not
// depend on what is remembered, though what travels does. The slots are the
// tumbling windows of width every: for sliding windows give every = gcd(size, slide) (a
// slot of the window's size would drop a cab's events in the later half of a slot, which
// a window starting there needs), and session windows are not supported (a dropped event
// would not extend the session). Errors wrap [ErrInvalidOption].
func SupplyFromCabs(s *stream.Stream[Tracked], precision int, every time.Duration) (*stream.Stream[stream.Pair[string, SupplyObs]], error) {
	if precision == 0 {
		precision = DefaultGeohashPrecision
	}
	if precision < 1 || precision > MaxGeohashPrecision {
		return nil, invalidOption("SupplyFromCabs: precision %d, want 1..%d", precision, MaxGeohashPrecision)
	}
	if every <= 0 {
		return nil, invalidOption("SupplyFromCabs: slot %v, want > 0", every)
	}
	// The zone is computed once per available event: keyed first, then deduplicated on the
	// key and the slot.
	type obs struct {
		zone, cab string
		slot      int64
	}
	type last struct {
		zone string
		slot int64
	}
	var mu sync.Mutex
	seen := map[string]last{}
	zoneOf := ZoneOf(precision)
	avail := s.Filter(func(t Tracked) bool { return t.Status == StatusAvailable && !t.Duplicate && !t.Jump })
	// Slots are the supply windows, aligned to the Unix epoch as windows are (time.Truncate
	// aligns to year 1, which only agrees for sizes that divide the time between the two).
	keyed := stream.Map(avail, func(t Tracked) obs {
		slot := t.Time.UnixNano() / int64(every)
		if t.Time.UnixNano()%int64(every) < 0 {
			slot-- // floor, before 1970
		}
		return obs{zoneOf(t), t.CabID, slot}
	})
	keep := keyed.Filter(func(o obs) bool {
		mu.Lock()
		defer mu.Unlock()
		l := last{o.zone, o.slot}
		if seen[o.cab] == l {
			return false
		}
		if len(seen) >= 1<<17 {
			clear(seen) // forgetting only lets more through
		}
		seen[o.cab] = l
		return true
	})
	return stream.Map(keep, func(o obs) stream.Pair[string, SupplyObs] {
		return stream.KV(o.zone, SupplyObs{CabID: o.cab})
	}), nil
}

// SupplyFromRequests keys the ride requests made and cancelled by the zone of their pickup
// location (precision as in [SupplyFromCabs]) for [ZoneSupplyByZone]; assignments are left
// out. Errors wrap [ErrInvalidOption].
func SupplyFromRequests(s *stream.Stream[Request], precision int) (*stream.Stream[stream.Pair[string, SupplyObs]], error) {
	if precision == 0 {
		precision = DefaultGeohashPrecision
	}
	if precision < 1 || precision > MaxGeohashPrecision {
		return nil, invalidOption("SupplyFromRequests: precision %d, want 1..%d", precision, MaxGeohashPrecision)
	}
	var buf [MaxGeohashPrecision]byte
	return stream.Map(s.Filter(func(r Request) bool { return r.Status != RequestAssigned }),
		func(r Request) stream.Pair[string, SupplyObs] {
			return stream.KV(string(AppendGeohash(buf[:0], r.Point(), precision)), SupplyObs{RequestID: r.RequestID, Status: r.Status})
		}), nil
}

// ZoneSupplyByZone aggregates supply observations keyed by zone ([SupplyFromCabs] and
// [SupplyFromRequests], Union'ed and repartitioned by zone so that every observation of a zone
// is in one partition) into [ZoneSupply] per zone and window of the assigner:
//
//	cabs, err := telemetry.SupplyFromCabs(tr.Events(), 0, 5*time.Minute)
//	reqs, err := telemetry.SupplyFromRequests(requests, 0)
//	byZone := stream.Repartition(cabs.Union(reqs), "supply", exchange) // codec: stream.PairCodec(stream.StringCodec{}, stream.JSONCodec[telemetry.SupplyObs]())
//	supply, err := telemetry.ZoneSupplyByZone(byZone, window.Tumbling(5*time.Minute))
//
// It takes [WithWindowOptions]; errors wrap [ErrInvalidOption] or window.ErrInvalidOption.
func ZoneSupplyByZone(s *stream.Stream[stream.Pair[string, SupplyObs]], assigner window.Assigner, opts ...ZoneDemandOption) (*window.Windowed[string, ZoneSupply, stream.Pair[string, SupplyObs]], error) {
	c, err := newConfig(opts, ZoneDemandOption.applyZoneDemand)
	if err != nil {
		return nil, err
	}
	if c.precisionSet {
		return nil, invalidOption("ZoneSupplyByZone: WithGeohashPrecision does not apply, the stream's keys are the zones")
	}
	wopts := append([]window.Option{window.WithName("zone-supply")}, c.winOpts...)
	return window.Aggregate(s, func(p stream.Pair[string, SupplyObs]) string { return p.Key },
		func(p stream.Pair[string, SupplyObs]) SupplyObs { return p.Value }, assigner,
		window.Aggregator[SupplyObs, SupplyAcc, ZoneSupply](ZoneSupplyAgg{}), wopts...)
}
