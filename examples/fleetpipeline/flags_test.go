package main

import (
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

var batchDone = regexp.MustCompile(`fleetpipeline: batch done" batch=\d+ records=(\d+)`)

// TestBoundedWithFeaturesOff: -bounded reads to the end offsets present at start and exits 0
// by itself (without -exit-when-idle), and -zone-demand=false -alerts=false write cab stats
// only (issue 14, item 5). -max-batch bounds every batch, and -v logs each one.
func TestBoundedWithFeaturesOff(t *testing.T) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "bounded")
	r := newRun(t, s, topic, "bounded")
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "20", "-sim-events", "3000")
	out := start(t, "fleetpipeline", pipelineBin, r.args(s, "-exit-when-idle", "0", "-bounded",
		"-zone-demand=false", "-alerts=false", "-max-batch", "500", "-v")...).succeed(t, 2*time.Minute)
	records, dead, _ := summary(t, out)
	require.EqualValues(t, 3000, records, "every record up to the end offsets at start")
	// The summary reports the outputs that ran: those that are off printed "created 0".
	require.Regexp(t, `fleetpipeline: cab-stats\s+created [1-9]`, out)
	require.NotRegexp(t, `fleetpipeline: zone-demand\s+created`, out, "zone demand is off")
	require.NotRegexp(t, `fleetpipeline: cab-alerts\s+created`, out, "alerts are off")
	var batched, full int
	for _, m := range batchDone.FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		require.LessOrEqual(t, n, 500, "-max-batch 500 bounds every batch")
		batched += n
		if n == 500 {
			full++
		}
	}
	require.EqualValues(t, records-dead, batched, "every record but the source's dead letters in a logged batch")
	require.Positive(t, full, "the backlog ran in full batches")
	os := newOS(t, s)
	os.refresh(r.index("cab-stats") + "," + r.index("zone-demand") + "," + r.index("cab-alerts"))
	require.Positive(t, os.count(r.index("cab-stats")))
	require.Zero(t, os.count(r.index("zone-demand")), "zone demand is off")
	require.Zero(t, os.count(r.index("cab-alerts")), "alerts are off")
}

// TestStoppedBackfillExitsNonZero: a run that ends by itself (here -exit-when-idle, an
// hour) stopped by SIGTERM while it runs, before its input ended, exits 1 and says why: it
// exited 0, as when it had read its input and written every window, and a scheduler took the
// interrupted backfill for done. A run without an end still stops with exit 0
// (TestScaleOutSameDocuments' A).
func TestStoppedBackfillExitsNonZero(t *testing.T) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "stopped")
	r := newRun(t, s, topic, "stopped")
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "5", "-sim-events", "200")
	p := start(t, "fleetpipeline", pipelineBin, r.args(s, "-exit-when-idle", "1h")...)
	waitFor(t, time.Minute, 20*time.Millisecond, "the first batch", func() bool {
		require.False(t, p.exited(), "ended early:\n%s", tail(p.out.String(), 3000))
		recs, _ := progress(p)
		return recs > 0
	})
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	err := p.wait(t, time.Minute)
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "a stopped -exit-when-idle run exited 0:\n%s", tail(p.out.String(), 2000))
	require.Equal(t, 1, ee.ExitCode())
	require.Contains(t, p.out.String(), "before the input ended (-exit-when-idle)")
}

// TestChangedWindowStopsRestart: the fleet job restarted under another -stats-window than
// the committed checkpoint's stops with stream.ErrOperatorChanged, exit non-zero, having
// written and committed nothing; -accept-changed-operators restarts it once with the
// changed windows cold; the run after that needs no flag (the checkpoint records the new
// window). Before stream's check, the restart mixed results of the two windows, exit 0.
func TestChangedWindowStopsRestart(t *testing.T) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "changed")
	r := newRun(t, s, topic, "changed")
	bounded := func(window string, more ...string) *proc {
		return start(t, "fleetpipeline", pipelineBin, r.args(s, append([]string{"-exit-when-idle", "0", "-bounded",
			"-alerts=false", "-stats-window", window}, more...)...)...)
	}
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "10", "-sim-events", "1000")
	first, _, _ := summary(t, bounded("1m").succeed(t, 2*time.Minute))
	require.EqualValues(t, 1000, first)

	replay(t, s, topic, "-source", "sim", "-sim-cabs", "10", "-sim-events", "1000", "-seed", "2")
	offsets, checkpoints, _ := groupOffsets(t, s, topic, r.group)
	os := newOS(t, s)
	os.refresh(r.index("cab-stats"))
	docs := os.count(r.index("cab-stats"))
	p := bounded("2m")
	err := p.wait(t, 2*time.Minute)
	out := p.out.String()
	require.Error(t, err, "a restart under another -stats-window must fail; output:\n%s", tail(out, 3000))
	require.Contains(t, out, "parameters changed since the committed checkpoint")
	require.Contains(t, out, `"cab-stats" (now tumbling(2m0s)`)
	require.Contains(t, out, "run once with -accept-changed-operators", "the job's flag, not only the library's option")
	after, afterCheckpoints, _ := groupOffsets(t, s, topic, r.group)
	require.Equal(t, offsets, after, "the stopped restart committed nothing")
	require.Equal(t, checkpoints, afterCheckpoints)
	os.refresh(r.index("cab-stats"))
	require.Equal(t, docs, os.count(r.index("cab-stats")), "the stopped restart wrote nothing")

	second, _, _ := summary(t, bounded("2m", "-accept-changed-operators").succeed(t, 2*time.Minute))
	require.GreaterOrEqual(t, second, int64(1000), "the records after the committed offsets, at least")
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "10", "-sim-events", "1000", "-seed", "3")
	bounded("2m").succeed(t, 2*time.Minute) // the checkpoint now records the 2m window
}

// TestAcceptedChangeWithQuietRequests: after a run with -accept-changed-operators, the next
// restart under the same parameters needs no flag, also when the ride-request partitions had
// nothing more to read in the accepted run (committed at their end: only stateless operators
// read them). They used to keep the checkpoint of the old parameters, and the restart
// without the flag stopped with ErrOperatorChanged, naming cab-stats on a request partition.
func TestAcceptedChangeWithQuietRequests(t *testing.T) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "quietreq")
	requests := testenv.UniqueName(t, "quietreq-requests")
	r := newRun(t, s, topic, "quietreq")
	ensureTopic(t, s, requests)
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "20", "-sim-events", "2000", "-requests-topic", requests)
	bounded := func(window string, more ...string) *proc {
		return start(t, "fleetpipeline", pipelineBin, r.args(s, append([]string{"-exit-when-idle", "0", "-bounded",
			"-alerts=false", "-requests-topic", requests, "-stats-window", window}, more...)...)...)
	}
	bounded("1m").succeed(t, 2*time.Minute)
	committed, _, _ := groupOffsets(t, s, requests, r.group)
	require.Positive(t, slices.Max(committed), "the requests were read and committed")

	bounded("2m", "-accept-changed-operators").succeed(t, 2*time.Minute)
	out := bounded("2m").succeed(t, 2*time.Minute)
	require.NotContains(t, out, "parameters changed since the committed checkpoint")
}
