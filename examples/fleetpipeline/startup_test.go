// Startup checks: an OpenSearch that cannot be reached at start is waited for, with a line
// every few seconds that says what the job waits for, up to -opensearch-timeout; then the job
// exits 1 with the address, the step, the wait and the cause. It exited 1 at once, so that a
// job started together with its OpenSearch crash-looped.

package main

import (
	"net"
	"regexp"
	"strings"
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

	const bound = 2 * time.Second
	started := time.Now()
	p := start(t, "fleetpipeline", pipelineBin, r.args(s, "-opensearch-timeout", bound.String())...)
	err = p.wait(t, time.Minute)
	took := time.Since(started)
	require.Error(t, err, "the job must not run without OpenSearch")
	require.Equal(t, 1, p.cmd.ProcessState.ExitCode())
	out := p.out.String()
	require.Contains(t, out, "fleetpipeline: index templates: waiting for OpenSearch at "+dead+" (-opensearch): connection refused; giving up in ")
	require.Regexp(t, regexp.QuoteMeta("fleetpipeline: index templates: gave up after 2s (-opensearch-timeout) and ")+`\d+ attempts? `+
		regexp.QuoteMeta("waiting for OpenSearch at "+dead+" (-opensearch); the last: "), out)
	require.Contains(t, out, "connection refused: check that the URL")
	require.GreaterOrEqual(t, took, bound, "it waited for OpenSearch")
	require.Less(t, strings.Count(out, "waiting for OpenSearch"), 3, "a line every few seconds, not one per attempt:\n%s", out)
	t.Logf("failed after %v: %s", took.Round(time.Millisecond), tail(out, 400))
}
