// How the job ends: its status line and its summary, and a second interrupt.

package main

import (
	"bytes"
	"regexp"
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
