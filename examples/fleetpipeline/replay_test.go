package main

import (
	"flag"
	"io"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

const replayParts = 6

// topicRecords is the e2e tests' topic, offline: the replay's messages split into partitions
// by the producer's partitioner, with their offsets, and the ones that do not decode left out
// (the Kafka source dead-letters them).
func topicRecords(t *testing.T, o feed.Options) []stream.Record[telemetry.Event] {
	t.Helper()
	msgs, err := feed.Messages(o, io.Discard)
	require.NoError(t, err)
	part := sarama.NewHashPartitioner("")
	var next [replayParts]int64
	recs := make([]stream.Record[telemetry.Event], 0, len(msgs))
	for _, m := range msgs {
		p, err := part.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(m.Key)}, replayParts)
		require.NoError(t, err)
		off := next[p]
		next[p]++
		e, err := telemetry.Decode(m.Value)
		if err != nil {
			continue
		}
		recs = append(recs, stream.Record[telemetry.Event]{Value: e, Partition: p, Offset: off, EventTime: e.Time})
	}
	return recs
}

func testConfig(t *testing.T, args ...string) *config {
	t.Helper()
	fs := flag.NewFlagSet("fleetpipeline", flag.ContinueOnError)
	c := registerFlags(fs)
	require.NoError(t, fs.Parse(args))
	return c
}

// offlineRun is the pipeline's graph in a streamtest harness.
type offlineRun struct {
	h      *streamtest.Harness
	q      *streamtest.Queue[telemetry.Event]
	cabs   *streamtest.Collector[cabResult]
	zones  *streamtest.Collector[zoneResult]
	alerts *streamtest.Collector[telemetry.Alert]
	late   *streamtest.Collector[window.Late[zoneShuffled]]
	split  *splitCabs
}

// offlineLogs are the in-memory repartition topics of offline runs: they outlive a crashed
// run, as Kafka topics do.
type offlineLogs struct {
	zones *streamtest.ExchangeLog[zoneShuffled]
	cabs  *streamtest.ExchangeLog[cabShuffled]
}

func newOfflineLogs() *offlineLogs {
	return &offlineLogs{zones: streamtest.NewExchangeLog[zoneShuffled](replayParts), cabs: streamtest.NewExchangeLog[cabShuffled](replayParts)}
}

func newOfflineRun(t *testing.T, c *config, logs *offlineLogs) *offlineRun {
	h := streamtest.New(t, c.batch, c.pipelineOptions()...)
	q, events := streamtest.NewQueue[telemetry.Event](h)
	q.SetPartitions(replayParts)
	origin := func(part int32) (string, int32, bool) { return "", part, false }
	g, err := c.transforms(events, nil, shuffles{
		byZone: func(s *stream.Stream[zoneShuffled]) *stream.Stream[zoneShuffled] {
			ex := streamtest.NewExchange(logs.zones)
			h.AddExchange(ex)
			return stream.RepartitionByTime(s, "zones", ex, telemetry.ZonePartialHash, stream.WithRevisions())
		},
		byCab: func(s *stream.Stream[cabShuffled]) *stream.Stream[cabShuffled] {
			_, out := streamtest.NewRepartition(h, s, "cabs", logs.cabs)
			return out
		},
		origin: origin,
	}, nil)
	require.NoError(t, err)
	r := &offlineRun{h: h, q: q, cabs: streamtest.Collect(g.cabDocs), alerts: streamtest.Collect(g.alerts), split: g.split}
	if g.zones != nil { // -zone-demand=false: none
		r.zones, r.late = streamtest.Collect(g.zoneDocs), streamtest.Collect(g.zones.Late())
	}
	return r
}

// docs are the documents the outputs wrote, by index and id; a later write overwrites.
type docs map[string]map[string]string

// put records one document an output wrote, encoded with err.
func (d docs) put(t testing.TB, index, id string, body []byte, err error) {
	t.Helper()
	require.NoError(t, err, "encoding %s %s", index, id)
	if d[index] == nil {
		d[index] = map[string]string{}
	}
	d[index][id] = string(body)
}

