// Package opensearchprom exports the stats of OpenSearch sinks (opensearch.Sink.Stats) as the
// sink metrics of package prom:
//
//	_ = m.AddSink("cab-stats", opensearchprom.SinkStats(sink.Stats))
//
// # Dependencies
//
// It is a package of its own so that neither prom nor opensearch imports the other: a program
// that exports a pipeline's metrics without an OpenSearch sink does not build the OpenSearch
// client (and the AWS SDK that signs its requests), and one that writes to OpenSearch without
// Prometheus does not build client_golang. A program that uses both imports this one.
//
// # Metrics
//
// Every count of opensearch.Stats that prom.SinkStats has goes to the field of the same name;
// the request latency goes to the histogram sink_request_duration_seconds, with the buckets of
// opensearch.LatencyBounds and a sum of the mean times the count (opensearch.Latency keeps no
// sum: the sum is exact up to the mean's rounding to a nanosecond); the failure fields
// (FailingSince, FailedAttempts, LastError, LastAttempt) and SlowSince (a request waiting
// past Config.SlowRequest: a node that does not answer) feed the status page's banner and
// /readyz, with the system named "OpenSearch", and SlowSince the gauge sink_waiting_seconds. LongIDs, InvalidIDs and Superseded are not
// exported (prom.SinkStats has no field for them).
package opensearchprom
