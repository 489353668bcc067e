// Pipeline options: Option, RetryPolicy, the defaults, and the With... functions New takes.

package stream

import (
	"log/slog"
	"time"
)

// Option configures a Pipeline.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name          string
	logger        *slog.Logger
	clock         Clock
	maxRecords    int
	maxBytes      int64
	outOfOrder    time.Duration
	idleTimeout   time.Duration
	maxFuture     time.Duration
	retry         RetryPolicy
	statsHook     func(BatchStats)
	retryHook     func(RetryInfo)
	shutdownGrace time.Duration
	// shutdownTimeout bounds the whole stop (WithShutdownTimeout); 0: no bound.
	shutdownTimeout time.Duration
	outputs         int
	coldChanged     bool
	errs            []error
}

// RetryPolicy says how the run loop retries a batch whose outputs failed: exponential backoff
// from Initial to Max with full jitter. MaxAttempts 0 retries forever, so an outage blocks the
// pipeline instead of losing data; a positive value makes Run return the error after that
// many failed attempts of the same batch.
type RetryPolicy struct {
	Initial, Max time.Duration
	MaxAttempts  int
}

func defaultConfig() config {
	return config{
		name:          "fleetstream",
		logger:        slog.New(slog.DiscardHandler),
		clock:         SystemClock,
		maxRecords:    100_000,
		maxBytes:      64 << 20,
		idleTimeout:   time.Minute,
		maxFuture:     time.Hour,
		retry:         RetryPolicy{Initial: 100 * time.Millisecond, Max: 10 * time.Second},
		shutdownGrace: 30 * time.Second,
		outputs:       1,
	}
}

// WithName names the pipeline. Sinks use the name in deterministic document ids.
func WithName(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" {
			c.errs = append(c.errs, invalid("WithName: empty name"))
		}
		c.name = name
	})
}

// WithLogger sets the logger; the default discards (the project's rule: logging through an
// injected logger, no globals). Pass the application's (slog.Default() for the process's) to
// see the pipeline's warnings: a checkpoint ignored, a commit or an output retried.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithClock sets the processing-time clock (default SystemClock).
func WithClock(clk Clock) Option {
	return optionFunc(func(c *config) {
		if clk == nil {
			c.errs = append(c.errs, invalid("WithClock: nil clock"))
			return
		}
		c.clock = clk
	})
}

// WithBuffer bounds the source buffer to records and bytes (bytes 0: no byte bound). The
// defaults are 100,000 records and 64 MiB.
func WithBuffer(records int, bytes int64) Option {
	return optionFunc(func(c *config) {
		if records <= 0 || bytes < 0 {
			c.errs = append(c.errs, invalid("WithBuffer(%d, %d): records must be > 0 and bytes >= 0", records, bytes))
			return
		}
		c.maxRecords, c.maxBytes = records, bytes
	})
}

// WithMaxOutOfOrderness sets how far behind the newest event time of a partition an event
// may arrive and still count as on time: a partition's watermark is its maximum event time
// minus d. Default 0. A d over 100 years counts as 100 years, which holds every window
// open until the end of the input just the same.
func WithMaxOutOfOrderness(d time.Duration) Option {
	return durationOption("WithMaxOutOfOrderness", d, func(c *config) { c.outOfOrder = min(d, maxOutOfOrder) })
}

// durationOption is the option name(d), which set applies, or an error when d is negative.
func durationOption(name string, d time.Duration, set func(*config)) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, invalid("%s(%v): negative", name, d))
			return
		}
		set(c)
	})
}

// maxOutOfOrder bounds WithMaxOutOfOrderness so that a watermark, the newest event time less
// it, cannot wrap for event times after 1870 (math.MaxInt64, "for ever", wrapped for times
// before 1970, and every record was late).
const maxOutOfOrder = 100 * 365 * 24 * time.Hour

// WithIdleTimeout sets after how long without records (processing time) a partition stops
// holding back the pipeline watermark. Default one minute; 0 disables idleness.
func WithIdleTimeout(d time.Duration) Option {
	return durationOption("WithIdleTimeout", d, func(c *config) { c.idleTimeout = d })
}

