// Time to pickup: ride requests assigned to a cab, joined in event time with the cab's next
// trip start (join.Interval), and the ride-pickups document (RidePickup).

package telemetry

import (
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
)

// PickupPoint is a trip start as the time-to-pickup join carries it: the cab, its trip and
// where it picked up. Its time is the element's event time.
type PickupPoint struct {
	CabID  string  `json:"cab"`
	TripID string  `json:"trip,omitempty"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
}

// PickupSide is the element type of the time-to-pickup join's repartition (keyed by cab).
type PickupSide = stream.Pair[string, join.Side[Request, PickupPoint]]

// RidePickup is one assigned ride request matched with its cab's pickup, shaped as a document
// of the ride-pickups index (its ID is the request ID).
type RidePickup struct {
	RequestID  string    `json:"request_id"`
	CabID      string    `json:"cab_id"`
	TripID     string    `json:"trip_id,omitempty"`
	AssignedAt time.Time `json:"assigned_at"`
	PickupAt   time.Time `json:"pickup_at"`
	Timestamp  time.Time `json:"@timestamp"` // the pickup
	// WaitS is the time from the assignment to the pickup, in seconds.
	WaitS float64 `json:"wait_s"`
	// DistanceM is the distance from the requested pickup place to where the cab picked up.
	DistanceM float64 `json:"distance_m"`
	// Location is where the cab picked up.
	Location Location `json:"location"`
}

// AppendJSON appends the document of p to dst; errors wrap [ErrEncode] and leave dst as it
// was.
func (p RidePickup) AppendJSON(dst []byte) ([]byte, error) {
	var c encCheck
	c.time("assigned_at", p.AssignedAt)
	c.time("pickup_at", p.PickupAt)
	c.time("@timestamp", p.Timestamp)
	c.num("wait_s", p.WaitS)
	c.num("distance_m", p.DistanceM)
	c.num("location.lat", p.Location.Lat)
	c.num("location.lon", p.Location.Lon)
	if c.err != nil {
		return dst, fmt.Errorf("ride pickup of %q: %w", p.RequestID, c.err)
	}
	dst = append(dst, `{"request_id":`...)
	dst = appendString(dst, p.RequestID)
	dst = append(dst, `,"cab_id":`...)
	dst = appendString(dst, p.CabID)
	if p.TripID != "" {
		dst = append(dst, `,"trip_id":`...)
		dst = appendString(dst, p.TripID)
	}
	dst = appendTimeField(dst, `,"assigned_at":`, p.AssignedAt)
	dst = appendTimeField(dst, `,"pickup_at":`, p.PickupAt)
	dst = appendTimeField(dst, `,"@timestamp":`, p.Timestamp)
	dst = append(dst, `,"wait_s":`...)
	dst = appendFloat(dst, p.WaitS)
	dst = append(dst, `,"distance_m":`...)
	dst = appendFloat(dst, p.DistanceM)
	dst = append(dst, `,"location":`...)
	dst = appendLocation(dst, p.Location)
	return append(dst, '}'), nil
}

// MaxPickupDistanceM is how far from the requested place a trip start may be to count as the
// request's pickup.
const MaxPickupDistanceM = 250.0

// TimeToPickup joins the requests assigned to a cab with the cab's trip starts
// ([Tracked.TripStart]) in event time: a request assigned at t is picked up by a trip start
// of its cab in [t, t+within] at most [MaxPickupDistanceM] from the requested place
// (join.Interval through ex, a repartition by cab, so requests and telemetry may come from
// different topics). It returns the join's output (for its Late stream) and the matched
// pickups: a trip start that the tracker takes for a GPS jump counts too (a cab often moves
// unrecorded between trips; a true jump lands far from the requested place); for each request, the first of its cab's trip starts that qualifies (a trip that
// starts elsewhere is not the request's). The join emits a request's rows in its cab's order,
// and holds the commits back to the request while it can still match, so a replay emits them
// again in the same order and the first one is the same; the choice remembers the last
// 100,000 matched requests per partition. Errors wrap join.ErrInvalidOption. TestTimeToPickup checks the rows against an independent
// computation on simulated data.
func TimeToPickup(requests *stream.Stream[Request], tracked *stream.Stream[Tracked], ex stream.Exchange[PickupSide], within time.Duration, opts ...join.Option) (*join.Output[string, Request, PickupPoint], *stream.Stream[RidePickup], error) {
	assigned := stream.Map(requests.Filter(func(r Request) bool { return r.Status == RequestAssigned }),
		func(r Request) stream.Pair[string, Request] { return stream.KV(r.CabID, r) })
	starts := stream.Map(tracked.Filter(func(t Tracked) bool { return t.TripStart }),
		func(t Tracked) stream.Pair[string, PickupPoint] {
			return stream.KV(t.CabID, PickupPoint{CabID: t.CabID, TripID: t.TripID, Lat: t.Lat, Lon: t.Lon})
		})
	out, err := join.Interval(assigned, starts, ex, 0, within, append([]join.Option{join.WithName("pickups")}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	near := func(j join.Joined[string, Request, PickupPoint]) float64 {
		return Haversine(j.Left.Point(), Point{Lat: j.Right.Lat, Lon: j.Right.Lon}) * 1000
	}
	first := newFirstRows(pickupMemory)
	rows := stream.Map(out.Joined().Filter(func(j join.Joined[string, Request, PickupPoint]) bool {
		return j.Matched && near(j) <= MaxPickupDistanceM && first.first(j.Partition, j.Left.RequestID)
	}), func(j join.Joined[string, Request, PickupPoint]) RidePickup {
		at := Point{Lat: j.Right.Lat, Lon: j.Right.Lon}
		return RidePickup{
			RequestID: j.Left.RequestID, CabID: j.Key, TripID: j.Right.TripID,
			AssignedAt: j.LeftTime, PickupAt: j.RightTime, Timestamp: j.RightTime,
			WaitS:     j.RightTime.Sub(j.LeftTime).Seconds(),
			DistanceM: near(j),
			Location:  Location(at),
		}
	})
	return out, rows, nil
}

// pickupMemory is how many matched requests per partition TimeToPickup remembers.
const pickupMemory = 100_000

// firstRows lets the first row of each request through, per join partition (a request's rows
// all come from the partition of its cab), remembering the last n requests of each.
type firstRows struct {
	n     int
	parts map[int32]*seenFIFO
}

type seenFIFO struct {
	seen  map[string]struct{}
	order []string
}

func newFirstRows(n int) *firstRows { return &firstRows{n: n, parts: map[int32]*seenFIFO{}} }

func (f *firstRows) first(part int32, id string) bool {
	p := f.parts[part]
	if p == nil {
		p = &seenFIFO{seen: map[string]struct{}{}}
		f.parts[part] = p
	}
	if _, ok := p.seen[id]; ok {
		return false
	}
	if len(p.order) >= f.n {
		delete(p.seen, p.order[0])
		p.order = p.order[1:]
	}
	p.seen[id] = struct{}{}
	p.order = append(p.order, id)
	return true
}
