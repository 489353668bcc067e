// The job's -http server during its start, offline: Kafka is a listener that accepts and
// never answers, so the job stays in its start for as long as the test wants.

package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestHealthDuringStart: the -http server listens from the job's start, before it reaches
// Kafka and loads its tables: /healthz answers 200 (starting) and /readyz 503, and the status
// page is there. It was started only after the connections and loads, so during a long start
// (a broker slow to answer, a large registry) an operator saw nothing and a liveness probe on
// /healthz found nothing listening, and restarted the job in the middle of its start.
func TestHealthDuringStart(t *testing.T) {
	broker, accepted := testenv.SilentListener(t)
	c := testConfig(t, "-brokers", broker, "-opensearch", "http://"+deadAddr(t), "-http", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var log syncbuf.Buffer
	go func() { done <- run(ctx, c, &log) }()
	defer func() { cancel(); <-done }()

	select {
	case <-accepted: // the job is in its start, waiting on Kafka
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("run returned in its start: %v", err)
	}
	// The server's addresses were logged before the job dialled Kafka; before the fix they
	// came only once it had reached Kafka and loaded its tables.
	m := regexp.MustCompile(`healthz=(\S+)/healthz`).FindStringSubmatch(log.String())
	require.NotNil(t, m, "no status server while the job waits for Kafka; log:\n%s", log.String())
	get := func(path string) (int, string) {
		resp, err := http.Get(m[1] + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "starting")
	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "no batch acknowledged yet")
	code, body = get("/")
	require.Equal(t, http.StatusOK, code, "the status page")
	require.Contains(t, body, "<html")
}
