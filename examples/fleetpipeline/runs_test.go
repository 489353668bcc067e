package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/stream"
)

// TestBoundedRunsInARowOffline: the job run -bounded (or -exit-when-idle) three times while
// the topic grows, each run on the records the topic had when it started, from the positions
// the run before committed, writes the documents of one run over all the records: cab stats,
// alerts and zone demand (whose partials go through the zone repartition), and with
// -rekey-by-cab, whose cab repartition comes before the tracker and the cab stats. Windows open
// at a run's end are written early by it and again, complete, by the next run. Without the
// repartition's commit held before the end, zone demand and, with -rekey-by-cab, cab stats
// were written smaller; without stream.WithRevisions, zone demand.
func TestBoundedRunsInARowOffline(t *testing.T) {
	t.Parallel()
	recs := topicRecords(t, feed.Options{Sources: "sim", SimEvents: 30_000, SimCabs: 120, Seed: 3, Faults: true})
	ends := []int{len(recs) / 3, len(recs) * 3 / 5, len(recs)}
	for name, extra := range map[string][]string{"keyed by cab": nil, "rekey-by-cab": {"-rekey-by-cab"}} {
		t.Run(name, func(t *testing.T) {
			c := testConfig(t, append([]string{"-stats-window", "1m", "-zone-window", "1m"}, extra...)...)
			one := newOfflineRun(t, c, newOfflineLogs())
			one.run(cut(recs), nil, -1)
			want := docs{}
			want.add(t, c, one)
			require.NotEmpty(t, want["zone-demand"])
			require.NotEmpty(t, want["cab-stats"])

			got := docs{}
			logs := newOfflineLogs()
			var pos []stream.Position
			for _, end := range ends {
				r := newOfflineRun(t, c, logs)
				r.run(cut(recs[:end]), pos, -1)
				got.add(t, c, r)
				pos = r.committed()
			}
			for _, index := range []string{"cab-stats", "cab-alerts", "zone-demand"} {
				diff := 0
				for id, w := range want[index] {
					if g := got[index][id]; g != w {
						if diff++; diff <= 2 {
							t.Errorf("%s %s:\n want %s\n got  %s", index, id, w, g)
						}
					}
				}
				require.Zero(t, diff, "%s: documents that differ from one run's (of %d)", index, len(want[index]))
				require.Len(t, got[index], len(want[index]), index)
			}
		})
	}
}
