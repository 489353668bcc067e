// The join queries q3 and q8, written with the public API of join, stream and window.

package nexmark

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/window"
)

// Parameters of the join queries, as in Nexmark's Flink SQL.
const (
	// Q3Category is the category of q3's auctions: A.category = 10.
	Q3Category = 10
	// Q8Size is q8's window: TUMBLE(dateTime, 10 s) on both sides.
	Q8Size = 10 * time.Second
)

// Seller is what q3 keeps of a person: the fields of its output.
type Seller struct {
	Name, City, State string
}

// LocalItem is q3's output: an auction of category Q3Category and its seller, who lives in
// Oregon, Idaho or California.
type LocalItem struct {
	Name, City, State string
	Auction           int64
}

// Q3Exchange is the transport of q3's repartition: auction ids (left) and sellers (right)
// keyed by person id.
type Q3Exchange = stream.Exchange[stream.Pair[int64, join.Side[int64, Seller]]]

// SellerBounds returns how long before and after an auction its seller's Person event comes,
// at most, in cfg's events: the generator picks a seller among the last numActivePeople
// persons or up to personIDLead ids ahead (not generated yet), and a person comes every
// totalProportion events, so the person is at most 50,000 events before the auction and 500
// after it (5 s and 50 ms at the default rate), plus a millisecond for the event times'
// truncation.
func SellerBounds(cfg Config) (before, after time.Duration) {
	cfg = cfg.withDefaults()
	span := func(events int64) time.Duration {
		us := math.Ceil(float64(events) * 1e6 / float64(cfg.Rate))
		return time.Duration(us)*time.Microsecond + time.Millisecond
	}
	return span(numActivePeople * totalProportion), span(personIDLead * totalProportion)
}

// Q3 is local item suggestion: the auctions of category Q3Category with the name, city and
// state of their seller, for sellers in the states OR, ID and CA. Nexmark's is an unbounded join (every
// person is kept for ever); here it is an interval join of each auction with the person
// whose id is its seller from before to after the auction's time (join.Interval, through a
// repartition by person id over ex). With SellerBounds the interval holds every seller the
// generator can choose, so the rows are the unbounded join's, with bounded state. A late
// record (impossible with the in-order Source) fails the pipeline.
func Q3(events *stream.Stream[Event], ex Q3Exchange, before, after time.Duration) (*stream.Stream[LocalItem], error) {
	auctions := stream.Map(events.Filter(func(e Event) bool {
		return e.Kind == KindAuction && e.Auction.Category == Q3Category
	}), func(e Event) stream.Pair[int64, int64] { return stream.KV(e.Auction.Seller, e.Auction.ID) })
	persons := stream.Map(events.Filter(func(e Event) bool {
		return e.Kind == KindPerson && (e.Person.State == "OR" || e.Person.State == "ID" || e.Person.State == "CA")
	}), func(e Event) stream.Pair[int64, Seller] {
		return stream.KV(e.Person.ID, Seller{Name: e.Person.Name, City: e.Person.City, State: e.Person.State})
	})
	out, err := join.Interval(auctions, persons, ex, before, after, join.WithName("q3"))
	if err != nil {
		return nil, err
	}
	failOnLate("q3", out.Late())
	return stream.Map(out.Joined(), func(j join.Joined[int64, int64, Seller]) LocalItem {
		return LocalItem{Name: j.Right.Name, City: j.Right.City, State: j.Right.State, Auction: j.Left}
	}), nil
}

// NewUser is q8's output: a person who opened an auction in the window in which they
// registered.
type NewUser struct {
	ID    int64
	Name  string
	Start time.Time
}

// Q8Exchange is the transport of q8's repartition: person names (left) and auctions (right,
// nothing but the seller is needed) keyed by person id.
type Q8Exchange = stream.Exchange[stream.Pair[int64, join.Side[string, struct{}]]]

// Q8 is monitor new users: the persons who opened an auction in the tumbling window of
// Q8Size in which they registered, once per person and window, like Nexmark's join of the
// persons and the sellers grouped by window. The persons keyed by id and the auctions keyed
// by seller meet in a window join (join.Window, through a repartition over ex); a person
// with several auctions in the window makes a row per auction, so a tumbling count by person
// of the join's rows (whose time, the later record's, is in the same window) keeps one. A
// late record fails the pipeline.
func Q8(events *stream.Stream[Event], ex Q8Exchange) (*stream.Stream[NewUser], error) {
	persons := stream.Map(events.Filter(func(e Event) bool { return e.Kind == KindPerson }),
		func(e Event) stream.Pair[int64, string] { return stream.KV(e.Person.ID, e.Person.Name) })
	sellers := stream.Map(events.Filter(func(e Event) bool { return e.Kind == KindAuction }),
		func(e Event) stream.Pair[int64, struct{}] { return stream.KV(e.Auction.Seller, struct{}{}) })
	out, err := join.Window(persons, sellers, ex, Q8Size, join.WithName("q8"))
	if err != nil {
		return nil, err
	}
	failOnLate("q8", out.Late())
	type person struct {
		ID   int64
		Name string
	}
	users, err := window.Aggregate(out.Joined(),
		func(j join.Joined[int64, string, struct{}]) person { return person{ID: j.Key, Name: j.Left} },
		func(join.Joined[int64, string, struct{}]) struct{} { return struct{}{} },
		window.Tumbling(Q8Size), window.Count[struct{}](),
		window.WithName("q8.distinct"))
	if err != nil {
		return nil, err
	}
	failOnLate("q8.distinct", users.Late())
	return stream.Map(users.Results(), func(r window.Result[person, int64]) NewUser {
		return NewUser{ID: r.Key.ID, Name: r.Key.Name, Start: r.Start}
	}), nil
}

// failOnLate stops the pipeline at a late record: the Source's events are in order, so one
// would be a bug, and a run that dropped records would report a wrong figure.
func failOnLate[T any](name string, late *stream.Stream[T]) {
	stream.ForEachBatch(late, func(_ context.Context, _ stream.BatchInfo, batch []T) error {
		if len(batch) > 0 {
			return stream.Permanent(fmt.Errorf("nexmark: %s: %d late records", name, len(batch)))
		}
		return nil
	})
}
