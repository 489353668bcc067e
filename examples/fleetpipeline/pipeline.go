// The job itself: run wires the Kafka sources, the telemetry graph (graph.go), the OpenSearch
// and Kafka outputs and dead letters, and runs the pipeline, printing a status line and a
// summary (report.go).

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
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

func run(ctx context.Context, c *config, w io.Writer) (err error) {
	if err := c.validate(); err != nil {
		return err
	}
	running := false
	defer func() {
		if !running && err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// A stop (SIGINT, SIGTERM) while the job was still starting: nothing was read,
			// so nothing is left undone: a clean stop, as one while running (for a run that
			// ends by itself, one that did not end: stoppedEarly).
			err = c.stoppedEarly()
		}
	}()
	log := logger(w, c.verbose)
	kcfg := c.kafka.Config()
	kcfg.Group, kcfg.Topics = c.group, []string{c.topic}
	kcfg.Rebalance.InstanceID, kcfg.Rebalance.SessionTimeout = c.instanceID, c.sessionTimeout
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
		// Served from here, before the job reaches Kafka and loads its tables: during a long
		// start /healthz answers "starting" (prom.WithStartTimeout) and /readyz 503, where
		// nothing listened, and a liveness probe restarted the job in the middle of its start.
		// The sinks and repartitions are added to it once they exist.
		stopMetrics, err := serveMetrics(ctx, c.httpAddr, metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	p, err := stream.New(c.batch, append(c.pipelineOptions(),
		stream.WithLogger(log),
		stream.WithStatsHook(func(s stream.BatchStats) {
			cnt.last.Store(&s)
			// -v: a line per batch, as Spark logs each batch's delays.
			log.Debug("fleetpipeline: batch done", "batch", s.Batch, "records", s.InputRecords, "shuffled", s.ShuffledRecords,
				"scheduling_delay", s.SchedulingDelay, "processing", s.ProcessingTime, "output", s.OutputTime, "commit", s.CommitTime, "commit_wait", s.CommitWait, "attempts", s.Attempts,
				"outputs", outputTimes(s.Outputs))
			if metrics != nil {
				metrics.Observe(s)
			}
		}),
		retryHook(metrics),
	)...)
	if err != nil {
		return err
	}
	// The inputs first: a missing one fails the start before the job makes any topic.
	if err := c.checkInputs(ctx, kcfg, log); err != nil {
		return err
	}
	// One dead-letter output for everything that did not make it: records the source cannot
	// decode or accept, late records, records refused by a key limit, and documents
	// OpenSearch refuses for good. Each carries its reason. One producer, sized to the
	// topic's max.message.bytes at start.
	// The topic is created if missing (Amazon MSK does not create topics on first use), as
	// the alerts topic is, with the brokers' default replication factor (3 on a three-AZ MSK
	// cluster; it was 1, so one broker's loss lost them): a dead-letter topic that will not
	// be created stops the Source.
	if err := c.ensureTopic(ctx, kcfg, "dead-letter topic "+c.topic+".dlq", c.topic+".dlq", 1, log); err != nil {
		return err
	}
	dlq, err := kafka.NewDeadLetterSink(kcfg, c.topic+".dlq", kafka.WithLogger(log))
	if err != nil {
		return err
	}
	budget := newStopBudget(ctx, c.stopTimeout)
	defer budget.close()
	defer func() {
		// Bounded by what is left of -shutdown-timeout after a stop (closeDeadLetters).
		if cerr := closeDeadLetters(ctx, dlq, budget.left(ctx, minDeadLetterGrace)); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	srcOpts := []kafka.SourceOption{kafka.WithLogger(log), kafka.WithDeadLetters(dlq)}
	// -transactional-id names the transaction of the alerts' exactly-once producer, which
	// commits with the input or, with -rekey-by-cab, with the cab repartition (below).
	var alertsTxnID kafka.TransactionOption
	if c.txnID != "" {
		alertsTxnID = kafka.WithTransactionalID(c.txnID)
	}
	if alertsTxnID != nil && !c.rekeyByCab {
		srcOpts = append(srcOpts, alertsTxnID)
	}
	// -exit-when-idle: one option for both inputs, so that they end together. The requests
	// topic is often quiet for longer than the idle time while telemetry still flows; ending
	// its input then would leave the requests that come later out of the windows.
	var caughtUp *kafka.CaughtUp
	if c.exitIdle > 0 {
		caughtUp = kafka.WithEndWhenCaughtUp(c.exitIdle)
		srcOpts = append(srcOpts, caughtUp)
	}
	if c.bounded {
		srcOpts = append(srcOpts, kafka.WithBounded())
	}
	if c.acceptLoss {
		srcOpts = append(srcOpts, kafka.WithAcceptDataLoss())
	}
	src, err := kafka.NewSource(kcfg, kafka.Codec[telemetry.Event](eventCodec{}), srcOpts...)
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
		telemetry.ZonePartialCodec(), kafka.WithPartitionsOf(src), kafka.WithLogger(log))
	if err != nil {
		return err
	}
	exchanges := []sender{zoneEx}
	input := src.TopicPartition
	names.input.Store(&input)
	events := stream.From(p, src)
	// With -requests-topic, a second input: the booking app's ride requests, in the same
	// consumer group (their own offsets and checkpoints).
	var requests *stream.Stream[telemetry.Request]
	var reqSrc *kafka.Source[telemetry.Request] // for the summary
	if c.requests != "" {
		rcfg := kcfg
		rcfg.Topics = []string{c.requests}
		if rcfg.Rebalance.InstanceID != "" {
			rcfg.Rebalance.InstanceID += instanceIDSuffix // another member of the group
		}
		ropts := []kafka.SourceOption{kafka.WithLogger(log), kafka.WithDeadLetters(dlq)}
		if caughtUp != nil {
			ropts = append(ropts, caughtUp)
		}
		if c.bounded {
			ropts = append(ropts, kafka.WithBounded())
		}
		if c.acceptLoss {
			ropts = append(ropts, kafka.WithAcceptDataLoss())
		}
		reqSrc, err = kafka.NewSource(rcfg, kafka.CodecFunc[telemetry.Request](func(m *kafka.Message) (telemetry.Request, time.Time, error) {
			r, err := telemetry.DecodeRequest(m.Value)
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
			return stream.RepartitionByTime(s, "zones", zoneEx, telemetry.ZonePartialHash, stream.WithRevisions())
		},
		// The pipeline's Origin names every source's partitions: a late record that came
		// through the cab or the supply repartition names its input record, which outlives
		// the repartition's (purged once committed); one the repartition does not know the
		// input of (zone demand's partials, window results) names the repartition's.
		origin: p.Origin,
	}
	// The alerts topic's exactly-once producer commits with the source its alerts are made
	// from: the input, or with -rekey-by-cab the cab repartition.
	var alertsFrom kafka.Transactional = src
	if c.rekeyByCab {
		cabOpts := []kafka.ExchangeOption{kafka.WithPartitionsOf(src), kafka.WithLogger(log)}
		if alertsTxnID != nil {
			cabOpts = append(cabOpts, alertsTxnID)
		}
		cabEx, err := kafka.NewExchange[cabShuffled](kcfg, c.group, "cabs",
			stream.PairCodec[string, telemetry.Event](stream.StringCodec{}, telemetry.EventCodec{}), cabOpts...)
		if err != nil {
			return err
		}
		sh.byCab = func(s *stream.Stream[cabShuffled]) *stream.Stream[cabShuffled] {
			names.repartition(cabEx.Topic())
			return stream.Repartition(s, "cabs", cabEx)
		}
		exchanges = append(exchanges, cabEx)
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
		exchanges = append(exchanges, supplyEx)
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
		exchanges = append(exchanges, pickupEx)
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
		registry, err := c.loadRegistry(ctx, kcfg, log)
		if err != nil {
			return err
		}
		defer registry.Close()
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
	if err := c.ensureTemplates(ctx, client, ocfg.Addresses, log); err != nil {
		return err
	}
	if c.alerts && c.alertsTopic != "" {
		if err := c.ensureTopic(ctx, kcfg, "-alerts-topic "+c.alertsTopic, c.alertsTopic, 6, log); err != nil {
			return err
		}
	}
	// The sinks' options: rejected documents go to the dead-letter topic, and each daily index
	// is created in the last hour of the day before (opensearch.WithIndexAhead), so that the
	// first batch after midnight does not wait for OpenSearch to create five indexes in turn.
	// The sinks send bulk requests of the library's 256 KiB (about 850 cab-stats documents),
	// so that a batch's documents use the node's write threads through the sink's concurrent
	// requests (BENCHMARKS.md, 2026-12-06: the job set it before the library did).
	sinkOpts := []opensearch.SinkOption{opensearch.WithDeadLetter(dlq), opensearch.WithIndexAhead(time.Hour), opensearch.WithLogger(log)}
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
	// The outputs are named (stream.OutputName) for the per-output times of -v's batch lines
	// and /metrics' output_write_seconds: the dead letters' after the topic, the documents'
	// after their index.
	dlqOut := stream.OutputName("dead letters (" + c.topic + ".dlq)")
	stream.To(lateDeadLetters(g.cabs.Late(), "cab-stats", sh.origin, eventRecord), lateLetters, dlqOut)
	if g.zones != nil {
		stream.To(lateDeadLetters(g.zonesLocal.Late(), "zone-demand", sh.origin, zoneEventRecord()), lateLetters, dlqOut)
		stream.To(lateDeadLetters(g.zones.Late(), "zone-demand", sh.origin, zonePartialRecord), lateLetters, dlqOut)
	}
	if g.pickupsLate != nil {
		stream.To(pickupsDeadLetters(g.pickupsLate, sh.origin), lateLetters, dlqOut)
	}
	if g.supply != nil {
		stream.To(lateDeadLetters(g.supply.Late(), "zone-supply", sh.origin, func(t supplyShuffled) ([]byte, []byte, error) {
			v, err := json.Marshal(t.Value)
			return []byte(t.Key), v, err
		}), lateLetters, dlqOut)
	}
	stream.To(refusedDeadLetters(g.refused, sh.origin), lateLetters, dlqOut)

	cabSink, err := opensearch.NewSink(client, opensearch.Mapping[telemetry.CabStats]{
		Index: opensearch.DailyIndex(c.index("cab-stats"), func(s telemetry.CabStats) time.Time { return s.WindowStart }),
		ID:    func(s telemetry.CabStats) string { return s.DocID(c.name) },
		Body:  func(dst []byte, s telemetry.CabStats) ([]byte, error) { return s.AppendJSON(dst) },
	}, sinkOpts...)
	if err != nil {
		return err
	}
	zoneSink, err := opensearch.NewSink(client, opensearch.Mapping[zoneResult]{
		Index: opensearch.DailyIndex(c.index("zone-demand"), func(r zoneResult) time.Time { return r.Start }),
		ID:    func(r zoneResult) string { return telemetry.ZoneDemandDoc(r).DocID(c.name) },
		Body:  func(dst []byte, r zoneResult) ([]byte, error) { return telemetry.ZoneDemandDoc(r).AppendJSON(dst) },
	}, sinkOpts...)
	if err != nil {
		return err
	}
	supplySink, err := opensearch.NewSink(client, opensearch.Mapping[supplyResult]{
		Index: opensearch.DailyIndex(c.index("zone-supply"), func(r supplyResult) time.Time { return r.Start }),
		ID:    func(r supplyResult) string { return telemetry.ZoneSupplyDoc(r).DocID(c.name) },
		Body:  func(dst []byte, r supplyResult) ([]byte, error) { return telemetry.ZoneSupplyDoc(r).AppendJSON(dst) },
	}, sinkOpts...)
	if err != nil {
		return err
	}
	pickupSink, err := opensearch.NewSink(client, opensearch.Mapping[telemetry.RidePickup]{
		Index: opensearch.DailyIndex(c.index("ride-pickups"), func(p telemetry.RidePickup) time.Time { return p.PickupAt }),
		ID:    func(p telemetry.RidePickup) string { return p.RequestID },
		Body:  func(dst []byte, p telemetry.RidePickup) ([]byte, error) { return p.AppendJSON(dst) },
	}, sinkOpts...)
	if err != nil {
		return err
	}
	alertSink, err := opensearch.NewSink(client, opensearch.Mapping[telemetry.Alert]{
		Index: opensearch.DailyIndex(c.index("cab-alerts"), func(a telemetry.Alert) time.Time { return a.Time }),
		ID:    func(a telemetry.Alert) string { return a.ID },
		Body:  func(dst []byte, a telemetry.Alert) ([]byte, error) { return a.AppendJSON(dst) },
	}, sinkOpts...)
	if err != nil {
		return err
	}

	// The pipeline closes the sinks it writes with stream.To; the cab-stats sink, written
	// through ForEachBatch, and the sinks of outputs that are off are closed here, before the
	// client, so that a next day's index still being created ahead (WithIndexAhead) ends with
	// run. Closing a sink twice is harmless.
	defer func() {
		for _, closeSink := range []func(context.Context) error{cabSink.Close, zoneSink.Close, supplySink.Close, pickupSink.Close, alertSink.Close} {
			_ = closeSink(context.Background()) // a Sink's Close returns no error
		}
	}()
	stream.ForEachBatch(cabDocs, func(ctx context.Context, info stream.BatchInfo, batch []telemetry.CabStats) error {
		if err := cabSink.Write(ctx, batch); err != nil {
			return err
		}
		cnt.windows.Add(int64(len(batch)))
		if len(batch) > 0 {
			cnt.mu.Lock()
			cnt.latency.add(time.Since(info.Time))
			cnt.mu.Unlock()
		}
		return nil
	}, stream.OutputName("cab-stats"))
	if g.zoneDocs != nil {
		stream.To(g.zoneDocs, zoneSink, stream.OutputName("zone-demand"))
		stream.ForEachBatch(g.zoneDocs, func(_ context.Context, _ stream.BatchInfo, b []zoneResult) error {
			cnt.windows.Add(int64(len(b)))
			return nil
		}, stream.OutputName("zone-demand count"))
	}
	if g.pickups != nil {
		stream.To(g.pickups, pickupSink, stream.OutputName("ride-pickups"))
	}
	if g.supplyDocs != nil {
		stream.To(g.supplyDocs, supplySink, stream.OutputName("zone-supply"))
		stream.ForEachBatch(g.supplyDocs, func(_ context.Context, _ stream.BatchInfo, b []supplyResult) error {
			cnt.windows.Add(int64(len(b)))
			return nil
		}, stream.OutputName("zone-supply count"))
	}
	if c.alerts {
		stream.To(g.alerts, alertSink, stream.OutputName("cab-alerts"))
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
		stream.To(g.alerts, prod, stream.OutputName("alerts ("+c.alertsTopic+")")) // the pipeline closes it
	}
	if c.alerts {
		stream.ForEachBatch(g.alerts, func(_ context.Context, _ stream.BatchInfo, b []telemetry.Alert) error {
			cnt.alerts.Add(int64(len(b)))
			return nil
		}, stream.OutputName("alerts count"))
	}

	// The outputs that run, for /metrics and the summary: one that is off (-zone-demand=false,
	// -alerts=false) showed in both with every count at 0, as if it had written nothing.
	sinks := []namedSink{{"cab-stats", cabSink.Stats}}
	if g.zoneDocs != nil {
		sinks = append(sinks, namedSink{"zone-demand", zoneSink.Stats})
	}
	if c.alerts {
		sinks = append(sinks, namedSink{"cab-alerts", alertSink.Stats})
	}
	if g.supplyDocs != nil {
		sinks = append(sinks, namedSink{"zone-supply", supplySink.Stats}, namedSink{"ride-pickups", pickupSink.Stats})
	}
	live := []namedSource{{"telemetry", src.Stats}}
	if reqSrc != nil {
		live = append(live, namedSource{"ride requests", reqSrc.Stats})
	}
	if metrics != nil {
		if err := register(metrics, sinks, exchanges, live); err != nil {
			return err
		}
	}

	stopStatus := startStatus(ctx, w, c.statusEvery, &cnt, holders{p.Retrying, live, sinks})
	defer stopStatus()

	start := time.Now()
	log.Info("fleetpipeline: running", "topic", c.topic, "group", c.group, "kafka", kcfg, "opensearch", ocfg.Addresses, "procs", runtime.GOMAXPROCS(0))
	running = true
	err = p.Run(ctx)
	stopStatus()
	printSummary(w, time.Since(start), &cnt, src, sinks)
	if n := src.Lost(); n > 0 {
		fmt.Fprintf(w, "fleetpipeline: %d telemetry records were deleted from Kafka before the job was done with them (-accept-data-loss)\n", n)
	}
	if reqSrc != nil {
		printRequestsSummary(w, reqSrc)
		if n := reqSrc.Lost(); n > 0 {
			fmt.Fprintf(w, "fleetpipeline: %d ride requests were deleted from Kafka before the job was done with them (-accept-data-loss)\n", n)
		}
	}
	var dups int64
	if last := cnt.last.Load(); last != nil {
		dups = last.Duplicates
	}
	printExchanges(w, exchanges)
	fmt.Fprintf(w, "fleetpipeline: repartitions dropped %d replayed records; %d cabs seen on several partitions%s\n",
		dups, g.split.Split(), map[bool]string{true: " (produce keyed by cab_id or run with -rekey-by-cab)", false: ""}[g.split.Split() > 0])
	if err != nil && err == ctx.Err() { //nolint:errorlint // Run returns ctx.Err() itself for a clean stop
		log.Info("fleetpipeline: stopped")
		return c.stoppedEarly()
	}
	if err != nil && ctx.Err() != nil {
		// A stop that did not end cleanly: the batch in flight cut off, or a stage of the stop
		// that outlived the pipeline's share of -shutdown-timeout (stream.ErrStopTimeout),
		// an output's close that gave up what it held.
		return fmt.Errorf("%w; stopped (SIGINT or SIGTERM) before everything was written and committed within -shutdown-timeout (%v): "+
			"what was not is read again from the committed offsets by the next run, so nothing is lost", err, c.stopTimeout)
	}
	return err
}
