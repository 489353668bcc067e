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
// element. An operator read by several readers is still computed once per element.
//
// # Processing-time windows
//
// Window, ReduceByWindow, CountByWindow, ReduceByKeyAndWindow (with ReduceByKeyAndWindowInv
// for the incremental form with an inverse function and a filter), CountByValueAndWindow and
// GroupByKeyAndWindow follow Spark DStream semantics batch by batch: the length and slide
// must be multiples of the batch interval (else a construction error, see Pipeline.Err); a
// windowed stream has data only every slide; until a full length has passed a window holds
// the batches there are; with an inverse function a key whose values all left the window is
// still emitted, with the value the inverse leaves, unless the filter removes it.
// Event-time windows are in package window.
//
// # Delivery
//
// A batch is acknowledged only after every output of the batch succeeded. An output that
// fails is retried under the RetryPolicy (exponential backoff with jitter, forever by
// default), with the same values, and outputs that already succeeded are not called again;
// an error wrapped with Permanent stops the pipeline instead. After the acknowledgement the
// pipeline calls Source.Commit with, per partition, the next offset after the batch's
// records, held back by the oldest offset that any operator's retained state still needs
// (every Elem carries an offset: the oldest it derives from, or, for what an operator emits
// when the watermark moves, the position of the record or mark that moved it, as window
// results and unmatched join rows do). So after a crash, replay from the
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
//     the name given to Apply) to keep their state across releases.
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
//
// # Repartition
//
// A pipeline may have several sources (From once per source); their partitions are told apart
// by pipeline partition ids (PartitionSource). State stays scoped to a partition, so a result
// per key is whole only when all records of the key are in one partition. Repartition routes
// a keyed stream through an Exchange (a Kafka topic, kafka.NewExchange; an in-memory log,
// streamtest.NewExchange) so that they are: each record goes to partition HashKey(key) % n
// of the exchange, which the pipeline reads back as a further source. The upstream stream must
// come from sources through stateless operators and operators that emit each record once with
// its own offset (a tracker); other stateful operators go after the repartition, except the
// final results of windows, which RepartitionByTime takes (two-phase aggregation, below).
//
// Exactly once. Upstream records are numbered by (upstream partition, source offset, rank
// among the values of that offset): a replay of the upstream partition from any committed
// offset produces the same values with the same numbers, in the same order. The exchange
// keeps the order of what is sent to one partition, so in every downstream partition the
// numbers of one upstream partition rise, fall back where a replay or a retried send starts
// again, and rise past the old highest. A downstream record is kept only when its number is
// above the highest seen so far from its upstream partition; everything else is a copy of a
// record already read. That decision depends only on the records before it in the partition,
// so it is the same in every run that reads the partition from the same position with the
// same state; the state (the highest number per upstream partition, and the marks below) as
// of the committed position travels in the commit checkpoint (Position.Meta, after "|"),
// computed exactly for that position from the records read since the previous commit. Hence
// after a crash or rebalance anywhere (upstream before or after the send, between the send and
// the commit, downstream, during a replay) every upstream record is kept exactly once
// downstream, and the downstream operators replay exactly as for any source (see Delivery).
//
// The checkpoint's marks take about 35 bytes per upstream partition in format "x1;", which
// every release reads, and about 12 in format "x2;" (described in exchange_marks.go), which
// earlier releases do not read. The marks are written "x1;" while the partition's
// checkpoint with them takes at most 3,072 bytes (about 60 upstream partitions; a kafka
// Source adds up to about 1 KB), "x2;" beyond: a repartition of two sources of 150
// partitions each then commits about 3.6 KB, within Kafka's default limit of 4 KiB for offset metadata
// (TestMarksSize, TestMarksFormatBySize), where "x1;" would pass it from about 2 x 57
// partitions on (the Source then stops with kafka.ErrCommitMetadataTooLarge). An earlier
// release that finds "x2;" marks logs that it ignores them, and the downstream partition
// starts from the committed offset without them, as if it had no checkpoint: copies of
// records read before the commit that an upstream replay sent again after it are kept again
// (counted twice), its watermark is NoWatermark until every upstream partition sent a mark
// again, the fire watermark kept with the marks is lost (a window after the repartition that
// has no entry of its own in the operators' checkpoint may emit again, from part of their
// records, windows that fired before the commit), and a past run's end marks and the
// inputs' names are not checked. That can happen only to a repartition with more than about
// 60 upstream partitions, after a rollback, or to an instance of an earlier release that a
// rolling deploy leaves running when it is assigned a partition this release committed: for
// such repartitions, stop every instance of the earlier release before starting this one.
//
// Those numbers mean something only for the input that made them. A source that names its
// inputs (InputIdentifier: a Kafka Source its topics, in the order that numbers their
// partitions) has their names' hashes recorded in every repartition checkpoint ("i,"
// entries); a downstream partition assigned with a checkpoint that names another input in
// the same place stops the pipeline with ErrInputChanged before the batch's outputs, and
// nothing is committed (TestRepartitionInputChanged): a pipeline started under the same name
// on a new topic would otherwise drop the new topic's records as copies of the old one's
// wherever their offsets match. For that check to come before the input's first batch, the
// exchange's source must have registered its partitions by then: Run waits for the ones that
// say they register (PartitionRegistrar: kafka.Exchange, whose consumer may join the group
// after the input's; TestRunWaitsForRepartitionSource). An input added after the others is
// new, one left out at the end is no longer read, and checkpoints of earlier releases name
// none (they are accepted and name this run's inputs from the next commit on). Not detected: the same input's offsets
// moved back outside the pipeline (kafka-consumer-groups --reset-offsets): its records then
// are copies, and the repartition drops them as such. To process an input again, run under a
// new name, or delete the repartition topics as well (see the README's "Processing a topic
// again").
//
// Watermarks. After each batch, every upstream partition whose own watermark, idle state or
// end changed sends a mark with it to every downstream partition, after its values. A
// downstream partition's watermark is the minimum over its upstream partitions that are not
// idle and have not ended (the slowest idle one if all are idle), NoWatermark until every
// upstream partition has been heard from (sources that implement PartitionCounter say how
// many there are), EndOfTime once every one ended; PartitionContext.Merged tells operators
// so. Operators judge a record of such a partition against PartitionContext.WatermarkAt: the
// watermark from the marks before the record in the partition, which depends only on the
// partition's record order, so a replay judges every record as the first run did. A value
// that was on time in its upstream partition is never late downstream: the marks before it
// are at most its upstream partition's watermark when it was sent, which was at most its
// time. So catching up a backlog through a repartition, with partitions minutes apart in
// event time, loses nothing to lateness. Windows fire at the end of a batch on the marks read
// so far; a window's records are exactly those not late by WatermarkAt. A partition's first
// batch of a run fires on the marks as of where it starts, which a window takes as its floor
// (the windows closed before were emitted by the run that committed).
//
// Replay of a repartitioned partition. Its records interleave records of different ages: with
// upstream partitions a window apart, a newer window's first record comes before an older
// window's last, in every stretch of the partition, so no offset separates the windows that
// fired from those still open. A replay start must then either go back before every window
// whose records straddle it, which in a catch-up or with a lagging upstream partition is the
// start of the run (the commit, and the purge of the repartition topic, would stand still), or
// know which windows fired. So each commit's checkpoint keeps, for every operator whose state
// fires on the watermark (WatermarkHolder) and that reads the repartition through stateless
// operators only (PartitionContext.KeepsFired: its input comes in offset order), the
// watermark it had fired on after the batch (the highest of its state's and the one it
// resumed with), and the resumed operator gets it as PartitionContext.ResumeFired.
// Invariants, for a tumbling or sliding window resumed from a commit at offset r with fire
// watermark F: (1) a window whose end plus the grace is at or behind F was emitted before the
// commit, with exactly its records not late by WatermarkAt; the replay never emits it again,
// and skips the records all of whose windows are such (a sliding window's record may also be
// in a later window, which it then counts in); (2) every other window was open at the commit
// or opened after it, so all its records are at or after the oldest record of the windows
// open at the commit, which is the window's Retained, hence r; the replay rebuilds it whole
// and emits it as the first run did; (3) lateness is judged by WatermarkAt as always, so the
// replay reports late what the first run did (again, at least once); (4) the lowest of those
// watermarks also travels with the marks, which a checkpoint that names none of the
// operators (of an earlier format, or of a graph whose operators all have other names) keeps:
// every stateful operator then starts afresh from the committed offset, and every such window
// skips by that watermark, so a window is never emitted again from part
// of its records (TestRepartitionRefusedCheckpoint fails without it). Proven by
// TestRepartitionCrashSweep (it fails without the skip of (1)) and
// TestRepartitionWindowCommitAdvances (the commit follows the oldest open window with
// upstream partitions a minute apart; it stayed at the run's start before). Both tests run
// tumbling and sliding windows (15 s every 5 s). Sessions after a repartition, and a window
// that reads another stateful operator's output there (whose offsets may come out of order),
// still hold the commit back to the oldest record
// of any window that fired after it: a session's extent is per key, and a replayed record of
// an emitted session cannot be told from one of a session still open without it.
//
// Two-phase aggregation (RepartitionByTime). A window per upstream partition may combine its
// records into one partial result per key and window, and only those go through the exchange,
// to a window of the same assigner that merges them: the records a repartition moves drop
// from one per event to one per key, window and upstream partition. Its final results are
// numbered by event time (the window's last instant) and rank instead of offset and rank. The
// numbers rise as offsets do: a tumbling window (without a key limit) fires once, all its keys
// in one batch, in the order of their first records, and windows fire in the order of their
// ends. (A sliding window, or one with a key limit, may emit a window's keys in another order
// in a replay, which shifts the ranks: do not repartition their results by time.) A replay from a committed
// offset starts at or before the first record of every window open at the commit, so it
// emits those windows again with the same values, numbers and order, and no window that had
// fired before the commit (that batch's send was acknowledged). So the downstream keeps every
// partial result exactly once by the same rule.
//
// Watermark through a two-phase repartition. A window of an upstream partition fires when its
// fire watermark (the lower of the partition's watermark and what the window saw itself,
// which lags when an operator before it dropped records) passes a window's end plus the grace.
// So after an upstream partition's values RepartitionByTime sends as the mark the lowest of
// the partition's watermark and the fire watermarks of the operators upstream
// (WatermarkHolder; package window's implement it). Invariants: (1) a partial result is never
// late downstream when the downstream window has the upstream's grace or more: its window had
// not fired at the end of the previous batch, so the mark sent then, and with it the
// WatermarkAt before the partial result, was below its end plus the grace; (2) the merged
// window holds every partial result: it fires only on marks at or past its end plus the grace
// from every upstream partition, and each of those comes after the partition's partial
// result. What the two phases drop that one phase would not is a record late in its own
// partition (behind its partition's watermark by more than the grace, or before the
// partition's first window): the upstream window puts it on its Late stream. As for any
// window, results that involve idle partitions are the exception (an idle partition's windows
// fire on the pipeline watermark). Proven by TestRepartitionTwoPhase (random inputs, with a
// filter before the upstream window, against the brute force minus the upstream late records;
// no partial result late downstream; it fails without the WatermarkHolder cap), by
// TestRepartitionCrashSweep's two-phase seeds, and in package telemetry by
// TestZoneDemandTwoPhaseEqualsOnePhase.
//
// Proven by TestRepartitionReduceByKey (one result per key per batch, global totals),
// TestRepartitionWindowProperty (random partitioning and out-of-order input with partitions
// minutes apart against a brute-force global computation, no late record) and
// TestRepartitionCrashSweep (a crash at every batch, before and after the send was
// acknowledged, and a second crash during the replay, against the same brute force; with a
// stateful operator before the repartition; with records late in their own partitions, whose
// documents and late records must be the uninterrupted run's; with a stateful operator reading
// the window's results, which must get every document exactly once over the runs, and, every
// other crash, a replay that reads the partitions in small batches of its own, so that the
// repartition's first batch ends before what the first run acknowledged and the next one
// straddles it: the case where it failed while window results carried their oldest record's
// offset).
//
// Limits: a late record may be reported late again by a replay (at least once, like every
// dead letter). The marks checkpoint grows with the number of upstream partitions (about 12
// bytes each, see above; Kafka's default offset metadata limit is 4 KiB, beyond which
// kafka.Source stops with kafka.ErrCommitMetadataTooLarge): a repartition of more than about
// 300 upstream partitions, or about 240 whose watermarks have sub-millisecond parts, needs
// offset.metadata.max.bytes raised (fewer by about one per 12 bytes of the operators'
// checkpoint: identities take about 8 bytes per stateful operator, see "Restarts with
// another graph"). Records late in their own partition are late downstream
// or not depending on the marks sent before them, after each upstream batch: a replay that
// reads the upstream partitions in other batches may judge them otherwise (the sweep's
// small-batch replays leave them out).
// A bounded run ends the repartition's input when every upstream source ended and every
// downstream partition the instance owns received the end of every upstream partition
// (whichever instance read it), so each instance of a scaled-out pipeline ends by itself.
// An end is one run's: the newest mark of an upstream partition says whether it ended, an end
// mark leaves the watermark that checkpoints keep at the upstream's last one, and the fire
// watermark EndOfTime is never committed. So the next run, bounded or not, starts from the
// marks of the last records and fires its own windows (TestRepartitionBoundedRunsInARow,
// TestMarksEndIsOneRunsOwn).
//
// Runs one after another. A bounded run's end fires every window, also those still open on
// the marks, which the next run on the next records of the topics completes (a daily
// backfill). Invariants: (1) in the batch where every upstream partition of a repartition's
// partition ended, the partition commits the checkpoint the batch before it computed (offset,
// operator starts, fire watermark, marks: where it could resume before the end), with the
// marks entry "l,<position>;": the end marks before the position are a past run's. So the
// next run reads again the values of every window the end closed early, judges them by the
// marks before the end, and skips the past run's end marks, which would otherwise fire every
// window again before its own values arrive; a window open at a run's end is written again by
// the next run, complete, as package window's are without a repartition
// (TestRepartitionEndHoldsCommit, TestRepartitionBoundedRunsInARow, TestMarksStaleEnd; a
// checkpoint without the entry reads as before). (2) Through RepartitionByTime, the next run
// sends the complete partial of such a window with the number of the early one. With
// WithRevisions, whose merge keeps the latest value of each upstream partition per key and
// window (telemetry.ZoneMergeAgg), a value sent in the batch where its upstream partition's
// input ended is kept when its number is above the highest kept, without raising it: the
// revision is kept too and replaces it, and copies of the other values are still dropped
// (TestMarksEndValueIsProvisional; in package telemetry TestZoneDemandBoundedRunsInARow, 40
// random topics in 2 to 5 runs against one run). Such a value may then be kept more than
// once (a copy cannot be told from a revision), so without WithRevisions the rule is off, a
// merge that adds its values never counts one twice (TestRepartitionByTimeBoundedRerun), and
// the next run writes a window open at the end from the early partials. (3) A run without an
// end (unbounded) sends no such value and makes no such commit: its records, checkpoints and
// commits are as before, which TestRepartitionCrashSweep keeps proving.
//
// (4) An end is one attempt's. A run here is one Pipeline value (Run or Step): a restart
// after a crash is another run, though it reads the same records. Each run draws a random
// number (never 0) when its repartitions open, the same for all its sends, retries of a
// batch's Send included, and puts it on every end mark it sends (Shuffled.Run; the record
// format of package kafka keeps it), and only there: values, other marks and checkpoints
// are as before. A downstream partition takes an upstream partition's newest mark for its
// end only when it is this run's end mark, or carries no run (an earlier release's; then
// as before, with (1)), or, once every upstream source of this instance ended, when this
// instance does not read that upstream partition (another instance's, which sends nothing
// newer in this run; until then that partition counts with the watermark of its last mark
// before the end, so a scaled-out pipeline's windows may fire later than before, never
// earlier). So the end marks that a crash at a run's end leaves after the held
// commit (the upstream sent them, the batch that fired on them was not acknowledged, and
// no "l," entry calls them past) are the crashed attempt's, not the restart's: the
// restart's watermark stays where that attempt's marks before its end left it (its own
// replayed marks, below, are dropped as before), it fires its windows on its own end marks
// (which count even below another run's end, as when a pipeline reads another one's log),
// and (1) commits before both, its "l," entry past both. A copy of another run's end mark read after this run's end
// mark of the same position (an attempt still sending) does not undo this run's. Two
// attempts' marks that interleave are judged mark by mark as before (the one with the
// highest number is an upstream partition's newest); only whose end counts changed
// (TestMarksEndIsThisRuns; in package telemetry
// TestZoneDemandBoundedRunsInARowCrash, a crash at every batch of the second of three runs,
// its last ones too, against one run; without the run it fails at the last batches: 32
// documents of seed 0 differ for a crash at batch 6 of 8). The exactly-once argument is
// untouched: the run decides when a downstream partition ends, never which values it keeps.
//
// Limits of runs one after another: an instance does not know the runs of the other
// instances of a scaled-out pipeline, so once its upstream sources ended it counts any end
// mark of an upstream partition it does not read, a crashed instance's too. A Kafka source
// in bounded mode ends only once every partition was read to its end by it, or another
// member committed it as ended (it ends each partition alone, Input.End, and commits that
// after the batch that sent the partition's end mark: Position.Ended); so there such an end
// mark counts only once the partition's end mark of the run that read it is in the topic,
// after which a restart sends nothing of the partition but its end mark. No test crashes one of several instances at a run's end. A copy of a provisional
// value (a send retried after a partial write in the end batch) that arrives after its
// run's end marks is late: a spurious late record, not a wrong result.
//
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
// error (cut off by the shutdown grace, a timeout), so that the idiom
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
//
// # Stats and logging
//
// After every batch a BatchStats snapshot (records, bytes, scheduling delay, processing and
// output time, watermark, retained state, commits, source lag) is available from Stats and a
// WithStatsHook function. Logs go to the WithLogger *slog.Logger, which discards by default.
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
//     PartitionContext (partition, batch, watermarks, CapEventTime); Retained, Drop and
//     StateSize describe its state; ReplayStarter gives finer replay starts; StateReporter
//     adds open windows, bytes and set-aside records to BatchStats.State; Parameterized
//     describes the parameters that checkpoints record.
//   - Sink and Closer for outputs; DeadLetter and DeadLetterSink for dead-letter outputs.
package stream
