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
// the commit, downstream, during a replay, a Send retried after a partial write) every
// upstream record is kept exactly once downstream, and the downstream operators replay
// exactly as for any source (see Delivery; TestRepartitionCrashSweep,
// TestRepartitionRetriedSend).
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
// none (they are accepted and name this run's inputs from the next commit on). The marks of
// the partitions of an input left out never move again: where the source says it no longer
// reads them (Originator, as kafka.Source does), they count neither for the watermark nor in
// the partition counts of the last run's marks, which held the watermark, and a bounded
// run's end, for ever before (TestRepartitionInputLeftOut); their numbers still tell copies.
// Not detected: the same input's offsets moved back outside the pipeline
// (kafka-consumer-groups --reset-offsets): its records then are copies, and the repartition
// drops them as such. To process an input again, run under a new name, or delete the
// repartition topics as well (see the README's "Processing a topic again").
//
// Watermarks. After each batch, every upstream partition whose own watermark, idle state or
// end, or whose source's partition count, changed sends a mark with it to every downstream
// partition, after its values (a count that grows reaches the downstream at once, which then
// waits for the new partitions: TestRepartitionPartitionCountGrows). A
// downstream partition's watermark is the minimum over its upstream partitions that are not
// idle and have not ended (the slowest idle one if all are idle; as for the pipeline's
// watermark, an idle one that never had an event holds nothing back:
// TestRepartitionIdleEmptyUpstream), NoWatermark until every
// upstream partition has been heard from (sources that implement PartitionCounter say how
// many there are), EndOfTime once every one ended; PartitionContext.Merged tells operators
// so. Operators judge a record of such a partition against PartitionContext.WatermarkAt: the
// watermark from the marks before the record's position in the partition (a Kafka
// repartition's message holds several records and marks under one offset: its marks count
// from the next message on, see kafka's record format), which depends only on the
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
// in a replay, which shifts the ranks: their results are refused, below.) A replay from a
// committed offset starts at or before the first record of every window open at the commit,
// so it emits those windows again with the same values, numbers and order, and no window that had
// fired before the commit (that batch's send was acknowledged). So the downstream keeps every
// partial result exactly once by the same rule. Only windows' results number so, and only
// those a replay sends again in the same order, each time once: a RepartitionByTime of
// records, of a window's Late stream, of another stateful operator's output or of an
// operator's side output (TestRepartitionByTimeOfSideOutputRefused: its TimeOrderer speaks for
// its output only) is refused when the graph is built (ErrGraph,
// TestRepartitionByTimeOfOtherStreamsRefused), and so is one of
// a window whose TimeOrderer says its results are not so, or of a WatermarkHolder that does
// not say (TestRepartitionByTimeOfUnorderedWindowsRefused): EveryBatch partial results repeat
// their window's time in later batches (that failed at run time, after outputs had written
// the batches before); a sliding window sends a window's keys in the order it first saw
// them, sessions that close together come in the order of their keys in the window's state,
// and a key limit admits keys by the state of every partition, none of which a replay from
// the commit need reproduce (a crash whose send wrote part of a time's results counted one
// twice and lost another, TestRepartitionByTimeReplayOrder).
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
// offset; and over the runs, no commit of a repartition's partition or of an input partition
// goes back in position, in the marks of its checkpoint or in their fire watermark:
// requireCommitsNeverGoBack).
//
// Limits: a late record may be reported late again by a replay (at least once, like every
// dead letter): package window's and join's late streams leave out the late records before
// PartitionContext.SkippedBefore (those of batches acknowledged before the commit), so one
// is reported again only when its batch was not acknowledged, or when it is in the batch in
// which every upstream partition ended (the repartition's commit stays before that batch,
// see "Runs one after another"). The marks checkpoint grows with the number of upstream partitions (about 12
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
package stream
