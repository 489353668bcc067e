// Ride requests consistent with the cabs' trips: Requests and Pickups.

package fleetsim

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/fleetstream/fleetstream/telemetry"
)

// Pickup is the start of a trip: the earliest event of a cab's trip (status hired, one trip ID).
type Pickup struct {
	CabID, TripID string
	Time          time.Time
	At            telemetry.Point
}

// Pickups returns the trips' pickups found in events, in time order (ties by cab and trip): a
// trip's pickup is its earliest hired event with a trip ID, whatever order the events come in.
// Events without a trip ID or not hired are not part of a trip.
func Pickups(events []telemetry.Event) []Pickup {
	type trip struct{ cab, id string }
	first := map[trip]telemetry.Event{}
	for _, e := range events {
		if e.Status != telemetry.StatusHired || e.Has&telemetry.HasTripID == 0 || e.TripID == "" {
			continue
		}
		k := trip{e.CabID, e.TripID}
		if f, ok := first[k]; !ok || e.Time.Before(f.Time) {
			first[k] = e
		}
	}
	out := make([]Pickup, 0, len(first))
	for k, e := range first {
		out = append(out, Pickup{CabID: k.cab, TripID: k.id, Time: e.Time, At: e.Point()})
	}
	slices.SortFunc(out, func(a, b Pickup) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.CabID, b.CabID), cmp.Compare(a.TripID, b.TripID))
	})
	return out
}

// Request timing, derived from each pickup's hash.
const (
	minWait      = time.Minute      // from request to pickup, at least
	waitSpread   = 4 * time.Minute  // ... plus up to this
	cancelEvery  = 5                // one trip in five also has a request that is cancelled
	cancelBefore = 30 * time.Second // the cancelled request is made this long before the trip's
	cancelAfter  = 2 * time.Minute  // and cancelled this long after it was made
)

// Requests derives the booking app's ride requests from the cabs' trips (see [Pickups]), the
// same for the same events: for each trip, a request made at the pickup location between 1 and
// 5 minutes before the pickup (status requested), then assigned to the trip's cab after a
// quarter of that wait (status assigned, with the cab's ID); and for one trip in five, another
// request at about the same place, made 30 s before the trip's and cancelled 2 minutes after it
// was made (status requested, then cancelled). The result is in time order (ties by request
// ID and status: requested before assigned or cancelled). Request IDs are "R-" and 16 hex
// digits of a hash of the cab and trip IDs.
func Requests(events []telemetry.Event) []telemetry.Request {
	var out []telemetry.Request
	for _, p := range Pickups(events) {
		h := fnv.New64a()
		h.Write([]byte(p.CabID))
		h.Write([]byte{0})
		h.Write([]byte(p.TripID))
		sum := h.Sum64()
		wait := minWait + time.Duration(sum%uint64(waitSpread/time.Second))*time.Second
		made := p.Time.Add(-wait)
		id := "R-" + strconv.FormatUint(sum, 16)
		out = append(out,
			telemetry.Request{RequestID: id, Time: made, Lat: p.At.Lat, Lon: p.At.Lon, Status: telemetry.RequestRequested},
			telemetry.Request{RequestID: id, Time: made.Add(wait / 4), Lat: p.At.Lat, Lon: p.At.Lon, Status: telemetry.RequestAssigned, CabID: p.CabID})
		if (sum>>32)%cancelEvery == 0 {
			cid := "R-" + strconv.FormatUint(sum^0x9e3779b97f4a7c15, 16)
			lat, lon := p.At.Lat+0.001, p.At.Lon-0.001
			if lat > 90 {
				lat = p.At.Lat - 0.001
			}
			if lon < -180 {
				lon = p.At.Lon + 0.001
			}
			at := made.Add(-cancelBefore)
			out = append(out,
				telemetry.Request{RequestID: cid, Time: at, Lat: lat, Lon: lon, Status: telemetry.RequestRequested},
				telemetry.Request{RequestID: cid, Time: at.Add(cancelAfter), Lat: lat, Lon: lon, Status: telemetry.RequestCancelled})
		}
	}
	rank := func(s telemetry.RequestStatus) int {
		if s == telemetry.RequestRequested {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(out, func(a, b telemetry.Request) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.RequestID, b.RequestID), cmp.Compare(rank(a.Status), rank(b.Status)))
	})
	return out
}
