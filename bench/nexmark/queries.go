// The queries q0, q1, q2, q5, q7 and q11, written with the public API of stream and window.

package nexmark

import (
	"slices"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/window"
)

// Window sizes of the queries, as in Nexmark's Flink SQL.
const (
	Q5Size  = 10 * time.Second // q5: HOP(dateTime, 2 s, 10 s)
	Q5Slide = 2 * time.Second
	Q7Size  = 10 * time.Second // q7: TUMBLE(dateTime, 10 s)
	Q11Gap  = 10 * time.Second // q11: SESSION(dateTime, 10 s)

	// Q2Modulus selects the auctions of q2: auction % 123 == 0.
	Q2Modulus = 123

	// DollarToEuro is q1's exchange rate.
	DollarToEuro = 0.908
)

// Bids returns the bids among events.
func Bids(events *stream.Stream[Event]) *stream.Stream[Bid] {
	return stream.Map(events.Filter(func(e Event) bool { return e.Kind == KindBid }),
		func(e Event) Bid { return e.Bid })
}

// Q0 is the pass-through query: every bid, unchanged. It measures the engine's and the
// source's own cost.
func Q0(events *stream.Stream[Event]) *stream.Stream[Bid] { return Bids(events) }

// EuroBid is a bid with its price converted to euros.
type EuroBid struct {
	Auction  int64
	Bidder   int64
	Price    float64 // euro cents
	DateTime time.Time
	Extra    string
}

// Q1 is currency conversion: every bid with its price times DollarToEuro.
func Q1(events *stream.Stream[Event]) *stream.Stream[EuroBid] {
	return stream.Map(Bids(events), func(b Bid) EuroBid {
		return EuroBid{Auction: b.Auction, Bidder: b.Bidder, Price: DollarToEuro * float64(b.Price), DateTime: b.DateTime, Extra: b.Extra}
	})
}

// AuctionPrice is q2's output.
type AuctionPrice struct {
	Auction int64
	Price   int64
}

// Q2 is selection: the auction and price of the bids on auctions whose id is a multiple of
// modulus (Q2Modulus in Nexmark).
func Q2(events *stream.Stream[Event], modulus int64) *stream.Stream[AuctionPrice] {
	sel := Bids(events).Filter(func(b Bid) bool { return b.Auction%modulus == 0 })
	return stream.Map(sel, func(b Bid) AuctionPrice { return AuctionPrice{Auction: b.Auction, Price: b.Price} })
}

// HotItem is one of q5's hottest auctions of a window: an auction with the most bids.
type HotItem struct {
	Start, End time.Time
	Auction    int64
	Bids       int64
}

// Q5 is hot items: for each sliding window of Q5Size every Q5Slide, the auctions with the
// most bids (all of them on a tie), like Nexmark's join of the per-auction counts with their
// maximum per window.
func Q5(events *stream.Stream[Event]) (*stream.Stream[HotItem], error) {
	counts, err := window.Aggregate(Bids(events),
		func(b Bid) int64 { return b.Auction },
		func(Bid) struct{} { return struct{}{} },
		window.Sliding(Q5Size, Q5Slide), window.Count[struct{}](),
		window.WithName("q5.count"))
	if err != nil {
		return nil, err
	}
	// A window fires for every key at once, in one batch, and results come in order of window
	// end: so a batch holds each fired window's counts whole and contiguous, and the maximum
	// needs no state across batches.
	return stream.Transform(counts.Results(), func(_ *stream.PartitionContext, in []window.Result[int64, int64]) []HotItem {
		var out []HotItem
		for len(in) > 0 {
			n := 1
			for n < len(in) && in[n].End.Equal(in[0].End) && in[n].Start.Equal(in[0].Start) {
				n++
			}
			var top int64
			for _, r := range in[:n] {
				top = max(top, r.Value)
			}
			for _, r := range in[:n] {
				if r.Value == top {
					out = append(out, HotItem{Start: r.Start, End: r.End, Auction: r.Key, Bids: r.Value})
				}
			}
			in = in[n:]
		}
		return out
	}), nil
}

// WindowBid is a bid with the window it won.
type WindowBid struct {
	Start, End time.Time
	Bid        Bid
}

// Q7 is the highest bid: for each tumbling window of Q7Size, the bids with the highest price
// (all of them on a tie), like Nexmark's join of the bids with their window's maximum.
func Q7(events *stream.Stream[Event]) (*stream.Stream[WindowBid], error) {
	top, err := window.Aggregate(Bids(events),
		func(Bid) struct{} { return struct{}{} },
		func(b Bid) Bid { return b },
		window.Tumbling(Q7Size), highest{},
		window.WithName("q7.highest"))
	if err != nil {
		return nil, err
	}
	return stream.FlatMap(top.Results(), func(r window.Result[struct{}, []Bid], emit func(WindowBid)) {
		for _, b := range r.Value {
			emit(WindowBid{Start: r.Start, End: r.End, Bid: b})
		}
	}), nil
}

// topBids holds the highest price seen and the bids at that price, in arrival order.
type topBids struct {
	Price int64
	Bids  []Bid
}

// highest is the aggregator of q7: the bids with the highest price.
type highest struct{}

var _ window.Aggregator[Bid, topBids, []Bid] = highest{}

func (highest) Zero() topBids { return topBids{} }

func (highest) Add(acc topBids, b Bid) topBids {
	switch {
	case len(acc.Bids) == 0 || b.Price > acc.Price:
		acc.Price, acc.Bids = b.Price, append(acc.Bids[:0], b)
	case b.Price == acc.Price:
		acc.Bids = append(acc.Bids, b)
	}
	return acc
}

func (highest) Merge(a, b topBids) topBids {
	switch {
	case len(b.Bids) == 0 || len(a.Bids) > 0 && b.Price < a.Price:
		return a
	case len(a.Bids) == 0 || b.Price > a.Price:
		return topBids{Price: b.Price, Bids: slices.Clone(b.Bids)} // b may be shared
	}
	a.Bids = append(a.Bids, b.Bids...)
	return a
}

// Result copies the bids: the accumulator's array may be reused once the window is gone.
func (highest) Result(acc topBids) []Bid { return slices.Clone(acc.Bids) }

// BidderSession is q11's output: a bidder's number of bids in one session.
type BidderSession struct {
	Bidder     int64
	Bids       int64
	Start, End time.Time
}

// Q11 is user sessions: the number of bids of each bidder per session of bids less than
// Q11Gap apart; a session ends Q11Gap after its last bid.
func Q11(events *stream.Stream[Event]) (*stream.Stream[BidderSession], error) {
	sessions, err := window.Aggregate(Bids(events),
		func(b Bid) int64 { return b.Bidder },
		func(Bid) struct{} { return struct{}{} },
		window.Session(Q11Gap), window.Count[struct{}](),
		window.WithName("q11.sessions"))
	if err != nil {
		return nil, err
	}
	return stream.Map(sessions.Results(), func(r window.Result[int64, int64]) BidderSession {
		return BidderSession{Bidder: r.Key, Bids: r.Value, Start: r.Start, End: r.End}
	}), nil
}
