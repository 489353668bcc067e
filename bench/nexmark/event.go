// The Nexmark event model: a person, an auction or a bid.

package nexmark

import "time"

// Person is a new user of the auction site.
type Person struct {
	ID           int64
	Name         string
	EmailAddress string
	CreditCard   string
	City         string
	State        string
	DateTime     time.Time
	Extra        string
}

// Auction is an item put up for sale by a seller (a Person).
type Auction struct {
	ID          int64
	ItemName    string
	Description string
	InitialBid  int64
	Reserve     int64
	DateTime    time.Time
	Expires     time.Time
	Seller      int64
	Category    int64
	Extra       string
}

// Bid is a bid by a bidder (a Person) on an auction. Price is in cents of a dollar.
type Bid struct {
	Auction  int64
	Bidder   int64
	Price    int64
	DateTime time.Time
	Extra    string
}

// Kind tells which of Person, Auction and Bid an Event holds.
type Kind uint8

// The kinds of events.
const (
	KindPerson Kind = iota + 1
	KindAuction
	KindBid
)

// Event is one Nexmark event. Bids, 46 of every 50 events, are held inline so that the
// common case allocates nothing; persons and auctions are pointers so that an Event stays
// small (the engine copies it through every operator).
type Event struct {
	Kind    Kind
	Bid     Bid
	Person  *Person
	Auction *Auction
}

// Time returns the event's time.
func (e Event) Time() time.Time {
	switch e.Kind {
	case KindPerson:
		return e.Person.DateTime
	case KindAuction:
		return e.Auction.DateTime
	}
	return e.Bid.DateTime
}