func (d docs) add(t testing.TB, c *config, r *offlineRun) {
	for _, x := range r.cabs.Slice() {
		doc := telemetry.CabStatsDoc(x)
		body, err := doc.AppendJSON(nil)
		d.put(t, "cab-stats", doc.DocID(c.name), body, err)
	}
	for _, x := range r.zonesSlice() {
		doc := telemetry.ZoneDemandDoc(x)
		body, err := doc.AppendJSON(nil)
		d.put(t, "zone-demand", doc.DocID(c.name), body, err)
	}
	for _, a := range r.alerts.Slice() {
		body, err := a.AppendJSON(nil)
		d.put(t, "cab-alerts", a.ID, body, err)
	}
}

// zonesSlice returns the zone demand results, none without zone demand.
func (r *offlineRun) zonesSlice() []zoneResult {
	if r.zones == nil {
		return nil
	}
	return r.zones.Slice()
}

// startsAt maps the partition of each committed position to its offset: where a restart
// reads from.
func startsAt(pos []stream.Position) map[int32]int64 {
	from := make(map[int32]int64, len(pos))
	for _, p := range pos {
		from[p.Partition] = p.Offset
	}
	return from
}

// since returns the records of recs at or after their partition's offset in from (startsAt).
func since[T any](recs []stream.Record[T], from map[int32]int64) []stream.Record[T] {
	var rest []stream.Record[T]
	for _, rec := range recs {
		if rec.Offset >= from[rec.Partition] {
			rest = append(rest, rec)
		}
	}
	return rest
}

// run feeds the batches to r from the committed positions pos (all of them if pos is nil),
// then runs n batches, or to the end of the input if n < 0.
func (r *offlineRun) run(batches [][]stream.Record[telemetry.Event], pos []stream.Position, n int) {
	from := startsAt(pos)
	r.q.Resume(pos...)
	for _, b := range batches {
		if rest := since(b, from); len(rest) > 0 {
			r.q.Add(rest...)
		}
	}
	if n < 0 {
		r.q.End()
		r.h.RunUntilDone()
		return
	}
	r.h.Run(n)
}

// committed returns the run's committed positions.
func (r *offlineRun) committed() []stream.Position {
	var pos []stream.Position
	for p := range int32(replayParts) {
		if cp, ok := r.q.CommittedPosition(p); ok {
			pos = append(pos, cp)
		}
	}
	return pos
}

// TestCrashReplayOffline is TestCrashRestartSameResults without Kafka and OpenSearch, over
// many more crash points: the replay's records go through the pipeline's graph in batches of
// arrival order; the pipeline "crashes" after k batches (and again after k2 batches of the
// restart) and restarts from its committed positions and checkpoints. Every document the runs
// wrote, later writes overwriting by id, must be those of an uninterrupted run.
func TestCrashReplayOffline(t *testing.T) {
	t.Parallel()
	c := testConfig(t, "-stats-window", "1m")
	recs := topicRecords(t, feed.Options{Sources: "porto,sim", Porto: portoCSV(t), SimEvents: 100_000, SimCabs: 200, Seed: 1, Faults: true})
	crashSweep(t, c, cut(recs))
}

// cut cuts records into batches of uneven sizes, as a time-driven batch interval makes them.
func cut(recs []stream.Record[telemetry.Event]) [][]stream.Record[telemetry.Event] {
	var batches [][]stream.Record[telemetry.Event]
	for i, n := 0, 0; i < len(recs); n++ {
		size := 2000 + 1500*(n%5)
		batches = append(batches, recs[i:min(i+size, len(recs))])
		i += size
	}
	return batches
}

// crashSweep runs the graph uninterrupted, then crashed at several points and resumed from
// the committed positions (the repartitions' in-memory topics outlive each crash, as Kafka's
// do), and requires the documents of the uninterrupted run. It returns that run.
func crashSweep(t *testing.T, c *config, batches [][]stream.Record[telemetry.Event]) *offlineRun {
	t.Helper()
	return crashSweepAt(t, c, batches, !testing.Short())
}

