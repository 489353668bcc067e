// Startup checks: an OpenSearch that cannot be reached at start is reported at once, with the
// address and the cause, and the job exits non-zero instead of waiting silently.

package main

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

func TestStartupOpenSearchUnreachable(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	// A loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	s.opensearch = dead
	r := newRun(t, s, testenv.UniqueName(t, "e2e-startup"), "e2e-startup")

	started := time.Now()
	p := start(t, "fleetpipeline", pipelineBin, r.args(s)...)
	err = p.wait(t, time.Minute)
	require.Error(t, err, "the job must not run without OpenSearch")
	out := p.out.String()
	require.Contains(t, out, "fleetpipeline: index templates:")
	require.Contains(t, out, ln.Addr().String())
	require.Contains(t, out, "connection refused")
	t.Logf("failed after %v: %s", time.Since(started).Round(time.Millisecond), tail(out, 400))
}
