// The options of New, and the clock the health checks run on.

package prom

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Clock is the time source of the health checks and of the scrape-time gauges.
// stream.Clock and streamtest's manual clock satisfy it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	clock         Clock
	staleAfter    time.Duration
	startTimeout  time.Duration
	maxLag        time.Duration
	buckets       []float64
	gatherer      prometheus.Gatherer
	partitionName func(int32) string
	errs          []error
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithClock sets the clock of the health checks and of the event-time lag; default the
// system clock. Give it the pipeline's clock when the pipeline runs on a fake one.
func WithClock(c Clock) Option {
	return optionFunc(func(cfg *config) {
		if c == nil {
			cfg.errs = append(cfg.errs, invalid("WithClock(nil)"))
			return
		}
		cfg.clock = c
	})
}

// WithStaleAfter sets how long after the last batch's stats /healthz and /readyz still answer
// 200. Default DefaultStaleAfter. Choose it well above the batch interval plus the longest
// batch, retries included. Before the first batch WithStartTimeout applies instead.
func WithStaleAfter(d time.Duration) Option {
	return optionFunc(func(cfg *config) {
		if d <= 0 {
			cfg.errs = append(cfg.errs, invalid("WithStaleAfter(%v): must be positive", d))
			return
		}
		cfg.staleAfter = d
	})
}

// WithStartTimeout sets how long after New /healthz answers 200 while no batch was
// acknowledged yet: the start, which holds the consumer group's join, the loads of tables and
// whatever the program does between New and the pipeline's Run. Default DefaultStartTimeout.
// Choose it above the longest start, so that a liveness probe does not restart a program in
// the middle of loading a large table; the staleness (WithStaleAfter) counts only from the
// first batch on.
func WithStartTimeout(d time.Duration) Option {
	return optionFunc(func(cfg *config) {
		if d <= 0 {
			cfg.errs = append(cfg.errs, invalid("WithStartTimeout(%v): must be positive", d))
			return
		}
		cfg.startTimeout = d
	})
}

// WithMaxEventTimeLag makes /readyz answer 503 while the event-time lag (now minus the
// pipeline watermark) is above d: a long catch-up, when the results lag behind real time.
// Default 0: off, for pipelines that replay old data on purpose. Set it above the windows'
// length plus grace, which the watermark lags by design.
func WithMaxEventTimeLag(d time.Duration) Option {
	return optionFunc(func(cfg *config) {
		if d < 0 {
			cfg.errs = append(cfg.errs, invalid("WithMaxEventTimeLag(%v): negative", d))
			return
		}
		cfg.maxLag = d
	})
}

// WithPartitionName names the pipeline's partition ids (stream.Position.Partition) in the
// status page's partition table and in the partition label of the per-partition metrics,
// e.g. a kafka.Source's TopicPartition formatted "topic/3". Name them as the source names its
// lags (SourceStats.Lag) for the read lag to be known. By default the first source's ids are
// named after the lag names when they all share one topic, and other sources' ids (a
// repartition's) "source 1 partition 3".
func WithPartitionName(f func(id int32) string) Option {
	return optionFunc(func(cfg *config) { cfg.partitionName = f })
}

// WithBuckets sets the upper bounds, in seconds, of the batch duration histograms; default
// DefaultBuckets. The bounds are copied: changing b afterwards changes nothing.
func WithBuckets(b ...float64) Option {
	b = slices.Clone(b) // the client library keeps the slice it is given as the histograms' bounds
	return optionFunc(func(cfg *config) {
		for i, x := range b {
			// NaN compares false with everything, so it passed the order check below
			// (a bucket le="NaN").
			if math.IsNaN(x) || i > 0 && x <= b[i-1] {
				cfg.errs = append(cfg.errs, invalid("WithBuckets(%v): bounds must increase", b))
				return
			}
		}
		if len(b) == 0 {
			cfg.errs = append(cfg.errs, invalid("WithBuckets(): no bounds"))
			return
		}
		cfg.buckets = b
	})
}

// WithGatherer sets what Handler serves at /metrics. By default it is the Registerer given to
// New when that is also a prometheus.Gatherer (a *prometheus.Registry is); a wrapped
// Registerer (prometheus.WrapRegistererWith) needs this option for /metrics to be served.
func WithGatherer(g prometheus.Gatherer) Option {
	return optionFunc(func(cfg *config) { cfg.gatherer = g })
}