// crashSweepAt is crashSweep at seven crash points, and with all every seven batches too.
func crashSweepAt(t *testing.T, c *config, batches [][]stream.Record[telemetry.Event], all bool) *offlineRun {
	t.Helper()
	full := newOfflineRun(t, c, newOfflineLogs())
	full.run(batches, nil, -1)
	want := docs{}
	want.add(t, c, full)
	require.NotEmpty(t, want["cab-alerts"])

	crashes := [][2]int{{2, 0}, {len(batches) / 2, 0}, {len(batches) * 2 / 3, 0}, {len(batches) - 2, 0}, {3, 4}, {len(batches) / 3, 3}, {len(batches) / 2, 1}}
	if all { // make check runs the seven above; make test all of them
		for k := 5; k < len(batches); k += 7 {
			crashes = append(crashes, [2]int{k, 0})
		}
	}
	for _, crash := range crashes {
		got := docs{}
		logs := newOfflineLogs()
		first := newOfflineRun(t, c, logs)
		first.run(batches[:crash[0]], nil, crash[0])
		got.add(t, c, first)
		pos := first.committed()
		if crash[1] > 0 {
			second := newOfflineRun(t, c, logs)
			second.run(batches, pos, crash[1])
			got.add(t, c, second)
			pos = second.committed()
		}
		last := newOfflineRun(t, c, logs)
		last.run(batches, pos, -1)
		got.add(t, c, last)
		for index, w := range want {
			diff := 0
			for id, doc := range w {
				if got[index][id] != doc {
					if diff++; diff <= 3 {
						t.Errorf("crash after %d (then %d) batches: %s %s:\n want %s\n got  %s", crash[0], crash[1], index, id, doc, got[index][id])
					}
				}
			}
			require.Zero(t, diff, "crash after %d (then %d) batches: %s documents that differ", crash[0], crash[1], index)
			require.Len(t, got[index], len(w), "crash after %d (then %d) batches: %s documents", crash[0], crash[1], index)
		}
	}
	return full
}

// unkeyed spreads records over the partitions round-robin, as an IoT hub that does not key
// messages by cab does.
func unkeyed(recs []stream.Record[telemetry.Event]) []stream.Record[telemetry.Event] {
	var next [replayParts]int64
	out := make([]stream.Record[telemetry.Event], len(recs))
	for i, r := range recs {
		p := int32(i % replayParts)
		r.Partition, r.Offset = p, next[p]
		next[p]++
		out[i] = r
	}
	return out
}

// TestRekeyByCabOffline: the Porto + simulator input produced without keys (round-robin over
// the partitions) through -rekey-by-cab gives the cab stats of the input keyed by cab, also
// after crashes at many points (two repartitions in the graph: by cab, then by zone); without
// the flag the split cabs are counted (and warned about) instead of silently overwriting.
func TestRekeyByCabOffline(t *testing.T) {
	t.Parallel()
	recs := topicRecords(t, feed.Options{Sources: "porto,sim", Porto: portoCSV(t), SimEvents: 50_000, SimCabs: 200, Seed: 2})
	keyed := newOfflineRun(t, testConfig(t, "-stats-window", "1m"), newOfflineLogs())
	keyed.run(cut(recs), nil, -1)
	require.Zero(t, keyed.split.Split(), "keyed by cab: no cab on two partitions")

	c := testConfig(t, "-stats-window", "1m", "-rekey-by-cab")
	// Seven crash points (TestCrashReplayOffline sweeps more of them): the graph has both
	// repartitions, and make test's time is bounded.
	rekeyed := crashSweepAt(t, c, cut(unkeyed(recs)), false)
	want, got := docs{}, docs{}
	want.add(t, c, keyed)
	got.add(t, c, rekeyed)
	require.NotEmpty(t, want["cab-stats"])
	require.Equal(t, want["cab-stats"], got["cab-stats"], "cab stats of the unkeyed input through -rekey-by-cab")

	split := newOfflineRun(t, testConfig(t, "-stats-window", "1m"), newOfflineLogs())
	split.run(cut(unkeyed(recs)), nil, -1)
	require.EqualValues(t, splitCabCount(unkeyed(recs)), split.split.Split(), "every cab on several partitions is counted once")
	require.Positive(t, split.split.Split())
}

// splitCabCount returns the number of cabs with events on more than one partition.
func splitCabCount(recs []stream.Record[telemetry.Event]) int {
	parts := map[string]map[int32]bool{}
	for _, r := range recs {
		if parts[r.Value.CabID] == nil {
			parts[r.Value.CabID] = map[int32]bool{}
		}
		parts[r.Value.CabID][r.Partition] = true
	}
	n := 0
	for _, ps := range parts {
		if len(ps) > 1 {
			n++
		}
	}
	return n
}
