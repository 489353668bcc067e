// The job's graph: what it computes from the telemetry before the outputs (transforms), the
// repartitions it goes through, and the check of cabs seen on several partitions.

package main

import (
	"log/slog"
	"sync/atomic"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

// pipelineOptions are the options of the pipeline that come from the flags.
func (c *config) pipelineOptions() []stream.Option {
	opts := []stream.Option{stream.WithName(c.name), stream.WithMaxOutOfOrderness(c.outOfOrder), stream.WithConcurrentOutputs(c.outputs),
		stream.WithBuffer(c.maxBatch, 64<<20), stream.WithShutdownGrace(c.pipelineStop()),
		stream.WithShutdownTimeout(c.pipelineStop())}
	if c.acceptChange {
		opts = append(opts, stream.WithColdStartChanged())
	}
	return opts
}

// graph is what the pipeline computes from the telemetry, before the outputs: run writes it
// to OpenSearch and Kafka, and the offline tests drive the same graph through streamtest.
type graph struct {
	cabs  *window.Windowed[string, telemetry.CabStats, telemetry.Event]
	zones *window.Windowed[string, telemetry.ZoneDemand, zoneShuffled] // nil with -zone-demand=false
	// zonesLocal is zone demand's first phase, per input partition (its Late stream holds the
	// events late in their own partitions); nil with -zone-demand=false.
	zonesLocal *window.Windowed[string, telemetry.ZoneAcc, telemetry.Tracked]
	cabDocs    *stream.Stream[cabResult]  // final cab stats
	zoneDocs   *stream.Stream[zoneResult] // final zone demand, nil with -zone-demand=false
	alerts     *stream.Stream[telemetry.Alert]
	refused    *stream.Stream[stream.DeadLetter] // events of new cabs past -max-cabs
	split      *splitCabs                        // cabs seen on several partitions (without -rekey-by-cab)
	// supply and supplyDocs are the zone supply and its final results; nil without requests.
	supply     *window.Windowed[string, telemetry.ZoneSupply, supplyShuffled]
	supplyDocs *stream.Stream[supplyResult]
	// pickups are the requests matched with their cab's pickup; nil without requests.
	pickups     *stream.Stream[telemetry.RidePickup]
	pickupsLate *stream.Stream[join.Late[string, telemetry.Request, telemetry.PickupPoint]]
}

type (
	zoneShuffled   = telemetry.ZonePartial
	cabShuffled    = stream.Pair[string, telemetry.Event]
	supplyShuffled = stream.Pair[string, telemetry.SupplyObs]
)

// shuffles are the graph's repartitions: Kafka topics in run, in-memory logs offline.
type shuffles struct {
	byZone func(*stream.Stream[zoneShuffled]) *stream.Stream[zoneShuffled]
	byCab  func(*stream.Stream[cabShuffled]) *stream.Stream[cabShuffled] // nil without -rekey-by-cab
	// bySupply routes the supply observations by zone; nil without -requests-topic.
	bySupply func(*stream.Stream[supplyShuffled]) *stream.Stream[supplyShuffled]
	// pickups is the exchange of the time-to-pickup join (by cab); nil without -requests-topic.
	pickups func() stream.Exchange[telemetry.PickupSide]
	// origin names the Kafka topic and partition of a pipeline partition id, of an input or
	// of a repartition, for dead letters (stream.Pipeline.Origin in run). It must tell the
	// sources apart: a late record read through a repartition is dead-lettered with the input
	// record's topic, partition and offset (window.Late.Upstream) only when origin names its
	// upstream partition by another topic than the repartition's (stream.DeadLetter.SetOrigin).
	origin func(int32) (string, int32, bool)
}

// transforms builds the graph on the stream of decoded events and, if not nil, of ride
// requests.
func (c *config) transforms(events *stream.Stream[telemetry.Event], requests *stream.Stream[telemetry.Request], sh shuffles, log *slog.Logger) (*graph, error) {
	grace := telemetry.WithWindowOptions(window.WithGrace(c.lateness), window.WithMaxKeys(c.maxKeys()))
	g := &graph{}
	if c.rekeyByCab {
		keyed := stream.Map(events, func(e telemetry.Event) cabShuffled { return stream.KV(e.CabID, e) })
		events = stream.Map(sh.byCab(keyed), func(p cabShuffled) telemetry.Event { return p.Value })
	}
	trackOpts := []telemetry.TrackOption{telemetry.WithMaxCabs(c.maxCabs)}
	if !c.rekeyByCab {
		// The tracker tells each cab's first event in a partition (and those it does not
		// hold): a cab that comes from a second partition is seen there. It was a
		// stream.Transform of its own that copied every event to look at its cab (3 % of
		// the job's CPU in a drain).
		g.split = newSplitCabs(c.maxCabs, log)
		trackOpts = append(trackOpts, telemetry.WithCabSeen(g.split.check))
	}
	tracker, err := telemetry.Track(events, trackOpts...)
	if err != nil {
		return nil, err
	}
	if g.cabs, err = telemetry.CabStatsStream(events, window.Tumbling(c.statsWindow), grace); err != nil {
		return nil, err
	}
	g.cabDocs = g.cabs.Results().Filter(func(r cabResult) bool { return r.Final })
	g.alerts, g.refused = tracker.Alerts(), tracker.DeadLetters()
	if c.zoneDemand {
		// In two phases: per input partition, a partial per zone and window; only those go
		// through the repartition by zone, to the window that merges them (see
		// stream.RepartitionByTime).
		// No key limit on the first phase: a replay must emit a window's partials in the same
		// order (see ZoneDemandLocal); zones per partition are bounded by the map, and the
		// merge keeps the limit.
		local := telemetry.WithWindowOptions(window.WithGrace(c.lateness))
		if g.zonesLocal, err = telemetry.ZoneDemandLocal(tracker.Events(), window.Tumbling(c.zoneWindow), local); err != nil {
			return nil, err
		}
		if g.zones, err = telemetry.ZoneDemandMerge(sh.byZone(telemetry.ZonePartials(g.zonesLocal)), window.Tumbling(c.zoneWindow), grace); err != nil {
			return nil, err
		}
		g.zoneDocs = g.zones.Results().Filter(func(r zoneResult) bool { return r.Final })
	}
	if requests != nil {
		// Available cabs and ride requests meet by zone.
		cabs, err := telemetry.SupplyFromCabs(tracker.Events(), 0, c.zoneWindow)
		if err != nil {
			return nil, err
		}
		made, err := telemetry.SupplyFromRequests(requests, 0)
		if err != nil {
			return nil, err
		}
		if g.supply, err = telemetry.ZoneSupplyByZone(sh.bySupply(cabs.Union(made)), window.Tumbling(c.zoneWindow), grace); err != nil {
			return nil, err
		}
		g.supplyDocs = g.supply.Results().Filter(func(r supplyResult) bool { return r.Final })
		// Time to pickup: each assigned request with its cab's trip start.
		out, rows, err := telemetry.TimeToPickup(requests, tracker.Events(), sh.pickups(), c.pickupWithin)
		if err != nil {
			return nil, err
		}
		g.pickups, g.pickupsLate = rows, out.Late()
	}
	return g, nil
}

// splitCabs notices a cab whose events come from several partitions: the cab's tracker state
// and windows are per partition, so its results would be split and overwrite each other. It
// counts such cabs and warns once per cab with the fix (-rekey-by-cab).
type splitCabs struct {
	max   int
	home  map[string]int32
	count atomic.Int64
	log   *slog.Logger
}

func newSplitCabs(max int, log *slog.Logger) *splitCabs {
	return &splitCabs{max: max, home: make(map[string]int32), log: log}
}

// check notes that cab's events come from partition (telemetry.WithCabSeen: the tracker
// calls it for a cab's first event in a partition), and warns once if they came from another
// one before.
func (s *splitCabs) check(partition int32, cab string) {
	home, ok := s.home[cab]
	switch {
	case !ok:
		if s.max <= 0 || len(s.home) < s.max {
			s.home[cab] = partition
		}
	case home != partition && home >= 0:
		s.home[cab] = -1 // warned
		s.count.Add(1)
		if s.log != nil {
			s.log.Warn("fleetpipeline: a cab's events arrive on several partitions, so its stats and alerts are split per partition and overwrite each other; produce with key cab_id or run with -rekey-by-cab",
				"cab", cab, "partitions", []int32{home, partition})
		}
	}
}

// Split returns how many cabs were seen on several partitions.
func (s *splitCabs) Split() int64 {
	if s == nil {
		return 0
	}
	return s.count.Load()
}

// maxKeys bounds each window operator's open state: a cab (or zone) in up to four open
// windows per cab the tracker may hold (a window, the next, and those kept by the grace).
// validate keeps -max-cabs small enough for the product to fit an int.
func (c *config) maxKeys() int { return keysPerCab * c.maxCabs }

// keysPerCab is maxKeys' factor.
const keysPerCab = 4
