// How the job ends: its status line and its summary, and a second interrupt.

package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// statusLine matches the status goroutine's lines (report.go status).
var statusLine = regexp.MustCompile(`fleetpipeline: (waiting for the first batch|\d+ rec/s)`)

// heldStatus is the job's output. It holds each status line until the summary is written,
// or for at most hold: a status line in flight when the pipeline stops is then written after
// the summary unless run waits for it.
type heldStatus struct {
	hold    time.Duration
	summary chan struct{} // closed at the summary
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (h *heldStatus) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("fleetpipeline: consumed ")) {
		h.once.Do(func() { close(h.summary) })
	} else if statusLine.Match(p) {
		select {
		case <-h.summary:
		case <-time.After(h.hold): // the bound of the hold, not a wait for an event
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.Write(p)
}

// TestStatusLineNotAfterSummary: run stopped the status goroutine (-status-every) without
// waiting for it, so a status line being written when the pipeline stopped came after the
// summary, or after run returned.
func TestStatusLineNotAfterSummary(t *testing.T) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "status-end")
	r := newRun(t, s, topic, "status-end")
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "20", "-sim-events", "3000")
	out := &heldStatus{hold: time.Second, summary: make(chan struct{})}
	c := testConfig(t, r.args(s, "-exit-when-idle", "0", "-bounded", "-status-every", "10ms")...)
	require.NoError(t, run(t.Context(), c, out))
	out.mu.Lock()
	text := out.buf.String()
	out.mu.Unlock()
	end := bytes.LastIndex([]byte(text), []byte("fleetpipeline: consumed "))
	require.Positive(t, end, "no summary in:\n%s", tail(text, 3000))
	require.Empty(t, statusLine.FindString(text[end:]), "a status line after the summary:\n%s", text[end:])
}

// TestSecondInterruptExitsAtOnce: the first SIGINT stops the job gracefully, finishing the
// batch in flight for up to the shutdown grace (30 s) and closing its outputs; a second one
// was ignored, so a user whose stop waited on a hung output could only kill the job. It now
// exits at once, 130, saying so; the first says that a second one would.
func TestSecondInterruptExitsAtOnce(t *testing.T) {
	p := startHeldBatch(t, "second-int")
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	waitFor(t, 20*time.Second, 20*time.Millisecond, "the first interrupt's notice", func() bool {
		return strings.Contains(p.out.String(), "interrupt again to exit at once") || p.exited()
	})
	require.False(t, p.exited(), "the batch in flight holds the graceful stop")
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	err := p.wait(t, 5*time.Second)
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "exit status: %v", err)
	require.Equal(t, 130, ee.ExitCode(), "128 + SIGINT, as a shell reports an interrupted command")
	require.Contains(t, p.out.String(), "fleetpipeline: interrupt again: exiting at once")
}

// TestStopWithinShutdownTimeout: a SIGTERM while OpenSearch was silent waited for the batch in
// flight for the pipeline's shutdown grace (30 s), then for the outputs' close and the
// dead-letter producer's close (30 s each at most), where Kubernetes kills a pod 30 s after
// its SIGTERM. -shutdown-timeout bounds the whole stop: the job exits within it, 1, saying
// that what it did not write is read again by the next run.
func TestStopWithinShutdownTimeout(t *testing.T) {
	const bound = 4 * time.Second
	p := startHeldBatch(t, "stop-bound", "-shutdown-timeout", bound.String())
	stopped := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	err := p.wait(t, bound+time.Minute) // the bound of the wait, for the failure's output
	took := time.Since(stopped)
	out := p.out.String()
	require.Less(t, took, bound+2*time.Second, "the stop's bound (%v) and a margin for the process's exit; output:\n%s", bound, tail(out, 3000))
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "exit status: %v", err)
	require.Equal(t, 1, ee.ExitCode(), "the batch in flight was not written")
	require.Contains(t, out, "for at most 4s (-shutdown-timeout)")
	require.Contains(t, out, "read again", "says that a restart replays what was not written")
}

// startHeldBatch starts the job (with extra flags) over 3,000 events of a new topic named
// after prefix, with OpenSearch behind a proxy that never answers a bulk request (a node gone
// silent after the job's start: the templates and the indexes ahead are made), and returns
// once the first bulk request arrived: the job's first batch with documents is in flight
// until the job gives it up.
func startHeldBatch(t *testing.T, prefix string, extra ...string) *proc {
	t.Helper()
	s := needServices(t)
	topic := testenv.UniqueName(t, prefix)
	r := newRun(t, s, topic, prefix)
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "20", "-sim-events", "3000")
	target, err := url.Parse(s.opensearch)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	bulk, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasSuffix(req.URL.Path, "/_bulk") {
			proxy.ServeHTTP(w, req)
			return
		}
		select {
		case bulk <- struct{}{}:
		default:
		}
		select {
		case <-req.Context().Done():
		case <-release:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	// Cleanups run last first: the job is killed (start's), then the held requests are
	// released, then the server waits for them.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	held := s
	held.opensearch = srv.URL
	p := start(t, "fleetpipeline", pipelineBin, r.args(held, append([]string{"-exit-when-idle", "0"}, extra...)...)...)
	select {
	case <-bulk:
	case <-time.After(time.Minute):
		t.Fatalf("no bulk request within a minute; output:\n%s", tail(p.out.String(), 3000))
	}
	return p
}
