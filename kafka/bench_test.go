package kafka_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// The consume benchmark reads benchRecords records of about benchSize bytes from a
// benchParts-partition topic. kafka/bench.sh fills a topic once (TestFillBenchTopic, in benchfill_test.go), runs
// BenchmarkSource and Kafka's ConsumerPerformance on it, and compares them.
const (
	benchRecords = 1_000_000
	benchParts   = 6
	benchSize    = 200
	envBenchTop  = "FLEETSTREAM_BENCH_TOPIC"
)

func benchValue(i int) []byte {
	v := fmt.Sprintf(`{"cab_id":"CAB-%04d","trip_id":"T-%d","ts":"2026-11-25T10:00:00.123Z","lat":41.1579,"lon":-8.6291,"speed_kmh":42.5,"heading_deg":270,"status":"hired","engine_temp_c":90.1,"fuel_pct":55.0,"odometer_km":%d}`, i%500, i, i)
	for len(v) < benchSize {
		v += " "
	}
	return []byte(v)
}

func fillBenchTopic(tb testing.TB, brokers []string, topic string) {
	tb.Helper()
	createTopic(tb, brokers, topic, benchParts)
	produceBench(tb, brokers, topic)
}

func produceBench(tb testing.TB, brokers []string, topic string) {
	tb.Helper()
	cfg := saramaConfig()
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Return.Successes = false
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	require.NoError(tb, err)
	go func() {
		for err := range p.Errors() {
			tb.Errorf("produce: %v", err)
		}
	}()
	for i := range benchRecords {
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("CAB-" + strconv.Itoa(i%500)), Value: sarama.ByteEncoder(benchValue(i))}
	}
	require.NoError(tb, p.Close())
}

// vmHWM returns the peak resident set size of this process in bytes.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkSource consumes 1,000,000 records of ~200 bytes from a 6-partition topic through a
// bounded pipeline with a no-op sink (values are the raw bytes: no decoding, like
// ConsumerPerformance). It reports records/s and MB/s from Run to its end, including the
// group join, and the process's peak RSS.
func BenchmarkSource(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	topic := os.Getenv(envBenchTop)
	if topic == "" {
		topic = testenv.UniqueName(b, "bench")
		fillBenchTopic(b, brokers, topic)
	}
	codec := kafka.CodecFunc[[]byte](func(m *kafka.Message) ([]byte, time.Time, error) { return m.Value, time.Time{}, nil })
	var total time.Duration
	var recs, bytes int64
	b.ReportAllocs()
	cpu0 := kafka.CPUTime()
	for b.Loop() {
		src, n, took := runBoundedBench(b, consumerConfig(brokers, testenv.UniqueName(b, "g-bench"), topic), codec)
		total += took
		require.Equal(b, int64(benchRecords), n)
		st := src.Stats()
		recs += st.Records
		bytes += st.Bytes
	}
	sec := total.Seconds()
	b.ReportMetric(float64(recs)/sec, "records/s")
	b.ReportMetric(float64(bytes)/sec/1e6, "MB/s")
	b.ReportMetric((kafka.CPUTime()-cpu0).Seconds()/float64(recs)*1e6, "CPU-s/M-records")
	b.ReportMetric(float64(vmHWM())/(1<<20), "VmHWM-MiB")
}

// runBoundedBench runs a bounded pipeline of one Source of cfg with a sink that only counts,
// and returns the Source, the values the sink got and the time from Run to its end.
func runBoundedBench(b *testing.B, cfg kafka.Config, codec kafka.Codec[[]byte], opts ...kafka.SourceOption) (*kafka.Source[[]byte], int64, time.Duration) {
	b.Helper()
	src, err := kafka.NewSource(cfg, codec, append([]kafka.SourceOption{kafka.WithBounded()}, opts...)...)
	require.NoError(b, err)
	p, err := stream.New(100 * time.Millisecond)
	require.NoError(b, err)
	var n atomic.Int64
	stream.To(stream.From(p, src), stream.SinkFunc[[]byte](func(_ context.Context, batch [][]byte) error {
		n.Add(int64(len(batch)))
		return nil
	}))
	start := time.Now()
	require.NoError(b, p.Run(context.Background()))
	return src, n.Load(), time.Since(start)
}
