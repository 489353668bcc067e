// Package prom exports a pipeline's stats as Prometheus metrics, through the official client
// library, and serves /metrics, /healthz and /readyz. The core (package stream) does not
// import Prometheus: it hands a stream.BatchStats to a stats hook after every acknowledged
// batch, and Metrics.Observe is that hook.
//
//	reg := prometheus.NewRegistry()
//	m, err := prom.New(reg, "cab-stats")
//	if err != nil { ... }
//	p, err := stream.New(time.Second, stream.WithName("cab-stats"), stream.WithStatsHook(m.Observe))
//	...
//	_ = m.AddSink("cab-stats", func() prom.SinkStats { s := sink.Stats(); return prom.SinkStats{Indexed: s.Indexed, ...} })
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
//	batch_scheduling_delay_seconds              histogram  scheduled time to start of processing
//	partitions                                  gauge      source partitions held
//	last_batch_timestamp_seconds                gauge      when the last batch was acknowledged
//	watermark_seconds                           gauge      pipeline watermark (absent before any event)
//	event_time_lag_seconds                      gauge      now minus watermark at scrape time, >= 0
//	state_entries{operator}                     gauge      entries held by a stateful operator
//	source_dead_letters_total                   counter    records the source dead-lettered
//	source_commit_lag_records{partition}        gauge      high-water mark minus committed offset
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
//
// The commit lag is not the read lag: open windows hold the commit back by design (replay
// rebuilds their state), so a pipeline that keeps up shows a commit lag as large as the
// records its open windows still need. Alert on event_time_lag_seconds for "behind".
//
// # Cumulative values
//
// BatchStats carries per-batch values (records, durations, attempts), which are added, and the
// source's cumulative ones (SourceStats.DeadLetters), of which the increase is added. A
// cumulative value that goes down means its source restarted from zero; the new value is then
// counted whole, so counters never go backwards. Gauges for partitions and operators that no
// longer appear in a batch's stats are removed.
//
// # Health
//
// /healthz answers 200 while batches are acknowledged: the last stats (or, before the first
// batch, New) are no older than WithStaleAfter; else 503 with the reason. /readyz answers 503
// until the first batch was acknowledged, and whenever /healthz fails. Stats arrive only after
// an acknowledged batch, so an output that keeps failing (OpenSearch down, a batch retrying)
// turns both 503 once the staleness passes. Time comes from WithClock, so tests need no sleeps.
//
// # Cost and concurrency
//
// Observe runs once per batch in the run loop, never per record, and does not allocate once
// the partitions and operators are known (a few microseconds for a dozen partitions). All
// methods are safe for concurrent use; the sink stats functions run on the scraping goroutine.
package prom
