package nexmark_test

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/bench/nexmark"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

func generate(cfg nexmark.Config) []nexmark.Event {
	var evs []nexmark.Event
	g := nexmark.NewGenerator(cfg)
	for e, ok := g.Next(); ok; e, ok = g.Next() {
		evs = append(evs, e)
	}
	return evs
}

func TestGeneratorMixIdsAndTimes(t *testing.T) {
	const n, rate = 5000, 1000
	evs := generate(nexmark.Config{Events: n, Rate: rate, Seed: 1})
	require.Len(t, evs, n)
	base := nexmark.DefaultBaseTime
	nextPerson, nextAuction := int64(1000), int64(1000)
	for i, e := range evs {
		// 1 person, 3 auctions, 46 bids in every 50 events, in that order.
		want := nexmark.KindBid
		switch i % 50 {
		case 0:
			want = nexmark.KindPerson
		case 1, 2, 3:
			want = nexmark.KindAuction
		}
		require.Equal(t, want, e.Kind, "event %d", i)
		// Event i happens i/rate seconds after the base time, to the millisecond.
		require.Equal(t, base.Add(time.Duration(i)*time.Second/rate).Truncate(time.Millisecond), e.Time(), "event %d", i)
		switch e.Kind {
		case nexmark.KindPerson:
			require.Equal(t, nextPerson, e.Person.ID)
			nextPerson++
		case nexmark.KindAuction:
			require.Equal(t, nextAuction, e.Auction.ID)
			nextAuction++
			require.GreaterOrEqual(t, e.Auction.Seller, int64(1000))
			require.Less(t, e.Auction.Seller, nextPerson+10)
			require.True(t, e.Auction.Category >= 10 && e.Auction.Category < 15)
			require.True(t, e.Auction.Expires.After(e.Auction.DateTime))
			require.Greater(t, e.Auction.Reserve, e.Auction.InitialBid)
		case nexmark.KindBid:
			// Bids are on existing auctions (or a few ids ahead) by existing people.
			require.GreaterOrEqual(t, e.Bid.Auction, int64(1000))
			require.Less(t, e.Bid.Auction, nextAuction+10)
			require.GreaterOrEqual(t, e.Bid.Bidder, int64(1000))
			require.Less(t, e.Bid.Bidder, nextPerson+10)
			require.True(t, e.Bid.Price >= 100 && e.Bid.Price <= 100_000_000, "price %d", e.Bid.Price)
		}
	}
	require.Equal(t, int64(1000+n/50), nextPerson)
	require.Equal(t, int64(1000+3*n/50), nextAuction)
}

func TestGeneratorIsDeterministicForASeed(t *testing.T) {
	a := generate(nexmark.Config{Events: 2000, Seed: 7})
	b := generate(nexmark.Config{Events: 2000, Seed: 7})
	c := generate(nexmark.Config{Events: 2000, Seed: 8})
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
}

func bidsOf(evs []nexmark.Event) []nexmark.Bid {
	var bids []nexmark.Bid
	for _, e := range evs {
		if e.Kind == nexmark.KindBid {
			bids = append(bids, e.Bid)
		}
	}
	return bids
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// The brute-force results of each query.

func wantQ1(bids []nexmark.Bid) []nexmark.EuroBid {
	var out []nexmark.EuroBid
	for _, b := range bids {
		out = append(out, nexmark.EuroBid{Auction: b.Auction, Bidder: b.Bidder, Price: 0.908 * float64(b.Price), DateTime: b.DateTime, Extra: b.Extra})
	}
	return out
}

func wantQ2(bids []nexmark.Bid) []nexmark.AuctionPrice {
	var out []nexmark.AuctionPrice
	for _, b := range bids {
		if b.Auction%123 == 0 {
			out = append(out, nexmark.AuctionPrice{Auction: b.Auction, Price: b.Price})
		}
	}
	return out
}

// wantQ5 counts every bid in every 10 s window (starting every 2 s) that holds it, from the
// window that starts at the first bid's 2 s pane on (the window package does not emit the
// windows that start before a partition's first pane), and keeps each window's auctions
// with the most bids.
func wantQ5(bids []nexmark.Bid) []nexmark.HotItem {
	size, slide := int64(10*time.Second), int64(2*time.Second)
	first := bids[0].DateTime.UnixNano() / slide * slide
	type wk struct{ start, auction int64 }
	counts := map[wk]int64{}
	for _, b := range bids {
		t := b.DateTime.UnixNano()
		for s := t / slide * slide; s > t-size; s -= slide {
			if s >= first {
				counts[wk{s, b.Auction}]++
			}
		}
	}
	top := map[int64]int64{}
	for k, n := range counts {
		top[k.start] = max(top[k.start], n)
	}
	var out []nexmark.HotItem
	for k, n := range counts {
		if n == top[k.start] {
			out = append(out, nexmark.HotItem{Start: utc(k.start), End: utc(k.start + size), Auction: k.auction, Bids: n})
		}
	}
	sortHot(out)
	return out
}

func sortHot(h []nexmark.HotItem) {
	slices.SortFunc(h, func(a, b nexmark.HotItem) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Auction, b.Auction))
	})
}

