package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestBoundedWithFeaturesOff: -bounded reads to the end offsets present at start and exits 0
// by itself (without -exit-when-idle), and -zone-demand=false -alerts=false write cab stats
// only (issue 14, item 5).
func TestBoundedWithFeaturesOff(t *testing.T) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "bounded")
	r := newRun(t, s, topic, "bounded")
	replay(t, s, topic, "-source", "sim", "-sim-cabs", "20", "-sim-events", "3000")
	out := start(t, "fleetpipeline", pipelineBin, r.args(s, "-exit-when-idle", "0", "-bounded",
		"-zone-demand=false", "-alerts=false")...).succeed(t, 2*time.Minute)
	records, _, _ := summary(t, out)
	require.EqualValues(t, 3000, records, "every record up to the end offsets at start")
	os := newOS(t, s)
	os.refresh(r.index("cab-stats") + "," + r.index("zone-demand") + "," + r.index("cab-alerts"))
	require.Positive(t, os.count(r.index("cab-stats")))
	require.Zero(t, os.count(r.index("zone-demand")), "zone demand is off")
	require.Zero(t, os.count(r.index("cab-alerts")), "alerts are off")
}
