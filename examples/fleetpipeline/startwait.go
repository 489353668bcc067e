// The job's waits at start on a service that is not up yet (-kafka-timeout,
// -opensearch-timeout). A job started during a rolling restart of its brokers or nodes, or
// together with them (compose, a Helm release), found them refusing connections and exited
// 1 at once (0.02 s for OpenSearch, the 2.5 s of sarama's own retries for Kafka), so that
// it crash-looped, though once running it rides out the same outages. Each wait now tries
// again what may pass (a refused or reset connection, a timeout, a 5xx, Kafka's leader or
// broker not available) until its flag's bound, saying every few seconds what it waits for;
// what will not pass (a wrong password, a URL that is not OpenSearch, a TLS mismatch, a
// missing input topic) still fails at once.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/fleetstream/fleetstream/internal/backoff"
	"github.com/fleetstream/fleetstream/opensearch"
)

// Pace of the waits: the delay between attempts grows from startRetryMin to startRetryMax
// (jittered, so that the instances of a job started together do not try in step), and a
// wait says that it still waits at most every startLogEvery.
const (
	startRetryMin = 250 * time.Millisecond
	startRetryMax = 5 * time.Second
	startLogEvery = 5 * time.Second
)

// startWait is a wait of the job's start on one service.
type startWait struct {
	service string // "Kafka", "OpenSearch"
	at      string // its address as the messages say it, credentials out: "127.0.0.1:9092 (-brokers)"
	flag    string // the flag of the bound: "-kafka-timeout"
	bound   time.Duration
	hint    string // what to check, at the end of the error of a wait that gave up
	// transient reports whether an attempt's error may pass by itself.
	transient func(error) bool
	log       *slog.Logger
}

// wait runs try until it succeeds, fails for good (an error transient refuses: returned
// with step before it) or w.bound has passed since the first attempt. try gets a context
// that ends at the bound (a try that must outlive it, such as the registry's load, bounded
// on silence, may use its own). A stop (ctx) before any attempt failed returns try's error,
// wrapping ctx's; a stop while waiting returns an error that says what the job waited for,
// so that the process exits 1: the job did not start.
func (w *startWait) wait(ctx context.Context, step string, try func(ctx context.Context) error) error {
	start := time.Now()
	bounded, cancel := context.WithDeadline(ctx, start.Add(w.bound))
	defer cancel()
	var last error
	var logged time.Time
	for attempt := 1; ; attempt++ {
		err := try(bounded)
		switch {
		case err == nil:
			if last != nil {
				w.log.Info(fmt.Sprintf("fleetpipeline: %s: %s at %s answered after %v", step, w.service, w.at, time.Since(start).Round(time.Millisecond)))
			}
			return nil
		case ctx.Err() != nil && last == nil:
			return fmt.Errorf("%s: %w", step, err)
		case ctx.Err() != nil:
			return w.stopped(step, time.Since(start), last)
		case bounded.Err() != nil && (w.transient(err) || errors.Is(err, context.DeadlineExceeded)):
			// The bound passed during the attempt: an attempt it cut off says no more than
			// that, one that failed by itself is the last.
			if !errors.Is(err, context.DeadlineExceeded) {
				last = err
			}
			return w.gaveUp(step, attempt, last)
		case !w.transient(err):
			return fmt.Errorf("%s: %w", step, err)
		}
		last = err
		left := time.Until(start.Add(w.bound))
		if left <= 0 {
			return w.gaveUp(step, attempt, last)
		}
		if logged.IsZero() || time.Since(logged) >= startLogEvery {
			logged = time.Now()
			w.log.Warn(fmt.Sprintf("fleetpipeline: %s: waiting for %s at %s: %s; giving up in %v", step, w.service, w.at, shortCause(err), roundLeft(left)))
		}
		w.log.Debug("fleetpipeline: start attempt failed", "service", w.service, "step", step, "attempt", attempt, "err", err)
		pause := time.NewTimer(backoff.Delay(startRetryMin, startRetryMax, attempt))
		select {
		case <-bounded.Done():
			pause.Stop()
			if ctx.Err() != nil {
				return w.stopped(step, time.Since(start), last)
			}
			return w.gaveUp(step, attempt, last)
		case <-pause.C:
		}
	}
}

// gaveUp is the error of a wait whose bound passed; last is the last error of an attempt,
// nil when none ended before the bound (a service that takes connections and never answers).
func (w *startWait) gaveUp(step string, attempts int, last error) error {
	if last == nil {
		return fmt.Errorf("%s: no answer from %s at %s within %v (%s): %s", step, w.service, w.at, w.bound, w.flag, w.hint)
	}
	tries := fmt.Sprintf("%d attempts", attempts)
	if attempts == 1 {
		tries = "1 attempt"
	}
	return fmt.Errorf("%s: gave up after %v (%s) and %s waiting for %s at %s; the last: %w: %s",
		step, w.bound, w.flag, tries, w.service, w.at, last, w.hint)
}

// stopped is the error of a wait that a stop (SIGINT, SIGTERM) ended after an attempt failed.
func (w *startWait) stopped(step string, waited time.Duration, last error) error {
	return fmt.Errorf("%s: stopped (SIGINT or SIGTERM) after waiting %v for %s at %s; the job did not start; the last attempt: %w",
		step, waited.Round(time.Millisecond), w.service, w.at, last)
}

// roundLeft rounds what is left of a wait for its log line: to the second, or to 10 ms
// under a second (a short bound in tests), where the second would say 0s.
func roundLeft(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// shortCause is the gist of err for the line a wait logs: the full error, a line of its own
// with -v, is long (sarama names every broker and retry, opensearch the request).
func shortCause(err error) string {
	var he *opensearch.HTTPError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case errors.As(err, &he):
		return fmt.Sprintf("status %d %s", he.Status, http.StatusText(he.Status))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time"
	}
	return err.Error()
}

// transientOpenSearch reports whether an error of a request to OpenSearch may pass: no
// answer from a node (refused, reset, timed out: an *opensearch.TransportError) or an
// answer that it cannot serve the request now (408, 429, most 5xx:
// opensearch.HTTPError.Temporary), and no answer of another address that will not change
// (401, 403, 404, ...), nor something that is not OpenSearch or a certificate that does not
// verify.
func transientOpenSearch(err error) bool {
	if errors.Is(err, opensearch.ErrNotOpenSearch) || errors.Is(err, opensearch.ErrCertificate) || errors.Is(err, opensearch.ErrInvalidOption) {
		return false
	}
	transient, permanent := false, false
	walkErrors(err, func(e error) {
		switch e := e.(type) {
		case *opensearch.HTTPError:
			if e.Temporary() {
				transient = true
			} else {
				permanent = true
			}
		case *opensearch.TransportError:
			transient = true
		}
	})
	return transient && !permanent
}

// orDiscard is log, or a logger that discards when log is nil.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// walkErrors calls f with err and every error it wraps, through Unwrap() error and
// Unwrap() []error (an error of several nodes or brokers).
func walkErrors(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, f)
		}
	}
}
