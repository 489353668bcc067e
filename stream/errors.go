// Errors: the sentinel errors of construction and Run, Permanent and PermanentError for
// outputs that must not be retried, and OutputError for a batch's failed outputs.

package stream

import (
	"context"
	"errors"
	"fmt"
)

var (
	// ErrInvalidOption is wrapped by the construction errors of a bad option or parameter: a
	// negative duration, a window length or slide that is not a multiple of the batch
	// interval, a nil function. New returns it at once; operators record it on the pipeline,
	// and Err, Run and Step return it.
	ErrInvalidOption = errors.New("stream: invalid option")
	// ErrGraph is wrapped by the construction errors of a graph that cannot run: streams of
	// different pipelines or of different slides joined or united, a repartition of windowed
	// streams or of an exchange that serves another, a RepartitionByTime of a stream that is
	// not made from event-time windows' results, more than 32 sources (From and
	// repartitions together). A pipeline may have several sources.
	// Operators record it on the pipeline, and Err, Run and Step return it.
	ErrGraph = errors.New("stream: invalid graph")
	// ErrInputEnded is returned by Input.Push after the input was closed.
	ErrInputEnded = errors.New("stream: input ended")
	// ErrRunning is returned when Run or Step is called on a pipeline that is running.
	ErrRunning = errors.New("stream: pipeline already running")
	// ErrRunTwice is returned when Run or Step is called on a pipeline whose Run has
	// returned: a pipeline runs once (build a new one to run again; it resumes from the
	// commits).
	ErrRunTwice = errors.New("stream: pipeline already ran")
	// ErrNoSource is returned by Run when no source was attached with From.
	ErrNoSource = errors.New("stream: pipeline has no source")
	// ErrStopTimeout is wrapped by Run's error when stopping did not finish within its bound:
	// a source whose Run did not return within the shutdown grace of being stopped (see
	// WithShutdownGrace), or a part of a stop that WithShutdownTimeout cut off. The error names
	// what did not finish; the next run replays from the committed offsets whatever was not
	// committed.
	ErrStopTimeout = errors.New("stream: stop timed out")
)

// PermanentError marks an output error that retrying cannot fix. The pipeline stops with it
// instead of retrying. Once Run's context ended (a stop), a Permanent error that wraps a
// context's error (context.Canceled, context.DeadlineExceeded) is taken for the stop's doing,
// an output that gave up because its context was cancelled: Run then reports the stop, with
// the batch not written and the outputs' last errors, not a permanent error.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the pipeline does not retry it. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err or an error it wraps was marked with Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// permanentByStop reports whether every part of err marked Permanent wraps a context's error:
// when Run's context ended, such an output gave up because the stop cancelled it (a Kafka
// transaction cut off mid-commit keeps its producer from any later one), not for a reason a
// restart would meet again. A part marked Permanent for another reason makes it false.
func permanentByStop(err error) bool {
	return everyOutput(err, func(e error) bool { return !IsPermanent(e) || isContextErr(e) })
}

// byStopOnly reports whether every output of err failed with its context's error (or gave up
// because of it): a failure that says nothing of the outage the batch was retried for.
func byStopOnly(err error) bool { return everyOutput(err, isContextErr) }

// everyOutput reports whether ok holds for the error of every output that failed in err (an
// OutputError), or for err itself.
func everyOutput(err error, ok func(error) bool) bool {
	var oe *OutputError
	if !errors.As(err, &oe) {
		return ok(err)
	}
	for _, e := range oe.Errs {
		if !ok(e) {
			return false
		}
	}
	return true
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// notPermanent is an error that errors.As does not find a *PermanentError in (IsPermanent is
// false), and that matches everything else err wraps.
type notPermanent struct{ err error }

func (e notPermanent) Error() string { return e.err.Error() }

// Is matches what the error wraps.
func (e notPermanent) Is(target error) bool { return errors.Is(e.err, target) }

// As finds what the error wraps but a *PermanentError. It has no Unwrap, through which
// errors.As would find one.
func (e notPermanent) As(target any) bool {
	if _, ok := target.(**PermanentError); ok {
		return false
	}
	return errors.As(e.err, target)
}

// OutputError reports the outputs of a batch that failed. The batch is not acknowledged.
type OutputError struct {
	Batch int64
	// Errs holds one error per failed output, in output order.
	Errs []error
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("stream: batch %d: %d output(s) failed: %v", e.Batch, len(e.Errs), errors.Join(e.Errs...))
}

// Unwrap returns the output errors, so errors.Is and errors.As see each of them.
func (e *OutputError) Unwrap() []error { return e.Errs }

// stopFailed is Run's error when ctx ended and stopping failed (a source's error, an output's
// Close): the cancellation is named, not wrapped.
func stopFailed(ctx context.Context, err error) error {
	return fmt.Errorf("%v, and stopping failed: %w", ctx.Err(), err)
}

// notStop returns err so that errors.Is does not match it with context.Canceled or
// context.DeadlineExceeded, whatever it wraps: Run's failures would otherwise pass the idiom
// errors.Is(err, context.Canceled) for a requested stop when an output or a source failed
// with its context's error (an output cut off by the shutdown grace, a timeout). errors.As
// and errors.Is for any other target see what err wraps.
func notStop(err error) error {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &notStopError{err}
}

type notStopError struct{ err error }

func (e *notStopError) Error() string { return e.err.Error() }

// Is matches what the error wraps but the context's errors. It has no Unwrap, through which
// errors.Is would find them.
func (e *notStopError) Is(target error) bool {
	if target == context.Canceled || target == context.DeadlineExceeded { //nolint:errorlint // sentinels
		return false
	}
	return errors.Is(e.err, target)
}

// As finds what the error wraps.
func (e *notStopError) As(target any) bool { return errors.As(e.err, target) }

func graphError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrGraph}, args...)...)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}
