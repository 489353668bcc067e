// The go-metrics registry every sarama client of the package records into: one that
// registers nothing.

package kafka

import (
	"reflect"

	metrics "github.com/rcrowley/go-metrics"
)

// noMetrics is the metrics.Registry (sarama's Config.MetricRegistry) of every client the
// package builds (Config.sarama: the consumer, the producers, the admin clients). sarama
// records histograms, meters and counters per request and per broker into its registry
// (an exponentially decaying sample per histogram, a meter ticking every 5s); the package
// reads none of them (SourceStats and the pipeline's stats are its own), and they cost
// about 0.7 % of the fleet job's CPU. noMetrics hands back go-metrics' Nil metrics for the
// constructors sarama passes, so sarama's code paths get the type they assert and record
// nothing; a program that wants sarama's metrics sets a registry of its own with
// WithSaramaConfig. metrics.UseNilMetrics, go-metrics' switch for the whole process, is
// left alone: the program may use go-metrics itself.
type noMetrics struct{}

var _ metrics.Registry = noMetrics{}

// GetOrRegister returns the Nil metric of the kind metric makes: sarama passes
// metrics.NewMeter, metrics.NewCounter and a func() metrics.Histogram. Another constructor
// (no sarama release asks for one) is called, as go-metrics' own registry does, so its
// result is of the type the caller asserts; a metric passed as a value is handed back.
func (noMetrics) GetOrRegister(_ string, metric any) any {
	switch metric.(type) {
	case func() metrics.Meter:
		return metrics.NilMeter{}
	case func() metrics.Counter:
		return metrics.NilCounter{}
	case func() metrics.Histogram:
		return metrics.NilHistogram{}
	case func() metrics.Timer:
		return metrics.NilTimer{}
	case func() metrics.Gauge:
		return metrics.NilGauge{}
	case func() metrics.GaugeFloat64:
		return metrics.NilGaugeFloat64{}
	}
	if v := reflect.ValueOf(metric); v.Kind() == reflect.Func && v.Type().NumIn() == 0 && v.Type().NumOut() == 1 {
		return v.Call(nil)[0].Interface()
	}
	return metric
}

// Register registers nothing.
func (noMetrics) Register(string, any) error { return nil }

// Get finds nothing: nothing is registered.
func (noMetrics) Get(string) any { return nil }

// GetAll returns no metrics.
func (noMetrics) GetAll() map[string]map[string]any { return map[string]map[string]any{} }

// Each calls f for no metric.
func (noMetrics) Each(func(string, any)) {}

// RunHealthchecks runs none.
func (noMetrics) RunHealthchecks() {}

// Unregister has nothing to remove.
func (noMetrics) Unregister(string) {}

// UnregisterAll has nothing to remove.
func (noMetrics) UnregisterAll() {}
