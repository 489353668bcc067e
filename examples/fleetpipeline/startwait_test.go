// The start's waits on a service that is not up yet (startwait.go), on fake time
// (testing/synctest), and the errors they try again.

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/opensearch"
)

// refused is the error of a dial that found nothing listening.
func refused(addr string) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, Addr: fakeAddr(addr)}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// testWait is a startWait of a fake service, logging to log at every level.
func testWait(bound time.Duration, log *bytes.Buffer) *startWait {
	return &startWait{
		service: "Svc", at: "svc:1 (-svc)", flag: "-svc-timeout", bound: bound, hint: "check svc",
		transient: func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) },
		log:       slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// waitingLines returns the lines of log that say the wait goes on.
func waitingLines(log string) []string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "waiting for Svc") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestStartWaitUntilUp: a service that refuses connections for the first 30 s is tried
// again until it answers; the wait logs a line at the first failure and then at most one
// every startLogEvery, and one when the service answered.
func TestStartWaitUntilUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		start := time.Now()
		up := start.Add(30 * time.Second)
		attempts := 0
		err := testWait(2*time.Minute, &log).wait(t.Context(), "step", func(context.Context) error {
			attempts++
			if time.Now().Before(up) {
				return refused("svc:1")
			}
			return nil
		})
		require.NoError(t, err)
		took := time.Since(start)
		require.GreaterOrEqual(t, took, 30*time.Second)
		require.LessOrEqual(t, took, 30*time.Second+startRetryMax, "tried again at least every startRetryMax")
		require.GreaterOrEqual(t, attempts, int(30*time.Second/startRetryMax), "attempts at most startRetryMax apart")

		lines := waitingLines(log.String())
		require.NotEmpty(t, lines)
		require.Contains(t, lines[0], `msg="fleetpipeline: step: waiting for Svc at svc:1 (-svc): connection refused; giving up in 2m0s"`)
		require.GreaterOrEqual(t, len(lines), int(30*time.Second/(startLogEvery+startRetryMax)), "a line every few seconds:\n%s", log.String())
		require.LessOrEqual(t, len(lines), int(30*time.Second/startLogEvery)+1, "at most a line every %v:\n%s", startLogEvery, log.String())
		require.Less(t, len(lines), attempts, "not a line per attempt")
		require.Regexp(t, `fleetpipeline: step: Svc at svc:1 \(-svc\) answered after 3[0-5](\.\d+)?s`, log.String())
		require.Contains(t, log.String(), "level=DEBUG", "each attempt's whole error at debug level (-v)")
	})
}

// TestStartWaitGivesUp: a service that refuses connections for longer than the bound: the
// wait ends at the bound with an error naming the step, the service and its address, the
// bound and its flag, the attempts and the last attempt's error, and what to check.
func TestStartWaitGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		start := time.Now()
		attempts := 0
		err := testWait(10*time.Second, &log).wait(t.Context(), "step", func(context.Context) error {
			attempts++
			return refused("svc:1")
		})
		require.Equal(t, 10*time.Second, time.Since(start))
		require.EqualError(t, err, fmt.Sprintf("step: gave up after 10s (-svc-timeout) and %d attempts waiting for Svc at svc:1 (-svc); the last: %v: check svc", attempts, refused("svc:1")))
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.Greater(t, attempts, 2)
	})
	// The bound passes while the wait pauses after its first attempt.
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		err := testWait(10*time.Second, &log).wait(t.Context(), "step", func(context.Context) error {
			time.Sleep(10*time.Second - startRetryMin/4) // an attempt that fails just before the bound
			return refused("svc:1")
		})
		require.ErrorContains(t, err, "step: gave up after 10s (-svc-timeout) and 1 attempt waiting for Svc")
	})
}

// TestStartWaitNoAnswer: a service that takes the connection and never answers: the one
// attempt runs into the bound, and the error says there was no answer.
func TestStartWaitNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		start := time.Now()
		err := testWait(10*time.Second, &log).wait(t.Context(), "step", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		require.Equal(t, 10*time.Second, time.Since(start))
		require.EqualError(t, err, "step: no answer from Svc at svc:1 (-svc) within 10s (-svc-timeout): check svc")
		require.Empty(t, waitingLines(log.String()))
	})
}

// TestStartWaitPermanentAtOnce: an error that will not pass ends the wait at its first
// attempt, as it is, after the step.
func TestStartWaitPermanentAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		wrong := errors.New("authentication failed")
		start := time.Now()
		attempts := 0
		err := testWait(time.Hour, &log).wait(t.Context(), "step", func(context.Context) error {
			attempts++
			if attempts == 1 {
				return refused("svc:1")
			}
			return wrong
		})
		require.Equal(t, 2, attempts)
		require.Less(t, time.Since(start), startRetryMax)
		require.ErrorIs(t, err, wrong)
		require.EqualError(t, err, "step: authentication failed")
	})
}

