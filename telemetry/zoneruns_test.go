// Two-phase zone demand over bounded runs one after another (fleetpipeline -exit-when-idle
// or -bounded again on the next records): the documents' final state against one run.

package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// zoneTopic is a random topic of parts partitions in arrival order: cabs stay on their
// partition, partitions are up to five minutes apart, events in order within a partition or
// out of order within the bound (2 s).
func zoneTopic(rng *rand.Rand, parts int) []stream.Record[telemetry.Event] {
	clock := make([]time.Time, parts)
	for p := range clock {
		clock[p] = t0.Add(time.Duration(rng.IntN(300)) * time.Second)
	}
	next := make([]int64, parts)
	var recs []stream.Record[telemetry.Event]
	for range 300 + rng.IntN(900) {
		p := rng.IntN(parts)
		clock[p] = clock[p].Add(time.Duration(rng.IntN(2500)) * time.Millisecond)
		at := clock[p].Add(-time.Duration(rng.IntN(2000)) * time.Millisecond)
		cab := fmt.Sprintf("cab-%d-%d", p, rng.IntN(8))
		e := telemetry.Event{CabID: cab, Time: at, Lat: 41.14 + 0.01*float64(rng.IntN(3)), Lon: lon0 + 0.01*float64(rng.IntN(3)),
			Status: []telemetry.Status{avail, hired}[rng.IntN(2)]}
		if rng.IntN(3) > 0 {
			e.SpeedKmh, e.Has = float64(rng.IntN(90)), telemetry.HasSpeed
		}
		recs = append(recs, stream.Record[telemetry.Event]{Value: e, EventTime: e.Time, Partition: int32(p), Offset: next[p]})
		next[p]++
	}
	return recs
}

// zoneRuns runs two-phase zone demand over topic in bounded runs one after another, run i
// over the records before ends[i] (the topic as it stood when the run started) from the
// positions the run before committed, each in batches of up to batch records; the exchange's
// log outlives the runs, as a Kafka topic does. Run crashRun (if crash > 0) crashes first at
// its batch crash (an output fails after the batch was sent to the exchange, so it is not
// acknowledged), and starts again from what was committed. It returns the documents by id, a
// later write overwriting, the records late in either window, and the batches of run
// crashRun.
func zoneRuns(t *testing.T, topic []stream.Record[telemetry.Event], parts int, ends []int, batch, crashRun, crash int) (map[string]telemetry.ZoneDemand, int, int) {
	t.Helper()
	const exParts = 3
	log := streamtest.NewExchangeLog[telemetry.ZonePartial](exParts)
	docs := map[string]telemetry.ZoneDemand{}
	late, batches := 0, 0
	var pos []stream.Position
	run := func(end, crash int) int {
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(2*time.Second))
		q, s := streamtest.NewQueue[telemetry.Event](h)
		q.SetPartitions(parts)
		tr, err := telemetry.Track(s)
		require.NoError(t, err)
		local, err := telemetry.ZoneDemandLocal(tr.Events(), window.Tumbling(time.Minute), telemetry.WithWindowOptions(window.WithGrace(5*time.Second)))
		require.NoError(t, err)
		ex := streamtest.NewExchange(log)
		h.AddExchange(ex)
		byZone := stream.RepartitionByTime(telemetry.ZonePartials(local), "zones", ex, telemetry.ZonePartialHash, stream.WithRevisions())
		merged, err := telemetry.ZoneDemandMerge(roundTrip(t, byZone), window.Tumbling(time.Minute), telemetry.WithWindowOptions(window.WithGrace(5*time.Second)))
		require.NoError(t, err)
		res := streamtest.Collect(merged.Results())
		lateLocal, lateMerged := streamtest.Collect(local.Late()), streamtest.Collect(merged.Late())
		stream.ForEachBatch(merged.Results(), func(_ context.Context, info stream.BatchInfo, _ []window.Result[string, telemetry.ZoneDemand]) error {
			if int(info.Batch) == crash {
				return stream.Permanent(errors.New("crash"))
			}
			return nil
		})
		q.Resume(pos...)
		from := map[int32]int64{}
		for _, p := range pos {
			from[p.Partition] = p.Offset
		}
		var b []stream.Record[telemetry.Event]
		for _, r := range topic[:end] {
			if r.Offset < from[r.Partition] {
				continue
			}
			if b = append(b, r); len(b) == batch {
				q.Add(b...)
				b = nil
			}
		}
		if len(b) > 0 {
			q.Add(b...)
		}
		q.End()
		steps := 0
		for {
			steps++
			done, err := h.TryStep()
			if err != nil {
				require.Positive(t, crash, "no crash asked: %v", err)
				break // crashed: the batch's results may be written, and were sent to the exchange
			}
			if done {
				break
			}
		}
		// A document written is written, crash or not (the sink writes before the ack).
		for _, r := range res.Slice() {
			if r.Final {
				d := telemetry.ZoneDemandDoc(r)
				docs[d.DocID("p")] = d
			}
		}
		late += len(lateLocal.Slice()) + len(lateMerged.Slice())
		pos = pos[:0]
		for p := range int32(parts) {
			if cp, ok := q.CommittedPosition(p); ok {
				pos = append(pos, cp)
			}
		}
		return steps
	}
	for i, end := range ends {
		if i == crashRun && crash > 0 {
			run(end, crash)
		}
		if n := run(end, -1); i == crashRun {
			batches = n
		}
	}
	return docs, late, batches
}

