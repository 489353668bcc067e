package join_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// sliceSource is a bounded source: Run pushes its records and ends the input.
type sliceSource[T any] struct {
	recs  []stream.Record[T]
	parts int
}

func (s *sliceSource[T]) Run(ctx context.Context, in *stream.Input[T]) error {
	for p := range int32(s.parts) {
		in.Assign(p)
	}
	for _, r := range s.recs {
		if err := in.Push(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *sliceSource[T]) Commit(context.Context, []stream.Position) error { return nil }

// PartitionCount implements stream.PartitionCounter: the repartition's watermark waits for
// every partition.
func (s *sliceSource[T]) PartitionCount() int { return s.parts }

type order struct {
	ID    string
	Total float64
}

type payment struct {
	OrderID string
	Amount  float64
}

// Orders and payments come from two topics (here two bounded sources, of 2 and 1
// partitions); a payment belongs to an order when it comes within 15 minutes after it.
// Both go through one repartition (an in-memory exchange here, kafka.NewExchange in
// production), so every order meets its payments whatever partition they were in.
func ExampleInterval() {
	p, err := stream.New(time.Millisecond, stream.WithIdleTimeout(0))
	if err != nil {
		panic(err)
	}
	at := func(min int) time.Time { return time.Date(2026, 11, 25, 10, min, 0, 0, time.UTC) }
	orders := stream.From[order](p, &sliceSource[order]{parts: 2, recs: []stream.Record[order]{
		{Value: order{"o1", 30}, Partition: 0, Offset: 0, EventTime: at(0)},
		{Value: order{"o2", 12}, Partition: 1, Offset: 0, EventTime: at(5)},
		{Value: order{"o3", 8}, Partition: 0, Offset: 1, EventTime: at(10)},
	}})
	payments := stream.From[payment](p, &sliceSource[payment]{parts: 1, recs: []stream.Record[payment]{
		{Value: payment{"o1", 30}, Offset: 0, EventTime: at(3)},
		{Value: payment{"o2", 12}, Offset: 1, EventTime: at(40)}, // 35 minutes after o2
		{Value: payment{"o3", 8}, Offset: 2, EventTime: at(41)},  // 31 minutes after o3
	}})
	byOrder := stream.Map(orders, func(o order) stream.Pair[string, order] { return stream.KV(o.ID, o) })
	byPayment := stream.Map(payments, func(x payment) stream.Pair[string, payment] { return stream.KV(x.OrderID, x) })

	ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, join.Side[order, payment]]](2))
	paid, err := join.Interval(byOrder, byPayment, ex, 0, 15*time.Minute, join.WithKind(join.LeftOuter))
	if err != nil {
		panic(err)
	}
	var rows []string
	stream.ForEachBatch(paid.Joined(), func(_ context.Context, _ stream.BatchInfo, b []join.Joined[string, order, payment]) error {
		for _, j := range b {
			if j.Matched {
				rows = append(rows, fmt.Sprintf("%s paid %.2f at %s", j.Key, j.Right.Amount, j.RightTime.Format("15:04")))
			} else {
				rows = append(rows, fmt.Sprintf("%s unpaid", j.Key))
			}
		}
		return nil
	})
	if err := p.Run(context.Background()); err != nil {
		panic(err)
	}
	slices.Sort(rows)
	for _, r := range rows {
		fmt.Println(r)
	}
	// Output:
	// o1 paid 30.00 at 10:03
	// o2 unpaid
	// o3 unpaid
}