// wantQ7 keeps, per 10 s window, the bids at the window's highest price, in arrival order.
func wantQ7(bids []nexmark.Bid) []nexmark.WindowBid {
	size := int64(10 * time.Second)
	var starts []int64
	byStart := map[int64][]nexmark.Bid{}
	for _, b := range bids {
		s := b.DateTime.UnixNano() / size * size
		top := byStart[s]
		if top == nil {
			starts = append(starts, s)
		}
		switch {
		case len(top) == 0 || b.Price > top[0].Price:
			byStart[s] = []nexmark.Bid{b}
		case b.Price == top[0].Price:
			byStart[s] = append(top, b)
		}
	}
	var out []nexmark.WindowBid
	for _, s := range starts {
		for _, b := range byStart[s] {
			out = append(out, nexmark.WindowBid{Start: utc(s), End: utc(s + size), Bid: b})
		}
	}
	return out
}

// wantQ11 splits each bidder's bids where two are 10 s or more apart.
func wantQ11(bids []nexmark.Bid) []nexmark.BidderSession {
	gap := 10 * time.Second
	open := map[int64]*nexmark.BidderSession{}
	var out []nexmark.BidderSession
	for _, b := range bids {
		s := open[b.Bidder]
		if s != nil && !b.DateTime.Before(s.End) {
			out = append(out, *s)
			s = nil
		}
		if s == nil {
			s = &nexmark.BidderSession{Bidder: b.Bidder, Start: b.DateTime}
			open[b.Bidder] = s
		}
		s.Bids++
		s.End = b.DateTime.Add(gap)
	}
	for _, s := range open {
		out = append(out, *s)
	}
	sortSessions(out)
	return out
}

func sortSessions(s []nexmark.BidderSession) {
	slices.SortFunc(s, func(a, b nexmark.BidderSession) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Bidder, b.Bidder))
	})
}

// TestQueriesMatchBruteForce runs every query through the engine, with the in-memory source
// and small batches, and compares its whole result set with a brute-force computation over
// the same events.
func TestQueriesMatchBruteForce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    nexmark.Config
		buffer int
	}{
		// 200 events/s: 40 s of event time, so many windows and sessions.
		{"slow", nexmark.Config{Events: 8000, Rate: 200, Seed: 1}, 300},
		// 50 events/s from an instant off the window grid: 160 s, sessions split, and
		// sliding windows that start before the first bid's pane (not emitted).
		{"slower-unaligned-one-batch", nexmark.Config{Events: 8000, Rate: 50, Seed: 2, BaseTime: nexmark.DefaultBaseTime.Add(3700 * time.Millisecond)}, 100_000},
		{"default-rate", nexmark.Config{Events: 30_000, Seed: 3}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := stream.New(nexmark.Interval, append(nexmark.Options(), stream.WithBuffer(tc.buffer, 0))...)
			require.NoError(t, err)
			events := stream.From[nexmark.Event](p, nexmark.NewSource(tc.cfg))
			q0 := streamtest.Collect(nexmark.Q0(events))
			q1 := streamtest.Collect(nexmark.Q1(events))
			q2 := streamtest.Collect(nexmark.Q2(events, nexmark.Q2Modulus))
			s5, err := nexmark.Q5(events)
			require.NoError(t, err)
			q5 := streamtest.Collect(s5)
			s7, err := nexmark.Q7(events)
			require.NoError(t, err)
			q7 := streamtest.Collect(s7)
			s11, err := nexmark.Q11(events)
			require.NoError(t, err)
			q11 := streamtest.Collect(s11)
			require.NoError(t, p.Run(t.Context()))

			bids := bidsOf(generate(tc.cfg))
			require.Equal(t, bids, q0.Slice(), "q0")
			require.Equal(t, wantQ1(bids), q1.Slice(), "q1")
			want2 := wantQ2(bids)
			require.NotEmpty(t, want2)
			require.Equal(t, want2, q2.Slice(), "q2")
			got5 := q5.Slice()
			sortHot(got5)
			require.Equal(t, wantQ5(bids), got5, "q5")
			require.Equal(t, wantQ7(bids), q7.Slice(), "q7")
			got11 := q11.Slice()
			sortSessions(got11)
			require.Equal(t, wantQ11(bids), got11, "q11")
		})
	}
}

// TestRunCountsResults runs the benchmark's query table through Run.
func TestRunCountsResults(t *testing.T) {
	cfg := nexmark.Config{Events: 5000, Rate: 200, Seed: 4}
	bids := bidsOf(generate(cfg))
	want := map[string]int{
		"q0": len(bids), "q1": len(bids), "q2": len(wantQ2(bids)),
		"q5": len(wantQ5(bids)), "q7": len(wantQ7(bids)), "q11": len(wantQ11(bids)),
	}
	require.Len(t, nexmark.Queries, len(want))
	for _, q := range nexmark.Queries {
		t.Run(q.Name, func(t *testing.T) {
			n, err := nexmark.Run(t.Context(), q, cfg, stream.WithBuffer(500, 0))
			require.NoError(t, err)
			require.Equal(t, int64(want[q.Name]), n)
		})
	}
}
