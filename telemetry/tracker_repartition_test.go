// Tests of the tracker downstream of a repartition (fleetpipeline -rekey-by-cab).

package telemetry_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
)

type cabPair = stream.Pair[string, telemetry.Event]

// rekeyedTracker builds Queue -> rekey by cab through log (2 partitions) -> Track, with
// device-silent after a minute.
func rekeyedTracker(t *testing.T, log *streamtest.ExchangeLog[cabPair], opts ...stream.Option) (*streamtest.Harness, *streamtest.Queue[telemetry.Event], *streamtest.Collector[telemetry.Alert]) {
	t.Helper()
	h := streamtest.New(t, time.Second, opts...)
	q, s := streamtest.NewQueue[telemetry.Event](h)
	q.SetPartitions(3)
	keyed := stream.Map(s, func(e telemetry.Event) cabPair { return stream.KV(e.CabID, e) })
	_, shuffled := streamtest.NewRepartition(h, keyed, "cabs", log)
	tr, err := telemetry.Track(stream.Map(shuffled, func(p cabPair) telemetry.Event { return p.Value }),
		telemetry.WithSilentAfter(time.Minute))
	require.NoError(t, err)
	return h, q, streamtest.Collect(tr.Alerts())
}

func silentIDs(al []telemetry.Alert) []string {
	var ids []string
	for _, a := range al {
		if a.Type == telemetry.AlertDeviceSilent {
			ids = append(ids, a.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestTrackRepartitionedSilence: a repartition's partition interleaves upstream partitions
// that are at different event times (here partition 0 is read three times as fast as the
// others). Device-silent alerts fire on the upstream marks as of each record
// (stream.PartitionContext.WatermarkAt), never on the newest event time seen: every alert is
// a real gap of more than a minute in its cab's events, none comes from a cab whose upstream
// partition is only behind; and a replay of the same repartition log in batches of other
// sizes gives exactly the same alerts (a crashed run's alerts, already in OpenSearch, are
// the replay's).
func TestTrackRepartitionedSilence(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 13))
	// Two cabs per upstream partition, in time order on it, an event every 10 s for an hour
	// with some gaps of 2-5 minutes; every cab's last event is at 3600 s, so none goes silent
	// at the end.
	perPart := make([][]telemetry.Event, 3)
	gaps := map[string]bool{} // the device-silent alert ids a gap can give
	for c := range 6 {
		id := fmt.Sprintf("cab-%d", c)
		last := -1.0
		for sec := 0.0; sec <= 3600; {
			if last >= 0 && sec-last > 60 {
				gaps[telemetry.AlertID(id, telemetry.AlertDeviceSilent, "", at(last))] = true
			}
			perPart[c%3] = append(perPart[c%3], ev(id, sec, 41.15, 20, hired))
			last = sec
			if rng.IntN(25) == 0 {
				sec = min(3600, sec+float64(120+rng.IntN(180)))
			} else {
				sec = min(3600, sec+10)
			}
			if last == 3600 {
				break
			}
		}
	}
	for p := range perPart {
		slices.SortStableFunc(perPart[p], func(a, b telemetry.Event) int { return a.Time.Compare(b.Time) })
	}

	log := streamtest.NewExchangeLog[cabPair](2)
	h, q, alerts := rekeyedTracker(t, log)
	for step := 0; ; step++ {
		var b []stream.Record[telemetry.Event]
		for p, n := range []int{30, 10, 10} {
			for range n {
				if len(perPart[p]) == 0 {
					break
				}
				r := rec(perPart[p][0])
				r.Partition = int32(p)
				b = append(b, r)
				perPart[p] = perPart[p][1:]
			}
		}
		if len(b) == 0 {
			break
		}
		q.Add(b...)
	}
	q.End()
	h.RunUntilDone()
	got := silentIDs(alerts.Slice())
	require.NotEmpty(t, got)
	for _, id := range got {
		require.True(t, gaps[id], "%s: no gap of a minute in the cab's events after it", id)
	}
	t.Logf("%d gaps, %d device-silent alerts", len(gaps), len(got))

	// Replays of the repartition log, in downstream batches of 1, 7 and 500 records.
	for _, n := range []int{1, 7, 500} {
		again := streamtest.NewExchangeLog[cabPair](2)
		ex := streamtest.NewExchange(again)
		for p := range int32(2) {
			require.NoError(t, ex.Send(context.Background(), log.Records(p)))
		}
		h, q, alerts := rekeyedTracker(t, again, stream.WithBuffer(n, 0))
		q.End()
		h.RunUntilDone()
		require.Equal(t, got, silentIDs(alerts.Slice()), "replay in batches of %d", n)
	}
}
