// Options of Aggregate: ErrInvalidOption, Emission (OnClose, EveryBatch), WithGrace,
// WithEmit, WithName, WithMaxKeys and WithPerPartitionResults.

package window

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidOption is wrapped by every construction error of Aggregate: a bad assigner,
// option or aggregator parameter.
var ErrInvalidOption = errors.New("window: invalid option")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// Emission says when results are emitted.
type Emission uint8

const (
	// OnClose emits one final result per key and window, when the watermark passes the
	// window's end plus the grace period. It is the default.
	OnClose Emission = iota
	// EveryBatch also emits, after every batch, a partial result (Final false) for every key
	// and open window that changed in the batch.
	EveryBatch
)

// String names the mode: "on-close" or "every-batch".
func (e Emission) String() string {
	switch e {
	case OnClose:
		return "on-close"
	case EveryBatch:
		return "every-batch"
	}
	return fmt.Sprintf("Emission(%d)", uint8(e))
}

// Option configures Aggregate.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name  string
	grace time.Duration
	emit  Emission
	// maxKeys bounds the entries of open state (WithMaxKeys); 0: no bound.
	maxKeys int
	// perPartition: results of one key and window from several partitions are meant
	// (WithPerPartitionResults).
	perPartition bool
	errs         []error
}

// WithPerPartitionResults says that a key's records are in several partitions on purpose
// and each partition's result is wanted, as in the first phase of a two-phase aggregation
// (stream.RepartitionByTime). Without it, Aggregate warns when one key has results of the same
// window from two partitions of a stream that has not been repartitioned (see
// Windowed.SplitKeys).
func WithPerPartitionResults() Option {
	return optionFunc(func(c *config) { c.perPartition = true })
}

// WithGrace sets the allowed lateness: a window stays open for d after the watermark passed its
// end, so records up to d later than the out-of-orderness bound still count. Default 0.
// A grace longer than 100 years counts as 100 years, which keeps every window open until
// the end of the input just the same (math.MaxInt64 may stand for "for ever").
func WithGrace(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, invalid("WithGrace(%v): negative", d))
			return
		}
		c.grace = min(d, maxGrace)
	})
}

// maxGrace bounds the grace as stream bounds the out-of-orderness. A window's end plus the
// grace saturates at the end of int64 time (addSat): a window it passes closes at the end of
// the input.
const maxGrace = 100 * 365 * 24 * time.Hour

// WithEmit sets the emission mode (default OnClose).
func WithEmit(e Emission) Option {
	return optionFunc(func(c *config) {
		if e != OnClose && e != EveryBatch {
			c.errs = append(c.errs, invalid("WithEmit(%d): unknown mode", e))
			return
		}
		c.emit = e
	})
}

// WithName names the operator in the pipeline (default "window").
func WithName(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" {
			c.errs = append(c.errs, invalid("WithName: empty name"))
			return
		}
		c.name = name
	})
}

// WithMaxKeys bounds the state the operator holds: at most n entries of open state over all
// its partitions, an entry being a key in an open window (tumbling), a key's series (sliding)
// or a key with sessions (session windows), as StateSize counts them. A record that would
// open a new entry past the bound is not aggregated: it goes to the Late side stream with
// Reason stream.ReasonKeyLimit (counted by KeyLimitCount, a warning is logged once), so a
// flood of distinct keys (a device that sends random ids) cannot exhaust memory and loses
// nothing. Records of keys that already hold state are aggregated as usual. 0 (the default)
// means no bound. Which keys it admits depends on every partition's state at the time, which
// a replay need not reproduce: stream.RepartitionByTime refuses the results of a window with
// a key limit (bound the window after the repartition instead).
func WithMaxKeys(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.errs = append(c.errs, invalid("WithMaxKeys(%d): negative", n))
			return
		}
		c.maxKeys = n
	})
}
