package kafka

import (
	"testing"

	metrics "github.com/rcrowley/go-metrics"
	"github.com/stretchr/testify/require"
)

// TestNoMetrics: the registry of every sarama client the package builds hands back go-metrics'
// Nil metric for each constructor sarama passes (metrics.NewMeter, metrics.NewCounter and
// sarama's func() metrics.Histogram of an exponentially decaying sample; Timer and the gauges
// too), so that sarama's type assertions hold and nothing is recorded, and registers nothing;
// go-metrics' process-wide UseNilMetrics is left as it was. A constructor of another kind is
// called (its caller's assertion holds), and a metric passed as a value is handed back.
// sarama's default registry recorded every request (ExpDecaySample.Update, Meter.Mark: 0.7 %
// of the fleet job's CPU).
func TestNoMetrics(t *testing.T) {
	useNil := metrics.UseNilMetrics
	cfg := Config{Brokers: []string{"localhost:9092"}, Group: "g", Topics: []string{"t"}}
	for _, r := range []role{roleConsumer, roleProducer} {
		sc, err := cfg.sarama(r)
		require.NoError(t, err)
		require.IsType(t, noMetrics{}, sc.MetricRegistry, "role %d", r)
	}
	var reg metrics.Registry = noMetrics{}
	require.IsType(t, metrics.NilMeter{}, metrics.GetOrRegisterMeter("request-rate", reg))
	require.IsType(t, metrics.NilCounter{}, metrics.GetOrRegisterCounter("requests-in-flight", reg))
	// sarama's getOrRegisterHistogram.
	require.IsType(t, metrics.NilHistogram{}, reg.GetOrRegister("request-size", func() metrics.Histogram {
		return metrics.NewHistogram(metrics.NewExpDecaySample(1028, 0.015))
	}).(metrics.Histogram))
	require.IsType(t, metrics.NilHistogram{}, metrics.GetOrRegisterHistogram("h", reg, metrics.NewUniformSample(10)))
	require.IsType(t, metrics.NilTimer{}, metrics.GetOrRegisterTimer("t", reg))
	require.IsType(t, metrics.NilGauge{}, metrics.GetOrRegisterGauge("g", reg))
	require.IsType(t, metrics.NilGaugeFloat64{}, reg.GetOrRegister("f", metrics.NewGaugeFloat64))
	// Another kind: constructed, of the type asserted.
	ewma, ok := reg.GetOrRegister("e", metrics.NewEWMA1).(metrics.EWMA)
	require.True(t, ok)
	require.NotNil(t, ewma)
	c := metrics.NewCounter()
	require.Same(t, c, reg.GetOrRegister("c", c))
	require.IsType(t, &metrics.StandardGaugeFloat64{}, metrics.GetOrRegisterGaugeFloat64("v", reg), "passes a value")
	// Nothing registered.
	require.NoError(t, reg.Register("r", metrics.NewCounter()))
	for _, name := range []string{"request-rate", "requests-in-flight", "request-size", "h", "t", "g", "f", "e", "c", "v", "r"} {
		require.Nil(t, reg.Get(name), name)
	}
	require.Empty(t, reg.GetAll())
	reg.Each(func(name string, _ any) { t.Errorf("%s registered", name) })
	require.Equal(t, useNil, metrics.UseNilMetrics, "go-metrics' switch for the whole process")
	require.False(t, metrics.UseNilMetrics)
}
