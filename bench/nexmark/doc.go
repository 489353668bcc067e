// Package nexmark is the Nexmark benchmark for fleetstream: an in-memory generator of the
// standard auction events and the queries q0 (pass-through), q1 (currency conversion), q2
// (selection), q3 (local item suggestion), q5 (hot items), q7 (highest bid), q8 (monitor new
// users) and q11 (user sessions), written with the public API of packages stream, window and
// join as a user would write them, and run through the real engine. Command cmd/nexmark (make bench-nexmark) reports each query's throughput per
// core beside Flink 1.13's published figures.
//
// # Generator
//
// Generator follows the definitions of the nexmark/nexmark generator: of every 50 events 1
// is a person, 3 are auctions and 46 are bids; person and auction ids count up from 1000;
// bids go to a hot auction (the first of the last 100) half of the time and otherwise to one
// of the last 100 auctions or a few ids ahead; bidders and sellers are hot (3 in 4) or one
// of the last 1000 people; prices are 10^(6u) dollars in cents for a uniform u; categories
// are 10 to 14; event n happens n/Rate seconds after the base time, in milliseconds, in
// order. The random choices come from a seeded PCG, so a Config gives the same events on
// every run (Nexmark's Java generator is not seeded). String fields are slices of a random
// pool, with Nexmark's average event sizes (person 200, auction 500, bid 100 bytes).
//
// # Source, partitions and event times
//
// Source pushes the events into the pipeline's input with Input.TryPushBatch, all in one
// partition. The engine keeps window state per source partition, so one partition makes
// the windowed queries' results global, as Nexmark defines them; the events are in
// event-time order, so none is late (WithMaxOutOfOrderness 0).
//
// Event times start at a fixed instant in 2020 and advance 100 µs per event at the default
// rate, so a run of millions of events generated faster than real time covers more event
// time than wall time. Options turn the bound on event times ahead of the clock off
// (stream.WithMaxFutureEventTime(0)), so that the watermark follows the events whatever the
// run's length and rate.
//
// # Queries
//
// Q0, Q1 and Q2 are elementwise (Filter and Map, fused into one pass). Q5 counts bids per
// auction in sliding windows of 10 s every 2 s (window.Sliding and window.Count) and keeps
// each window's auctions with the highest count with a per-batch stream.Transform: a window
// fires for every key in one batch, so no state is needed across batches. Q7 keeps the bids
// at the highest price per tumbling window of 10 s with its own Aggregator. Q11 counts each
// bidder's bids per session with a gap of 10 s (window.Session). As the window package
// defines it, sliding windows that start before the first bid's 2 s pane are not emitted
// (Nexmark would emit the first four windows with part of their records).
// TestQueriesMatchBruteForce compares each query's whole result set with a brute-force
// computation over the same events.
//
// # Joins
//
// Q3 and Q8 join persons with auctions on the person's id (the auction's seller). Each
// routes both inputs through one repartition by person id (join.Interval, join.Window) over
// an Exchange passed in: Run uses streamtest's in-memory exchange of JoinPartitions
// partitions, where a deployment would pass kafka.NewExchange. With the Source's single
// ordered partition no record is late; a late record would fail the run.
//
// Nexmark's q3 is an unbounded join: it keeps every person for ever. Q3 is an interval
// join of each auction with its seller from SellerBounds before to SellerBounds after the
// auction's time: the generator picks a seller among the last 1000 persons or up to 10 ids
// ahead, so the seller's person event is at most 50,000 events before the auction and 500
// after it (5 s and 50 ms of event time at the default rate). Over that interval the rows
// are exactly the unbounded join's (TestQ3OverALongRun, over six times the bound; half the
// bound loses rows), while the state stays bounded by the interval. A person can come after
// its auction, so the interval must reach after it too. A bound that covers the whole run
// would give the same rows with Nexmark's unbounded state.
//
// Nexmark's q8 groups the persons and the sellers of auctions by tumbling window of 10 s
// and joins them, so it emits each person once per window. Q8 joins persons and auctions
// in windows of 10 s (join.Window: a row per person and auction) and counts the rows by
// person in the same tumbling windows (window.Aggregate) to keep one.
//
// # Measurement
//
// Run runs one query over a Config's events with a buffer of 100,000 records: a batch starts
// at once when the buffer is full, so the run goes as fast as the CPU, with the generator
// and the pipeline on two goroutines. The command measures the process's CPU time (getrusage)
// around each run and reports events per CPU-second as events/s/core. Flink's figures are
// events per CPU-second too, generator included: the Nexmark README's Throughput/Cores is
// the 100 million events over Cores * Time(s), the CPU its workers measured (q0: 8.45 cores
// on average for 76.3 s, 645 CPU-s, 155,020 events/s), not over the cluster's 8 slots.
package nexmark
