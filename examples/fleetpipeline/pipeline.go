// The job itself: run wires the Kafka source, the telemetry graph (transforms), the
// OpenSearch and Kafka outputs and dead letters, and runs the pipeline, printing a status
// line and a summary.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/metrics/prom"
	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/window"
)

type (
	cabResult    = window.Result[string, telemetry.CabStats]
	zoneResult   = window.Result[string, telemetry.ZoneDemand]
	supplyResult = window.Result[string, telemetry.ZoneSupply]
)

// counters are what the status line shows.
type counters struct {
	windows, alerts atomic.Int64
	late            atomic.Int64 // late records written to the dead letters
	refused         atomic.Int64 // records past a key limit written to the dead letters
	last            atomic.Pointer[stream.BatchStats]
	mu              sync.Mutex
	latency         []time.Duration // window close (batch) to cab stats acknowledged
}

func run(ctx context.Context, c *config, w io.Writer) error {
	log := logger(w, c.verbose)
	kcfg := c.kafka.Config()
	kcfg.Group, kcfg.Topics = c.group, []string{c.topic}
	ocfg, err := c.opensearch.Config()
	if err != nil {
		return err
	}
	ocfg.Logger = log

	var cnt counters
	var metrics *prom.Metrics
	names := &partitionNames{}
	if c.httpAddr != "" {
		if metrics, err = newMetrics(c.name, names); err != nil {
			return err
		}
	}
	p, err := stream.New(c.batch, append(c.pipelineOptions(),
		stream.WithLogger(log),
		stream.WithStatsHook(func(s stream.BatchStats) {
			cnt.last.Store(&s)
			if metrics != nil {
				metrics.Observe(s)
			}
		}),
		retryHook(metrics),
	)...)
	if err != nil {
		return err
	}
	// One dead-letter output for everything that did not make it: records the source cannot
	// decode or accept, late records, records refused by a key limit, and documents
	// OpenSearch refuses for good. Each carries its reason. One producer, sized to the
	// topic's max.message.bytes at start.
	dlq, err := kafka.NewDeadLetterSink(kcfg, c.topic+".dlq", kafka.WithLogger(log))
	if err != nil {
		return err
	}
	defer dlq.Close(context.WithoutCancel(ctx))
	srcOpts := []kafka.SourceOption{kafka.WithLogger(log), kafka.WithDeadLetters(dlq)}
	if c.txnID != "" {
		srcOpts = append(srcOpts, kafka.WithTransactionalID(c.txnID))
	}
	if c.exitIdle > 0 {
		srcOpts = append(srcOpts, kafka.WithEndWhenCaughtUp(c.exitIdle))
	}
	if c.bounded {
		srcOpts = append(srcOpts, kafka.WithBounded())
	}
	codec := kafka.CodecFunc[telemetry.Event](func(m *kafka.Message) (telemetry.Event, time.Time, error) {
		e, err := telemetry.Decode(m.Value)
		if errors.Is(err, telemetry.ErrInvalid) {
			err = &kafka.InvalidError{Err: err} // dead-lettered with reason "invalid", not "decode"
		}
		return e, e.Time, err
	})
	src, err := kafka.NewSource(kcfg, codec, srcOpts...)
	if err != nil {
		return err
	}
	// Zone demand goes through a repartition by zone (one document per zone and window over
	// every partition), and with -rekey-by-cab the input through one by cab: topics
	// <group>-zones-repartition and <group>-cabs-repartition, read back in the job's consumer group:
	// named after the group, as Kafka Streams names them after its application id, so that
	// two jobs with the same -name (their documents' ids) and different groups, such as two
	// make demo runs, never share a repartition topic.
	zoneEx, err := kafka.NewExchange[zoneShuffled](kcfg, c.group, "zones",
		stream.PairCodec[string, telemetry.ZoneSample](stream.StringCodec{}, telemetry.ZoneSampleCodec{}), kafka.WithPartitionsOf(src), kafka.WithLogger(log))
	if err != nil {
		return err
	}
	input := src.TopicPartition
	names.input.Store(&input)
	events := stream.From(p, src)
	// With -requests-topic, a second input: the booking app's ride requests, in the same
	// consumer group (their own offsets and checkpoints).
	var requests *stream.Stream[telemetry.Request]
	if c.requests != "" {
		rcfg := kcfg
		rcfg.Topics = []string{c.requests}
		ropts := []kafka.SourceOption{kafka.WithLogger(log), kafka.WithDeadLetters(dlq)}
		if c.exitIdle > 0 {
			ropts = append(ropts, kafka.WithEndWhenCaughtUp(c.exitIdle))
		}
		if c.bounded {
			ropts = append(ropts, kafka.WithBounded())
		}
		reqSrc, err := kafka.NewSource(rcfg, kafka.CodecFunc[telemetry.Request](func(m *kafka.Message) (telemetry.Request, time.Time, error) {
			r, err := telemetry.DecodeRequest(m.Value)
			if errors.Is(err, telemetry.ErrInvalid) {
				err = &kafka.InvalidError{Err: err}
			}
			return r, r.Time, err
		}), ropts...)
		if err != nil {
			return err
		}
		names.repartition(c.requests)
		requests = stream.From(p, reqSrc)
	}
	sh := shuffles{
		byZone: func(s *stream.Stream[zoneShuffled]) *stream.Stream[zoneShuffled] {
			names.repartition(zoneEx.Topic())
			return stream.Repartition(s, "zones", zoneEx)
		},
		zoneOrigin: exchangeOrigin(zoneEx.Topic()),
		cabOrigin:  src.Origin,
	}
	// The alerts topic's exactly-once producer commits with the source its alerts are made
	// from: the input, or with -rekey-by-cab the cab repartition.
	var alertsFrom kafka.Transactional = src
	if c.rekeyByCab {
		cabEx, err := kafka.NewExchange[cabShuffled](kcfg, c.group, "cabs",
			stream.PairCodec[string, telemetry.Event](stream.StringCodec{}, telemetry.EventCodec{}), kafka.WithPartitionsOf(src), kafka.WithLogger(log))
		if err != nil {
			return err
		}
		sh.byCab = func(s *stream.Stream[cabShuffled]) *stream.Stream[cabShuffled] {
			names.repartition(cabEx.Topic())
			return stream.Repartition(s, "cabs", cabEx)
		}
		sh.cabOrigin = exchangeOrigin(cabEx.Topic())
		alertsFrom = cabEx
	}
	if requests != nil {
		supplyEx, err := kafka.NewExchange[supplyShuffled](kcfg, c.group, "supply",
			stream.PairCodec[string, telemetry.SupplyObs](stream.StringCodec{}, stream.JSONCodec[telemetry.SupplyObs]()), kafka.WithPartitionsOf(src), kafka.WithLogger(log))
		if err != nil {
			return err
		}
		sh.bySupply = func(s *stream.Stream[supplyShuffled]) *stream.Stream[supplyShuffled] {
			names.repartition(supplyEx.Topic())
			return stream.Repartition(s, "supply", supplyEx)
		}
		sh.supplyOrigin = exchangeOrigin(supplyEx.Topic())
		pickupEx, err := kafka.NewExchange[telemetry.PickupSide](kcfg, c.group, "pickups",
			stream.PairCodec[string, join.Side[telemetry.Request, telemetry.PickupPoint]](stream.StringCodec{},
				stream.JSONCodec[join.Side[telemetry.Request, telemetry.PickupPoint]]()), kafka.WithPartitionsOf(src), kafka.WithLogger(log))
		if err != nil {
			return err
		}
		sh.pickups = func() stream.Exchange[telemetry.PickupSide] {
			names.repartition(pickupEx.Topic())
			return pickupEx
		}
		sh.pickupOrigin = exchangeOrigin(pickupEx.Topic())
	}
	g, err := c.transforms(events, requests, sh, log)
	if err != nil {
		return err
	}

	// With -registry-topic, the fleet registry: a table of the compacted topic, loaded before
	// the pipeline starts and followed while it runs; each cab-stats document gets its cab's
	// registration as of the window (a temporal join).
	cabDocs := stream.Map(g.cabDocs, telemetry.CabStatsDoc)
	if c.registry != "" {
		rcfg := kcfg
		rcfg.Group, rcfg.Topics = "", nil
		registry, err := kafka.NewTable(rcfg, c.registry, func(key, value []byte) (string, telemetry.CabRegistration, error) {
			if value == nil { // a tombstone: the cab left the registry
				return string(key), telemetry.CabRegistration{}, nil
			}
			r, err := telemetry.DecodeRegistration(value)
			if err == nil && r.CabID != string(key) {
				err = fmt.Errorf("registration of cab %q under key %q", r.CabID, key)
			}
			return r.CabID, r, err
		}, kafka.WithLogger(log))
		if err != nil {
			return err
		}
		defer registry.Close()
		loadStart := time.Now()
		if err := registry.Load(ctx); err != nil {
			return fmt.Errorf("registry %s: %w", c.registry, err)
		}
		log.Info("fleetpipeline: registry loaded", "topic", c.registry, "cabs", registry.Len(), "took", time.Since(loadStart).Round(time.Millisecond))
		cabDocs, err = join.Enrich(cabDocs, registry, func(s telemetry.CabStats) string { return s.CabID },
			func(s telemetry.CabStats, r telemetry.CabRegistration, ok bool) telemetry.CabStats {
				if ok {
					return s.Register(r)
				}
				return s
			}, join.WithName("registry"))
		if err != nil {
			return err
		}
	}

	client, err := opensearch.NewClient(ctx, ocfg)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.EnsureTemplates(ctx, opensearch.WithReplicas(c.replicas)); err != nil {
		return fmt.Errorf("index templates: %w", err)
	}
	if c.alerts && c.alertsTopic != "" {
		if _, err := kafka.EnsureTopic(ctx, kcfg, c.alertsTopic, 6, 1); err != nil {
			return err
		}
	}
	deadLetters := opensearch.WithDeadLetter(dlq)
	lateLetters := stream.DeadLetterFunc(func(ctx context.Context, b []stream.DeadLetter) error {
		if err := dlq.Write(ctx, b); err != nil {
			return err
		}
		for _, dl := range b {
			if dl.Reason == stream.ReasonLate {
				cnt.late.Add(1)
			} else {
				cnt.refused.Add(1)
			}
		}
		return nil
	})
	stream.To(lateDeadLetters(g.cabs.Late(), "cab-stats", sh.cabOrigin, eventRecord), lateLetters)
	if g.zones != nil {
		stream.To(lateDeadLetters(g.zones.Late(), "zone-demand", sh.zoneOrigin, zoneSampleRecord), lateLetters)
	}
	if g.pickupsLate != nil {
		stream.To(stream.Map(g.pickupsLate, func(l join.Late[string, telemetry.Request, telemetry.PickupPoint]) stream.DeadLetter {
			dl := stream.DeadLetter{Reason: l.Reason, Offset: l.Offset, Key: []byte(l.Key), Partition: l.Partition,
				Err: fmt.Sprintf("pickups: record at %s arrived after the join's watermark %s", l.EventTime.Format(time.RFC3339Nano), l.Watermark.Format(time.RFC3339Nano))}
			if topic, part, ok := sh.pickupOrigin(l.Partition); ok {
				dl.Topic, dl.Partition = topic, part
			}
			v, err := json.Marshal(l.Side)
			if err != nil {
				dl.Err += "; encoding the record: " + err.Error()
			}
			dl.Value = v
			return dl
		}), lateLetters)
	}
	if g.supply != nil {
		stream.To(lateDeadLetters(g.supply.Late(), "zone-supply", sh.supplyOrigin, func(t supplyShuffled) ([]byte, []byte, error) {
			v, err := json.Marshal(t.Value)
			return []byte(t.Key), v, err
		}), lateLetters)
	}
	stream.To(stream.Map(g.refused, func(dl stream.DeadLetter) stream.DeadLetter {
		if topic, part, ok := sh.cabOrigin(dl.Partition); ok {
			dl.Topic, dl.Partition = topic, part
		}
		return dl
	}), lateLetters)

	cabSink, err := opensearch.NewSink(client, opensearch.Mapping[telemetry.CabStats]{
		Index: opensearch.DailyIndex(c.index("cab-stats"), func(s telemetry.CabStats) time.Time { return s.WindowStart }),
		ID:    func(s telemetry.CabStats) string { return s.DocID(c.name) },
		Body:  func(dst []byte, s telemetry.CabStats) ([]byte, error) { return s.AppendJSON(dst) },
	}, deadLetters, opensearch.WithLogger(log))
	if err != nil {
		return err
	}
	zoneSink, err := opensearch.NewSink(client, opensearch.Mapping[zoneResult]{
		Index: opensearch.DailyIndex(c.index("zone-demand"), func(r zoneResult) time.Time { return r.Start }),
		ID:    func(r zoneResult) string { return telemetry.ZoneDemandDoc(r).DocID(c.name) },
		Body:  func(dst []byte, r zoneResult) ([]byte, error) { return telemetry.ZoneDemandDoc(r).AppendJSON(dst) },
	}, deadLetters, opensearch.WithLogger(log))
	if err != nil {
		return err
	}
	supplySink, err := opensearch.NewSink(client, opensearch.Mapping[supplyResult]{
		Index: opensearch.DailyIndex(c.index("zone-supply"), func(r supplyResult) time.Time { return r.Start }),
		ID:    func(r supplyResult) string { return telemetry.ZoneSupplyDoc(r).DocID(c.name) },
		Body:  func(dst []byte, r supplyResult) ([]byte, error) { return telemetry.ZoneSupplyDoc(r).AppendJSON(dst) },
	}, deadLetters, opensearch.WithLogger(log))
	if err != nil {
		return err
	}
	pickupSink, err := opensearch.NewSink(client, opensearch.Mapping[telemetry.RidePickup]{
		Index: opensearch.DailyIndex(c.index("ride-pickups"), func(p telemetry.RidePickup) time.Time { return p.PickupAt }),
		ID:    func(p telemetry.RidePickup) string { return p.RequestID },
		Body:  func(dst []byte, p telemetry.RidePickup) ([]byte, error) { return p.AppendJSON(dst) },
	}, deadLetters, opensearch.WithLogger(log))
	if err != nil {
		return err
	}
	alertSink, err := opensearch.NewSink(client, opensearch.Mapping[telemetry.Alert]{
		Index: opensearch.DailyIndex(c.index("cab-alerts"), func(a telemetry.Alert) time.Time { return a.Time }),
		ID:    func(a telemetry.Alert) string { return a.ID },
		Body:  func(dst []byte, a telemetry.Alert) ([]byte, error) { return a.AppendJSON(dst) },
	}, deadLetters, opensearch.WithLogger(log))
	if err != nil {
		return err
	}

	stream.ForEachBatch(cabDocs, func(ctx context.Context, info stream.BatchInfo, batch []telemetry.CabStats) error {
		if err := cabSink.Write(ctx, batch); err != nil {
			return err
		}
		cnt.windows.Add(int64(len(batch)))
		if len(batch) > 0 {
			cnt.mu.Lock()
			cnt.latency = append(cnt.latency, time.Since(info.Time))
			cnt.mu.Unlock()
		}
		return nil
	})
	if g.zoneDocs != nil {
		stream.To(g.zoneDocs, zoneSink)
		stream.ForEachBatch(g.zoneDocs, func(_ context.Context, _ stream.BatchInfo, b []zoneResult) error {
			cnt.windows.Add(int64(len(b)))
			return nil
		})
	}
	if g.pickups != nil {
		stream.To(g.pickups, pickupSink)
	}
	if g.supplyDocs != nil {
		stream.To(g.supplyDocs, supplySink)
		stream.ForEachBatch(g.supplyDocs, func(_ context.Context, _ stream.BatchInfo, b []supplyResult) error {
			cnt.windows.Add(int64(len(b)))
			return nil
		})
	}
	if c.alerts {
		stream.To(g.alerts, alertSink)
	}
	if c.alerts && c.alertsTopic != "" {
		prod, err := kafka.NewProducer(kcfg, c.alertsTopic, kafka.KeyValue(
			func(a telemetry.Alert) []byte { return []byte(a.CabID) },
			func(a telemetry.Alert) ([]byte, error) { return a.AppendJSON(nil) },
			// Exactly once for read_committed consumers: the alerts of a batch are committed
			// with its offsets in one transaction (kafka package doc, "Exactly once").
		), kafka.WithLogger(log), kafka.WithExactlyOnce(alertsFrom))
		if err != nil {
			return err
		}
		stream.To(g.alerts, prod) // the pipeline closes it
	}
	if c.alerts {
		stream.ForEachBatch(g.alerts, func(_ context.Context, _ stream.BatchInfo, b []telemetry.Alert) error {
			cnt.alerts.Add(int64(len(b)))
			return nil
		})
	}

	if metrics != nil {
		for name, stats := range map[string]func() prom.SinkStats{
			"cab-stats": sinkStats(cabSink), "zone-demand": sinkStats(zoneSink), "cab-alerts": sinkStats(alertSink),
			"zone-supply": sinkStats(supplySink), "ride-pickups": sinkStats(pickupSink),
		} {
			if (name == "zone-supply" || name == "ride-pickups") && g.supplyDocs == nil {
				continue
			}
			if err := metrics.AddSink(name, stats); err != nil {
				return err
			}
		}
		stopMetrics, err := serveMetrics(ctx, c.httpAddr, metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	statusCtx, stopStatus := context.WithCancel(ctx)
	defer stopStatus()
	go status(statusCtx, w, c.statusEvery, &cnt)

	start := time.Now()
	log.Info("fleetpipeline: running", "topic", c.topic, "group", c.group, "kafka", kcfg, "opensearch", ocfg.Addresses)
	err = p.Run(ctx)
	stopStatus()
	sinks := []namedSink{{"cab-stats", cabSink.Stats}, {"zone-demand", zoneSink.Stats}, {"cab-alerts", alertSink.Stats}}
	if g.supplyDocs != nil {
		sinks = append(sinks, namedSink{"zone-supply", supplySink.Stats}, namedSink{"ride-pickups", pickupSink.Stats})
	}
	printSummary(w, time.Since(start), &cnt, src, sinks)
	var dups int64
	if last := cnt.last.Load(); last != nil {
		dups = last.Duplicates
	}
	fmt.Fprintf(w, "fleetpipeline: repartitions dropped %d replayed records; %d cabs seen on several partitions%s\n",
		dups, g.split.Split(), map[bool]string{true: " (produce keyed by cab_id or run with -rekey-by-cab)", false: ""}[g.split.Split() > 0])
	if err != nil && err == ctx.Err() { //nolint:errorlint // Run returns ctx.Err() itself for a clean stop
		log.Info("fleetpipeline: stopped")
		return nil
	}
	return err
}

// pipelineOptions are the options of the pipeline that come from the flags.
func (c *config) pipelineOptions() []stream.Option {
	return []stream.Option{stream.WithName(c.name), stream.WithMaxOutOfOrderness(c.outOfOrder), stream.WithConcurrentOutputs(c.outputs)}
}

// graph is what the pipeline computes from the telemetry, before the outputs: run writes it
// to OpenSearch and Kafka, and the offline tests drive the same graph through streamtest.
type graph struct {
	cabs     *window.Windowed[string, telemetry.CabStats, telemetry.Event]
	zones    *window.Windowed[string, telemetry.ZoneDemand, zoneShuffled] // nil with -zone-demand=false
	cabDocs  *stream.Stream[cabResult]                                    // final cab stats
	zoneDocs *stream.Stream[zoneResult]                                   // final zone demand, nil with -zone-demand=false
	alerts   *stream.Stream[telemetry.Alert]
	refused  *stream.Stream[stream.DeadLetter] // events of new cabs past -max-cabs
	split    *splitCabs                        // cabs seen on several partitions (without -rekey-by-cab)
	// supply and supplyDocs are the zone supply and its final results; nil without requests.
	supply     *window.Windowed[string, telemetry.ZoneSupply, supplyShuffled]
	supplyDocs *stream.Stream[supplyResult]
	// pickups are the requests matched with their cab's pickup; nil without requests.
	pickups     *stream.Stream[telemetry.RidePickup]
	pickupsLate *stream.Stream[join.Late[string, telemetry.Request, telemetry.PickupPoint]]
}

type (
	zoneShuffled   = stream.Pair[string, telemetry.ZoneSample]
	cabShuffled    = stream.Pair[string, telemetry.Event]
	supplyShuffled = stream.Pair[string, telemetry.SupplyObs]
)

// shuffles are the graph's repartitions: Kafka topics in run, in-memory logs offline.
type shuffles struct {
	byZone func(*stream.Stream[zoneShuffled]) *stream.Stream[zoneShuffled]
	byCab  func(*stream.Stream[cabShuffled]) *stream.Stream[cabShuffled] // nil without -rekey-by-cab
	// bySupply routes the supply observations by zone; nil without -requests-topic.
	bySupply     func(*stream.Stream[supplyShuffled]) *stream.Stream[supplyShuffled]
	supplyOrigin func(int32) (string, int32, bool)
	// pickups is the exchange of the time-to-pickup join (by cab); nil without -requests-topic.
	pickups      func() stream.Exchange[telemetry.PickupSide]
	pickupOrigin func(int32) (string, int32, bool)
	// zoneOrigin and cabOrigin name the Kafka topic and partition of a pipeline partition
	// of the zone demand's and of the cab stats' input, for dead letters.
	zoneOrigin, cabOrigin func(int32) (string, int32, bool)
}

// exchangeOrigin names a repartition's partitions by its topic.
func exchangeOrigin(topic string) func(int32) (string, int32, bool) {
	return func(part int32) (string, int32, bool) {
		_, local := stream.PartitionSource(part)
		return topic, local, true
	}
}

// transforms builds the graph on the stream of decoded events and, if not nil, of ride
// requests.
func (c *config) transforms(events *stream.Stream[telemetry.Event], requests *stream.Stream[telemetry.Request], sh shuffles, log *slog.Logger) (*graph, error) {
	grace := telemetry.WithWindowOptions(window.WithGrace(c.lateness), window.WithMaxKeys(c.maxKeys()))
	g := &graph{}
	if c.rekeyByCab {
		keyed := stream.Map(events, func(e telemetry.Event) cabShuffled { return stream.KV(e.CabID, e) })
		events = stream.Map(sh.byCab(keyed), func(p cabShuffled) telemetry.Event { return p.Value })
	} else {
		// A side branch that only looks: events go on unchanged (with their offsets).
		g.split = newSplitCabs(c.maxCabs, log)
		stream.Transform(events, g.split.check)
	}
	tracker, err := telemetry.Track(events, telemetry.WithMaxCabs(c.maxCabs))
	if err != nil {
		return nil, err
	}
	if g.cabs, err = telemetry.CabStatsStream(events, window.Tumbling(c.statsWindow), grace); err != nil {
		return nil, err
	}
	g.cabDocs = g.cabs.Results().Filter(func(r cabResult) bool { return r.Final })
	g.alerts, g.refused = tracker.Alerts(), tracker.DeadLetters()
	if c.zoneDemand {
		keyed, err := telemetry.KeyByZone(tracker.Events(), 0)
		if err != nil {
			return nil, err
		}
		if g.zones, err = telemetry.ZoneDemandByZone(sh.byZone(keyed), window.Tumbling(c.zoneWindow), grace); err != nil {
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

func (s *splitCabs) check(pc *stream.PartitionContext, es []telemetry.Event) []struct{} {
	for i := range es {
		home, ok := s.home[es[i].CabID]
		switch {
		case !ok:
			if s.max <= 0 || len(s.home) < s.max {
				s.home[es[i].CabID] = pc.Partition
			}
		case home != pc.Partition && home >= 0:
			s.home[es[i].CabID] = -1 // warned
			s.count.Add(1)
			if s.log != nil {
				s.log.Warn("fleetpipeline: a cab's events arrive on several partitions, so its stats and alerts are split per partition and overwrite each other; produce with key cab_id or run with -rekey-by-cab",
					"cab", es[i].CabID, "partitions", []int32{home, pc.Partition})
			}
		}
	}
	return nil
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
func (c *config) maxKeys() int { return 4 * c.maxCabs }

// index returns the name prefix of one of the pipeline's indexes.
func (c *config) index(base string) string {
	if c.indexTag == "" {
		return base
	}
	return base + "-" + c.indexTag
}

// lateDeadLetters turns a window's late side stream into dead letters that name the record's
// Kafka origin and why it did not count: late for its window, or refused by a key limit.
func lateDeadLetters[T any](late *stream.Stream[window.Late[T]], operator string,
	origin func(int32) (string, int32, bool), record func(T) (key, value []byte, err error)) *stream.Stream[stream.DeadLetter] {
	return stream.Map(late, func(l window.Late[T]) stream.DeadLetter {
		k, v, err := record(l.Value)
		dl := stream.DeadLetter{Reason: l.Reason, Offset: l.Offset, Key: k, Value: v, Partition: l.Partition}
		if topic, part, ok := origin(l.Partition); ok {
			dl.Topic, dl.Partition = topic, part
		}
		switch l.Reason {
		case stream.ReasonKeyLimit:
			dl.Err = fmt.Sprintf("%s: key limit reached, event at %s not aggregated", operator, l.EventTime.Format(time.RFC3339Nano))
		default:
			dl.Err = fmt.Sprintf("%s: event at %s arrived after its window %s-%s had closed",
				operator, l.EventTime.Format(time.RFC3339Nano), l.Start.Format(time.RFC3339), l.End.Format(time.RFC3339))
		}
		if err != nil { // decoded records are valid, so this does not happen; keep the error
			dl.Err += "; encoding the record: " + err.Error()
		}
		return dl
	})
}

// eventRecord is the dead letter's key and value of an event: its cab and JSON.
func eventRecord(e telemetry.Event) ([]byte, []byte, error) {
	v, err := telemetry.Append(nil, e)
	return []byte(e.CabID), v, err
}

// zoneSampleRecord is the dead letter of a zone sample late for zone demand: the repartition
// carries only what zone demand counts of an event (the event itself is in cab stats), so
// the dead letter holds that, keyed by cab, with its zone.
func zoneSampleRecord(p zoneShuffled) ([]byte, []byte, error) {
	v, err := json.Marshal(struct {
		Zone string `json:"zone"`
		telemetry.ZoneSample
	}{p.Key, p.Value})
	return []byte(p.Value.CabID), v, err
}

func status(ctx context.Context, w io.Writer, every time.Duration, cnt *counters) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastRecords int64
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := cnt.last.Load()
			if s == nil {
				fmt.Fprintln(w, "fleetpipeline: waiting for the first batch")
				continue
			}
			rate := float64(s.Source.Records-lastRecords) / now.Sub(lastAt).Seconds()
			lastRecords, lastAt = s.Source.Records, now
			var lag int64
			for _, l := range s.Source.Lag {
				lag += l
			}
			wm := "-"
			if !s.Watermark.IsZero() {
				wm = s.Watermark.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "fleetpipeline: %.0f rec/s  total %d  lag %d  watermark %s  windows %d  alerts %d  dead letters %d  late %d  key limit %d\n",
				rate, s.Source.Records, lag, wm, cnt.windows.Load(), cnt.alerts.Load(), s.Source.DeadLetters, cnt.late.Load(), cnt.refused.Load())
		}
	}
}

// namedSink is an OpenSearch sink's stats under the name the summary gives it.
type namedSink struct {
	name  string
	stats func() opensearch.Stats
}

func printSummary(w io.Writer, el time.Duration, cnt *counters, src interface{ Stats() stream.SourceStats }, sinks []namedSink) {
	s := src.Stats()
	fmt.Fprintf(w, "fleetpipeline: consumed %d records (%.0f rec/s over %v), %d dead letters, %d late events, %d past the key limits (both in the dead letters too)\n",
		s.Records, float64(s.Records)/el.Seconds(), el.Round(time.Millisecond), s.DeadLetters, cnt.late.Load(), cnt.refused.Load())
	for _, sk := range sinks {
		x := struct {
			name string
			st   opensearch.Stats
		}{sk.name, sk.stats()}
		fmt.Fprintf(w, "fleetpipeline: %-11s created %d, updated %d, dead-lettered %d, bulk retries %d, documents retried %d (write blocks %d), split requests %d, long ids bounded %d\n",
			x.name, x.st.Indexed, x.st.Updated, x.st.DeadLettered, x.st.RequestRetries, x.st.Retried, x.st.Blocked, x.st.Split, x.st.LongIDs)
	}
	cnt.mu.Lock()
	lat := slices.Clone(cnt.latency)
	cnt.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		fmt.Fprintf(w, "fleetpipeline: window close to cab stats acknowledged: median %v, p99 %v (%d batches)\n",
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), len(lat))
	}
}
