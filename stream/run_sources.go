// The run's sources: the goroutines in which their Run runs, what they returned, and their
// stop, bounded by the shutdown grace.

package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// srcExit is what a source's Run returned.
type srcExit struct {
	src int // the source's index (sourceNode.index)
	err error
}

// sourceRuns are the sources' Run calls of one run of the pipeline.
type sourceRuns struct {
	p         *Pipeline
	cancel    func() // cancels the sources' context
	cancelled bool   // stop cancelled it
	// done receives each source's result once; a wait that must leave a result for stop
	// sends it back (there is room: one per source).
	done     chan srcExit
	returned []bool // by source: its result was noted
	running  int
	errs     []error
}

// startSources runs every source's Run in a goroutine of its own. The sources stop when
// stop stops them, not when ctx ends: the last commit, which may still be running then,
// needs them (a Kafka source's group membership, for its exactly-once transaction's
// offsets).
func (p *Pipeline) startSources(ctx context.Context) *sourceRuns {
	srcCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &sourceRuns{p: p, cancel: cancel, done: make(chan srcExit, len(p.srcs)),
		returned: make([]bool, len(p.srcs)), running: len(p.srcs)}
	for i, sn := range p.srcs {
		go func() {
			err := sn.run(srcCtx)
			if err == nil {
				// Only a source that returns nil ends its input (a bounded source): one that
				// was stopped must not make the pipeline close every window as if input had
				// ended.
				sn.close()
			}
			r.done <- srcExit{src: i, err: err}
		}()
	}
	return r
}

// note notes a source's result; failed reports whether a source failed so far.
func (r *sourceRuns) note(ex srcExit) (failed bool) {
	r.running--
	r.returned[ex.src] = true
	err := ex.err
	if errors.Is(err, context.Canceled) && r.cancelled {
		err = nil // the source stopped because we cancelled it
	}
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("stream: source: %w", err))
	}
	return len(r.errs) > 0
}

// stop cancels the sources and waits for their Run to return, for at most the shutdown
// grace (at least minCloseGrace) from the cancellation, or, once Run's context ctx ended,
// what is left of the shutdown timeout if that is less, and returns the errors they
// returned. A source whose Run did not return by then is left behind, with its Input closed
// so that what it pushes later is refused (ErrInputEnded), and the errors end with one that
// wraps ErrStopTimeout and names it: the goroutine that waits for it writes nothing that
// Run's caller sees. Without the bound, a source that does not heed its context (a hung
// broker connection, a user source) held Run for ever after a SIGTERM, although every other
// part of a stop is bounded.
func (r *sourceRuns) stop(ctx context.Context) []error {
	r.cancel()
	r.cancelled = true
	if r.running == 0 {
		return r.errs
	}
	grace := max(r.p.cfg.shutdownGrace, minCloseGrace)
	if ctx.Err() != nil { // a stop: bounded by the shutdown timeout too
		grace, _ = r.p.stopBound(grace, 0)
	}
	timeout := r.p.cfg.clock.After(grace)
	for r.running > 0 {
		select {
		case ex := <-r.done:
			r.note(ex)
		case <-timeout:
			for len(r.done) > 0 { // returned as the grace ran out
				r.note(<-r.done)
			}
			if r.running == 0 {
				return r.errs
			}
			var stuck []string
			for i, sn := range r.p.srcs {
				if !r.returned[i] {
					sn.close()
					stuck = append(stuck, sn.describe())
				}
			}
			r.p.cfg.logger.Error("stream: sources did not return within the shutdown grace of being stopped; leaving them behind", "sources", stuck, "grace", grace)
			its := "its input"
			if len(stuck) > 1 {
				its = "their inputs"
			}
			return append(r.errs, fmt.Errorf("%w: %s did not return within %v of being stopped (left running, %s closed)",
				ErrStopTimeout, strings.Join(stuck, ", "), grace, its))
		}
	}
	return r.errs
}

// describe names the source in errors and logs: its position among the pipeline's From
// calls, its type and the inputs it names (InputIdentifier), or its repartition.
func (s *source[T]) describe() string {
	if s.inner {
		return fmt.Sprintf("the source of repartition %q", s.repartition)
	}
	d := fmt.Sprintf("source %d (%T", s.idx, s.src)
	if ids := s.identity(); len(ids) > 0 {
		d += " of " + strings.Join(ids, ", ")
	}
	return d + ")"
}
