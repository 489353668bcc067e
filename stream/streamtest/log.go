// The harness's logger: the pipeline's logs in the test's log.

package streamtest

import (
	"io"
	"log/slog"
	"sync"
	"testing"
)

// testLogger returns a logger that writes warnings and errors as text lines, without the
// wall-clock time, to tb's output (testing.TB.Output: shown with the test's log, under -v or
// when it fails), and discards when tb is nil (Example functions). Info lines (partitions
// assigned, resumed, revoked) are left out: crash and rebalance sweeps make thousands.
func testLogger(tb testing.TB) *slog.Logger {
	if tb == nil {
		return slog.New(slog.DiscardHandler)
	}
	w := &testLog{tb: tb}
	tb.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}}))
}

// testLog writes to a test's output until the test's cleanup, and drops what comes after:
// the testing package panics on output after a test completed, which a pipeline that a
// test ran with Run and did not wait for could still write.
type testLog struct {
	mu     sync.Mutex
	tb     testing.TB
	closed bool
}

var _ io.Writer = (*testLog)(nil)

func (l *testLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(b), nil
	}
	return l.tb.Output().Write(b)
}

func (l *testLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
}
