// # Dead letters
//
// Nothing is dropped silently: what cannot be used goes to a dead-letter output, one type
// for the whole SDK (DeadLetter: origin, key, value, headers, reason, error) through a
// DeadLetterSink, a Sink[DeadLetter]. Sources send the records they cannot decode or accept,
// including event times that Input.CheckEventTime refuses (ReasonEventTime); event-time
// operators put late records and records past a key limit on a side stream that a job
// routes to one (ReasonLate, ReasonKeyLimit; window.Late.DeadLetter and
// join.Late.DeadLetter make the dead letters); sinks send what their store refuses for good
// (ReasonRejected, ReasonEncode). A dead-letter output that fails is retried like any
// output, and one that fails permanently stops the pipeline.
//
// Run returns ctx.Err() itself (err == context.Canceled) only when the context ended and
// the stop went cleanly: the batch in flight was written and committed. Any failure is
// returned as such, never joined with a cancellation that would make it look like a stop:
// no error of Run but ctx.Err() itself matches context.Canceled or
// context.DeadlineExceeded with errors.Is, not a stop with a batch unwritten ("context
// canceled (batch 2 was not written: ...)"), nor an output that failed with its context's
// error (cut off by the shutdown grace or the shutdown timeout, a timeout), so that the idiom
// errors.Is(err, context.Canceled) does not take them for a stop. errors.Is and errors.As
// find the failure's other errors (OutputError, PermanentError, a sink's).
//
// # Backpressure
//
// One batch is processed at a time. The source writes into a bounded Input (WithBuffer:
// records and bytes); Push blocks and TryPush refuses while it is full, so memory stays
// bounded whatever the input rate. A batch starts every interval, and at once when the
// buffer already holds a batch worth of records (a bound reached) or the input ended: while
// catching up a backlog, batches run back to back at the speed of the CPU, each within the
// buffer's bounds (TestBacklogRunsBackToBack). A batch that took less while a tenth of a
// buffer was waiting after it (buffered, or unread in the source's partitions by its
// SourceStats Read and End) is followed a tenth of the interval later rather than at the
// tick (TestBehindRunsSoon), and at once when every source said it pushed all its
// partitions held (Input.ReadToEnd, which the Kafka Source calls once each partition was
// read to its high-water mark) and a tenth of a buffer waits: the batch that takes a
// backlog's last records does not wait for a buffer that will not fill, and a producer about
// as fast as the pipeline does not get a batch for each of its fetches
// (TestReadToEndStartsLastBatch). After the inputs of a repartition ended, batches run a tenth of
// the interval apart until its end marks came back, so that each hop of the end through a
// repartition does not wait for a tick (TestRepartitionEndTravelsWithoutTicks); and while
// they, or the values of the batch that ended a backlog, are on their way back, the first
// of them to arrive starts the next batch at once (TestRepartitionEndTravelsWithoutTicks,
// TestCatchUpTailThroughRepartition). Batch times are the processing times the
// batches started at; processing-time windows count batches, so their results do not
// change. Connectors pause fetching instead of blocking. Records
// are split by partition as they are pushed, on the source's goroutines, into one of two
// buffers that the run loop swaps at each batch: the run loop does not copy records.
// TryPushBatch splits a run of records of one partition in one step, and records of
// alternating partitions by a counting pass and a scatter.
//
// # Watermarks
//
// A partition's watermark is the newest event time seen in it minus WithMaxOutOfOrderness.
// The pipeline watermark, handed to operators in PartitionContext and never moving back, is
// the minimum over partitions that received records within WithIdleTimeout. When every
// partition is idle it is the minimum of all partitions' own watermarks: the slowest
// partition's, never the furthest. When the input ends it becomes EndOfTime and every window
// closes. Invariants (TestWatermark... in watermark_test.go):
//
//   - An idle partition never pulls the pipeline watermark ahead of a partition that is
//     active, nor, when all are idle, ahead of any partition's own watermark; so a partition
//     that becomes active again after an all-idle pause never finds its records behind the
//     pipeline watermark unless they are behind its own watermark too (they would be late in
//     that partition alone as well).
//   - A partition that was idle while others were active fires its windows at the active
//     partitions' watermark (that is what idleness is for); records it brings back from
//     behind that watermark are late and go to the operators' late side streams, never lost.
//   - No record moves a watermark further than the pipeline clock plus
//     WithMaxFutureEventTime (default one hour): one bad device clock cannot make every later
//     record of its partition late. Sources refuse such records (Input.CheckEventTime) and
//     send them to their dead-letter output; the pipeline also caps a partition's watermark
//     at that bound for sources that do not.
//   - The watermark passes through stateless operators: an operator that reads its source
//     through stateless ones only (a window behind a Filter) gets, on request
//     (PartitionContext.SourceTimes, computed only when asked), the offset and event time of
//     every record of the partition in the batch, those dropped before it included, from its
//     replay cut on; its clock then moves as it would over the unfiltered stream, which
//     depends only on the partition's record order. A repartition's partitions have
//     WatermarkAt and Marks instead; an operator behind a stateful one has neither.
//
// # Stats and logging
//
// After every batch a BatchStats snapshot (records, bytes, scheduling delay, processing and
// output time, each output's time by name (OutputName), watermark, retained state, commits,
// source lag) is available from Stats and a WithStatsHook function. Logs go to the WithLogger
// *slog.Logger, which discards by default (package streamtest's harness logs warnings to the
// test's log).
//
// # Testing
//
// Package streamtest runs pipelines offline, batch by batch, with a manual clock.
//
// # Writing pipelines
//
// What a pipeline author needs: New and its options (WithName, WithMaxOutOfOrderness,
// WithIdleTimeout, WithMaxFutureEventTime, WithBuffer, WithRetry, ...), From with a
// connector's source, the operators (Map, Filter, KeyBy, ReduceByKey, Window, ...), the
// output operations To and ForEachBatch with a Sink, Pipeline.Run, and Stats or
// WithStatsHook to watch it. Errors: ErrInvalidOption and ErrGraph (construction),
// ErrRunning, ErrRunTwice and ErrNoSource (Run), ErrInputChanged and ErrOperatorChanged
// (a restart that must not resume its checkpoint), OutputError and Permanent (outputs).
//
// # Writing sources and operators
//
// The extension points, for connectors and operator packages (package window, the kafka
// source, the telemetry tracker), apart from the API above:
//
//   - Source, with Binder for sources fed from outside Run: a source pushes Records into its
//     Input (Push, TryPush, TryPushBatch, with Full and Space for pausing), checks event
//     times with Input.CheckEventTime, reports partitions with Assign, Resume and Revoke
//     (applied at the next batch in the order they were called, however many came in
//     between), learns with Input.Accepted when the pipeline accepted them (before it writes anything
//     of its own, such as dead letters, that a refused restart must not write), and
//     receives commits (Position, with the checkpoint in Meta).
//   - Operator, applied with Apply: Process sees each partition's batch as Elem values (a
//     value, its event time and the offset it derives from) with a
//     PartitionContext (partition, batch, watermarks, CapEventTime, SourceTimes); Retained, Drop and
//     StateSize describe its state; ReplayStarter gives finer replay starts; StateReporter
//     adds open windows, bytes and set-aside records to BatchStats.State; Parameterized
//     describes the parameters that checkpoints record.
//   - Sink and Closer for outputs; DeadLetter and DeadLetterSink for dead-letter outputs.
package stream
