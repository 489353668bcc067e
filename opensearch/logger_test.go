package opensearch_test

import (
	"log"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// TestMain runs the package's tests with a default logger that discards: a Client without a
// Config.Logger logs to slog.Default(), and the tests that read logs give their own logger.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// TestDefaultLogger: a Client without a Config.Logger, and its sinks, log to slog.Default()
// as it was when NewClient was called. Before, they discarded, and adopters who left the
// Logger unset saw nothing of an outage (the sink retrying a 503, here) but Stats.
func TestDefaultLogger(t *testing.T) {
	// Not parallel: it sets the process's default logger, and puts it back (slog.SetDefault
	// also sends the log package's output to the handler given).
	prev, w, flags := slog.Default(), log.Writer(), log.Flags()
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(w)
		log.SetFlags(flags)
	})
	var logs syncbuf.Buffer
	slog.SetDefault(textLogger(&logs))
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{serve(t, page(503, "text/plain", "no cluster-manager"), false)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	slog.SetDefault(prev) // taken when the Client was made: what follows still goes to logs

	s, err := opensearch.NewSink(c, recMapping, opensearch.WithDeadLetter(&collector{}),
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	require.NoError(t, err)
	require.Error(t, s.Write(t.Context(), recs(3)))
	require.Contains(t, logs.String(), "level=WARN msg=\"opensearch: bulk request failed, retrying\"")
	require.Contains(t, logs.String(), "status 503")
}
