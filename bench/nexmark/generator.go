// The generator: Nexmark's event mix, ids, prices, categories and event times.

package nexmark

import (
	"math"
	"math/rand/v2"
	"time"
)

// The generator's constants, as in the Nexmark generator (nexmark/nexmark, GeneratorConfig
// and NexmarkConfiguration defaults).
const (
	// Of every 50 events, 1 is a person, 3 are auctions and 46 are bids.
	personProportion  = 1
	auctionProportion = 3
	bidProportion     = 46
	totalProportion   = personProportion + auctionProportion + bidProportion

	firstPersonID   = 1000
	firstAuctionID  = 1000
	firstCategoryID = 10
	numCategories   = 5

	numActivePeople     = 1000
	numInFlightAuctions = 100
	personIDLead        = 10 // person ids a little ahead of the last one may be chosen
	auctionIDLead       = 10

	// A bid is for a hot auction with probability 1-1/hotAuctionRatio, by a hot bidder with
	// 1-1/hotBiddersRatio, and an auction is by a hot seller with 1-1/hotSellersRatio; the
	// hot one is the first (for bidders the second) of the last hotBatch ids.
	hotAuctionRatio = 2
	hotBiddersRatio = 4
	hotSellersRatio = 4
	hotBatch        = 100

	avgPersonBytes  = 200
	avgAuctionBytes = 500
	avgBidBytes     = 100

	// DefaultRate is Nexmark's default first event rate, in events per second of event time.
	DefaultRate = 10_000
)

// DefaultBaseTime is the event time of the first event unless Config.BaseTime says otherwise:
// a fixed instant, so a seed gives the same events on every run.
var DefaultBaseTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Config says which events a Generator produces.
type Config struct {
	// Events is the number of events.
	Events int64
	// Rate is the number of events per second of event time (default DefaultRate): event n
	// happens at BaseTime + n/Rate seconds, truncated to the millisecond, as in Nexmark.
	Rate int
	// Seed seeds the random choices (auction, bidder, price, ...).
	Seed uint64
	// BaseTime is the first event's time (default DefaultBaseTime).
	BaseTime time.Time
}

func (c Config) withDefaults() Config {
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.BaseTime.IsZero() {
		c.BaseTime = DefaultBaseTime
	}
	return c
}

// Generator produces Nexmark events deterministically for a Config: event n is a person, an
// auction or a bid by n mod 50; ids, prices, categories and times follow the Nexmark
// generator's definitions (events are in event-time order: out-of-order group size 1).
//
// Strings (names, descriptions, the Extra padding that brings events to Nexmark's average
// sizes) are taken from a pool of random letters built once, so a bid allocates nothing.
type Generator struct {
	cfg     Config
	n       int64
	base    int64 // BaseTime in Unix ms
	delayUs float64
	rnd     *rand.Rand
	pool    string
}

// NewGenerator returns a generator of cfg's events.
func NewGenerator(cfg Config) *Generator {
	cfg = cfg.withDefaults()
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0x6e65786d61726b)) // "nexmark"
	pool := make([]byte, 1<<16)
	for i := range pool {
		pool[i] = byte('a' + rnd.IntN(26))
	}
	return &Generator{
		cfg:     cfg,
		base:    cfg.BaseTime.UnixMilli(),
		delayUs: 1e6 / float64(cfg.Rate),
		rnd:     rnd,
		pool:    string(pool),
	}
}

// Next returns the next event and true, or false once Config.Events were produced.
func (g *Generator) Next() (Event, bool) {
	if g.n >= g.cfg.Events {
		return Event{}, false
	}
	id := g.n
	g.n++
	ts := g.timestamp(id)
	switch rem := id % totalProportion; {
	case rem < personProportion:
		return Event{Kind: KindPerson, Person: g.person(id, ts)}, true
	case rem < personProportion+auctionProportion:
		return Event{Kind: KindAuction, Auction: g.auction(id, ts)}, true
	default:
		return Event{Kind: KindBid, Bid: g.bid(id, ts)}, true
	}
}

// timestamp returns event n's time in Unix ms: the base time plus n inter-event delays.
func (g *Generator) timestamp(n int64) int64 {
	return g.base + int64(float64(n)*g.delayUs)/1000
}

func millis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// lastPerson is the newest person id (base 0) at event n: the person of n's group of 50.
func lastPerson(n int64) int64 {
	epoch, off := n/totalProportion, n%totalProportion
	if off >= personProportion {
		off = personProportion - 1
	}
	return epoch*personProportion + off
}

// lastAuction is the newest auction id (base 0) at event n, n's own if n is an auction.
func lastAuction(n int64) int64 {
	epoch, off := n/totalProportion, n%totalProportion
	switch {
	case off < personProportion:
		epoch--
		off = auctionProportion - 1
	case off >= personProportion+auctionProportion:
		off = auctionProportion - 1
	default:
		off -= personProportion
	}
	return epoch*auctionProportion + off
}

