package main

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
	"github.com/fleetstream/fleetstream/window"
)

const requestParts = 3

// twoInputs is one batch of both inputs: telemetry and ride requests.
type twoInputs struct {
	events   []stream.Record[telemetry.Event]
	requests []stream.Record[telemetry.Request]
}

// supplyLogs are the in-memory repartition topics of the job with -requests-topic.
type supplyLogs struct {
	zones   *streamtest.ExchangeLog[zoneShuffled]
	supply  *streamtest.ExchangeLog[supplyShuffled]
	pickups *streamtest.ExchangeLog[telemetry.PickupSide]
}

func newSupplyLogs() *supplyLogs {
	return &supplyLogs{zones: streamtest.NewExchangeLog[zoneShuffled](replayParts),
		supply: streamtest.NewExchangeLog[supplyShuffled](replayParts), pickups: streamtest.NewExchangeLog[telemetry.PickupSide](replayParts)}
}

// supplyRun is the job's graph with -requests-topic in a streamtest harness.
type supplyRun struct {
	h           *streamtest.Harness
	qe          *streamtest.Queue[telemetry.Event]
	qr          *streamtest.Queue[telemetry.Request]
	supply      *streamtest.Collector[supplyResult]
	supplyLate  *streamtest.Collector[window.Late[supplyShuffled]]
	pickups     *streamtest.Collector[telemetry.RidePickup]
	pickupsLate *streamtest.Collector[join.Late[string, telemetry.Request, telemetry.PickupPoint]]
}

func newSupplyRun(t *testing.T, c *config, logs *supplyLogs) *supplyRun {
	h := streamtest.New(t, c.batch, c.pipelineOptions()...)
	qe, events := streamtest.NewQueue[telemetry.Event](h)
	qe.SetPartitions(replayParts)
	qr, requests := streamtest.NewQueue[telemetry.Request](h)
	qr.SetPartitions(requestParts)
	origin := func(part int32) (string, int32, bool) { return "", part, false }
	g, err := c.transforms(events, requests, shuffles{
		byZone: func(s *stream.Stream[zoneShuffled]) *stream.Stream[zoneShuffled] {
			ex := streamtest.NewExchange(logs.zones)
			h.AddExchange(ex)
			return stream.RepartitionByTime(s, "zones", ex, telemetry.ZonePartialHash, stream.WithRevisions())
		},
		bySupply: func(s *stream.Stream[supplyShuffled]) *stream.Stream[supplyShuffled] {
			_, out := streamtest.NewRepartition(h, s, "supply", logs.supply)
			return out
		},
		pickups: func() stream.Exchange[telemetry.PickupSide] {
			ex := streamtest.NewExchange(logs.pickups)
			h.AddExchange(ex)
			return ex
		},
		origin: origin,
	}, nil)
	require.NoError(t, err)
	return &supplyRun{h: h, qe: qe, qr: qr,
		supply: streamtest.Collect(g.supplyDocs), supplyLate: streamtest.Collect(g.supply.Late()),
		pickups: streamtest.Collect(g.pickups), pickupsLate: streamtest.Collect(g.pickupsLate)}
}

// run feeds the batches from the committed positions (all if nil), then runs n batches, or to
// the end of the input if n < 0.
func (r *supplyRun) run(batches []twoInputs, ev, rq []stream.Position, n int) {
	r.qe.Resume(ev...)
	r.qr.Resume(rq...)
	fromE, fromR := startsAt(ev), startsAt(rq)
	for _, b := range batches {
		// Both queues get a batch every step (perhaps empty), so that they stay in step.
		r.qe.Add(since(b.events, fromE)...)
		r.qr.Add(since(b.requests, fromR)...)
	}
	if n < 0 {
		r.qe.End()
		r.qr.End()
		r.h.RunUntilDone()
		return
	}
	r.h.Run(n)
}

func committedOf[T any](q *streamtest.Queue[T], parts int32) []stream.Position {
	var pos []stream.Position
	for p := range parts {
		if cp, ok := q.CommittedPosition(p); ok {
			pos = append(pos, cp)
		}
	}
	return pos
}

