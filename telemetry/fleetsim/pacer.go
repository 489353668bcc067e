// Pacing: a Pacer that spaces calls evenly at a target rate, over an
// injectable Clock.

package fleetsim

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Clock is the time source of a [Pacer]; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// Sleep blocks for d or until ctx is done, returning ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pacer spaces calls evenly at a target rate, for feeding a pipeline at a
// realistic pace rather than as fast as possible. After a stall it catches
// up with a burst of at most one second's worth of calls. A Pacer is not
// safe for concurrent use.
type Pacer struct {
	clock   Clock
	every   float64 // nanoseconds between calls
	burst   float64 // calls
	started bool
	start   time.Time // schedule origin
	n       int64     // calls scheduled since start
}

// NewPacer returns a Pacer for perSecond calls per second. A nil clock means
// the system clock.
func NewPacer(perSecond float64, clock Clock) (*Pacer, error) {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return nil, fmt.Errorf("%w: pacer rate %v must be positive and finite", ErrInvalidOption, perSecond)
	}
	if clock == nil {
		clock = systemClock{}
	}
	return &Pacer{clock: clock, every: 1e9 / perSecond, burst: math.Max(1, perSecond)}, nil
}

// Wait blocks until the next call is due. It returns ctx.Err() if ctx ends
// first.
func (p *Pacer) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := p.clock.Now()
	if !p.started {
		p.started, p.start, p.n = true, now, 0
	}
	// The schedule is start + n*every, computed afresh to avoid drift.
	due := p.start.Add(time.Duration(float64(p.n) * p.every))
	if lag := now.Sub(due); float64(lag) > p.burst*p.every {
		// Forget debt beyond the burst allowance.
		p.start, p.n = now.Add(-time.Duration(p.burst*p.every)), 0
		due = p.start
	}
	p.n++
	if d := due.Sub(now); d > 0 {
		return p.clock.Sleep(ctx, d)
	}
	return nil
}
