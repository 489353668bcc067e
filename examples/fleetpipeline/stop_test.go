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
	s := needServices(t)
	topic := testenv.UniqueName(t, "second-int")
	r := newRun(t, s, topic, "second-int")
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "20", "-sim-events", "3000")
	// OpenSearch behind a proxy that holds every bulk request: the job's first batch with
	// documents stays in flight.
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
	defer srv.Close()
	defer close(release)
	held := s
	held.opensearch = srv.URL
	p := start(t, "fleetpipeline", pipelineBin, r.args(held, "-exit-when-idle", "0")...)
	select {
	case <-bulk:
	case <-time.After(time.Minute):
		t.Fatalf("no bulk request within a minute; output:\n%s", tail(p.out.String(), 3000))
	}
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	waitFor(t, 20*time.Second, 20*time.Millisecond, "the first interrupt's notice", func() bool {
		return strings.Contains(p.out.String(), "interrupt again to exit at once") || p.exited()
	})
	require.False(t, p.exited(), "the batch in flight holds the graceful stop")
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	err = p.wait(t, 5*time.Second)
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "exit status: %v", err)
	require.Equal(t, 130, ee.ExitCode(), "128 + SIGINT, as a shell reports an interrupted command")
	require.Contains(t, p.out.String(), "fleetpipeline: interrupt again: exiting at once")
}
