// Package fleetstream is a Go SDK for telemetry stream processing: read cab telemetry from
// Kafka or Amazon MSK, transform it with typed DStream-style operators and event-time
// windows, and write the results to OpenSearch, with no Spark cluster. Teams import its
// packages into their own services; the same code runs the bundled pipelines, backfills and
// offline unit tests.
//
// This package holds documentation only.
//
// # Architecture
//
//	Kafka / MSK ──> kafka.Source ──> stream.Pipeline (micro-batches, per-partition state)
//	                                   │  Map, Filter, KeyBy, ReduceByKey, Window, ...
//	                                   │  window.Aggregate (event time, watermarks, lateness)
//	                                   │  telemetry transforms (cab stats, zone demand, alerts)
//	                                   └──> opensearch.Sink (bulk, deterministic ids)
//	                                   └──> kafka.Producer (alerts, dead letters)
//
// The packages:
//
//   - stream: the core. Pipeline, Stream[T], the operators, Source and Sink contracts,
//     acknowledgements, commits held back by open state, backpressure, stats.
//   - stream/streamtest: the offline harness: manual clock, queued batches, collectors, and
//     the sink conformance suite.
//   - window: event-time windows: tumbling, sliding and session assigners, aggregators,
//     watermarks, allowed lateness, late-record side stream.
//   - join: event-time joins of two keyed streams (interval and tumbling-window joins, through
//     one repartition), and Enrich, the stream-table join as of each record's event time.
//   - telemetry: the cab event schema and codec, geo helpers, ready-made transforms and alerts;
//     telemetry/fleetsim: a deterministic fleet simulator and the Porto real-data replay.
//   - kafka: consumer-group source with commits driven by acknowledgements, dead-letter
//     topic, idempotent and exactly-once producer sinks, the repartition exchange, tables of
//     compacted topics, MSK auth (TLS, SASL/SCRAM, IAM).
//   - opensearch: bulk sink with retries and dead letters, index templates, SigV4.
//   - metrics/prom: Prometheus metrics of a pipeline and its sinks, /healthz, /readyz and a
//     live status page.
//   - metrics/prom/opensearchprom: an OpenSearch sink's stats as metrics/prom's sink metrics.
//   - testenv: real Apache Kafka and OpenSearch, from Maven Central, for tests and the demo.
//
// # Delivery
//
// A batch is acknowledged only after every output succeeded, and Kafka offsets are committed
// only up to what was acknowledged and what no open window still needs. Replay after a crash
// rebuilds open windows; sinks write with deterministic ids. Ingestion is at-least-once and
// results in OpenSearch are effectively exactly-once. See package stream.
//
// # Quick start
//
//	make demo   # start Kafka and OpenSearch, replay Porto taxis, run the fleet pipeline
//	make test   # the whole suite against the real services
//
// A pipeline of your own:
//
//	p, _ := stream.New(time.Second, stream.WithName("speeding"))
//	events := stream.From(p, source) // e.g. a kafka.Source[telemetry.Event]
//	fast := events.Filter(func(e telemetry.Event) bool { return e.SpeedKmh > 120 })
//	stream.To(fast, sink) // e.g. an opensearch.Sink
//	err := p.Run(ctx)
package fleetstream