// randomPerson is one of the active people or a few ids ahead (base 0).
func (g *Generator) randomPerson(n int64) int64 {
	people := lastPerson(n) + 1
	active := min(people, numActivePeople)
	return people - active + g.rnd.Int64N(active+personIDLead)
}

// randomAuction is one of the auctions likely in flight or a few ids ahead (base 0).
func (g *Generator) randomAuction(n int64) int64 {
	hi := lastAuction(n)
	lo := max(hi-numInFlightAuctions, 0)
	return lo + g.rnd.Int64N(hi-lo+1+auctionIDLead)
}

// price is 10^(6u) dollars' cents for a uniform u: from 1 dollar to a million.
func (g *Generator) price() int64 {
	return int64(math.Round(math.Pow(10, g.rnd.Float64()*6) * 100))
}

// str returns a random string of length 1..maxLen from the pool.
func (g *Generator) str(maxLen int) string {
	return g.exact(1 + g.rnd.IntN(maxLen))
}

func (g *Generator) exact(n int) string {
	off := g.rnd.IntN(len(g.pool) - n)
	return g.pool[off : off+n]
}

// extra pads an event of size bytes to about avg bytes (avg ± 20%), as Nexmark does.
func (g *Generator) extra(size, avg int) string {
	if size > avg {
		return ""
	}
	want := avg - size
	delta := int(math.Round(float64(want) * 0.2))
	n := want - delta
	if delta > 0 {
		n += g.rnd.IntN(2 * delta)
	}
	return g.exact(n)
}

var (
	firstNames = []string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = []string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	usStates   = []string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = []string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
)

func (g *Generator) person(n, ts int64) *Person {
	p := &Person{
		ID:           lastPerson(n) + firstPersonID,
		Name:         firstNames[g.rnd.IntN(len(firstNames))] + " " + lastNames[g.rnd.IntN(len(lastNames))],
		EmailAddress: g.str(7) + "@" + g.str(5) + ".com",
		City:         usCities[g.rnd.IntN(len(usCities))],
		State:        usStates[g.rnd.IntN(len(usStates))],
		DateTime:     millis(ts),
	}
	cc := make([]byte, 0, 19)
	for i := range 4 {
		if i > 0 {
			cc = append(cc, ' ')
		}
		d := g.rnd.IntN(10000)
		for m := 1000; m > 0; m /= 10 {
			cc = append(cc, byte('0'+d/m%10))
		}
	}
	p.CreditCard = string(cc)
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = g.extra(size, avgPersonBytes)
	return p
}

func (g *Generator) auction(n, ts int64) *Auction {
	a := &Auction{ID: lastAuction(n) + firstAuctionID, DateTime: millis(ts)}
	if g.rnd.IntN(hotSellersRatio) > 0 {
		a.Seller = lastPerson(n) / hotBatch * hotBatch
	} else {
		a.Seller = g.randomPerson(n)
	}
	a.Seller += firstPersonID
	a.Category = firstCategoryID + int64(g.rnd.IntN(numCategories))
	a.InitialBid = g.price()
	// An auction lasts on average until numInFlightAuctions more auctions were created.
	horizon := g.timestamp(n+numInFlightAuctions*totalProportion/auctionProportion) - ts
	a.Expires = millis(ts + 1 + g.rnd.Int64N(max(2*horizon, 1)))
	a.ItemName = g.str(20)
	a.Description = g.str(100)
	a.Reserve = a.InitialBid + g.price()
	a.Extra = g.extra(8+len(a.ItemName)+len(a.Description)+5*8, avgAuctionBytes)
	return a
}

func (g *Generator) bid(n, ts int64) Bid {
	var b Bid
	if g.rnd.IntN(hotAuctionRatio) > 0 {
		b.Auction = lastAuction(n) / hotBatch * hotBatch
	} else {
		b.Auction = g.randomAuction(n)
	}
	b.Auction += firstAuctionID
	if g.rnd.IntN(hotBiddersRatio) > 0 {
		b.Bidder = lastPerson(n)/hotBatch*hotBatch + 1 // not the hot seller
	} else {
		b.Bidder = g.randomPerson(n)
	}
	b.Bidder += firstPersonID
	b.Price = g.price()
	b.DateTime = millis(ts)
	b.Extra = g.extra(4*8, avgBidBytes)
	return b
}

// size is the event's approximate size in bytes, for the source buffer's byte bound.
func size(e *Event) int {
	switch e.Kind {
	case KindPerson:
		return avgPersonBytes
	case KindAuction:
		return avgAuctionBytes
	}
	return 4*8 + len(e.Bid.Extra)
}
