package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestGroupInstanceIDRestart: the job run with -group-instance-id, on a graph with six
// members of its group in one process (the telemetry and the ride requests, and the cabs,
// zones, supply and pickups repartitions' consumers), each with an id of its own derived
// from the flag; then run again at once with the same id, after more records. The first
// run's members stay in the group after it exits, holding every partition, for
// -session-timeout (5 minutes); the second run's members take their places at once, with no
// rebalance, so it reads the new records and ends long before that (the test allows it 3
// minutes). Two members of one process with the same id would refuse to start, or fence
// each other, and the run would fail.
func TestGroupInstanceIDRestart(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "static")
	requests := testenv.UniqueName(t, "static-requests")
	r := newRun(t, s, topic, "static")
	ensureTopic(t, s, requests)
	sim := func(seed string) {
		replay(t, s, topic, "-source", "sim", "-sim-cabs", "20", "-sim-events", "2000", "-seed", seed, "-unkeyed",
			"-faults=false", "-requests-topic", requests)
	}
	args := r.args(s, "-exit-when-idle", "0", "-bounded", "-rekey-by-cab", "-requests-topic", requests,
		"-group-instance-id", "fleet-0", "-session-timeout", "5m")

	sim("1")
	first, dead, _ := summary(t, start(t, "fleetpipeline (first)", pipelineBin, args...).succeed(t, 3*time.Minute))
	require.EqualValues(t, 2000, first)
	require.Zero(t, dead)
	want := []string{"fleet-0", "fleet-0.cabs", "fleet-0.pickups", "fleet-0.requests", "fleet-0.supply", "fleet-0.zones"}
	require.Equal(t, want, testenv.GroupInstanceIDs(t, strings.Split(s.brokers, ","), r.group), "the exited run's members stay, each with its own id")

	sim("2")
	second, dead, _ := summary(t, start(t, "fleetpipeline (second)", pipelineBin, args...).succeed(t, 3*time.Minute))
	require.EqualValues(t, 2000, second, "the records after the first run's commits")
	require.Zero(t, dead)
	require.Equal(t, want, testenv.GroupInstanceIDs(t, strings.Split(s.brokers, ","), r.group), "the second run's members took their places")
}