// add records the zone-supply and ride-pickups documents r wrote (a later write overwrites).
func (d docs) addSupply(t testing.TB, c *config, r *supplyRun) {
	for _, x := range r.supply.Slice() {
		doc := telemetry.ZoneSupplyDoc(x)
		body, err := doc.AppendJSON(nil)
		d.put(t, "zone-supply", doc.DocID(c.name), body, err)
	}
	for _, p := range r.pickups.Slice() {
		body, err := p.AppendJSON(nil)
		// The index is by the pickup's day: a request written with two pickups would be two
		// documents.
		d.put(t, "ride-pickups", p.PickupAt.Format("2006.01.02")+"/"+p.RequestID, body, err)
	}
}

// supplyBatches is the simulated topic and its ride requests (keyed by request ID, as the
// replay produces them), in batches of arrival order: each batch's requests are those made
// up to its last event.
func supplyBatches(t *testing.T, o feed.Options) ([]twoInputs, []telemetry.Event, []telemetry.Request) {
	t.Helper()
	recs := topicRecords(t, o)
	msgs, err := feed.Messages(o, io.Discard)
	require.NoError(t, err)
	evs := make([]telemetry.Event, 0, len(msgs))
	for _, m := range msgs {
		evs = append(evs, m.Event)
	}
	reqs := fleetsim.Requests(evs)
	part := sarama.NewHashPartitioner("")
	var next [requestParts]int64
	var batches []twoInputs
	ri := 0
	for i := 0; i < len(recs); {
		size := 500 + 400*(len(batches)%5) // uneven, as a time-driven interval makes them
		b := recs[i:min(i+size, len(recs))]
		i += size
		tb := twoInputs{events: b}
		last := b[len(b)-1].EventTime
		for ; ri < len(reqs) && !reqs[ri].Time.After(last); ri++ {
			p, err := part.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(reqs[ri].RequestID)}, requestParts)
			require.NoError(t, err)
			tb.requests = append(tb.requests, stream.Record[telemetry.Request]{Value: reqs[ri], Partition: p, Offset: next[p], EventTime: reqs[ri].Time})
			next[p]++
		}
		batches = append(batches, tb)
	}
	require.Equal(t, len(reqs), ri, "every request in a batch")
	return batches, evs, reqs
}

