package stream_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// The engine's delivery invariant (package documentation, "Delivery"): after a crash at any
// batch, and a second crash during the replay, a run resumed from the committed positions
// with their checkpoints writes, document by document (a later write of the same id
// overwrites, as the sinks' deterministic ids do), exactly the results of an uninterrupted
// run and of a brute-force oracle. The graph chains two stateful operators as the fleet job
// does (a tracker under zone demand): lastOfKey annotates each record with the previous value
// of its key in its partition, and an event-time window sums those deltas per key.

// keyDelta is a record annotated with the previous value of its key in its partition.
type keyDelta struct {
	Key   string
	Delta int64
}

type keyed struct {
	Key string
	V   int64
}

// lastOfKey keeps the last value and offset of every key of every partition. Replaying from
// the oldest of those offsets rebuilds its state exactly (what Retained promises); its output
// for records before its own start may differ on a replay (the Operator contract).
type lastOfKey struct {
	parts map[int32]map[string][2]int64 // key -> {value, offset}
}

func (l *lastOfKey) Process(pc *stream.PartitionContext, in []stream.Elem[keyed], out []stream.Elem[keyDelta]) []stream.Elem[keyDelta] {
	m := l.parts[pc.Partition]
	if m == nil {
		m = map[string][2]int64{}
		l.parts[pc.Partition] = m
	}
	for _, e := range in {
		prev := m[e.Value.Key]
		m[e.Value.Key] = [2]int64{e.Value.V, e.Offset}
		out = append(out, stream.Elem[keyDelta]{Value: keyDelta{e.Value.Key, e.Value.V - prev[0]}, Time: e.Time, Offset: e.Offset})
	}
	return out
}

func (l *lastOfKey) Retained(part int32) (int64, bool) {
	m, ok := l.parts[part]
	if !ok || len(m) == 0 {
		return 0, false
	}
	first := true
	var off int64
	for _, vo := range m {
		if first || vo[1] < off {
			off, first = vo[1], false
		}
	}
	return off, true
}
func (l *lastOfKey) Drop(part int32) { delete(l.parts, part) }
func (l *lastOfKey) StateSize() int {
	n := 0
	for _, m := range l.parts {
		n += len(m)
	}
	return n
}

// crashRun is one run of the graph over a queue.
type crashRun struct {
	h    *streamtest.Harness
	q    *streamtest.Queue[keyed]
	docs []*streamtest.Collector[window.Result[string, int64]]
	late []*streamtest.Collector[window.Late[keyDelta]]
}

// newCrashRun builds the graph; with side, lastOfKey's deltas of keys "b" and "d" go to a
// side output (routeKeys), and a window of their own sums them.
func newCrashRun(t *testing.T, side bool) *crashRun {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, src := streamtest.NewQueue[keyed](h)
	r := &crashRun{h: h, q: q}
	sum := func(d *stream.Stream[keyDelta], name string) {
		sums, err := window.Aggregate(d, func(x keyDelta) string { return x.Key }, func(x keyDelta) int64 { return x.Delta },
			window.Tumbling(10*time.Second), window.Sum[int64](), window.WithName(name))
		require.NoError(t, err)
		r.docs = append(r.docs, streamtest.Collect(sums.Results().Filter(func(r window.Result[string, int64]) bool { return r.Final })))
		r.late = append(r.late, streamtest.Collect(sums.Late()))
	}
	last := &lastOfKey{parts: map[int32]map[string][2]int64{}}
	if !side {
		sum(stream.Apply(src, "lastOfKey", stream.Operator[keyed, keyDelta](last)), "sums")
		return r
	}
	route := &routeKeys{last: last}
	d := stream.Apply(src, "lastOfKey", stream.Operator[keyed, keyDelta](route))
	route.side = stream.NewSideOutput[keyDelta](d, "side-keys")
	sum(d, "sums")
	sum(route.side.Stream(), "side-sums")
	require.NoError(t, d.Pipeline().Err())
	return r
}

// routeKeys is lastOfKey with the deltas of keys "b" and "d" emitted to a side output.
type routeKeys struct {
	last *lastOfKey
	side *stream.SideOutput[keyDelta]
	all  []stream.Elem[keyDelta]
}

func (o *routeKeys) Process(pc *stream.PartitionContext, in []stream.Elem[keyed], out []stream.Elem[keyDelta]) []stream.Elem[keyDelta] {
	o.all = o.last.Process(pc, in, o.all[:0])
	for _, e := range o.all {
		if e.Value.Key == "b" || e.Value.Key == "d" {
			o.side.Emit(e)
		} else {
			out = append(out, e)
		}
	}
	return out
}

func (o *routeKeys) Retained(part int32) (int64, bool) { return o.last.Retained(part) }
func (o *routeKeys) Drop(part int32)                   { o.last.Drop(part) }
func (o *routeKeys) StateSize() int                    { return o.last.StateSize() }

