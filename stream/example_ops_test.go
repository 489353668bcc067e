package stream_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// Map converts every value: here GPS speeds from m/s to km/h.
func ExampleMap() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[float64](h)
	kmh := stream.Map(speeds, func(ms float64) int { return int(ms * 3.6) })
	out := streamtest.Collect(kmh)

	q.AddValues(10, 25)
	q.AddValues(30)
	h.Run(2)
	fmt.Println(out.Batches())
	// Output: [[36 90] [108]]
}

// Filter keeps the values for which its function returns true: here speeds over the limit.
func ExampleStream_Filter() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[int](h)
	speeding := speeds.Filter(func(kmh int) bool { return kmh > 50 })
	out := streamtest.Collect(speeding)

	q.AddValues(42, 61, 48, 77)
	q.AddValues(30)
	h.Run(2)
	fmt.Println(out.Batches())
	// Output: [[61 77] []]
}

// FlatMap turns each value into zero or more: here a trip's route into its zones.
func ExampleFlatMap() {
	h := streamtest.New(nil, time.Second)
	q, routes := streamtest.NewQueue[string](h)
	zones := stream.FlatMap(routes, func(route string, emit func(string)) {
		for z := range strings.SplitSeq(route, ">") {
			emit(z)
		}
	})
	out := streamtest.Collect(zones)

	q.AddValues("Z1>Z2>Z3", "Z4")
	h.Run(1)
	fmt.Println(out.Batches())
	// Output: [[Z1 Z2 Z3 Z4]]
}

// Transform sees a whole batch of a partition at once, like Spark's transform: here it keeps
// the two fastest speeds of each batch.
func ExampleTransform() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[int](h)
	top2 := stream.Transform(speeds, func(_ *stream.PartitionContext, in []int) []int {
		sorted := slices.Sorted(slices.Values(in))
		slices.Reverse(sorted)
		return sorted[:min(2, len(sorted))]
	})
	out := streamtest.Collect(top2)

	q.AddValues(42, 88, 61, 95)
	q.AddValues(30)
	h.Run(2)
	fmt.Println(out.Batches())
	// Output: [[95 88] [30]]
}

// Union merges streams of the same pipeline batch by batch: the values of s first, then those
// of the others.
func ExampleStream_Union() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[int](h)
	slow := speeds.Filter(func(kmh int) bool { return kmh < 10 })
	fast := speeds.Filter(func(kmh int) bool { return kmh > 100 })
	alerts := slow.Union(fast)
	out := streamtest.Collect(alerts)

	q.AddValues(120, 5, 60, 130, 3)
	h.Run(1)
	fmt.Println(out.Batches())
	// Output: [[5 3 120 130]]
}

// KeyBy pairs every value with a key, making a keyed stream for ReduceByKey, joins and state.
func ExampleKeyBy() {
	type Telemetry struct {
		Cab string
		Kmh int
	}
	h := streamtest.New(nil, time.Second)
	q, events := streamtest.NewQueue[Telemetry](h)
	byCab := stream.KeyBy(events, func(t Telemetry) string { return t.Cab })
	out := streamtest.Collect(byCab)

	q.AddValues(Telemetry{"CAB-1", 42}, Telemetry{"CAB-2", 57})
	h.Run(1)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 {CAB-1 42}} {CAB-2 {CAB-2 57}}]]
}

// MapValues changes the values of a keyed stream and keeps the keys.
func ExampleMapValues() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[stream.Pair[string, float64]](h)
	kmh := stream.MapValues(speeds, func(ms float64) int { return int(ms * 3.6) })
	out := streamtest.Collect(kmh)

	q.AddValues(stream.KV("CAB-1", 10.0), stream.KV("CAB-2", 25.0))
	h.Run(1)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 36} {CAB-2 90}]]
}

