package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	metrics "github.com/rcrowley/go-metrics"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSaramaMetricsNotRecorded: a bounded Source and a Producer on the real broker read and
// write every record with the registry the package gives sarama, through which sarama asked
// for its meters, counters and histograms (per request, per broker, per topic, the group's)
// and got go-metrics' Nil ones only; nothing was registered in it, nor in go-metrics'
// DefaultRegistry, and UseNilMetrics stayed off. A program that sets a registry of its own
// (WithSaramaConfig) gets sarama's metrics in it. sarama recorded every request into a
// registry of its own that nothing read.
func TestSaramaMetricsNotRecorded(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	in := newTopic(t, brokers, "metrics-in", 2)
	out := newTopic(t, brokers, "metrics-out", 1)
	const n = 300
	produceEvents(t, brokers, in, 2, 0, n)

	spy := &metricsSpy{kinds: map[string]string{}}
	prod, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, out, kafka.JSONValue[event](nil), kafka.WithSaramaConfig(spy.wrap))
	require.NoError(t, err)
	defer func() { require.NoError(t, prod.Close(context.Background())) }()
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{
		cfg:  consumerConfig(brokers, testenv.UniqueName(t, "g-metrics"), in),
		opts: []kafka.SourceOption{kafka.WithBounded(), kafka.WithSaramaConfig(spy.wrap)},
		ids:  ids, onBatch: prod.Write,
	})
	require.NoError(t, r.wait(t))
	require.Equal(t, n, ids.distinct())
	require.EqualValues(t, n, prod.Sent())
	var written int64
	for _, end := range endOffsets(t, brokers, out) {
		written += end
	}
	require.EqualValues(t, n, written)

	spy.mu.Lock()
	defer spy.mu.Unlock()
	require.NotEmpty(t, spy.inner)
	for _, reg := range spy.inner {
		require.Empty(t, reg.GetAll(), "metrics registered")
		require.Nil(t, reg.Get("request-rate"))
	}
	require.Empty(t, spy.real, "metrics that record")
	asked := map[string]bool{}
	for _, kind := range spy.kinds {
		asked[kind] = true
	}
	require.Equal(t, map[string]bool{"metrics.NilMeter": true, "metrics.NilCounter": true, "metrics.NilHistogram": true}, asked)
	for _, name := range []string{"request-rate", "consumer-fetch-rate", "consumer-batch-size", "record-send-rate",
		"request-latency-in-ms", "requests-in-flight", "request-rate-for-broker-1", "record-send-rate-for-topic-" + out} {
		require.Contains(t, spy.kinds, name, "sarama asked for %s", name)
	}
	require.Nil(t, metrics.DefaultRegistry.Get("request-rate"))
	require.False(t, metrics.UseNilMetrics)

	// A registry of the program's own gets sarama's metrics (while its clients are open:
	// sarama unregisters them when it closes them).
	own := metrics.NewRegistry()
	var fetches atomic.Int64
	r = startPipeline(t, pipelineSpec{
		cfg:  consumerConfig(brokers, testenv.UniqueName(t, "g-metrics-own"), in),
		opts: []kafka.SourceOption{kafka.WithBounded(), kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.MetricRegistry = own })},
		onBatch: func(context.Context, []event) error {
			if m, ok := own.Get("consumer-fetch-rate").(metrics.Meter); ok {
				fetches.Store(max(fetches.Load(), m.Count()))
			}
			return nil
		},
	})
	require.NoError(t, r.wait(t))
	require.Positive(t, fetches.Load(), "the program's registry held sarama's meters")
}

// metricsSpy wraps the registry that the package gives each sarama client (WithSaramaConfig)
// and notes what sarama asked it for and got.
type metricsSpy struct {
	mu    sync.Mutex
	inner []metrics.Registry
	kinds map[string]string // metric name → the type handed back
	real  []string          // metrics handed back that are not go-metrics' Nil ones
}

func (s *metricsSpy) wrap(sc *sarama.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inner = append(s.inner, sc.MetricRegistry)
	sc.MetricRegistry = spyRegistry{s, sc.MetricRegistry}
}

type spyRegistry struct {
	s *metricsSpy
	metrics.Registry
}

func (r spyRegistry) GetOrRegister(name string, metric any) any {
	got := r.Registry.GetOrRegister(name, metric)
	kind := fmt.Sprintf("%T", got)
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.s.kinds[name] = kind
	switch got.(type) {
	case metrics.NilMeter, metrics.NilCounter, metrics.NilHistogram:
	default:
		r.s.real = append(r.s.real, name+": "+kind)
	}
	return got
}
