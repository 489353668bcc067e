package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/testenv"
)

// TestRekeyByCabSwitchedZoneDemand: -rekey-by-cab turned off (or on) between two bounded
// runs on one consumer group changes which source feeds the zone repartition, whose
// committed checkpoint holds the marks (per upstream partition watermarks) of the source
// that fed it in the first run. The second run, over records produced after the first,
// ends by itself and writes zone demand for the windows of the new records, as a run of
// the second run's graph on a fresh group does. Before stream's repartition dropped the
// marks of sources that no longer feed it, they held its watermark where the first run left
// it: no zone window of the new records closed, and the second run never ended (both ways;
// 2 of 2 each on the code before). With that alone it still stalled in part of the runs (off
// then on 11 of 34, on then off 1 of 10, helper-66): the second run re-reads the zone
// repartition from its committed offset, and the first run's records after it include marks
// of the old feeding source's partitions, which brought their marks back. The repartition
// now ignores marks of sources that do not feed it in its graph (16 of 16 subtests since).
func TestRekeyByCabSwitchedZoneDemand(t *testing.T) {
	const events, cabs = 8000, 10 // 1 event per cab and second: 800 s of event time
	for _, tc := range []struct {
		name          string
		first, second []string
	}{
		{"on then off", []string{"-rekey-by-cab"}, nil},
		{"off then on", nil, []string{"-rekey-by-cab"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := needServices(t)
			topic := testenv.UniqueName(t, "rekeyswitch")
			r := newRun(t, s, topic, "rekeyswitch")
			bounded := func(r pipelineRun, name string, flags []string) *proc {
				args := append([]string{"-exit-when-idle", "0", "-bounded", "-alerts=false", "-zone-window", "1m"}, flags...)
				return start(t, name, pipelineBin, r.args(s, args...)...)
			}
			// One simulated fleet, produced in two halves: the second half's events come
			// after the first's in event time.
			sim := []string{"-source", "sim", "-sim-cabs", strconv.Itoa(cabs), "-sim-events", strconv.Itoa(events)}
			replay(t, s, topic, append(sim, "-limit", strconv.Itoa(events/2))...)
			first, _, _ := summary(t, bounded(r, "fleetpipeline (first run)", tc.first).succeed(t, time.Minute))
			require.EqualValues(t, events/2, first)
			_, _, zonesCommitted := groupOffsets(t, s, r.group+"-zones-repartition", r.group)
			require.Positive(t, zonesCommitted, "the first run committed the zone repartition (its marks)")

			c := newOS(t, s)
			zoneKey := func(d map[string]any) string { return fmt.Sprint(d["zone"], "@", d["window_start"]) }
			windowStart := func(d map[string]any) time.Time {
				ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(d["window_start"]))
				require.NoError(t, err)
				return ts
			}
			var last time.Time // the first run's last zone window: open at its end, written early
			for _, d := range byContent(t, c, r.index("zone-demand"), zoneKey) {
				if ts := windowStart(d); ts.After(last) {
					last = ts
				}
			}
			require.False(t, last.IsZero(), "the first run wrote zone demand")

			replay(t, s, topic, append(sim, "-skip", strconv.Itoa(events/2))...)
			ref := newRun(t, s, topic, "rekeyswitch-ref")
			refRun := bounded(ref, "fleetpipeline (reference)", tc.second)
			second := bounded(r, "fleetpipeline (second run)", tc.second)
			// The runs end by themselves (-bounded): a stalled watermark keeps a window open.
			out := second.succeed(t, 45*time.Second)
			refRecords, _, _ := summary(t, refRun.succeed(t, 45*time.Second))
			require.EqualValues(t, events, refRecords)
			records, _, _ := summary(t, out)
			require.GreaterOrEqual(t, records, int64(events/2), "the second run read the new records")

			// The zone windows after the first run's last one hold only new records.
			newer := func(pattern string) map[string]map[string]any {
				m := map[string]map[string]any{}
				for k, d := range byContent(t, c, pattern, zoneKey) {
					if windowStart(d).After(last) {
						m[k] = d
					}
				}
				return m
			}
			want, got := newer(ref.index("zone-demand")), newer(r.index("zone-demand"))
			windows := func(m map[string]map[string]any) (n int, sum float64) {
				seen := map[time.Time]bool{}
				for _, d := range m {
					seen[windowStart(d)] = true
					sum += d["events"].(float64)
				}
				return len(seen), sum
			}
			wantWindows, wantSum := windows(want)
			gotWindows, gotSum := windows(got)
			t.Logf("zone demand after %v: reference %d windows, %d zone windows, %.0f events; second run %d windows, %d zone windows, %.0f events",
				last.Format(time.TimeOnly), wantWindows, len(want), wantSum, gotWindows, len(got), gotSum)
			require.GreaterOrEqual(t, wantWindows, 5, "the new records span several zone windows")
			requireSameContent(t, "zone-demand", want, got)
		})
	}
}