// ReduceByKey merges the values of each key within a batch: here each cab's top speed per
// batch. Keys come out in order of first appearance; nothing carries over to the next batch.
func ExampleReduceByKey() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[stream.Pair[string, int]](h)
	top := stream.ReduceByKey(speeds, func(a, b int) int { return max(a, b) })
	out := streamtest.Collect(top)

	q.AddValues(stream.KV("CAB-2", 40), stream.KV("CAB-1", 55), stream.KV("CAB-2", 62))
	q.AddValues(stream.KV("CAB-1", 30))
	h.Run(2)
	fmt.Println(out.Batches())
	// Output: [[{CAB-2 62} {CAB-1 55}] [{CAB-1 30}]]
}

// Keyed operators work partition by partition: a key that arrives on two partitions of a batch
// gets one partial result per partition. Key the Kafka messages by cab to get whole results.
func ExampleReduceByKey_partitions() {
	h := streamtest.New(nil, time.Second)
	q, trips := streamtest.NewQueue[stream.Pair[string, int]](h)
	perCab := stream.ReduceByKey(trips, func(a, b int) int { return a + b })
	out := streamtest.Collect(perCab)

	q.Add(
		stream.Record[stream.Pair[string, int]]{Value: stream.KV("CAB-1", 1), Partition: 0},
		stream.Record[stream.Pair[string, int]]{Value: stream.KV("CAB-1", 1), Partition: 1},
		stream.Record[stream.Pair[string, int]]{Value: stream.KV("CAB-1", 1), Partition: 0},
	)
	h.Run(1)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 2} {CAB-1 1}]]
}

// GroupByKey gathers the values of each key within a batch, in arrival order.
func ExampleGroupByKey() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[stream.Pair[string, int]](h)
	grouped := stream.GroupByKey(speeds)
	out := streamtest.Collect(grouped)

	q.AddValues(stream.KV("CAB-1", 42), stream.KV("CAB-2", 57), stream.KV("CAB-1", 48))
	h.Run(1)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 [42 48]} {CAB-2 [57]}]]
}

// CountByValue counts each distinct value within a batch: here ride requests per zone.
func ExampleCountByValue() {
	h := streamtest.New(nil, time.Second)
	q, zones := streamtest.NewQueue[string](h)
	counts := stream.CountByValue(zones)
	out := streamtest.Collect(counts)

	q.AddValues("airport", "centre", "airport")
	q.AddValues("centre")
	h.Run(2)
	fmt.Println(out.Batches())
	// Output: [[{airport 2} {centre 1}] [{centre 1}]]
}

// Join pairs, within each batch, every left value of a key with every right value of the same
// key: here each cab's speed with the driver who logged in to it.
func ExampleJoin() {
	h := streamtest.New(nil, time.Second)
	q, events := streamtest.NewQueue[stream.Pair[string, string]](h)
	isLogin := func(p stream.Pair[string, string]) bool { return strings.HasPrefix(p.Value, "driver=") }
	logins := events.Filter(isLogin)
	speeds := events.Filter(func(p stream.Pair[string, string]) bool { return !isLogin(p) })
	out := streamtest.Collect(stream.Join(speeds, logins))

	q.AddValues(stream.KV("CAB-1", "driver=ana"), stream.KV("CAB-1", "kmh=42"), stream.KV("CAB-2", "kmh=57"))
	h.Run(1)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 {kmh=42 driver=ana true}}]]
}

// LeftJoin also keeps the left values without a match in the batch, with Matched false and
// the zero Right.
func ExampleLeftJoin() {
	h := streamtest.New(nil, time.Second)
	q, events := streamtest.NewQueue[stream.Pair[string, string]](h)
	isLogin := func(p stream.Pair[string, string]) bool { return strings.HasPrefix(p.Value, "driver=") }
	logins := events.Filter(isLogin)
	speeds := events.Filter(func(p stream.Pair[string, string]) bool { return !isLogin(p) })
	out := streamtest.Collect(stream.LeftJoin(speeds, logins))

	q.AddValues(stream.KV("CAB-1", "driver=ana"), stream.KV("CAB-1", "kmh=42"), stream.KV("CAB-2", "kmh=57"))
	h.Run(1)
	for _, p := range out.Last() {
		fmt.Printf("%s %s login=%q matched=%v\n", p.Key, p.Value.Left, p.Value.Right, p.Value.Matched)
	}
	// Output:
	// CAB-1 kmh=42 login="driver=ana" matched=true
	// CAB-2 kmh=57 login="" matched=false
}

