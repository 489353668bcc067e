// The query table and Run, which runs one query through a pipeline.

package nexmark

import (
	"context"
	"time"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// Query is one benchmark query.
type Query struct {
	// Name is the query's Nexmark name: "q0", "q1", ...
	Name string
	// Flink is Flink 1.13's published throughput for the query, in events per CPU-second
	// (Nexmark README's Throughput/Cores: 100 million events over the CPU-seconds measured).
	Flink float64
	// build builds the query on cfg's events and adds an output that counts its results.
	build func(events *stream.Stream[Event], cfg Config, results *int64) error
}

// Queries are the queries of the benchmark, in Nexmark's order.
var Queries = []Query{
	{Name: "q0", Flink: 155_000, build: func(ev *stream.Stream[Event], _ Config, n *int64) error { count(Q0(ev), n); return nil }},
	{Name: "q1", Flink: 158_000, build: func(ev *stream.Stream[Event], _ Config, n *int64) error { count(Q1(ev), n); return nil }},
	{Name: "q2", Flink: 175_000, build: func(ev *stream.Stream[Event], _ Config, n *int64) error { count(Q2(ev, Q2Modulus), n); return nil }},
	{Name: "q3", Flink: 152_000, build: func(ev *stream.Stream[Event], cfg Config, n *int64) error {
		before, after := SellerBounds(cfg)
		return countQuery(Q3(ev, streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[int64, join.Side[int64, Seller]]](JoinPartitions)), before, after))(n)
	}},
	{Name: "q5", Flink: 22_100, build: func(ev *stream.Stream[Event], _ Config, n *int64) error { return countQuery(Q5(ev))(n) }},
	{Name: "q7", Flink: 12_300, build: func(ev *stream.Stream[Event], _ Config, n *int64) error { return countQuery(Q7(ev))(n) }},
	{Name: "q8", Flink: 146_000, build: func(ev *stream.Stream[Event], _ Config, n *int64) error {
		return countQuery(Q8(ev, streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[int64, join.Side[string, struct{}]]](JoinPartitions))))(n)
	}},
	{Name: "q11", Flink: 39_700, build: func(ev *stream.Stream[Event], _ Config, n *int64) error { return countQuery(Q11(ev))(n) }},
}

// count adds an output that counts s's values into n (from the run loop's goroutine only).
func count[T any](s *stream.Stream[T], n *int64) {
	stream.ForEachBatch(s, func(_ context.Context, _ stream.BatchInfo, batch []T) error {
		*n += int64(len(batch))
		return nil
	})
}

func countQuery[T any](s *stream.Stream[T], err error) func(*int64) error {
	return func(n *int64) error {
		if err != nil {
			return err
		}
		count(s, n)
		return nil
	}
}

// JoinPartitions is the number of partitions of the in-memory exchange (a Kafka topic's
// partitions in production) through which q3 and q8 repartition their inputs by person id.
const JoinPartitions = 4

// Interval is the batch interval Run uses. It hardly matters: a batch starts at once when
// the source's buffer holds a batch worth of records or the input ended, so a run goes
// batch after batch at the speed of the CPU.
const Interval = 100 * time.Millisecond

// Options are the pipeline options Run starts from: a buffer of 100,000 records without a
// byte bound, and no bound on event times ahead of the clock (the generated times run ahead
// of the wall clock as fast as the engine goes; see Source).
func Options() []stream.Option {
	return []stream.Option{stream.WithBuffer(100_000, 0), stream.WithMaxFutureEventTime(0)}
}

// Run runs q over cfg's events through a pipeline built with Options and then opts, until
// the input ended and every window closed, and returns the number of results.
func Run(ctx context.Context, q Query, cfg Config, opts ...stream.Option) (results int64, err error) {
	p, err := stream.New(Interval, append(Options(), opts...)...)
	if err != nil {
		return 0, err
	}
	if err := q.build(stream.From[Event](p, NewSource(cfg)), cfg, &results); err != nil {
		return 0, err
	}
	if err := p.Run(ctx); err != nil {
		return 0, err
	}
	return results, nil
}
