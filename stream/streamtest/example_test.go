package streamtest_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// Unit-test a transform without Kafka: queue batches of records with partitions and event
// times, run them with the manual clock, and check each output batch and the commits.
func Example() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[float64](h)
	perBatchMax := stream.ReduceByKey(stream.KeyBy(speeds, func(float64) string { return "max" }),
		func(a, b float64) float64 { return max(a, b) })
	out := streamtest.Collect(perBatchMax)

	at := streamtest.Epoch.Add(-time.Minute)
	q.Add(stream.Record[float64]{Value: 42, EventTime: at}, stream.Record[float64]{Value: 57, EventTime: at.Add(time.Second)})
	q.Add(stream.Record[float64]{Value: 31, EventTime: at.Add(2 * time.Second)})
	q.End()
	h.RunUntilDone()

	fmt.Println(out.Batches())
	fmt.Println("committed:", q.Committed(0))
	// Output:
	// [[{max 57}] [{max 31}] []]
	// committed: 3
}

// A failing output leaves the batch unacknowledged; the next step retries it.
func ExampleCollector_Fail() {
	h := streamtest.New(nil, time.Second)
	q, s := streamtest.NewQueue[int](h)
	out := streamtest.Collect(s)
	down := true
	out.Fail = func(stream.BatchInfo) error {
		if down {
			return errors.New("opensearch unavailable")
		}
		return nil
	}
	q.AddValues(1, 2)
	_, err := h.TryStep()
	fmt.Println("error:", err != nil, "committed:", q.Committed(0))
	down = false
	_, err = h.TryStep()
	fmt.Println("error:", err != nil, "committed:", q.Committed(0), "output:", out.Batches())
	// Output:
	// error: true committed: -1
	// error: false committed: 2 output: [[1 2]]
}