// Window gathers the values of the last length of batches every slide: here a window of 3
// batches that slides by 2, so it has data only on batches 2, 4, ...
func ExampleWindow() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[int](h)
	w := stream.Window(speeds, 3*time.Second, 2*time.Second)
	out := streamtest.Collect(w)

	q.AddValues(1)
	q.AddValues(2)
	q.AddValues(3)
	q.AddValues(4)
	q.AddValues(5)
	q.AddValues(6)
	h.Run(6)
	fmt.Println(out.Batches())
	// Output: [[1 2] [2 3 4] [4 5 6]]
}

// ReduceByWindow reduces each window to one value: here the fleet's top speed over the last
// 2 seconds, every second.
func ExampleReduceByWindow() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[int](h)
	top := stream.ReduceByWindow(speeds, func(a, b int) int { return max(a, b) }, 2*time.Second, time.Second)
	out := streamtest.Collect(top)

	q.AddValues(42, 88)
	q.AddValues(61)
	q.AddValues(50)
	q.AddValues()
	q.AddValues()
	h.Run(5)
	fmt.Println(out.Batches())
	// Output: [[88] [88] [61] [50] []]
}

// ReduceByWindowInv computes each window from the previous one, adding what entered and
// removing with the inverse what left: here the total distance over the last 2 seconds.
func ExampleReduceByWindowInv() {
	h := streamtest.New(nil, time.Second)
	q, metres := streamtest.NewQueue[int](h)
	add := func(a, b int) int { return a + b }
	sub := func(a, b int) int { return a - b }
	total := stream.ReduceByWindowInv(metres, add, sub, 2*time.Second, time.Second)
	out := streamtest.Collect(total)

	q.AddValues(10, 20)
	q.AddValues(5)
	q.AddValues()
	q.AddValues()
	h.Run(4)
	fmt.Println(out.Batches())
	// Output: [[30] [35] [5] [0]]
}

// CountByWindow counts the values of each window; once values were seen, an empty window
// counts 0, as in Spark.
func ExampleCountByWindow() {
	h := streamtest.New(nil, time.Second)
	q, events := streamtest.NewQueue[string](h)
	n := stream.CountByWindow(events, 2*time.Second, time.Second)
	out := streamtest.Collect(n)

	q.AddValues()
	q.AddValues("CAB-1", "CAB-2")
	q.AddValues("CAB-1")
	q.AddValues()
	q.AddValues()
	h.Run(5)
	fmt.Println(out.Batches())
	// Output: [[] [2] [3] [1] [0]]
}

// ReduceByKeyAndWindow reduces the values of each key over each window: here each cab's
// distance over the last 2 seconds, every second. A key whose values all left the window is
// gone.
func ExampleReduceByKeyAndWindow() {
	h := streamtest.New(nil, time.Second)
	q, metres := streamtest.NewQueue[stream.Pair[string, int]](h)
	dist := stream.ReduceByKeyAndWindow(metres, func(a, b int) int { return a + b }, 2*time.Second, time.Second)
	out := streamtest.Collect(dist)

	q.AddValues(stream.KV("CAB-1", 10), stream.KV("CAB-2", 4))
	q.AddValues(stream.KV("CAB-1", 5))
	q.AddValues()
	h.Run(3)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 10} {CAB-2 4}] [{CAB-1 15} {CAB-2 4}] [{CAB-1 5}]]
}

