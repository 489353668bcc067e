// Package prom exports a pipeline's stats as Prometheus metrics, through the official client
// library, and serves /metrics, /healthz, /readyz and a live status page. The core (package stream) does not
// import Prometheus: it hands a stream.BatchStats to a stats hook after every acknowledged
// batch, and Metrics.Observe is that hook.
//
//	reg := prometheus.NewRegistry()
//	m, err := prom.New(reg, "cab-stats")
//	if err != nil { ... }
//	p, err := stream.New(time.Second, stream.WithName("cab-stats"), stream.WithStatsHook(m.Observe))
//	...
//	_ = m.AddSink("cab-stats", opensearchprom.SinkStats(sink.Stats)) // an OpenSearch sink (package opensearchprom)
//	_ = m.AddSource(src.Stats) // a kafka.Source: its lags stay live while no batch is acknowledged
//	go http.ListenAndServe("127.0.0.1:9464", m.Handler()) // opt-in; the caller owns the server
//	err = p.Run(ctx)
//
// # Metrics
//
// Every name starts with fleetstream_ and carries the constant label pipeline. Durations are
// in seconds, counters end in _total.
//
//	input_records_total, input_bytes_total      counter    records and bytes of acknowledged batches
//	batches_total                               counter    acknowledged batches
//	output_attempts_total, output_retries_total counter    output attempts; those after the first
//	batch_processing_seconds                    histogram  transforms, outputs excluded
//	batch_output_seconds                        histogram  outputs, retries included
//	output_write_seconds{output}                histogram  one output's writes in a batch (stream.OutputName)
//	output_values_total{output}                 counter    values handed to one output
//	batch_commit_seconds                        histogram  a batch's commit (beside the next batch)
//	batch_commit_wait_seconds                   histogram  the wait for the previous batch's commit
//	batch_scheduling_delay_seconds              histogram  scheduled time to start of processing
//	partitions                                  gauge      source partitions held
//	source_failing                              gauge      1 while a source cannot reach its system (SourceStats.FailingSince,
//	                                                       of the last batch or live from AddSource's sources)
//	last_batch_timestamp_seconds                gauge      when the last batch was acknowledged
//	watermark_seconds                           gauge      pipeline watermark (absent before any event)
//	event_time_lag_seconds                      gauge      now minus watermark at scrape time, >= 0
//	state_entries{operator}                     gauge      entries held by a stateful operator
//	state_open_windows{operator}                gauge      windows holding data, not emitted yet (*)
//	state_bytes{operator}                       gauge      estimated bytes of the operator's state (*)
//	operator_rejected_records_total{operator,reason} counter  records set aside: late, key_limit (*)
//	operator_split_keys_total{operator}         counter    keys found in another partition: results split or wrong (*)
//	operator_unmatched_records_total{operator}  counter    records an inner join dropped for want of a match (*)
//	source_dead_letters_total                   counter    records the source dead-lettered
//	source_dead_letters_by_reason_total{reason} counter    the same by reason: decode, invalid, event_time
//	repartition_duplicates_total                counter    replayed records the repartitions dropped
//
// (*) for operators that implement stream.StateReporter (package window's Aggregate, the
// telemetry cab tracker, package join's operators); the estimate of bytes is the operator's,
// as its package documents. Operators of the same name are summed. operator_split_keys_total
// should stay 0: it counts a window's results of one window and key from several partitions,
// and a co-partitioned enrichment's keys looked up in several table partitions (an input not
// partitioned by the operator's key; stream.OperatorState.SplitKeys).
//
// per source partition, labelled partition with the status page's names (WithPartitionName),
// removed when the partition leaves (revoked); a figure not known yet is absent. The commit
// lag, read offset and end come from the last acknowledged batch's SourceStats, or, for the
// partitions of a source added with AddSource, from its live stats at scrape time:
//
//	source_read_offset{partition}               gauge      offset after the newest record read (or dead-lettered)
//	source_committed_offset{partition}          gauge      offset a restart resumes from
//	source_commit_lag_records{partition}        gauge      high-water mark minus committed offset
//	source_held_back_records{partition}         gauge      read but not committed (open state needs them)
//	source_read_lag_records{partition}          gauge      high-water mark minus read offset: not read yet
//	partition_watermark_seconds{partition}      gauge      the partition's own watermark
//	partition_event_time_lag_seconds{partition} gauge      now minus that watermark at scrape time, >= 0
//	partition_idle{partition}                   gauge      1 while the partition is idle
//
// and per sink added with AddSink, read at scrape time:
//
//	sink_documents_total{sink,result}           counter    result: created, updated, existed, dead_lettered
//	sink_item_failures_total{sink}              counter    per-item failures, temporary and permanent
//	sink_documents_retried_total{sink}          counter    documents sent again
//	sink_request_retries_total{sink}            counter    bulk requests sent again
//	sink_blocked_total{sink}                    counter    item attempts refused by a write block
//	sink_split_requests_total{sink}             counter    requests refused whole and split
//	sink_requests_total, sink_request_bytes_total{sink}   counter
//	sink_request_duration_seconds{sink}         histogram  when SinkStats.Latency has bounds
//	sink_failing{sink}                          gauge      1 while the sink's requests fail
//	sink_failing_since_seconds{sink}            gauge      when its outage began (absent when not failing)
//	sink_failed_attempts{sink}                  gauge      failed requests of the current outage
//	sink_in_flight_bytes{sink}                  gauge      bytes of requests in flight or waiting for a retry
//	sink_waiting_seconds{sink}                  gauge      how long its oldest request waits for an answer, once
//	                                                       past the slow threshold (SinkStats.SlowSince); else 0
//
// and per repartition added with AddRepartition (the fleet job: one per exchange, by topic):
//
//	repartition_sent_records_total{repartition}  counter  records written (values and marks)
//	repartition_sent_messages_total{repartition} counter  Kafka messages they were packed into
//	repartition_sent_bytes_total{repartition}    counter  bytes of those messages' values
//
// and output_retry_attempt (gauge), the attempt of the batch whose outputs ObserveRetry
// reported failing, 0 when none is.
//
// The commit lag is not the read lag: open windows hold the commit back by design (replay
// rebuilds their state), so a pipeline that keeps up shows a commit lag as large as the
// records its open windows still need, which source_held_back_records shows. The read lag is
// the high-water mark minus the read offset, at least 0: 0 when the pipeline keeps up; the
// commit lag (the source's, SourceStats.Lag, high-water mark minus committed) is the read lag
// plus the held back records. The read offset is the later of the pipeline's
// (stream.PartitionStats.Next) and the source's own (SourceStats.Read: a kafka.Source counts
// the records it pushed into the pipeline's input and those it dead-lettered, so dead letters
// at a partition's end are read, not read lag); the high-water mark is the source's
// (SourceStats.End), else committed plus commit lag. The read lag is known for the
// partitions whose commit lag the source reports under the same name.
// Alert on source_read_lag_records or event_time_lag_seconds for "behind", not on the
// consumer group's lag.
//
// # Lag during outages
//
// An output outage (OpenSearch down) stops the acknowledgements, so Observe does not run: the
// last batch's figures stay as they were, and a pipeline that kept up read 0 while the
// backlog grew. Add each source whose lag an alert watches with AddSource: its commit lag,
// read offset and end are then read at every scrape, and a kafka.Source's end keeps moving
// while its claims stop fetching (it lists the high-water marks every two seconds once its
// buffers are full), so source_read_lag_records and source_commit_lag_records grow with the
// backlog, within a few seconds, as Flink's and Spark's lag do. event_time_lag_seconds grows
// too (now minus the last batch's watermark). The figures only a batch knows (the
// pipeline's positions, committed offsets, held back records, watermarks, state) stay the
// last batch's.
//
// A Kafka outage is different: the consumer group session ends and every partition is
// revoked, so the per-partition series go away (partitions reads 0) until the source joins
// again, and an alert on the lag gets no data rather than a high value. Alert on that as
// well, with source_failing (1 while the source cannot reach Kafka: as of the last batch,
// since batches go on, empty, during a Kafka outage, or, for a source added with AddSource,
// as its live stats say at scrape time, so that it also shows a Kafka outage during an output
// outage, when no batch is acknowledged; /readyz and the banner take the same) or absent(),
// for example:
//
//	sum(fleetstream_source_read_lag_records) > 100000
//	  or (fleetstream_source_failing == 1)
//	  or absent(fleetstream_source_read_lag_records)
//
// The last values are not kept: a partition that is gone may have been taken over by another
// instance of the group, and its figures there are that instance's.
//
// # Cumulative values
//
// BatchStats carries per-batch values (records, durations, attempts), which are added, and the
// cumulative ones (SourceStats.DeadLetters, Duplicates), of which the increase is added. A
// cumulative value that goes down means its source restarted from zero; the new value is then
// counted whole, so counters never go backwards. Gauges for partitions and operators that no
// longer appear in a batch's stats are removed.
//
// # Health
//
// /healthz answers 200 while the run loop turns: the last batch's stats are no older than
// WithStaleAfter (before the first batch: New is no older than WithStartTimeout, ten minutes
// by default, long enough for a group join and the loads of tables), or, during an outage,
// an output retry was reported (ObserveRetry) or a sink attempted a request
// (SinkStats.LastAttempt) within the staleness; else 503 with the reason. /readyz answers 503 until the first batch was acknowledged,
// whenever /healthz fails, while a sink is failing (SinkStats.FailingSince) or waits for an
// answer past its slow threshold (SinkStats.SlowSince: "sink cab-stats: no answer from
// OpenSearch for 23s", a hung node, before the request timeout fails the request), while a
// batch's outputs are retried, and, with WithMaxEventTimeLag, while the event-time lag is above it (a
// long catch-up); the body names every reason. Time comes from WithClock, so tests need no
// sleeps.
//
// # Status page
//
// Handler serves a live status page at / (one embedded HTML file with inline script and
// styles, no external assets, so it works air-gapped) that polls /status.json (Status) every
// second: input and process rates, batch duration and scheduling delay charts over the last
// HistorySize batches, the partition table (offset read, committed, end, read lag, commit
// lag, held back, watermark, event-time lag, idle), event-time lag and watermark, state per
// operator (entries, open windows, estimated bytes, late and key-limit records), each sink's
// counters and health, dead letters and late records by where and why, and a banner while an
// output fails ("OpenSearch unreachable since 10:42:13 (...), batch 38 retrying, attempt
// 12") or does not answer ("No answer from OpenSearch for 23s (...), batch 8 waiting"). A figure an operator does not report reads "–"; Status.Unavailable names figures the
// pipeline does not report at all (none today).
//
// # Cost and concurrency
//
// Observe runs once per batch in the run loop, never per record, and does not allocate once
// the partitions and operators are known (a few microseconds for a dozen partitions). All
// methods are safe for concurrent use; the sink, repartition and source stats functions run
// on the scraping goroutine (and the status page's).
package prom
