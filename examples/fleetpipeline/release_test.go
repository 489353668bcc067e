package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
)

// TestNewReleaseKeepsStateOffline: a restart whose graph changed (here -zone-demand=false drops
// the zone demand branch, as a new release that adds or drops an output does) resumes the
// operators it kept by name: the cab stats documents and the alerts over the two runs are
// those of an uninterrupted run. Before, the checkpoint of the other graph was refused, every operator
// started cold from the committed offset (the oldest open window of any operator, the
// tracker's), and windows already written were written again from part of their records.
func TestNewReleaseKeepsStateOffline(t *testing.T) {
	t.Parallel()
	recs := topicRecords(t, feed.Options{Sources: "porto,sim", Porto: portoCSV(t), SimEvents: 30_000, SimCabs: 150, Seed: 3})
	batches := cut(recs)
	before := testConfig(t, "-stats-window", "1m")
	after := testConfig(t, "-stats-window", "1m", "-zone-demand=false")

	full := newOfflineRun(t, before, newOfflineLogs())
	full.run(batches, nil, -1)
	want := docs{}
	want.add(t, before, full)
	require.NotEmpty(t, want["cab-stats"])
	require.NotEmpty(t, want["cab-alerts"])

	for _, crash := range []int{3, len(batches) / 3, len(batches) / 2, len(batches) * 3 / 4} {
		logs := newOfflineLogs()
		got := docs{}
		first := newOfflineRun(t, before, logs)
		first.run(batches[:crash], nil, crash)
		got.add(t, before, first)
		next := newOfflineRun(t, after, logs)
		next.run(batches, first.committed(), -1)
		got.add(t, after, next)
		for _, index := range []string{"cab-stats", "cab-alerts"} {
			diff := 0
			for id, doc := range want[index] {
				if got[index][id] != doc {
					if diff++; diff <= 3 {
						t.Errorf("new release after %d of %d batches: %s %s:\n want %s\n got  %s", crash, len(batches), index, id, doc, got[index][id])
					}
				}
			}
			require.Zero(t, diff, "new release after %d batches: %s documents that differ", crash, index)
			require.Len(t, got[index], len(want[index]), "new release after %d batches: %s documents", crash, index)
		}
	}
}
