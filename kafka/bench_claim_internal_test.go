package kafka

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/cputime"
	"github.com/fleetstream/fleetstream/stream"
)

// BenchmarkClaimTake measures a claim's own work on each fetched record (take: receive,
// the Source's counters, the copy into the codec's Message, the decode into the queue),
// without sarama and the pipeline: six claims of one Source on their own goroutines, as
// BenchmarkSource reads its six partitions on two cores. An op is a run of claimTakeRun
// records that sarama (here the goroutine itself) left in a claim's channel.
func BenchmarkClaimTake(b *testing.B) {
	const run = claimTakeRun
	p, err := stream.New(time.Second)
	require.NoError(b, err)
	codec := CodecFunc[int](func(m *Message) (int, time.Time, error) { return len(m.Value), time.Time{}, nil })
	bd := &binder{}
	stream.To(stream.From[int](p, bd), stream.SinkFunc[int](nil))
	s, err := NewSource(Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"in"}, Group: "g"}, Codec[int](codec))
	require.NoError(b, err)
	h := &handler[int]{s: s, in: bd.in, hold: 32 * run, holdBytes: 1 << 30}
	value := []byte(strings.Repeat("v", 200))
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var next atomic.Int32
	b.SetParallelism(3) // 6 goroutines on 2 cores
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		id := next.Add(1) - 1
		c := &claimLoop[int]{h: h, p: &partition{topic: "in", part: id, id: id, end: -1, marks: newMarks(0)}, codec: codec}
		fetched := make([]*sarama.ConsumerMessage, run)
		for i := range fetched {
			fetched[i] = &sarama.ConsumerMessage{Topic: "in", Partition: id, Offset: int64(i), Key: []byte("CAB-0042"), Value: value, Timestamp: ts}
		}
		msgs := make(chan *sarama.ConsumerMessage, run)
		for pb.Next() {
			for _, m := range fetched {
				msgs <- m
			}
			if !c.take(<-msgs, msgs) || len(c.queue) != run {
				b.Errorf("claim %d took %d records of %d", id, len(c.queue), run)
				return
			}
			clear(c.queue)
			c.queue, c.queued = c.qarr[:0], 0
		}
	})
	require.Equal(b, int64(b.N)*run, s.Stats().Records, "every record counted")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/run, "ns/record")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/run, "CPU-ns/record")
}

// claimTakeRun is the records a run of BenchmarkClaimTake finds fetched: a full channel.
const claimTakeRun = channelBuffer

// cpuTime returns the CPU time (user and system) this process has used so far: a benchmark's
// CPU per record is what the machine's other processes do not disturb as much as its speed.
func cpuTime() time.Duration {
	d, _ := cputime.Used()
	return d
}
