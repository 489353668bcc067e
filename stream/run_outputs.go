// The run loop's waits around a batch's outputs: the context they run with (the shutdown
// grace), and the wait between the retries of a batch whose outputs failed.

package stream

import (
	"context"
	"fmt"
	"time"
)

// outputContext returns the context outputs run with: it is not cancelled with ctx, so the
// batch in flight is finished on shutdown, but once ctx ends the outputs get at most the
// shutdown grace (WithShutdownGrace), or what is left of the shutdown timeout
// (WithShutdownTimeout), before it is cancelled too. what names the work for the error that
// says the timeout cut it off. release must be called when the batch is done.
func (p *Pipeline) outputContext(ctx context.Context, what string) (context.Context, func()) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	finished, watched := make(chan struct{}), make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(watched)
		grace, byTimeout := p.stopBound(p.cfg.shutdownGrace, p.stopReserve())
		select {
		case <-p.cfg.clock.After(grace):
			select {
			case <-finished:
				return // the batch finished as the grace elapsed: nothing to cut off
			default:
			}
			if byTimeout {
				p.cutOff(what)
			} else {
				p.cfg.logger.Warn("stream: shutdown grace elapsed; cancelling the batch in flight", "grace", p.cfg.shutdownGrace)
			}
			cancel()
		case <-finished:
		}
	})
	return out, func() {
		running := !stopWatch()
		close(finished)
		if running {
			// The watch started (ctx ended): wait for it, so that it neither logs nor cuts
			// off after the batch, or Run, is done.
			<-watched
		}
		cancel()
	}
}

// awaitRetry waits for the next attempt of a batch whose outputs failed with outErr (at), and
// reports the error Run returns, and true, when the run ends first: stopped (ctx), or a
// source failed meanwhile (an output outage may last; a failed source still stops the run,
// as between batches). The batch is not acknowledged then and replays on the next run; the
// error says why it did not finish. A source whose input ended is noted and the wait goes
// on.
func (p *Pipeline) awaitRetry(ctx context.Context, at <-chan time.Time, srcs *sourceRuns, release func(), stop func() error, outErr error) (error, bool) {
	notWritten := func(why error) error {
		return fmt.Errorf("%w (batch %d was not written: %w)", why, p.pending.info.Batch, outErr)
	}
	for {
		select {
		case <-ctx.Done():
		case ex := <-srcs.done:
			if ctx.Err() == nil {
				if !srcs.note(ex) {
					continue // an input ended
				}
				release()
				return notWritten(stop()), true
			}
			srcs.done <- ex // the source saw the stop first: stop collects it
		case <-at:
			return nil, false
		}
		release()
		return p.stoppedUnwritten(ctx, stop, outErr), true
	}
}

// stoppedUnwritten stops the run that ctx stopped while the batch's outputs were failing
// with outErr, logs it and returns Run's error: the stop is the cause, the outputs' failure
// the context. When outErr is only the stop's doing (every output failed with its
// context's error, or gave up for good because of it), the previous attempt's error, the
// outage's, is named first. The error does not pass for a permanent one (IsPermanent):
// whatever an output said, the run ended because it was stopped.
func (p *Pipeline) stoppedUnwritten(ctx context.Context, stop func() error, outErr error) error {
	batch := p.pending.info.Batch
	cause := outErr
	if last := p.lastFailure(batch); last != nil && last != outErr && byStopOnly(outErr) { //nolint:errorlint // the same error
		cause = fmt.Errorf("%w; then, stopping: %w", last, outErr)
	}
	cause = notPermanent{cause}
	p.cfg.logger.Warn("stream: stopped while the batch's outputs were failing; it was not written (the next run replays it)",
		"batch", batch, "cause", ctx.Err(), "err", cause)
	if err := stop(); err != nil {
		return fmt.Errorf("%w (batch %d was not written: %w)", stopFailed(ctx, err), batch, cause)
	}
	return fmt.Errorf("%v (batch %d was not written: %w)", ctx.Err(), batch, cause)
}

// lastFailure returns the error of batch's last failed attempt that noteRetry published, or
// nil.
func (p *Pipeline) lastFailure(batch int64) error {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.retrying == nil || p.retrying.Batch != batch {
		return nil
	}
	return p.retrying.Err
}
