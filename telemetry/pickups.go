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
// pickups. A cab's trip that starts elsewhere within the bound is not the request's; should
// two trip starts qualify, both rows come out under the request's ID, the later one last.
// Errors wrap join.ErrInvalidOption. TestTimeToPickup checks the rows against an independent
// computation on simulated data.
func TimeToPickup(requests *stream.Stream[Request], tracked *stream.Stream[Tracked], ex stream.Exchange[PickupSide], within time.Duration, opts ...join.Option) (*join.Output[string, Request, PickupPoint], *stream.Stream[RidePickup], error) {
	assigned := stream.Map(requests.Filter(func(r Request) bool { return r.Status == RequestAssigned }),
		func(r Request) stream.Pair[string, Request] { return stream.KV(r.CabID, r) })
	starts := stream.Map(tracked.Filter(func(t Tracked) bool { return t.TripStart && !t.Jump }),
		func(t Tracked) stream.Pair[string, PickupPoint] {
			return stream.KV(t.CabID, PickupPoint{CabID: t.CabID, TripID: t.TripID, Lat: t.Lat, Lon: t.Lon})
		})
	out, err := join.Interval(assigned, starts, ex, 0, within, append([]join.Option{join.WithName("pickups")}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	rows := stream.Map(out.Joined(), func(j join.Joined[string, Request, PickupPoint]) RidePickup {
		at := Point{Lat: j.Right.Lat, Lon: j.Right.Lon}
		return RidePickup{
			RequestID: j.Left.RequestID, CabID: j.Key, TripID: j.Right.TripID,
			AssignedAt: j.LeftTime, PickupAt: j.RightTime, Timestamp: j.RightTime,
			WaitS:     j.RightTime.Sub(j.LeftTime).Seconds(),
			DistanceM: Haversine(j.Left.Point(), at) * 1000,
			Location:  Location(at),
		}
	}).Filter(func(p RidePickup) bool { return p.DistanceM <= MaxPickupDistanceM })
	return out, rows, nil
}