// TestStartWaitStop: a stop (SIGINT, SIGTERM) ends the wait at once. During the first
// attempt, before anything failed, its error is the attempt's, wrapping ctx's (run makes it a
// clean stop, as before); once an attempt failed, it says what the job waited for and wraps
// no context error, so that the job exits 1: it did not start.
func TestStartWaitStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(3*time.Second, cancel)
		start := time.Now()
		err := testWait(time.Hour, &log).wait(ctx, "step", func(context.Context) error { return refused("svc:1") })
		require.Equal(t, 3*time.Second, time.Since(start))
		require.False(t, errors.Is(err, context.Canceled), "not a clean stop: %v", err)
		require.ErrorContains(t, err, "step: stopped (SIGINT or SIGTERM) after waiting 3s for Svc at svc:1 (-svc); the job did not start; the last attempt: ")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
	})
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(3*time.Second, cancel)
		start := time.Now()
		err := testWait(time.Hour, &log).wait(ctx, "step", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		require.Equal(t, 3*time.Second, time.Since(start))
		require.ErrorIs(t, err, context.Canceled)
	})
}

// TestTransientOpenSearch: what the start tries again on OpenSearch.
func TestTransientOpenSearch(t *testing.T) {
	transport := &opensearch.TransportError{Op: "PUT http://n:9200/_index_template/x", Err: refused("n:9200")}
	status := func(code int) *opensearch.HTTPError {
		return &opensearch.HTTPError{Op: "put index template x", Method: "PUT", URL: "http://n:9200/_index_template/x", Status: code}
	}
	for _, tc := range []struct {
		name      string
		err       error
		transient bool
	}{
		{"connection refused", transport, true},
		{"request timed out", &opensearch.TransportError{Op: "PUT", Err: context.DeadlineExceeded}, true},
		{"503", status(503), true},
		{"429", status(429), true},
		{"401", status(401), false},
		{"404", status(404), false},
		{"501", status(501), false},
		{"not OpenSearch", &opensearch.TransportError{Op: "PUT", Err: fmt.Errorf("%w: not HTTP: %w", opensearch.ErrNotOpenSearch, io.EOF)}, false},
		{"certificate", &opensearch.TransportError{Op: "PUT", Err: fmt.Errorf("%w: x509", opensearch.ErrCertificate)}, false},
		{"one node refused, one 503", fmt.Errorf("opensearch: no address served it: %w", errors.Join(transport, status(503))), true},
		{"one node refused, one 401", fmt.Errorf("opensearch: no address served it: %w", errors.Join(transport, status(401))), false},
		{"something else", errors.New("opensearch: invalid template"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.transient, transientOpenSearch(tc.err), "%v", tc.err)
		})
	}
}

// TestTransientKafka: what the start tries again on Kafka.
func TestTransientKafka(t *testing.T) {
	outOfBrokers := func(errs ...error) error {
		return fmt.Errorf("kafka: connect to [b:9092]: %w", sarama.Wrap(sarama.ErrOutOfBrokers, errs...))
	}
	for _, tc := range []struct {
		name      string
		err       error
		transient bool
	}{
		{"connection refused", outOfBrokers(refused("b:9092")), true},
		{"connection reset", outOfBrokers(syscall.ECONNRESET), true},
		{"closed (EOF)", outOfBrokers(io.EOF), true},
		{"no controller yet", fmt.Errorf("kafka: create topic %q: %w", "t", &sarama.TopicError{Err: sarama.ErrNotController}), true},
		{"leader not available", fmt.Errorf("kafka: describe topic %q: %w", "t", sarama.ErrLeaderNotAvailable), true},
		{"wrong password", outOfBrokers(sarama.ErrSASLAuthenticationFailed), false},
		{"not authorized", fmt.Errorf("%w: create on topic t", kafka.ErrNotAuthorized), false},
		{"missing topic", fmt.Errorf("%w: source topic t", kafka.ErrTopicNotFound), false},
		{"plain listener, TLS client", outOfBrokers(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), false},
		{"unknown authority", outOfBrokers(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), false},
		{"invalid option", fmt.Errorf("%w: partitions", kafka.ErrInvalidOption), false},
		{"something else", errors.New("kafka: topic has no partitions"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.transient, transientKafka(tc.err), "%v", tc.err)
		})
	}
}

// TestShortCause: the gist of an error for the waiting line.
func TestShortCause(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&opensearch.TransportError{Op: "PUT", Err: refused("n:9200")}, "connection refused"},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), "connection reset"},
		{fmt.Errorf("x: %w", io.EOF), "connection closed (EOF)"},
		{&opensearch.HTTPError{Op: "x", Status: 503}, "status 503 Service Unavailable"},
		{&opensearch.TransportError{Op: "PUT", Err: context.DeadlineExceeded}, "no answer in time"},
		{errors.New("kafka server: the broker is weird"), "kafka server: the broker is weird"},
	} {
		require.Equal(t, tc.want, shortCause(tc.err), "%v", tc.err)
	}
}
