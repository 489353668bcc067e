// The exit past -shutdown-timeout, when a stage of the stop hangs.

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hungStopEnv makes the test binary a job whose stop never ends (hungStop), with the bound
// it holds.
const hungStopEnv = "FLEETPIPELINE_TEST_HUNG_STOP"

// hungStop is a job whose stop hangs (a source's stop or a commit to a broker gone silent,
// which no share of -shutdown-timeout bounds): it stops on a signal as main does, says
// "ready", and never returns.
func hungStop(bound string) int {
	d, err := time.ParseDuration(bound)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := stopOnSignal(os.Stderr, d, func() { fmt.Fprintln(os.Stderr, "profiles written") })
	defer stop()
	fmt.Fprintln(os.Stderr, "ready")
	<-ctx.Done()
	select {} // the stop that hangs
}

// TestStopBoundedWhenAStageHangs: a stop whose stage hung held the job until the scheduler
// killed it (Kubernetes: 30 s after its SIGTERM), saying nothing. Past -shutdown-timeout the
// job now exits 1, after writing its profiles, saying that what it had not written and
// committed is read again by the next run.
func TestStopBoundedWhenAStageHangs(t *testing.T) {
	const bound = time.Second
	t.Setenv(hungStopEnv, bound.String())
	p := start(t, "hung stop", os.Args[0], "-test.run=^$")
	waitFor(t, time.Minute, 10*time.Millisecond, "the job's start", func() bool {
		return strings.Contains(p.out.String(), "ready") || p.exited()
	})
	require.False(t, p.exited(), "output:\n%s", p.out.String())
	stopped := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	err := p.wait(t, bound+time.Minute) // the bound of the wait, for the failure's output
	took := time.Since(stopped)
	out := p.out.String()
	require.GreaterOrEqual(t, took, bound, "the stop's bound; output:\n%s", out)
	require.Less(t, took, bound+2*time.Second, "the stop's bound (%v) and a margin for the process's exit; output:\n%s", bound, out)
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "exit status: %v", err)
	require.Equal(t, 1, ee.ExitCode())
	require.Contains(t, out, "the stop did not end within -shutdown-timeout (1s): exiting 1")
	require.Contains(t, out, "is read again from the committed offsets by the next run: nothing is lost")
	require.Contains(t, out, "profiles written", "atExit ran")
}
