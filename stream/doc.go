// Package stream is the DStream core of fleetstream: a Pipeline runs a graph of typed
// streams in micro-batches, with Spark Streaming's operators and Kafka-grade delivery.
//
// # Model
//
// A Pipeline (Spark's StreamingContext) has one or more Sources (From once per source, see
// Repartition) and a batch interval. Every interval the run loop takes what the sources
// buffered, runs the graph, calls the outputs, and when they all succeeded acknowledges the
// batch. A Stream[T] is a DStream: a sequence of batches of T. Operators that change the
// element type are generic functions (Map, FlatMap, KeyBy, ReduceByKey, ...); those that keep
// it are methods (Filter, Union). Nothing runs before Pipeline.Run, and no goroutine starts
// before it.
//
// Operators work partition by partition: each batch is split by source partition, and state
// that lives across batches (windows, UpdateStateByKey, MapWithState, event-time windows of
// package window) is kept per partition, like Kafka Streams tasks. A key's results are whole
// when the key is co-partitioned with the Kafka message key; otherwise they are per-partition
// partial results.
//
// Chains of elementwise operators (Map, Filter, KeyBy, MapValues) are fused: when such an
// operator's only reader is another elementwise operator or an output, it builds no batch of
// its own, and the chain runs as one pass over the last batch that is materialized, element by
// element. An operator read by several readers is still computed once per element. A custom
// Operator (Apply) with several kinds of output emits all but one of them to side outputs
// (NewSideOutput, as Flink's) rather than one mixed output that Filters split, which takes a
// pass over every element for each kind.
//
// # Processing-time windows
//
// Window, ReduceByWindow, CountByWindow, ReduceByKeyAndWindow (with ReduceByKeyAndWindowInv
// for the incremental form with an inverse function and a filter), CountByValueAndWindow and
// GroupByKeyAndWindow follow Spark DStream semantics batch by batch: the length and slide
// must be multiples of the batch interval (else a construction error, see Pipeline.Err); a
// windowed stream has data only every slide; until a full length has passed a window holds
// the batches there are; with an inverse function a key whose values all left the window is
// still emitted, with the value the inverse leaves, unless the filter removes it. Their
// state holds the commit at the oldest record of the window's last length of batches, and
// the end of input does not close them: a bounded run ends with its commit held there (see
// Pipeline.Run). Event-time windows are in package window.
//
// # Delivery
//
// A batch is acknowledged only after every output of the batch succeeded. An output that
// fails is retried under the RetryPolicy (exponential backoff with jitter, forever by
// default), with the same values, and outputs that already succeeded are not called again;
// an error wrapped with Permanent stops the pipeline instead. A partition revoked meanwhile
// waits for the batch (see Input.Revoke for the limit that sets during an outage). After
// the acknowledgement the pipeline calls Source.Commit with, per partition, the next offset
// after the batch's records, held back by the oldest offset that any operator's retained
// state still needs (every Elem carries an offset: the oldest it derives from, or, for what
// an operator emits when the watermark moves, the position of the record or mark that moved
// it, as window results and unmatched join rows do). So after a crash, replay from the
// committed offsets rebuilds all open state: ingestion is at-least-once, and sinks that write
// with deterministic ids make results effectively exactly-once.
//
// Run commits a batch while it takes, processes and writes the next one: the positions are
// computed when the batch is acknowledged, from the operators' state after it, and Commit
// runs in the background. Commits stay one at a time and in batch order (a batch's commit
// first waits for the previous one), a revocation waits for the commit in flight before it
// drops the partition's state, and Run returns only once the last commit ended. So a crash
// finds, as before, the positions of some acknowledged batch committed, perhaps an older one
// than the last: more replay, the same results. Catching up, a commit (an exactly-once
// transaction: produce, offsets, end) took about as long as a batch's outputs; overlapped,
// it no longer adds to every batch (BatchStats.CommitTime is the commit's duration,
// CommitWait the part of it a batch still waited for). Step commits at once.
//
// Operators retain different amounts of input (a tracker keeps each cab's last event, a
// window its open windows), and the commit is the oldest offset any of them needs. So that a
// replay does not rebuild an already emitted window from part of its records, each commit
// carries a small checkpoint (Position.Meta, stored by the Kafka source as offset metadata)
// with every stateful operator's own replay start; a source that resumes a partition hands
// it back (Input.Resume) and each operator skips the replayed records it had already
// accounted for.
//
// When a stateful operator reads another one's output (windows over a tracker's annotated
// events), the reader's start can be older than the upstream operator's own, and the upstream
// operator started cold there would annotate the first records it sees differently (an event
// taken for its cab's first). So the pipeline remembers, per partition, the starts such an
// operator had after recent batches, and starts it where it could start after the last batch
// that ended before its readers' starts: its output from there on is what it was. The commit
// moves back with it.
//
// A checkpoint names the graph it was written by (a fingerprint of every operator's name,
// element type, inputs and state type) and each stateful operator's identity (its name,
// element type and state type). One written by another graph, such as a new release with an
// operator added or its stateful operators in another order, applies to the operators by
// identity, never by position (see "Restarts with another graph"). It also records the
// parameters of the stateful operators (see "Restarts with changed operators").
//
// # Restarts with changed operators
//
// A stateful operator's replay start, and a window's fire watermark, mean something only for
// the parameters they were computed with: the first record of the oldest window open at the
// commit is a window boundary for that size, the windows that fired are those of that grace.
// Resumed under other parameters (a window's size, a join's bounds), an operator builds
// windows from part of their records and emits them beside the results of the old
// parameters, or never makes rows the new bounds call for, and the pipeline goes on without a
// word: an interval join whose upper bound went from 10 s to 30 s across a SIGKILL left
// 2,153 of 13,008 rows missing against the new bounds and 28 extra, exit 0. So each
// checkpoint records a hash of the parameters of every stateful operator that describes them
// (Parameterized: package window's Aggregate, package join's Interval and Window; here
// Window, ReduceByKeyAndWindowInv and the windows built on them, and MapWithState).
// Invariants:
//
//  1. A partition assigned with a checkpoint of this graph (the same fingerprint) that
//     records for an operator a hash other than that of the operator's parameters now stops
//     the pipeline with an error wrapping ErrOperatorChanged, permanent, which names the
//     operators and their parameters now, before the outputs of the batch: nothing of the
//     batch is written or committed, nor anything by a source that waits for
//     Input.Accepted, such as a Kafka Source's dead letters (TestInputAccepted), and Run
//     returns the error, so a job exits non-zero
//     (TestRestartWithChangedWindowStops: size, grace, emission; TestRestartWithChangedJoinStops:
//     upper bound, kind, an interval join become a window join;
//     TestRestartWithChangedProcessingTimeState; TestRunStopsOnChangedOperator, under Run).
//     The previous release ran on there, exit 0.
//  2. The same parameters resume as before: each window once over the two runs, and the
//     join's rows of both runs are those of one run (TestRestartWithSameWindowReplaysExactly,
//     TestRestartWithChangedJoinStops "same bounds").
//  3. WithColdStartChanged accepts the change: each changed operator starts cold from the
//     committed offset, as with a refused checkpoint, and so does every stateful operator
//     it reads (which must feed it from there); every other operator resumes from its own
//     start in the checkpoint (TestRestartWithChangedWindowColdStart: the unchanged window
//     emits nothing twice, which a cold start of every operator would). The run's first
//     commit records the new parameters, so the next restart needs no option: set it for
//     the one restart that changes them. A partition with nothing more to read (committed
//     at its end, such as a quiet second input's) is committed too, at its offset, with the
//     checkpoint it resumed from under the new parameters
//     (TestColdStartChangedRecordsParametersOfIdlePartition); it used to keep the old ones,
//     and every restart without the option stopped again. What it costs: results written
//     before the restart stay as the old parameters made them (a window of the old size
//     keeps its document, whose id has the old start and end; join rows of the old bounds
//     stay); records before the committed offset never count under the new parameters (join
//     rows that pair them with later records are never made); and the changed operator
//     makes from the records after the committed offset only what straddles it (a window of
//     the new size emitted from part of its records, a LeftOuter join's left record emitted
//     as unmatched whose partners came before), and emits again, under the new parameters,
//     results it had emitted from records after the committed offset. For every result
//     under the new parameters, run under a new pipeline name (consumer group, and with it
//     new repartition topics) from the start of the input, as Spark asks for a new
//     checkpoint location.
//  4. A checkpoint that names no parameters is accepted as before, with nothing to compare:
//     one of the earlier format "fs2/" (its replay starts are applied whatever the
//     parameters now, and the next commit is of this release's format, "fs4/", with them:
//     TestRestartFromFS2Checkpoint), a position without a checkpoint (Meta empty: every
//     stateful operator starts at the committed offset, without an error;
//     TestRestartWithChangedWindowColdStart), and an
//     operator for which the checkpoint has no hash (it described none in the run that
//     wrote it). This release writes a checkpoint, with the parameters, whenever the graph
//     has an operator with parameters, also when every operator's start is the committed
//     offset; so an empty one comes from an earlier release (where every operator started at
//     the committed offset) or from a tool that set the offsets (kafka-consumer-groups
//     --reset-offsets), never from this release's commits of such a graph.
//  5. A checkpoint of another graph is compared by operator identity (see "Restarts with
//     another graph"): an operator it names under other parameters stops the restart as in
//     (1) (TestRestartWithChangedGraphAndWindowStops); a renamed operator is a new one, not
//     compared (TestRestartWithChangedAndRenamedWindow).
//
// Parameters are what defines an operator's output besides its input: for package window,
// the assigner (kind, size, slide, gap), the grace and the emission mode; for package join,
// Interval's bounds, Window's size, and the kind; here the length and slide of the
// processing-time windows and MapWithState's timeout. Not parameters: functions (key,
// value, aggregator, merge: code, like a Map's function), window.WithMaxKeys (it bounds
// memory, and raising it at a restart is how one gets past it), the pipeline's options
// (WithMaxOutOfOrderness, WithIdleTimeout: they move watermarks, which a replay judges
// afresh anyway), and Enrich's kind (Enrich keeps no state that a replay rebuilds: a row
// depends on its record and the table only, so a change applies from the committed offset
// on, as a change of a Map function does).
//
// The checkpoint keeps hashes, not the parameters: an entry "<operator>=<hash>" per operator
// with parameters, the hash 32 bits of FNV-1a in base 36, at most 12 bytes (a change is
// missed once in 4 billion). A pipeline of 60 event-time windows (120 stateful operators
// with their late streams) at ten-digit offsets commits 2,331 bytes, 632 more than before,
// within Kafka's default limit of 4 KiB for offset metadata
// (TestCheckpointWithManyOperatorsFits).
//
// # Restarts with another graph
//
// A new release often changes the graph around the state it keeps: an output added, a
// filter put before a window, a flag that drops a branch. Starting every stateful operator
// cold from the committed offset (the oldest offset any operator still needs) would be wrong
// for all of them but the one that holds the commit: an operator whose own start is later
// would build the windows it had already emitted from the part of their records after the
// committed offset, and emit them again over the complete results (a group sum of four
// records written again as the sum of two, in TestCheckpointOfReorderedGraphResumesByName).
// So a checkpoint records every stateful operator's identity, a hash of its name, element
// type and state type and of the identities of the stateful operators whose output it reads
// (not its position or its stateless inputs), as Flink matches state by operator uid and
// Kafka Streams by store name: the name is the state's identity, and an operator given the
// name of another is taken for it. Invariants, for a checkpoint of another graph (another
// fingerprint):
//
//  1. A stateful operator whose identity the checkpoint records resumes from the replay
//     start and fire watermark recorded for it, as under the graph that wrote it: its results
//     over the two runs are those of one run (TestAnotherGraphOracle: random graphs of
//     windows, a crash at a random batch, a restart with windows gone, added, reordered,
//     read through new operators, and a window of a window's results switched to another
//     window, against an uninterrupted run; TestCheckpointOfReorderedGraphResumesByName,
//     TestRestartWithChangedAndRenamedWindow, TestRestartWithChangedGraphAndWindowStops, and
//     the fleet job's TestNewReleaseKeepsStateOffline), and its parameters are compared
//     (invariant 5 of "Restarts with changed operators").
//  2. A stateful operator the checkpoint does not name is new, also one that reads another
//     stateful operator than it did (its replay start would otherwise move the one it reads
//     now back, to emit again from part of their records windows it had emitted): it starts
//     empty where what it reads resumes, the latest replay start of the stateful operators
//     upstream of it (through stateless ones), or the committed offset if none; so an
//     operator kept upstream is never moved back to feed a new one. A new window may so
//     emit its first window from part of its records, as a new operator in Flink starts
//     with empty state; one that also reads the source (a union) misses the source's
//     records before that start. On a repartition's partition, a new operator that reads the
//     repartition through stateless operators only skips the windows that fired before the
//     commit by the fire watermark kept with the marks.
//  3. Operators alike in name, element type and state type (two windows of one type left
//     unnamed: window's default name is "window") cannot be told apart across graphs: a
//     release that declares them in another order would resume each from the other's
//     start, and lose records. A checkpoint of another graph resumes none of them; each
//     starts as in (2) (TestCheckpointOfAnotherGraphLeavesAmbiguousOperatorsAlone,
//     TestCheckpointOfAnotherGraphSwappedAlikeOperators), and so does an operator whose
//     identity another one of either graph hashes to (31 bits: TestCollidingIdentities; the
//     graph that wrote it resumes it as always). Name stateful operators (window.WithName,
//     the name given to Apply) to keep their state across releases. An Operator whose
//     element type changes (its state type names it too) keeps its state by implementing
//     Identifier with its former identity, ApplyIdentity of its old types, as Flink's
//     setUidHash does; the stateful operators that read it keep theirs with it
//     (TestIdentifierKeepsStateAcrossTypeChange: without, it starts as new).
//  4. A checkpoint without identities (format "fs3/" and earlier, or of a graph too large
//     for them, below) of another graph is refused and logged, and every stateful operator
//     starts cold from the committed offset (TestCheckpointOfReorderedGraphResumesByName,
//     TestRepartitionRefusedCheckpoint). A release before this one reads this release's
//     checkpoints that way (format "fs4/"): rolling back starts its operators cold.
//
// The restart logs the operators resumed, the new ones and how many of the checkpoint's are
// gone, at Warn. The identities cost a checkpoint about 8 bytes per stateful operator, taken
// from the room a repartition's marks have (see the limits in "Repartition"). A graph whose checkpoint would pass 2,560 bytes with them, reckoned once
// with every operator's start at a twelve-digit offset (a kafka Source adds up to about 1
// KB, and Kafka allows 4 KiB), writes none: a graph of 40 windows keeps them (2,157 bytes at
// ten-digit offsets), one of 60 does not (TestCheckpointWithManyOperatorsFits). Hostile
// metadata can name only this graph's stateful operators (FuzzMatchCheckpoint).
//
// The instances of a scaled-out pipeline share the group's checkpoints: during a rolling
// deploy that changes parameters, an instance assigned a partition that an instance with the
// other parameters committed stops with ErrOperatorChanged. Stop every instance, then start
// them with WithColdStartChanged.
package stream
