// The whole stop's bound (WithShutdownTimeout): when Run's context ended, what is left of the
// timeout, the bound of each part of the stop, and the parts the timeout cut off.

package stream

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// stopState is when Run's context ended, once the shutdown timeout counts it (stopLeft), and
// the parts of the stop the timeout cut off.
type stopState struct {
	mu  sync.Mutex
	at  time.Time
	cut []string
}

// WithShutdownTimeout bounds the whole stop once Run's context ended (SIGTERM): the batch in
// flight, its commit, the sources' return from their Run and the outputs' Close all end
// within d of the context's end. Each part still gets at most its own bound
// (WithShutdownGrace), so that each gets the lower of its grace and what is left of d; the
// batch in flight and its commit end by nine tenths of d at the latest, leaving the last
// tenth to the sources and the Close that follow them. Without this option (0, the default)
// a stop may take several times the grace. Past d, what is still running is cut off
// (its context cancelled, and a commit or a Close that does not return is not waited for) and
// Run fails with an error that wraps ErrStopTimeout and says what did not finish: the next
// run replays whatever was not committed from the committed offsets. Under a scheduler that
// kills a process some time after its SIGTERM (Kubernetes: terminationGracePeriodSeconds,
// 30 s by default), set d a few seconds below it, and leave the grace at its default or set
// it to the bound one part may take. It bounds the stop only: a bounded run whose input ended
// or a run that failed stops as before.
func WithShutdownTimeout(d time.Duration) Option {
	return durationOption("WithShutdownTimeout", d, func(c *config) { c.shutdownTimeout = d })
}

// stopLeft returns what is left of the shutdown timeout since Run's context ended, less
// reserve (it counts from the first call, which Run makes when the context ends).
func (p *Pipeline) stopLeft(reserve time.Duration) time.Duration {
	p.stop.mu.Lock()
	defer p.stop.mu.Unlock()
	now := p.cfg.clock.Now()
	if p.stop.at.IsZero() {
		p.stop.at = now
	}
	return max(p.cfg.shutdownTimeout-reserve-now.Sub(p.stop.at), 0)
}

// stopReserve is the part of the shutdown timeout that the batch in flight and its commit
// leave to the sources' stop and the outputs' Close, which come after them: without it, a
// batch stuck until the timeout left them nothing, and a source that returns at once was
// named as one that did not return.
func (p *Pipeline) stopReserve() time.Duration { return p.cfg.shutdownTimeout / 10 }

// stopBound returns how long a part of a stop may take: its own bound, or what is left of
// the shutdown timeout less reserve when that is less, and then true.
func (p *Pipeline) stopBound(own, reserve time.Duration) (time.Duration, bool) {
	if p.cfg.shutdownTimeout <= 0 {
		return own, false
	}
	if left := p.stopLeft(reserve); left <= own {
		return left, true
	}
	return own, false
}

// stopping reports whether Run's stop is bounded by the shutdown timeout now: Run's context
// ended and the option is set.
func (p *Pipeline) stopping() bool {
	return p.cfg.shutdownTimeout > 0 && p.stopCtx != nil && p.stopCtx.Err() != nil
}

// cutOff notes a part of the stop that the shutdown timeout cut off. Safe for concurrent
// use.
func (p *Pipeline) cutOff(what string) {
	p.cfg.logger.Warn("stream: shutdown timeout elapsed; cutting off the stop", "what", what, "timeout", p.cfg.shutdownTimeout)
	p.stop.mu.Lock()
	defer p.stop.mu.Unlock()
	p.stop.cut = append(p.stop.cut, what)
}

// stopTimedOut returns the error that says what the shutdown timeout cut off, nil if nothing.
func (p *Pipeline) stopTimedOut() error {
	p.stop.mu.Lock()
	defer p.stop.mu.Unlock()
	if len(p.stop.cut) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the shutdown timeout (%v) cut off %s; the next run replays what was not committed from the committed offsets",
		ErrStopTimeout, p.cfg.shutdownTimeout, strings.Join(p.stop.cut, ", "))
}

// awaitCommit waits for the commit in flight c, for at most what is left of the shutdown
// timeout while Run stops, and reports whether it ended.
func (p *Pipeline) awaitCommit(c *inflightCommit) bool {
	select {
	case <-c.done:
		return true
	default:
	}
	if !p.stopping() {
		<-c.done
		return true
	}
	select {
	case <-c.done:
		return true
	case <-p.cfg.clock.After(p.stopLeft(p.stopReserve())):
		// The commit did not heed its context (cancelled by now): its goroutine writes only
		// to c, which nothing reads once it is left.
		p.cutOff("a commit that did not return")
		return false
	}
}

// closeWithin runs closeAll with ctx and waits for it for at most limit: an output whose
// Close does not heed ctx is left behind, named.
func (p *Pipeline) closeWithin(ctx context.Context, limit time.Duration) error {
	done := make(chan error, 1)
	at := make(chan string, len(p.outputs)) // the outputs whose Close began, in order
	go func() { done <- p.closeAll(ctx, at) }()
	closed := func(err error) error {
		if err != nil && ctx.Err() != nil {
			p.cutOff("the outputs' Close")
		}
		return err
	}
	select {
	case err := <-done:
		return closed(err)
	case <-p.cfg.clock.After(limit):
		select {
		case err := <-done:
			return closed(err)
		default:
		}
		last := "none began"
		for len(at) > 0 {
			last = fmt.Sprintf("%q did not return", <-at)
		}
		p.cutOff(fmt.Sprintf("the outputs' Close (%s)", last))
		return nil
	}
}
