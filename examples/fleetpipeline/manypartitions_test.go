package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestManyPartitionsCommit: the job on a telemetry topic and a ride-request topic of 80
// partitions each, so that its two-input repartitions (supply, pickups) read 160 upstream
// partitions and the zones repartition 80. Every partition of every repartition topic
// commits, each checkpoint within the broker's 4,096 bytes. Before the compact marks, the
// marks alone took about 27 bytes per upstream partition: none of the supply repartition's
// partitions ever committed, a Warn line per refused commit, exit 0 (helper-64); then, the
// Source stopped with kafka.ErrCommitMetadataTooLarge.
func TestManyPartitionsCommit(t *testing.T) {
	t.Parallel()
	s := needServices(t)
	topic := testenv.UniqueName(t, "many")
	requests := testenv.UniqueName(t, "many-requests")
	r := newRun(t, s, topic+"-x", "many") // its own topics; the run's input is made below
	r.topic = topic
	const parts = 80
	replay(t, s, topic, "-partitions", fmt.Sprint(parts), "-source", "sim", "-sim-cabs", "300", "-sim-events", "20000",
		"-faults=false", "-requests-topic", requests)
	out := start(t, "fleetpipeline", pipelineBin, r.args(s, "-exit-when-idle", "0", "-bounded", "-requests-topic", requests)...).
		succeed(t, 3*time.Minute)
	records, dead, _ := summary(t, out)
	require.Positive(t, records)
	require.Zero(t, dead)

	admin, err := sarama.NewClusterAdmin(strings.Split(s.brokers, ","), sarama.NewConfig())
	require.NoError(t, err)
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(r.group, nil)
	require.NoError(t, err)
	for _, name := range []string{"supply", "pickups", "zones"} {
		repartition := r.group + "-" + name + "-repartition"
		blocks := resp.Blocks[repartition]
		require.Len(t, blocks, parts, "%s: a commit for every partition", repartition)
		longest := 0
		for p, b := range blocks {
			require.GreaterOrEqual(t, b.Offset, int64(0), "%s/%d committed", repartition, p)
			longest = max(longest, len(b.Metadata))
		}
		require.LessOrEqual(t, longest, 4096)
		t.Logf("%s: the longest checkpoint takes %d bytes", repartition, longest)
	}
}