// TestZoneDemandBoundedRunsInARow: N bounded runs one after another, each on the records the
// topic had grown to (random split points), write the zone-demand documents of one run over
// all the records: a window open across a run's end was written early by that run, and the
// next run rebuilds it from the first records of its partitions' open windows, and its
// complete partials replace the early ones in the merged window (they were dropped as copies
// of them, and the document written smaller). Records late in the runs in a row are only
// logged: package window's replay at a run's end may report a record late again (seeds 3,
// 29 and 34), a duplicate late report, not a wrong document.
func TestZoneDemandBoundedRunsInARow(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 11))
		parts := 1 + rng.IntN(4)
		topic := zoneTopic(rng, parts)
		batch := 20 + rng.IntN(200)
		want, wantLate, _ := zoneRuns(t, topic, parts, []int{len(topic)}, batch, -1, 0)
		require.NotEmpty(t, want)
		runs := 2 + rng.IntN(4)
		ends := []int{len(topic)}
		for range runs - 1 {
			ends = append(ends, rng.IntN(len(topic)+1))
		}
		slices.Sort(ends)
		got, late, _ := zoneRuns(t, topic, parts, ends, batch, -1, 0)
		if late != wantLate {
			t.Logf("seed %d: %d late records, one run %d (runs ending at %v of %d)", seed, late, wantLate, ends, len(topic))
		}
		requireSameDocs(t, want, got, "seed %d: %d partitions, runs ending at %v of %d records", seed, parts, ends, len(topic))
	}
}

// TestZoneDemandBoundedRunsInARowCrash: the second of bounded runs in a row crashes at one of
// its batches (after the batch was sent to the exchange, before its acknowledgement) and
// starts again: the documents are still one run's. The crashed run's early and complete
// partials, and their copies from the restart, replace one another per source partition.
// The sweep covers every batch of the run, its last ones too: a crash after its upstream
// partitions sent their end marks leaves them after the held commit, and the restart must
// not take them for its own end (they carry the crashed attempt's run; see "Runs one after
// another" in package stream). Before end marks carried their run, the restart fired every
// window on them and the next run wrote some windows smaller (seed 0: 33 documents for a
// crash at batch 6 of 8).
func TestZoneDemandBoundedRunsInARowCrash(t *testing.T) {
	crashes := 0
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 13))
		parts := 1 + rng.IntN(4)
		topic := zoneTopic(rng, parts)
		batch := 40 + rng.IntN(200)
		want, _, _ := zoneRuns(t, topic, parts, []int{len(topic)}, batch, -1, 0)
		ends := []int{len(topic) / 3, 2 * len(topic) / 3, len(topic)}
		_, _, n := zoneRuns(t, topic, parts, ends, batch, 1, 0)
		for crash := 1; crash <= n; crash++ {
			got, _, _ := zoneRuns(t, topic, parts, ends, batch, 1, crash)
			requireSameDocs(t, want, got, "seed %d: %d partitions, runs ending at %v, crash at batch %d of %d", seed, parts, ends, crash, n)
			crashes++
		}
	}
	require.Greater(t, crashes, 40)
}

// requireSameDocs fails when got's documents are not want's.
func requireSameDocs(t *testing.T, want, got map[string]telemetry.ZoneDemand, format string, args ...any) {
	t.Helper()
	what := fmt.Sprintf(format, args...)
	diff := 0
	for id, w := range want {
		if g := got[id]; g != w {
			if diff++; diff <= 3 {
				t.Errorf("%s: %s %s:\n want %+v\n got  %+v", what, w.Zone, w.WindowStart.Format("15:04"), w, g)
			}
		}
	}
	require.Zero(t, diff, "%s: documents that differ from one run's", what)
	require.Len(t, got, len(want), "%s: documents", what)
}
