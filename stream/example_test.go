package stream_test

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// A word count over a sliding processing-time window, unit-tested offline with streamtest:
// queue input batches, run them, and read each output batch.
func Example() {
	h := streamtest.New(nil, time.Second)
	q, lines := streamtest.NewQueue[string](h)
	counts := stream.CountByValueAndWindow(lines, 2*time.Second, time.Second)
	out := streamtest.Collect(counts)

	q.AddValues("cab", "zone", "cab")
	q.AddValues("zone")
	q.AddValues()
	h.Run(3)
	for i, b := range out.Batches() {
		fmt.Println("batch", i+1, b)
	}
	// Output:
	// batch 1 [{cab 2} {zone 1}]
	// batch 2 [{cab 2} {zone 2}]
	// batch 3 [{zone 1}]
}

// ForEachBatch is the output operation; a batch is acknowledged (and its offsets committed)
// only once every output returned nil.
func ExampleForEachBatch() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[float64](h)
	fast := speeds.Filter(func(kmh float64) bool { return kmh > 120 })
	stream.ForEachBatch(fast, func(_ context.Context, info stream.BatchInfo, batch []float64) error {
		fmt.Printf("batch %d: %v\n", info.Batch, batch)
		return nil
	})
	q.AddValues(80, 130, 150)
	q.AddValues(90)
	h.Run(2)
	fmt.Println("committed up to offset", q.Committed(0))
	// Output:
	// batch 1: [130 150]
	// batch 2: []
	// committed up to offset 4
}

// ReduceByKeyAndWindowInv keeps a key whose values all left the window, with the value the
// inverse function leaves, unless a filter drops it: Spark's semantics.
func ExampleReduceByKeyAndWindowInv() {
	h := streamtest.New(nil, time.Second)
	q, trips := streamtest.NewQueue[stream.Pair[string, int]](h)
	sum := func(a, b int) int { return a + b }
	sub := func(a, b int) int { return a - b }
	w := stream.ReduceByKeyAndWindowInv(trips, sum, sub, nil, 2*time.Second, time.Second)
	out := streamtest.Collect(w)
	q.AddValues(stream.KV("CAB-1", 3))
	q.AddValues(stream.KV("CAB-2", 1))
	q.AddValues()
	h.Run(3)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 3}] [{CAB-1 3} {CAB-2 1}] [{CAB-1 0} {CAB-2 1}]]
}