// TestSupplyCrashReplayOffline is TestZoneSupplyAfterCrash without Kafka and OpenSearch, over
// many crash points: the job's graph with ride requests crashes after k batches (and again
// after k2 batches of the restart) and restarts from its committed positions and checkpoints,
// the repartitions' logs outliving each crash. The zone-supply and ride-pickups documents the
// runs wrote, later writes overwriting by id, must be those of an uninterrupted run, which
// must have no late records.
func TestSupplyCrashReplayOffline(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	batches, evs, reqs := supplyBatches(t, feed.Options{Sources: "sim", SimEvents: 40_000, SimCabs: 60, Seed: 3})

	full := newSupplyRun(t, c, newSupplyLogs())
	full.run(batches, nil, nil, -1)
	require.Empty(t, full.supplyLate.Slice())
	require.Empty(t, full.pickupsLate.Slice())
	want := docs{}
	want.addSupply(t, c, full)
	require.NotEmpty(t, want["zone-supply"])
	require.NotEmpty(t, want["ride-pickups"])
	t.Logf("%d batches, %d zone-supply and %d ride-pickups documents", len(batches), len(want["zone-supply"]), len(want["ride-pickups"]))

	// The uninterrupted run against the brute force: per zone and window, the distinct
	// requests made and cancelled and the distinct cabs seen available.
	type sets struct{ made, cancelled, cabs map[string]bool }
	brute := map[string]*sets{}
	get := func(p telemetry.Point, at time.Time) *sets {
		win := c.zoneWindow
		start := time.Unix(0, at.UnixNano()/int64(win)*int64(win)).UTC()
		id := telemetry.ZoneSupply{Zone: telemetry.EncodeGeohash(p, telemetry.DefaultGeohashPrecision), WindowStart: start, WindowEnd: start.Add(win)}.DocID(c.name)
		if brute[id] == nil {
			brute[id] = &sets{map[string]bool{}, map[string]bool{}, map[string]bool{}}
		}
		return brute[id]
	}
	for _, e := range evs {
		if e.Status == telemetry.StatusAvailable {
			get(e.Point(), e.Time).cabs[e.CabID] = true
		}
	}
	for _, q := range reqs {
		switch q.Status {
		case telemetry.RequestRequested:
			get(q.Point(), q.Time).made[q.RequestID] = true
		case telemetry.RequestCancelled:
			get(q.Point(), q.Time).cancelled[q.RequestID] = true
		}
	}
	require.Len(t, want["zone-supply"], len(brute))
	for id, b := range brute {
		var z telemetry.ZoneSupply
		require.NoError(t, json.Unmarshal([]byte(want["zone-supply"][id]), &z), id)
		require.Equal(t, []int64{int64(len(b.made)), int64(len(b.cancelled)), int64(len(b.cabs))},
			[]int64{z.Requests, z.Cancelled, z.AvailableCabs}, id)
	}

	crashes := [][2]int{{3, 4}, {len(batches) / 3, 3}, {len(batches) / 2, 1}}
	for k := 1; k < len(batches); k += 3 {
		crashes = append(crashes, [2]int{k, 0})
	}
	for _, crash := range crashes {
		got := docs{}
		logs := newSupplyLogs()
		first := newSupplyRun(t, c, logs)
		first.run(batches[:crash[0]], nil, nil, crash[0])
		got.addSupply(t, c, first)
		ev, rq := committedOf(first.qe, replayParts), committedOf(first.qr, requestParts)
		if crash[1] > 0 {
			second := newSupplyRun(t, c, logs)
			second.run(batches, ev, rq, crash[1])
			got.addSupply(t, c, second)
			ev, rq = committedOf(second.qe, replayParts), committedOf(second.qr, requestParts)
		}
		last := newSupplyRun(t, c, logs)
		last.run(batches, ev, rq, -1)
		got.addSupply(t, c, last)
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
}

// TestSupplyRebalanceReplayOffline: the telemetry partitions are revoked from the running
// job and assigned back to it (a rebalance that returns them), which replays them from their
// committed positions in the same process: SupplyFromCabs and TimeToPickup keep memory across
// partitions (the cabs' last zone and slot, the requests already matched) that a restart
// would not have. The documents must still be those of an uninterrupted run.
func TestSupplyRebalanceReplayOffline(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	batches, _, _ := supplyBatches(t, feed.Options{Sources: "sim", SimEvents: 40_000, SimCabs: 60, Seed: 4})
	full := newSupplyRun(t, c, newSupplyLogs())
	full.run(batches, nil, nil, -1)
	want := docs{}
	want.addSupply(t, c, full)
	require.NotEmpty(t, want["ride-pickups"])

	for k := 2; k < len(batches); k += 5 {
		r := newSupplyRun(t, c, newSupplyLogs())
		r.run(batches[:k], nil, nil, k)
		parts := make([]int32, replayParts)
		for i := range parts {
			parts[i] = int32(i)
		}
		revoked := r.qe.Revoke(parts...)
		r.qe.Add()
		r.qr.Add()
		r.h.Step()
		<-revoked
		ev := committedOf(r.qe, replayParts)
		require.Len(t, ev, replayParts)
		r.qe.Resume(ev...)
		from, replayed := startsAt(ev), 0
		for i, b := range batches {
			es := since(b.events, from)
			if i < k {
				replayed += len(es)
				if len(es) == 0 {
					continue
				}
			}
			r.qe.Add(es...)
			if i >= k {
				r.qr.Add(b.requests...)
			} else {
				r.qr.Add()
			}
		}
		require.Positive(t, replayed, "rebalance after %d batches: nothing replayed", k)
		t.Logf("rebalance after %d batches: %d telemetry records replayed", k, replayed)
		r.qe.End()
		r.qr.End()
		r.h.RunUntilDone()
		got := docs{}
		got.addSupply(t, c, r)
		for index, w := range want {
			diff := 0
			for id, doc := range w {
				if got[index][id] != doc {
					if diff++; diff <= 3 {
						t.Errorf("rebalance after %d batches: %s %s:\n want %s\n got  %s", k, index, id, doc, got[index][id])
					}
				}
			}
			require.Zero(t, diff, "rebalance after %d batches: %s documents that differ", k, index)
			require.Len(t, got[index], len(w), "rebalance after %d batches: %s documents", k, index)
		}
	}
}

// TestSupplyLateCopyOnAnotherPartition: SupplyFromCabs remembers each cab's last zone and slot
// across partitions, so of a cab's two copies on two partitions (unkeyed input without
// -rekey-by-cab) only the first travels, even when it is late in its own partition and the
// other is on time in its. That is right: a repartition judges a record against the marks of
// every upstream partition before it, never above the watermark of a partition that still
// has on-time records to send (p1 here holds it back), so the copy that travels is on time
// downstream wherever the other would have been, and the cab counts.
func TestSupplyLateCopyOnAnotherPartition(t *testing.T) {
	t.Parallel()
	c := testConfig(t)
	t0 := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	zone, far := telemetry.Point{Lat: 41.15, Lon: -8.61}, telemetry.Point{Lat: 41.35, Lon: -8.35}
	next := map[int32]int64{}
	ev := func(part int32, cab string, at time.Time, p telemetry.Point) stream.Record[telemetry.Event] {
		next[part]++
		e := telemetry.Event{CabID: cab, Time: at, Lat: p.Lat, Lon: p.Lon, Status: telemetry.StatusAvailable}
		return stream.Record[telemetry.Event]{Value: e, Partition: part, Offset: next[part] - 1, EventTime: at}
	}
	// Batch 1: every partition of both inputs at t0+20m, but telemetry partition 1 at t0+1m.
	first := twoInputs{}
	for p := range int32(replayParts) {
		at := t0.Add(20 * time.Minute)
		if p == 1 {
			at = t0.Add(time.Minute)
		}
		first.events = append(first.events, ev(p, fmt.Sprintf("filler-%d", p), at, far))
	}
	for p := range int32(requestParts) {
		at := t0.Add(20 * time.Minute)
		first.requests = append(first.requests, stream.Record[telemetry.Request]{Partition: p, EventTime: at,
			Value: telemetry.Request{RequestID: fmt.Sprintf("req-%d", p), Time: at, Lat: far.Lat, Lon: far.Lon, Status: telemetry.RequestRequested}})
	}
	// Batch 2: cab X at t0+1m in the zone on partition 0, 19 minutes late there, and on
	// partition 1, on time there; and cab W at t0-10m on partition 0, late everywhere (it shows
	// that the repartition's watermark was up, not NoWatermark).
	second := twoInputs{events: []stream.Record[telemetry.Event]{
		ev(0, "X", t0.Add(time.Minute), zone), ev(0, "W", t0.Add(-10*time.Minute), zone), ev(1, "X", t0.Add(time.Minute), zone)}}

	logs := newSupplyLogs()
	r := newSupplyRun(t, c, logs)
	r.run([]twoInputs{first, second}, nil, nil, -1)

	var sent []stream.Shuffled[supplyShuffled]
	for p := range int32(replayParts) {
		for _, s := range logs.supply.Records(p) {
			if s.Value.Value.CabID == "X" {
				sent = append(sent, s)
			}
		}
	}
	require.Len(t, sent, 1, "the copy of partition 1 is left out: the cab's zone and slot were seen")
	_, from := stream.PartitionSource(sent[0].From)
	require.EqualValues(t, 0, from, "the copy that travels is partition 0's, late there")

	late := r.supplyLate.Slice()
	require.Len(t, late, 1)
	require.Equal(t, "W", late[0].Value.Value.CabID)

	zoneID := telemetry.EncodeGeohash(zone, telemetry.DefaultGeohashPrecision)
	var counted []int64
	for _, x := range r.supply.Slice() {
		if x.Key == zoneID && x.Start.Equal(t0) {
			counted = append(counted, x.Value.AvailableCabs)
		}
	}
	require.Equal(t, []int64{1}, counted, "cab X counts once in its zone's window")
}