// feed queues the batches from the committed positions pos on (everything for a partition
// without one) and runs n batches, or to the end of the input if n < 0.
func (r *crashRun) feed(batches [][]stream.Record[keyed], pos []stream.Position, n int) {
	from := map[int32]int64{}
	r.q.Resume(pos...)
	for _, p := range pos {
		from[p.Partition] = p.Offset
	}
	for _, b := range batches {
		var rest []stream.Record[keyed]
		for _, rec := range b {
			if rec.Offset >= from[rec.Partition] {
				rest = append(rest, rec)
			}
		}
		if len(rest) > 0 {
			r.q.Add(rest...)
		}
	}
	if n < 0 {
		r.q.End()
		r.h.RunUntilDone()
		return
	}
	r.h.Run(n)
}

func (r *crashRun) committed(parts int) []stream.Position {
	var pos []stream.Position
	for p := range int32(parts) {
		if cp, ok := r.q.CommittedPosition(p); ok {
			pos = append(pos, cp)
		}
	}
	return pos
}

// written adds the run's documents to docs, later writes overwriting.
func (r *crashRun) written(docs map[string]int64) {
	for _, c := range r.docs {
		for _, d := range c.Slice() {
			docs[fmt.Sprintf("%d/%s/%d", d.Partition, d.Key, d.Start.Unix())] = d.Value
		}
	}
}

// lateCount returns how many records the run's windows found late.
func (r *crashRun) lateCount() int {
	n := 0
	for _, c := range r.late {
		n += len(c.Slice())
	}
	return n
}

// crashInput draws a random input: per partition, event times that only move forward, a few
// keys, values that make every keyDelta count; cut into batches of random sizes.
func crashInput(rng *rand.Rand) (batches [][]stream.Record[keyed], parts int, oracle map[string]int64) {
	parts = 1 + rng.IntN(3)
	n := 100 + rng.IntN(300)
	keys := []string{"a", "b", "c", "d"}[:2+rng.IntN(3)]
	t := make([]time.Time, parts)
	off := make([]int64, parts)
	last := make([]map[string]int64, parts)
	for p := range parts {
		t[p] = streamtest.Epoch.Add(time.Duration(rng.IntN(20)) * time.Second)
		last[p] = map[string]int64{}
	}
	oracle = map[string]int64{}
	var all []stream.Record[keyed]
	for range n {
		p := rng.IntN(parts)
		t[p] = t[p].Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		k := keys[rng.IntN(len(keys))]
		v := rng.Int64N(1000)
		all = append(all, stream.Record[keyed]{Value: keyed{k, v}, Partition: int32(p), Offset: off[p], EventTime: t[p]})
		off[p]++
		start := t[p].Truncate(10 * time.Second)
		oracle[fmt.Sprintf("%d/%s/%d", p, k, start.Unix())] += v - last[p][k]
		last[p][k] = v
	}
	for len(all) > 0 {
		m := min(len(all), 1+rng.IntN(30))
		batches = append(batches, all[:m])
		all = all[m:]
	}
	return batches, parts, oracle
}

func TestCrashReplaySweep(t *testing.T) { crashReplaySweep(t, false) }

// The same sweep with half the keys through a side output and a window of their own: a
// stateful reader of a side output resumes as a reader of the operator does (SideOutput).
func TestSideOutputCrashReplaySweep(t *testing.T) { crashReplaySweep(t, true) }

func crashReplaySweep(t *testing.T, side bool) {
	seeds := uint64(12)
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 11))
		batches, parts, oracle := crashInput(rng)

		full := newCrashRun(t, side)
		full.feed(batches, nil, -1)
		require.Zero(t, full.lateCount(), "seed %d: the oracle assumes no late record", seed)
		want := map[string]int64{}
		full.written(want)
		require.Equal(t, oracle, want, "seed %d: an uninterrupted run differs from the oracle", seed)

		for crash := 1; crash <= len(batches); crash++ {
			got := map[string]int64{}
			first := newCrashRun(t, side)
			first.feed(batches, nil, crash)
			first.written(got)
			pos := first.committed(parts)

			second := newCrashRun(t, side)
			if crash%3 == 0 { // a second crash during the replay
				second.feed(batches, pos, 1+rng.IntN(4))
				second.written(got)
				pos2 := second.committed(parts)
				second = newCrashRun(t, side)
				second.feed(batches, pos2, -1)
			} else {
				second.feed(batches, pos, -1)
			}
			second.written(got)
			if !maps.Equal(want, got) {
				for id, v := range want {
					if got[id] != v {
						t.Fatalf("seed %d, crash after batch %d of %d: document %s = %d, want %d (committed %v)", seed, crash, len(batches), id, got[id], v, pos)
					}
				}
				for id, v := range got {
					if _, ok := want[id]; !ok {
						t.Fatalf("seed %d, crash after batch %d: extra document %s = %d", seed, crash, id, v)
					}
				}
			}
		}
	}
}