// With an inverse function the window is computed incrementally; a key whose values all left
// stays with the value the inverse leaves (0 here) unless a filter drops it. The filter also
// removes the key from the state.
func ExampleReduceByKeyAndWindowInv_filter() {
	h := streamtest.New(nil, time.Second)
	q, metres := streamtest.NewQueue[stream.Pair[string, int]](h)
	add := func(a, b int) int { return a + b }
	sub := func(a, b int) int { return a - b }
	nonZero := func(p stream.Pair[string, int]) bool { return p.Value != 0 }
	kept := streamtest.Collect(stream.ReduceByKeyAndWindowInv(metres, add, sub, nil, 2*time.Second, time.Second))
	filtered := streamtest.Collect(stream.ReduceByKeyAndWindowInv(metres, add, sub, nonZero, 2*time.Second, time.Second))

	q.AddValues(stream.KV("CAB-1", 10), stream.KV("CAB-2", 4))
	q.AddValues(stream.KV("CAB-1", 5))
	q.AddValues()
	h.Run(3)
	fmt.Println("no filter:", kept.Batches())
	fmt.Println("filter:   ", filtered.Batches())
	// Output:
	// no filter: [[{CAB-1 10} {CAB-2 4}] [{CAB-1 15} {CAB-2 4}] [{CAB-1 5} {CAB-2 0}]]
	// filter:    [[{CAB-1 10} {CAB-2 4}] [{CAB-1 15} {CAB-2 4}] [{CAB-1 5}]]
}

// CountByValueAndWindow counts each distinct value over each window; values whose count fell
// to zero are left out.
func ExampleCountByValueAndWindow() {
	h := streamtest.New(nil, time.Second)
	q, zones := streamtest.NewQueue[string](h)
	counts := stream.CountByValueAndWindow(zones, 2*time.Second, time.Second)
	out := streamtest.Collect(counts)

	q.AddValues("airport", "centre", "airport")
	q.AddValues("airport")
	q.AddValues()
	h.Run(3)
	for _, b := range out.Batches() {
		slices.SortFunc(b, func(x, y stream.Pair[string, int64]) int { return cmp.Compare(x.Key, y.Key) })
		fmt.Println(b)
	}
	// Output:
	// [{airport 2} {centre 1}]
	// [{airport 3} {centre 1}]
	// [{airport 1}]
}

// GroupByKeyAndWindow gathers the values of each key over each window, in batch order: here
// each cab's recent speeds.
func ExampleGroupByKeyAndWindow() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[stream.Pair[string, int]](h)
	recent := stream.GroupByKeyAndWindow(speeds, 2*time.Second, time.Second)
	out := streamtest.Collect(recent)

	q.AddValues(stream.KV("CAB-1", 42), stream.KV("CAB-2", 57))
	q.AddValues(stream.KV("CAB-1", 48))
	q.AddValues(stream.KV("CAB-1", 51))
	h.Run(3)
	fmt.Println(out.Batches())
	// Output: [[{CAB-1 [42]} {CAB-2 [57]}] [{CAB-1 [42 48]} {CAB-2 [57]}] [{CAB-1 [48 51]}]]
}

// UpdateStateByKey keeps a state per key across batches: here each cab's odometer. update is
// called for every key with state or new values, and returns false to remove the state (a
// cab that went off duty). The stream carries every key's state after every batch.
func ExampleUpdateStateByKey() {
	h := streamtest.New(nil, time.Second)
	q, metres := streamtest.NewQueue[stream.Pair[string, int]](h)
	odometer := stream.UpdateStateByKey(metres, func(cab string, trips []int, total int, exists bool) (int, bool) {
		for _, m := range trips {
			if m < 0 { // off duty
				return 0, false
			}
			total += m
		}
		return total, true
	})
	out := streamtest.Collect(odometer)

	q.AddValues(stream.KV("CAB-1", 100), stream.KV("CAB-2", 40), stream.KV("CAB-1", 20))
	q.AddValues(stream.KV("CAB-2", 10))
	q.AddValues(stream.KV("CAB-1", -1))
	h.Run(3)
	for _, b := range out.Batches() {
		slices.SortFunc(b, func(x, y stream.Pair[string, int]) int { return cmp.Compare(x.Key, y.Key) })
		fmt.Println(b)
	}
	// Output:
	// [{CAB-1 120} {CAB-2 40}]
	// [{CAB-1 120} {CAB-2 50}]
	// [{CAB-2 50}]
}

