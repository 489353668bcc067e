// The decoder's benchmark on the fleet job's demo topic.

package telemetry_test

import (
	"errors"
	"hash/fnv"
	"runtime"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/internal/cputime"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

// BenchmarkDecoderDemo decodes what one partition of the demo topic holds
// (examples/replay -source porto,sim, as make demo writes it): the Porto
// sample replayed, then 500,000 events of a simulated fleet of 200 cabs with
// the replay's faults, malformed ones included, keyed by cab over 6
// partitions. One Decoder decodes the partition's events in turn with
// DecodeInto, as the fleet job's codec does. An even sample of 8,192 of them,
// in one block, keeps the data as large as a fetch, not the whole topic.
func BenchmarkDecoderDemo(b *testing.B) {
	values := demoPartition(b, 0, 8192)
	runtime.GC() // the rest of the topic's events, or their collection would count in cpu-ns/op
	total, bad := 0, 0
	for _, v := range values {
		total += len(v)
	}
	var d telemetry.Decoder
	var e telemetry.Event
	b.SetBytes(int64(total / len(values)))
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime()
	for b.Loop() {
		if err := d.DecodeInto(values[i], &e); err != nil {
			if !errors.Is(err, telemetry.ErrMalformed) && !errors.Is(err, telemetry.ErrInvalid) {
				b.Fatal(err)
			}
			bad++
		}
		if i++; i == len(values) {
			i = 0
		}
	}
	reportCPU(b, cpu0)
	sinkEvent = e
	if bad > b.N/100 {
		b.Fatalf("%d of %d events did not decode: not the demo's data", bad, b.N)
	}
}

// demoPartition returns n values, evenly spread, of the demo topic's
// partition p (of 6), which the producer picks by the FNV-1a hash of the
// key, as sarama's hash partitioner does.
func demoPartition(tb testing.TB, p, n int) [][]byte {
	tb.Helper()
	const partitions, simEvents = 6, 500_000
	var values [][]byte
	keep := func(m fleetsim.Message) {
		h := fnv.New32a()
		h.Write([]byte(m.Key))
		q := int(int32(h.Sum32()) % partitions)
		if q < 0 {
			q = -q
		}
		if q == p {
			values = append(values, m.Value)
		}
	}
	porto := portoEvents(tb)
	for m := range fleetsim.Replay(porto) {
		keep(m)
	}
	sim, err := fleetsim.New(fleetsim.Config{Seed: 1, Cabs: 200,
		StartTime: porto[len(porto)-1].Time.Add(time.Minute).Truncate(time.Minute),
		Faults:    fleetsim.Faults{Speeding: 0.002, HarshBraking: 0.002, GPSJump: 0.001, OutOfOrder: 0.01, Duplicate: 0.002, Malformed: 0.0005}})
	if err != nil {
		tb.Fatal(err)
	}
	for range simEvents {
		keep(sim.Next())
	}
	if len(values) < n {
		tb.Fatalf("partition %d holds %d events, fewer than %d", p, len(values), n)
	}
	// In one block, as a fetch holds them.
	out := make([][]byte, n)
	var block []byte
	for i := range out {
		block = append(block, values[i*len(values)/n]...)
	}
	for i := range out {
		v := values[i*len(values)/n]
		out[i], block = block[:len(v):len(v)], block[len(v):]
	}
	return out
}

// reportCPU reports the CPU time (user and system) the process used per
// operation since cpu0, as cpu-ns/op: on a machine that other processes
// share, it varies much less than the time per operation does.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time (user and system) this process has used (0 where the system
// does not tell).
func cpuTime() time.Duration {
	d, _ := cputime.Used()
	return d
}
