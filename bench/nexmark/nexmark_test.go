package nexmark_test

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/bench/nexmark"
	"github.com/fleetstream/fleetstream/join"
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

// wantQ3 is Nexmark's unbounded join: every auction of category 10 whose seller is a person
// of the run (before or after it) in OR, ID or CA.
func wantQ3(evs []nexmark.Event) []nexmark.LocalItem {
	sellers := map[int64]*nexmark.Person{}
	for _, e := range evs {
		if e.Kind == nexmark.KindPerson && slices.Contains([]string{"OR", "ID", "CA"}, e.Person.State) {
			sellers[e.Person.ID] = e.Person
		}
	}
	var out []nexmark.LocalItem
	for _, e := range evs {
		if e.Kind != nexmark.KindAuction || e.Auction.Category != 10 {
			continue
		}
		if p := sellers[e.Auction.Seller]; p != nil {
			out = append(out, nexmark.LocalItem{Name: p.Name, City: p.City, State: p.State, Auction: e.Auction.ID})
		}
	}
	sortItems(out)
	return out
}

func sortItems(it []nexmark.LocalItem) {
	slices.SortFunc(it, func(a, b nexmark.LocalItem) int { return cmp.Compare(a.Auction, b.Auction) })
}

// wantQ8 keeps the persons who opened an auction in the 10 s window of their registration.
func wantQ8(evs []nexmark.Event) []nexmark.NewUser {
	size := int64(10 * time.Second)
	type sw struct{ seller, start int64 }
	opened := map[sw]bool{}
	for _, e := range evs {
		if e.Kind == nexmark.KindAuction {
			opened[sw{e.Auction.Seller, e.Time().UnixNano() / size * size}] = true
		}
	}
	var out []nexmark.NewUser
	for _, e := range evs {
		if e.Kind != nexmark.KindPerson {
			continue
		}
		start := e.Time().UnixNano() / size * size
		if opened[sw{e.Person.ID, start}] {
			out = append(out, nexmark.NewUser{ID: e.Person.ID, Name: e.Person.Name, Start: utc(start)})
		}
	}
	sortUsers(out)
	return out
}

func sortUsers(u []nexmark.NewUser) {
	slices.SortFunc(u, func(a, b nexmark.NewUser) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ID, b.ID))
	})
}

// joinQueries adds q3 (with the generator's seller bounds) and q8 to a pipeline, each through
// its own in-memory exchange.
func joinQueries(t *testing.T, events *stream.Stream[nexmark.Event], cfg nexmark.Config) (q3 *streamtest.Collector[nexmark.LocalItem], q8 *streamtest.Collector[nexmark.NewUser]) {
	t.Helper()
	before, after := nexmark.SellerBounds(cfg)
	ex3 := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[int64, join.Side[int64, nexmark.Seller]]](nexmark.JoinPartitions))
	s3, err := nexmark.Q3(events, ex3, before, after)
	require.NoError(t, err)
	ex8 := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[int64, join.Side[string, struct{}]]](nexmark.JoinPartitions))
	s8, err := nexmark.Q8(events, ex8)
	require.NoError(t, err)
	return streamtest.Collect(s3), streamtest.Collect(s8)
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
			q3, q8 := joinQueries(t, events, tc.cfg)
			require.NoError(t, p.Run(t.Context()))

			evs := generate(tc.cfg)
			bids := bidsOf(evs)
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
			want3, got3 := wantQ3(evs), q3.Slice()
			require.NotEmpty(t, want3)
			sortItems(got3)
			require.Equal(t, want3, got3, "q3")
			want8, got8 := wantQ8(evs), q8.Slice()
			require.NotEmpty(t, want8)
			sortUsers(got8)
			require.Equal(t, want8, got8, "q8")
		})
	}
}

// TestRunCountsResults runs the benchmark's query table through Run.
func TestRunCountsResults(t *testing.T) {
	cfg := nexmark.Config{Events: 5000, Rate: 200, Seed: 4}
	evs := generate(cfg)
	bids := bidsOf(evs)
	want := map[string]int{
		"q3": len(wantQ3(evs)), "q8": len(wantQ8(evs)),
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

// TestSellerBounds checks the generator's guarantee that q3's interval rests on, over a run
// several times longer than the bound: every auction's seller (when the run has it) is a
// person at most SellerBounds before or after the auction; and the bounds are tight enough
// that the sellers come close to both.
func TestSellerBounds(t *testing.T) {
	for _, cfg := range []nexmark.Config{
		{Events: 300_000, Seed: 5},
		{Events: 300_000, Rate: 3_000, Seed: 6, BaseTime: nexmark.DefaultBaseTime.Add(777 * time.Millisecond)},
	} {
		before, after := nexmark.SellerBounds(cfg)
		evs := generate(cfg)
		at := map[int64]time.Time{}
		for _, e := range evs {
			if e.Kind == nexmark.KindPerson {
				at[e.Person.ID] = e.Time()
			}
		}
		var early, late time.Duration
		for _, e := range evs {
			if e.Kind != nexmark.KindAuction {
				continue
			}
			pt, ok := at[e.Auction.Seller]
			if !ok {
				continue // a seller id ahead of the run's last person
			}
			d := pt.Sub(e.Time())
			early, late = min(early, d), max(late, d)
		}
		require.GreaterOrEqual(t, early, -before, "rate %d", cfg.Rate)
		require.LessOrEqual(t, late, after, "rate %d", cfg.Rate)
		require.Less(t, -early, before, "rate %d", cfg.Rate)
		require.Greater(t, -early, before*9/10, "rate %d", cfg.Rate)
		require.Greater(t, late, after*8/10, "rate %d", cfg.Rate)
	}
}

// TestQ3OverALongRun runs q3 over 30 s of event time, six times its bound, so that the join
// drops persons and auctions as the watermark passes them, and compares it with the
// unbounded join; a bound of half the generator's loses rows.
func TestQ3OverALongRun(t *testing.T) {
	cfg := nexmark.Config{Events: 300_000, Seed: 9}
	before, after := nexmark.SellerBounds(cfg)
	run := func(before, after time.Duration) []nexmark.LocalItem {
		p, err := stream.New(nexmark.Interval, append(nexmark.Options(), stream.WithBuffer(20_000, 0))...)
		require.NoError(t, err)
		ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[int64, join.Side[int64, nexmark.Seller]]](nexmark.JoinPartitions))
		s, err := nexmark.Q3(stream.From[nexmark.Event](p, nexmark.NewSource(cfg)), ex, before, after)
		require.NoError(t, err)
		c := streamtest.Collect(s)
		require.NoError(t, p.Run(t.Context()))
		got := c.Slice()
		sortItems(got)
		return got
	}
	want := wantQ3(generate(cfg))
	require.Equal(t, want, run(before, after))
	require.Less(t, len(run(before/2, after)), len(want))
}