// MapWithState calls its function for every record with the key's state and emits what it
// returns: here a speeding alert when a cab's speed rises over 100 km/h. With a timeout, a key
// idle for that long is called once more with ok false and its state is removed. The second
// stream has every key's state after every batch.
func ExampleMapWithState() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[stream.Pair[string, int]](h)
	alerts, snapshots := stream.MapWithState(speeds, func(cab string, kmh int, ok bool, st *stream.State[int]) (string, bool) {
		if !ok { // st.IsTimingOut(): the state is removed after this call
			last, _ := st.Get()
			return fmt.Sprintf("%s idle (last %d km/h)", cab, last), true
		}
		prev, _ := st.Get()
		st.Update(kmh)
		return fmt.Sprintf("%s speeding at %d km/h", cab, kmh), kmh > 100 && prev <= 100
	}, 2*time.Second)
	out := streamtest.Collect(alerts)
	states := streamtest.Collect(snapshots)

	q.AddValues(stream.KV("CAB-1", 90), stream.KV("CAB-2", 60), stream.KV("CAB-1", 110))
	q.AddValues(stream.KV("CAB-1", 120))
	q.AddValues(stream.KV("CAB-1", 80))
	h.Run(3)
	snaps := states.Batches()
	for i, b := range out.Batches() {
		slices.SortFunc(snaps[i], func(x, y stream.Pair[string, int]) int { return cmp.Compare(x.Key, y.Key) })
		fmt.Println("batch", i+1, b, "state:", snaps[i])
	}
	// Output:
	// batch 1 [CAB-1 speeding at 110 km/h] state: [{CAB-1 110} {CAB-2 60}]
	// batch 2 [] state: [{CAB-1 120} {CAB-2 60}]
	// batch 3 [CAB-2 idle (last 60 km/h)] state: [{CAB-1 80}]
}

// ForEachBatch sees a BatchInfo with every batch: its number, time and whether it is the last
// one after the input ended.
func ExampleForEachBatch_batchInfo() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[int](h)
	stream.ForEachBatch(speeds, func(_ context.Context, info stream.BatchInfo, batch []int) error {
		fmt.Println(info.Batch, info.Time.Format(time.TimeOnly), info.Final, batch)
		return nil
	})
	q.AddValues(42, 57)
	q.AddValues(61)
	q.End()
	h.RunUntilDone()
	// Output:
	// 1 00:00:01 false [42 57]
	// 2 00:00:02 false [61]
	// 3 00:00:03 true []
}

// To writes a stream to a Sink; SinkFunc adapts a function, and real sinks (OpenSearch,
// Kafka) write each batch durably and idempotently before returning.
func ExampleTo() {
	h := streamtest.New(nil, time.Second)
	q, speeds := streamtest.NewQueue[stream.Pair[string, int]](h)
	top := stream.ReduceByKey(speeds, func(a, b int) int { return max(a, b) })
	stream.To(top, stream.SinkFunc[stream.Pair[string, int]](func(_ context.Context, batch []stream.Pair[string, int]) error {
		for _, p := range batch {
			fmt.Printf("PUT /cabs/_doc/%s {\"top_kmh\": %d}\n", p.Key, p.Value)
		}
		return nil
	}))
	q.AddValues(stream.KV("CAB-1", 42), stream.KV("CAB-2", 57), stream.KV("CAB-1", 61))
	h.Run(1)
	fmt.Println("committed up to offset", q.Committed(0))
	// Output:
	// PUT /cabs/_doc/CAB-1 {"top_kmh": 61}
	// PUT /cabs/_doc/CAB-2 {"top_kmh": 57}
	// committed up to offset 3
}
