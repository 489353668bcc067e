// Options of the joins: ErrInvalidOption, Kind (Inner, LeftOuter), WithKind and WithName
// (WithLoadTimeout and WithTablePartition, EnrichCoPartitioned's, are in
// table_partitioned.go).

package join

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidOption is wrapped by every construction error of the joins: a negative interval
// bound, a window size that is not positive, a nil stream or exchange, a bad option.
var ErrInvalidOption = errors.New("join: invalid option")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// Kind says which rows a join emits.
type Kind uint8

const (
	// Inner emits one row per matching pair of a left and a right record. It is the default.
	Inner Kind = iota
	// LeftOuter also emits, once, every left record that found no partner, when the
	// watermark shows that none can come any more (Joined.Matched false).
	LeftOuter
)

func (k Kind) String() string {
	switch k {
	case Inner:
		return "inner"
	case LeftOuter:
		return "left-outer"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Option configures Interval and Window.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name string
	kind Kind
	errs []error
	// named and kindSet say that WithName and WithKind were given (Enrich's defaults differ).
	named, kindSet bool
	// EnrichCoPartitioned's: WithLoadTimeout and WithTablePartition.
	loadTimeout time.Duration
	tablePart   func(int32) int32
}

// WithKind sets the kind of join (default Inner; Enrich: LeftOuter).
func WithKind(k Kind) Option {
	return optionFunc(func(c *config) {
		if k != Inner && k != LeftOuter {
			c.errs = append(c.errs, invalid("WithKind(%d): unknown kind", k))
			return
		}
		c.kind, c.kindSet = k, true
	})
}

// WithName names the operator in the pipeline and, for Interval and Window, the repartition
// they route both inputs through (a Kafka exchange's topic is <pipeline>-<name>-repartition).
// Default "join" ("enrich" for Enrich); a pipeline with two joins needs another name for one
// of them.
func WithName(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" {
			c.errs = append(c.errs, invalid("WithName: empty name"))
			return
		}
		c.name, c.named = name, true
	})
}

func newConfig(opts []Option) config {
	c := config{name: "join"}
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, invalid("nil option"))
			continue
		}
		o.apply(&c)
	}
	return c
}
