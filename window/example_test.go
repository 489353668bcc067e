package window_test

import (
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

type ping struct {
	Cab   string
	Speed float64
}

func pingAt(hhmmss string, cab string, speed float64) stream.Record[ping] {
	t, err := time.Parse(time.TimeOnly, hhmmss)
	if err != nil {
		panic(err)
	}
	ts := time.Date(2026, 11, 25, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	return stream.Record[ping]{Value: ping{Cab: cab, Speed: speed}, EventTime: ts}
}

// Count the pings of each cab per minute. A ping that arrives more than the allowed
// out-of-orderness after its minute closed goes to the Late stream.
func ExampleAggregate_tumbling() {
	h := streamtest.New(nil, time.Second, stream.WithMaxOutOfOrderness(10*time.Second))
	q, pings := streamtest.NewQueue[ping](h)
	perMinute, err := window.Aggregate(pings,
		func(p ping) string { return p.Cab },
		func(p ping) ping { return p },
		window.Tumbling(time.Minute), window.Count[ping]())
	if err != nil {
		panic(err)
	}
	results, late := streamtest.Collect(perMinute.Results()), streamtest.Collect(perMinute.Late())

	q.Add(pingAt("10:00:05", "CAB-1", 30), pingAt("10:00:40", "CAB-2", 50), pingAt("10:01:02", "CAB-1", 35))
	q.Add(pingAt("10:00:55", "CAB-1", 31)) // out of order, within 10 s: still counted
	q.Add(pingAt("10:01:30", "CAB-2", 45)) // the watermark passes 10:01: the first minute closes
	q.Add(pingAt("10:00:58", "CAB-2", 52)) // too late
	q.End()
	h.RunUntilDone()

	for _, r := range results.Slice() {
		fmt.Printf("%s %s-%s %d\n", r.Key, r.Start.Format("15:04"), r.End.Format("15:04"), r.Value)
	}
	for _, l := range late.Slice() {
		fmt.Printf("late: %s at %s\n", l.Value.Cab, l.EventTime.Format(time.TimeOnly))
	}
	fmt.Println("late count:", perMinute.LateCount())
	// Output:
	// CAB-1 10:00-10:01 2
	// CAB-2 10:00-10:01 1
	// CAB-1 10:01-10:02 1
	// CAB-2 10:01-10:02 1
	// late: CAB-2 at 10:00:58
	// late count: 1
}

// Trips as sessions: a cab's pings less than five minutes apart belong to one session.
func ExampleAggregate_session() {
	h := streamtest.New(nil, time.Second, stream.WithMaxOutOfOrderness(time.Minute))
	q, pings := streamtest.NewQueue[ping](h)
	trips, err := window.Aggregate(pings,
		func(p ping) string { return p.Cab },
		func(p ping) float64 { return p.Speed },
		window.Session(5*time.Minute), window.Stats[float64]())
	if err != nil {
		panic(err)
	}
	results := streamtest.Collect(trips.Results())

	q.Add(pingAt("10:03:00", "CAB-1", 40), pingAt("10:00:00", "CAB-1", 20))
	q.Add(pingAt("10:06:00", "CAB-1", 60)) // extends the first trip
	q.Add(pingAt("10:20:00", "CAB-1", 10)) // a new trip: the first one closes
	q.End()
	h.RunUntilDone()

	for _, r := range results.Slice() {
		fmt.Printf("%s %s-%s pings=%d mean=%.0f max=%.0f\n", r.Key, r.Start.Format("15:04"), r.End.Format("15:04"),
			r.Value.Count, r.Value.Mean(), r.Value.Max)
	}
	// Output:
	// CAB-1 10:00-10:11 pings=3 mean=40 max=60
	// CAB-1 10:20-10:25 pings=1 mean=10 max=10
}

// A ten-minute average speed, updated every five minutes, with a partial result after every
// batch (EveryBatch) for live dashboards.
func ExampleAggregate_sliding() {
	h := streamtest.New(nil, time.Second, stream.WithMaxOutOfOrderness(time.Minute))
	q, pings := streamtest.NewQueue[ping](h)
	avg, err := window.Aggregate(pings,
		func(p ping) string { return p.Cab },
		func(p ping) float64 { return p.Speed },
		window.Sliding(10*time.Minute, 5*time.Minute), window.Mean[float64](),
		window.WithEmit(window.EveryBatch))
	if err != nil {
		panic(err)
	}
	results := streamtest.Collect(avg.Results())

	q.Add(pingAt("10:01:00", "CAB-1", 30), pingAt("10:06:00", "CAB-1", 50))
	q.Add(pingAt("10:12:00", "CAB-1", 70)) // the watermark passes 10:10: the first window closes
	q.End()
	h.RunUntilDone()

	for i, batch := range results.Batches() {
		for _, r := range batch {
			fmt.Printf("batch %d: %s-%s %.0f final=%v\n", i+1, r.Start.Format("15:04"), r.End.Format("15:04"), r.Value, r.Final)
		}
	}
	// Output:
	// batch 1: 10:00-10:10 40 final=false
	// batch 1: 10:05-10:15 50 final=false
	// batch 2: 10:00-10:10 40 final=true
	// batch 2: 10:05-10:15 60 final=false
	// batch 2: 10:10-10:20 70 final=false
	// batch 3: 10:05-10:15 60 final=true
	// batch 3: 10:10-10:20 70 final=true
}
