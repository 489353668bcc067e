package main

import (
	"regexp"
	"strconv"
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
