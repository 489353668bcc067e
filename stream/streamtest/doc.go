// Package streamtest unit-tests fleetstream pipelines offline: no Kafka, no sleeps.
//
// # Harness
//
// New builds a pipeline driven by a manual Clock. NewQueue attaches a source fed from queued
// batches (like Spark's queueStream); records may carry partitions, offsets and event times.
// Each Step advances the clock by one batch interval, moves the next queued batch into the
// pipeline and runs it synchronously. Collect records every batch an output received, and
// the Queue records every commit, so tests can check delivery as well as values. The
// pipeline's warnings go to the test's log (shown under -v or when the test fails).
//
// # Sink conformance
//
// RunSinkConformance is the suite every sink in fleetstream runs: empty batches, whole
// batches, idempotent replays, cancelled writes, and use as a pipeline output.
package streamtest
