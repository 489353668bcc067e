// The scrape-time collector: the gauges that depend on the time of the scrape (event-time
// lags) and the sinks' stats, read when Prometheus scrapes.

package prom

import (
	"maps"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeCollector computes the values that depend on the time of the scrape, and reads the
// sinks' stats.
type scrapeCollector struct {
	m     *Metrics
	descs scrapeDescs
	reps  repartitionDescs
}

type scrapeDescs struct {
	watermark, eventLag                               *prometheus.Desc
	readOffset, committedOffset, readLag, heldBack    *prometheus.Desc
	commitLag                                         *prometheus.Desc
	partWatermark, partEventLag, partIdle             *prometheus.Desc
	docs, failed, retried, reqRetries, blocked, split *prometheus.Desc
	requests, reqBytes, latency                       *prometheus.Desc
	failing, failingSince, failedAttempts, inFlight   *prometheus.Desc
	waiting, srcFailing                               *prometheus.Desc
}

func newScrapeDescs(cl prometheus.Labels) scrapeDescs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, cl)
	}
	return scrapeDescs{
		watermark: d("watermark_seconds", "Pipeline watermark after the last batch, in seconds since the epoch; absent before the first event."),
		eventLag:  d("event_time_lag_seconds", "Now minus the pipeline watermark at scrape time, at least 0; absent before the first event."),
		readOffset: d("source_read_offset",
			"Offset after the newest record read from a source partition, by the pipeline or by the source (dead letters count as read); absent before the first record.", "partition"),
		committedOffset: d("source_committed_offset",
			"Offset a source partition resumes from after a restart (the last committed); absent before the first commit.", "partition"),
		readLag: d("source_read_lag_records",
			"High-water mark minus the read offset of a source partition (commit lag minus held back): 0 when the pipeline keeps up.", "partition"),
		commitLag: d("source_commit_lag_records",
			"High-water mark minus committed offset of a source partition; open windows hold the commit back, so it is not the read lag.", "partition"),
		heldBack: d("source_held_back_records",
			"Offsets of a source partition read but not committed, because open state (windows) still needs them on a replay.", "partition"),
		partWatermark: d("partition_watermark_seconds",
			"A partition's own watermark, in seconds since the epoch; absent before its first event.", "partition"),
		partEventLag: d("partition_event_time_lag_seconds",
			"Now minus a partition's own watermark at scrape time, at least 0; absent before its first event.", "partition"),
		srcFailing: d("source_failing",
			"1 while a source cannot reach its system (a Kafka cluster), as of the last batch or, for the sources added with AddSource, "+
				"at scrape time; else 0."),
		partIdle: d("partition_idle",
			"1 while a partition is idle: no record for the idle timeout, its watermark left out of the pipeline's; else 0.", "partition"),
		docs:    d("sink_documents_total", "Documents a sink finished with, by result: created, updated, existed (replays), dead_lettered.", "sink", "result"),
		failed:  d("sink_item_failures_total", "Per-item failures of bulk responses, temporary (retried) and permanent.", "sink"),
		retried: d("sink_documents_retried_total", "Documents a sink sent again.", "sink"),
		reqRetries: d("sink_request_retries_total",
			"Bulk requests sent again after a transport error, a timeout or a 408/429/5xx status.", "sink"),
		blocked:  d("sink_blocked_total", "Item attempts refused by a write block (flood stage, index.blocks.write); retried.", "sink"),
		split:    d("sink_split_requests_total", "Bulk requests refused whole and split to isolate bad documents.", "sink"),
		requests: d("sink_requests_total", "Bulk request attempts.", "sink"),
		reqBytes: d("sink_request_bytes_total", "Bytes of bulk request attempts.", "sink"),
		latency:  d("sink_request_duration_seconds", "Duration of bulk request attempts.", "sink"),
		failing:  d("sink_failing", "1 while the sink's requests fail (its outage), else 0.", "sink"),
		failingSince: d("sink_failing_since_seconds",
			"When the sink's current outage began, in seconds since the epoch; absent while it is not failing.", "sink"),
		failedAttempts: d("sink_failed_attempts", "Failed request attempts of the sink's current outage; 0 while it is not failing.", "sink"),
		inFlight:       d("sink_in_flight_bytes", "Bytes of bulk requests in flight or waiting for a retry.", "sink"),
		waiting: d("sink_waiting_seconds",
			"How long the sink's oldest request still waiting for its answer has waited, once past the sink's slow threshold "+
				"(a node that takes requests and does not answer); 0 otherwise.", "sink"),
	}
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs
	for _, x := range []*prometheus.Desc{d.watermark, d.eventLag, d.readOffset, d.committedOffset, d.readLag, d.heldBack, d.commitLag,
		d.partWatermark, d.partEventLag, d.partIdle, d.docs, d.failed, d.retried, d.reqRetries,
		d.blocked, d.split, d.requests, d.reqBytes, d.latency, d.failing, d.failingSince, d.failedAttempts, d.inFlight, d.waiting, d.srcFailing,
		c.reps.records, c.reps.messages, c.reps.bytes} {
		ch <- x
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	m, d := c.m, c.descs
	live := m.liveSources() // before the lock: the stats funcs may take their own
	now := m.cfg.clock.Now()
	m.mu.Lock()
	wm := m.watermark
	sinks := maps.Clone(m.sinks)
	names := append([]string(nil), m.sinkNames...)
	rows := m.partitionTable(now, m.sourceVals(live))
	srcSince, _ := sourceOutage(m.srcSince, m.srcErr, live)
	m.mu.Unlock()
	srcFailing := 0.0
	if !srcSince.IsZero() {
		srcFailing = 1
	}
	ch <- prometheus.MustNewConstMetric(d.srcFailing, prometheus.GaugeValue, srcFailing)
	if !wm.IsZero() {
		ch <- prometheus.MustNewConstMetric(d.watermark, prometheus.GaugeValue, seconds(wm))
		ch <- prometheus.MustNewConstMetric(d.eventLag, prometheus.GaugeValue, max(0, now.Sub(wm).Seconds()))
	}
	// Per partition, from the status page's table, so that both show the same figures.
	for _, r := range rows {
		gauge := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, r.Name)
		}
		if r.Read != nil {
			gauge(d.readOffset, float64(*r.Read))
		}
		if r.Committed != nil {
			gauge(d.committedOffset, float64(*r.Committed))
		}
		if r.ReadLag != nil {
			gauge(d.readLag, float64(*r.ReadLag))
		}
		if r.HeldBack != nil {
			gauge(d.heldBack, float64(*r.HeldBack))
		}
		if r.CommitLag != nil {
			gauge(d.commitLag, float64(*r.CommitLag))
		}
		if r.Watermark != nil {
			gauge(d.partWatermark, seconds(*r.Watermark))
			gauge(d.partEventLag, *r.EventTimeLagMs/1e3)
		}
		if r.Idle != nil {
			idle := 0.0
			if *r.Idle {
				idle = 1
			}
			gauge(d.partIdle, idle)
		}
	}
	for _, name := range names {
		s := sinks[name]()
		counter := func(desc *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		counter(d.docs, s.Indexed, "created")
		counter(d.docs, s.Updated, "updated")
		counter(d.docs, s.Existed, "existed")
		counter(d.docs, s.DeadLettered, "dead_lettered")
		counter(d.failed, s.Failed)
		counter(d.retried, s.Retried)
		counter(d.reqRetries, s.RequestRetries)
		counter(d.blocked, s.Blocked)
		counter(d.split, s.Split)
		counter(d.requests, s.Requests)
		counter(d.reqBytes, s.Bytes)
		failing := 0.0
		if !s.FailingSince.IsZero() {
			failing = 1
			ch <- prometheus.MustNewConstMetric(d.failingSince, prometheus.GaugeValue,
				float64(s.FailingSince.UnixNano())/1e9, name)
		}
		ch <- prometheus.MustNewConstMetric(d.failing, prometheus.GaugeValue, failing, name)
		ch <- prometheus.MustNewConstMetric(d.failedAttempts, prometheus.GaugeValue, float64(s.FailedAttempts), name)
		ch <- prometheus.MustNewConstMetric(d.inFlight, prometheus.GaugeValue, float64(s.InFlightBytes), name)
		ch <- prometheus.MustNewConstMetric(d.waiting, prometheus.GaugeValue, waited(now, s.SlowSince).Seconds(), name)
		if h, ok := s.Latency.histogram(); ok {
			ch <- prometheus.MustNewConstHistogram(d.latency, h.count, h.sum, h.buckets, name)
		}
	}
	m.collectRepartitions(c.reps, ch)
}
