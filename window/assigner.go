// Assigners: Tumbling, Sliding and Session, what each validates, and the epoch-aligned
// arithmetic they share.

package window

import (
	"fmt"
	"math"
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

// MaxSlidingPanes is the most panes of gcd(size, slide) a Sliding window may span: 131,072,
// a day by seconds (86,400) and more.
const MaxSlidingPanes = 1 << 17

// Tumbling returns fixed, non-overlapping windows of the given size: [k*size, (k+1)*size).
func Tumbling(size time.Duration) Assigner {
	return Assigner{kind: kindTumbling, size: size, slide: size}
}

// Sliding returns hopping windows of the given size that start every slide: a record belongs
// to size/slide windows. Windows share partial aggregates over panes of gcd(size, slide), so
// the per-record cost does not depend on size/slide. Each key keeps a ring of a window's
// panes, so a window may span at most MaxSlidingPanes of them (a day by seconds): a slide
// that shares only a tiny factor with the size, such as Sliding(time.Minute, time.Minute/7)
// (panes of 3 ns), is refused with ErrInvalidOption.
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
		if g := gcd(int64(a.size), int64(a.slide)); int64(a.size)/g > MaxSlidingPanes {
			return invalid("Sliding(%v, %v): a window would be %d panes of gcd(size, slide) = %v, more than %d: choose a slide that divides the size",
				a.size, a.slide, int64(a.size)/g, time.Duration(g), MaxSlidingPanes)
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

// floorMul rounds t down to a multiple of m (m > 0), also for negative t; to the start of
// int64 time when that multiple is before it (t - r would wrap to the end).
func floorMul(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	if t < math.MinInt64+r {
		return math.MinInt64
	}
	return t - r
}

// tumblingWindow returns the window [start, end) of size holding t, and whether it fits in
// int64 time. When it does not (a record within size of the ends of int64 time: a bad
// clock), start or end is clamped to the end of int64 time it passes.
func tumblingWindow(t, size int64) (start, end int64, fits bool) {
	r := t % size
	if r < 0 {
		r += size
	}
	if t < math.MinInt64+r {
		return math.MinInt64, t + (size - r), false
	}
	start = t - r
	if start > math.MaxInt64-size {
		return start, math.MaxInt64, false
	}
	return start, start + size, true
}

// addSat is t + d (d >= 0), or the end of int64 time if that is after it: a window's end
// plus the grace, which may pass it (the grace may be up to 100 years).
func addSat(t, d int64) int64 {
	if s := t + d; s >= t {
		return s
	}
	return math.MaxInt64
}

// subSat is t - d (d >= 0), or the start of int64 time if that is before it: a watermark,
// the newest event time less the out-of-orderness.
func subSat(t, d int64) int64 {
	if s := t - d; s <= t {
		return s
	}
	return math.MinInt64
}

// floorDiv is t/m rounded towards minus infinity (m > 0).
func floorDiv(t, m int64) int64 {
	q := t / m
	if t%m != 0 && t < 0 {
		q--
	}
	return q
}