// WithRetry sets the retry policy for failed outputs.
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(c *config) {
		if p.Initial <= 0 || p.Max < p.Initial || p.MaxAttempts < 0 {
			c.errs = append(c.errs, invalid("WithRetry(%+v): need 0 < Initial <= Max and MaxAttempts >= 0", p))
			return
		}
		c.retry = p
	})
}

// WithStatsHook registers a function called from the run loop after every batch with its
// stats. It must not block.
func WithStatsHook(f func(BatchStats)) Option {
	return optionFunc(func(c *config) { c.statsHook = f })
}

// WithRetryHook sets a function called from the run loop after each failed attempt of a
// batch's outputs, before the backoff: metrics and status pages see an outage while it
// lasts, not only once the batch is acknowledged. Pipeline.Retrying returns the same.
func WithRetryHook(f func(RetryInfo)) Option {
	return optionFunc(func(c *config) { c.retryHook = f })
}

// WithShutdownGrace bounds how long the batch in flight may still take to write once Run's
// context ended (SIGTERM): the outputs' context is cancelled after d, the batch is then not
// acknowledged, and its records are replayed by the next run. The outputs' Close (Closer)
// then gets d again (at least a second), from when it begins: records of a Kafka producer
// still in flight after that are not waited for, and the stop fails naming them. The sources,
// stopped before the outputs' Close, get d too (at least a second) from when Run cancels
// them, to return from their Run: one that does not is left behind, its Input closed, and
// Run fails with ErrStopTimeout naming it. Each part of a stop has its own bound, so a stop
// may take several times d: the batch in flight, its commit, the sources and the outputs'
// Close; WithShutdownTimeout bounds them together. Default 30 s.
func WithShutdownGrace(d time.Duration) Option {
	return durationOption("WithShutdownGrace", d, func(c *config) { c.shutdownGrace = d })
}

// WithConcurrentOutputs lets up to n output operations of a batch (To, ForEachBatch) run at
// once. The default, 1, runs them one at a time in the order they were declared, as Spark
// Streaming does (spark.streaming.concurrentJobs = 1); with n > 1 a batch whose outputs write
// to different stores (OpenSearch indexes, a Kafka topic) takes about as long as its slowest
// output instead of their sum. Nothing else changes: the batch is acknowledged only once every
// output succeeded, and a failed output is retried alone. A Sink that several outputs share
// (one dead-letter sink for the whole job) must then be safe for concurrent use, as the
// bundled sinks are. Repartitions always send alongside the outputs.
func WithConcurrentOutputs(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, invalid("WithConcurrentOutputs(%d): want at least 1", n))
			return
		}
		c.outputs = n
	})
}

// WithMaxFutureEventTime bounds how far ahead of the pipeline's clock (WithClock) an event
// time may be. Sources refuse records beyond it (Input.CheckEventTime) and send them to their
// dead-letter output, and no record moves a watermark past the clock plus d. Default one hour,
// like Kafka's message.timestamp.after.max.ms; 0 disables the bound (a replay of data stamped
// in the future of its clock).
func WithMaxFutureEventTime(d time.Duration) Option {
	return durationOption("WithMaxFutureEventTime", d, func(c *config) { c.maxFuture = d })
}

// WithColdStartChanged accepts a restart whose stateful operators' parameters (Parameterized:
// a window's size, a join's bounds) differ from those recorded in the committed checkpoint,
// which otherwise stops the pipeline with ErrOperatorChanged. Each such operator then starts
// cold from the committed offset, as with a checkpoint that does not name it: its state is
// rebuilt, under the new parameters, from the records after the committed offset only, and so
// is that of every stateful operator it reads (which must feed it from there); the other
// operators resume from the checkpoint as usual. What that costs is said in "Restarts with
// changed operators" in the package documentation: results made before the restart stay as
// the old parameters made them, records before the committed offset never count under the
// new ones, and results of windows or join rows that straddle the committed offset may be
// emitted again from part of their records. It is logged at Warn, with the operators. Set it
// for the one restart that changes the parameters; once the new parameters were committed,
// a restart finds nothing changed.
func WithColdStartChanged() Option {
	return optionFunc(func(c *config) { c.coldChanged = true })
}
