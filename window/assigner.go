// Assigners: Tumbling, Sliding and Session, what each validates, and the epoch-aligned
// arithmetic they share.

package window

import (
	"fmt"
	"time"
)

type kind uint8

const (
	kindNone kind = iota
	kindTumbling
	kindSliding
	kindSession
)

// Assigner says which event-time windows a record belongs to. It is a plain value: build it
// with Tumbling, Sliding or Session. Windows are aligned to the Unix epoch.
type Assigner struct {
	kind  kind
	size  time.Duration
	slide time.Duration
	gap   time.Duration
}

// Tumbling returns fixed, non-overlapping windows of the given size: [k*size, (k+1)*size).
func Tumbling(size time.Duration) Assigner {
	return Assigner{kind: kindTumbling, size: size, slide: size}
}

// Sliding returns hopping windows of the given size that start every slide: a record belongs
// to size/slide windows. Windows share partial aggregates over panes of gcd(size, slide), so
// the per-record cost does not depend on size/slide.
func Sliding(size, slide time.Duration) Assigner {
	return Assigner{kind: kindSliding, size: size, slide: slide}
}

// Session returns per-key session windows: a session extends while records of its key arrive
// less than gap apart (in event time), and ends gap after its last record.
func Session(gap time.Duration) Assigner {
	return Assigner{kind: kindSession, gap: gap}
}

// IsTumbling reports whether a was built by Tumbling.
func (a Assigner) IsTumbling() bool { return a.kind == kindTumbling }

// String describes the assigner, for logs.
func (a Assigner) String() string {
	switch a.kind {
	case kindTumbling:
		return fmt.Sprintf("tumbling(%v)", a.size)
	case kindSliding:
		return fmt.Sprintf("sliding(%v, %v)", a.size, a.slide)
	case kindSession:
		return fmt.Sprintf("session(%v)", a.gap)
	}
	return "invalid"
}

func (a Assigner) validate() error {
	switch a.kind {
	case kindTumbling:
		if a.size <= 0 {
			return invalid("Tumbling(%v): size must be positive", a.size)
		}
	case kindSliding:
		if a.size <= 0 || a.slide <= 0 || a.slide > a.size {
			return invalid("Sliding(%v, %v): need 0 < slide <= size", a.size, a.slide)
		}
	case kindSession:
		if a.gap <= 0 {
			return invalid("Session(%v): gap must be positive", a.gap)
		}
	default:
		return invalid("zero Assigner: use Tumbling, Sliding or Session")
	}
	return nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// floorMul rounds t down to a multiple of m (m > 0), also for negative t.
func floorMul(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	return t - r
}

// floorDiv is t/m rounded towards minus infinity (m > 0).
func floorDiv(t, m int64) int64 {
	q := t / m
	if t%m != 0 && t < 0 {
		q--
	}
	return q
}
