// Package window computes event-time windows over the streams of package stream: Tumbling,
// Sliding and Session windows, keyed aggregation with an Aggregator, watermarks with bounded
// out-of-orderness, allowed lateness (grace), and a side stream of late records, which are
// counted and never silently dropped.
//
//	stats, err := window.Aggregate(events,
//		func(e Event) string { return e.CabID },
//		func(e Event) float64 { return e.SpeedKmh },
//		window.Tumbling(time.Minute), window.Stats[float64](),
//		window.WithGrace(30*time.Second))
//	if err != nil {
//		return err // wraps window.ErrInvalidOption
//	}
//	stream.To(stats.Results(), sink) // one Result per cab and minute
//	late := stream.Map(stats.Late(), func(l window.Late[Event]) stream.DeadLetter {
//		v, _ := json.Marshal(l.Value)
//		return l.DeadLetter(p.Origin, []byte(l.Value.CabID), v) // p: the *stream.Pipeline
//	})
//	stream.To(late, deadLetters) // records that came too late (ExampleLate_DeadLetter)
//
// # Assigners
//
// Tumbling(size) gives the windows [k*size, (k+1)*size), aligned to the Unix epoch.
// Sliding(size, slide) gives windows of length size starting every slide (aligned so that
// start+size is a multiple of slide); a record belongs to about size/slide of them.
// Session(gap) gives per-key sessions that grow while records of the key arrive less than gap
// apart in event time; a session is [first record, last record + gap), and a record that
// falls between two sessions merges them.
//
// # Aggregators
//
// An Aggregator folds values into an accumulator (Zero, Add), merges accumulators (Merge:
// sliding panes and merging sessions need it) and turns one into a result. Count, Sum, Min,
// Max, Mean, Stats (count, sum, min, max and mean in one 32-byte accumulator) and Quantile (a
// Sketch with 1% relative error, for p95 and the like) are ready. Accumulators are stored
// inline per key and window, so keep them small value types; Aggregator says what the engine
// guarantees about one that holds memory (which arguments it may modify in place, and when a
// result may share memory with its accumulator). One that holds a growing slice
// (telemetry's cab stats keep every point of a window) may implement Resetter: a tumbling
// window then reuses an emitted window's accumulators for the next window's keys instead of
// growing new ones (BenchmarkCabStatsDense in package telemetry, 30 points per cab and
// window: 438 to 276 ns and 82 to 4.8 KiB allocated per event batch, six interleaved runs).
//
// # Watermarks and lateness
//
// Every source partition has a watermark: its newest event time minus the bound set with
// stream.WithMaxOutOfOrderness. Since state is kept per partition, a partition's windows fire
// (emit their final results) when its own watermark reaches their end plus the grace period;
// once the partition is idle (stream.WithIdleTimeout) they fire on the pipeline watermark
// instead, so an idle partition does not keep its windows open (see
// stream.PartitionContext.PartitionWatermark). The watermark passes through stateless
// operators, as in Flink: a window that reads its source through stateless operators only
// (Filter, Map, FlatMap) counts every record of the partition, those an operator before it
// dropped included (stream.PartitionContext.SourceTimes), so a window behind a Filter of rare
// matches on a busy topic closes in the batch whose records, passing or not, move the
// partition's watermark past its end plus the grace, not when the next record passes. Its
// lateness, the positions its results carry and its replay are those of the same window over
// the unfiltered stream with an aggregator that ignores the dropped records, except that a
// dropped record opens nothing, sets no floor and holds no commit
// (TestFilteredWindowIsUnfilteredWindow, TestFilteredWindowAfterCrash,
// TestFilteredWindowClosesOnDroppedRecords). Hence one limit of its replay: the replay's
// clock starts at the window's own position, without the dropped records before it, so a
// record far behind the watermark, late in the first run, that the replay takes first (the
// window held nothing at the commit, or it was the first record the window was given) is on
// time there, and its window is written; exact replay there needs the clock stored with the
// commit. Such a window takes each batch's records in offset order, also where paths from
// the source meet again (a Union of two Filters gives one Filter's records, then the
// other's): its floor, keys' order and late records then follow the partition's record
// order, not where batches end (TestUnionOfFiltersIsUnfilteredWindow). A window behind a
// stateful operator (a tracker) counts the records it is given: it closes once a later one
// comes, or once the partition is idle. A window after a repartition fires on the marks
// that come through it (the upstream partitions' watermarks). End of input closes every window, those still
// open on the partition's watermark included; the commit stays at the first record of the
// oldest of those (see "Delivery and replay"), so a later run on the next records of the
// partition completes them as one run would.
//
// Lateness is decided record by record from the same watermark, as it stands when the record
// arrives. A record is late when its window ends, plus the grace period, at or
// before it; for Sliding, when the earliest window it belongs to does (it then counts for none
// of them); for Session, when its own [t, t+gap) does or when it would join such a closed
// session; and when its window was already emitted (after the partition had been idle). Which
// records a window holds therefore depends only on the order of the partition's records, not
// on how they were cut into batches, nor on the other partitions. Idleness is measured in
// processing time, so results that involve idle partitions are the exception: a replay may not
// reproduce them.
//
// A record is late too, whatever the watermark, when its window does not fit in int64
// nanoseconds: it starts before 1677-09-21 or ends after 2262-04-11 (for Sliding, the record
// is within the size plus two slides of them). Only a bad clock stamps such times, and
// stream.Input.CheckEventTime accepts them; the record opens and holds nothing. A window whose
// end plus the grace passes 2262 stays open until the end of the input.
//
// # Emission
//
// With OnClose (the default) each key and window gets one Result with Final set, when the
// window fires. With EveryBatch every key and open window that changed in a batch also gets a
// partial Result (Final false) at the end of that batch. Each partition emits in order of
// window end, then of the keys' first records in the window. A Result's element carries the
// window's last instant as event time and the oldest source offset of the window.
//
// # Delivery and replay
//
// State is kept per source partition (design point 4) and dropped when the partition is
// revoked; keys should be co-partitioned with the Kafka message key (cab id) for whole-key
// results, otherwise Result.Partition tells the partial results apart.
//
// No state is checkpointed: after a crash or a rebalance, replaying from the committed offset
// rebuilds the state, and the final results of the two runs together equal those of a run
// without the crash (TestCrashReplay proves it for Tumbling and Sliding). For that the
// operator holds commits back (stream.Operator.Retained) to the first record of the oldest
// open window (for Sliding, the oldest live pane), and advances that position only when no
// newer window holds an older record and every earlier window has fired; a record held there
// also starts the partition's newest event time afresh, so a replay judges lateness the same
// way. The first record a partition sees sets its floor: earlier windows are never emitted
// and records for them are late. A replay starts exactly at such a window boundary, so it
// does not emit a window of which it saw only the tail; a fresh start behaves the same way,
// so for Sliding the windows that start before a partition's first pane are not emitted. When
// the size is not a multiple of the slide (9 s every 6 s: panes of 3 s), the first pane's
// records may all come before the first window: the commit then stays at the partition's
// first record until a window holds one, so that a replay takes the same floor (a later
// record with an earlier time would set an earlier one, and emit a window from records that
// were late). The end of the input fires every window but leaves the replay position where it
// was before: a bounded run followed by a run on the next records (fleetpipeline
// -exit-when-idle) gives the results of one run over all of them. It once moved to the first
// record of the newest window, so the next run took that window as its floor, reported late
// the records of the windows before it that came after that record (counted by the first run
// or not), and never completed those windows (TestBoundedRunsInARowCompleteOpenWindows).
// Windows that a replay emits again carry the same values, and sinks overwrite them by their
// deterministic ids (pipeline, key, window start and end). When another operator of the
// pipeline holds the commit further back than the window, the pipeline's replay checkpoint
// (see "Delivery" in package stream) makes the window skip the replayed records before its
// own position, so the replay still starts, for this operator, at its own boundary.
//
// The replay position and the checkpoint's start are window boundaries of the assigner, and
// which windows fired depends on the grace: they mean something only for the parameters they
// were computed with. The assigner, the grace and the emission mode are the operator's
// parameters (stream.Parameterized; WithMaxKeys is not one): each commit's checkpoint
// records their hash, and a restart under other ones (a window of 15 s where 10 s
// committed) stops with stream.ErrOperatorChanged before any result, rather than emit
// windows of the new size from part of their records beside those of the old one.
// stream.WithColdStartChanged accepts the change: the window then starts cold from the
// committed offset, with what that costs (package stream, "Restarts with changed
// operators"; stream's TestRestartWithChangedWindowStops and
// TestRestartWithChangedWindowColdStart).
//
// Late records are reported once per acknowledged batch, and at least once over crashes. The
// commit stays at the oldest open window's first record, so a replay (a rerun of a job that
// ends when idle, a restart) reads again the late records after it; the checkpoint records
// the late stream's own replay start, the end of the last batch acknowledged before the
// commit (stream.PartitionContext.SkippedBefore), whose late records were written by then,
// and the replay reports only those after it (TestBoundedRerunsReportLateOnce: three late
// records, four runs without new input, three dead letters; before, each rerun reported them
// again). A record is reported again when the batch that reported it was not acknowledged (a
// crash after its dead letters were written: at least once, like every dead letter), and
// when the replay has no usable checkpoint (none, or one refused, which starts every operator
// cold from the committed offset); after a repartition, also a record of the batch in which
// every upstream partition ended (that batch commits the checkpoint of the batch before it,
// see "Runs one after another" in package stream), again by the next run. A record before that start that the replay judges late and
// the first run did not (below) is not reported: the first run counted it.
// One case is not replayed exactly: a record that comes after the replay position, out of
// order but on time, for a window older than the first replayed record's. The position moves
// to the first record of the oldest open window once the window before it fired, and a
// record of that earlier window may follow it within the out-of-orderness: the run that
// committed counted it, while the replay takes the first replayed record's window as its
// floor and judges it late, as a fresh start there must (its window starts before the
// first); only the partition's floor as of the commit tells the two apart. So a replay after
// a crash may report late a record of the boundary of the oldest window open at the commit
// that came after the last acknowledged batch: a spurious late record, not a wrong result.
// Before the late stream's replay start, such a record is no longer reported
// (TestBoundedRunsInARowLateAtBoundary; in package telemetry, zone demand in bounded runs in
// a row reported one to three in 3 of 40 random topics before). Exact replay there needs the
// partition's floor stored with the commit.
//
// After a repartition (stream.PartitionContext.Merged), Tumbling and Sliding hold commits back
// only to the oldest record of their open windows (for Sliding, of the live panes); the
// commit's checkpoint keeps the watermark their windows had fired on, and a replay skips the
// records whose windows all closed on it and never fires those windows again (see "Replay of
// a repartitioned partition" in package stream). There the partition's records interleave
// upstream partitions, so a record older than the first may follow it without being late: the
// starting watermark is the floor, not the first record, and Sliding emits every window that
// holds a record not late, the first ones included (TestRepartitionWindowProperty checks them
// against the brute force).
//
// Readers of the results. A final result carries the position where its window closed: that
// of the record whose event time moved the partition's watermark past the window's end plus
// the grace (after a repartition, of the mark that did), not that of the window's oldest
// record. A stateful operator that reads the results in the same partition (a second window
// over the counts, a dedup) skips, in a replay, the elements before its checkpointed start as
// already counted, and that position makes the skip exact: a window that closed in an
// acknowledged batch carries a position before the start, one that closed in a later batch
// (its output failed, or its commit was never made) a position at or after it, and the
// replay, which rebuilds the window whole, closes it at the same record. Before, a window
// first emitted by a replay carried its oldest record's offset, before the reader's start,
// and the reader lost it while the sink got it (package join labels its rows the same way,
// for the same reason). Proven by TestReaderOfWindowAfterCrash (a crash swept over every
// batch, both ways, random out-of-order input, replays in batches of their own; it fails
// without the positions) and, after a repartition, by stream's TestRepartitionCrashSweep.
// The exceptions: EveryBatch partial results carry their window's oldest record's offset
// (a replay emits other partials anyway); an idle partition's windows close on the pipeline
// watermark, with no record to point at, and carry the highest offset read (a window closed
// that way in a batch whose output failed is skipped for such a reader in the replay); the
// end of the input closes the rest at math.MaxInt64; sessions are not replayed exactly
// (below). Since results of several windows and keys share a position, in an order a replay
// need not reproduce, stream.Repartition (by offset) refuses a stream derived from a window;
// RepartitionByTime takes the final results of tumbling windows, which a replay sends again
// in the same order. The operator says what it is (TimeOrder, stream.TimeOrderer), and
// RepartitionByTime refuses when the graph is built EveryBatch partial results (they repeat
// their window's time in later batches), sliding windows (a window's keys come in the order
// the partition first saw them), sessions (those that close together come in the order of
// their keys in the partition's state) and a key limit (WithMaxKeys admits keys by the state
// of every partition): a replay from the commit need not reproduce those orders.
//
// Sessions have no common boundary to commit at: a replay rebuilds every session that was
// open, but a session that had closed while spanning the committed offset is emitted again
// from its later records only (with a later start). Exact session replay needs the partition's
// watermark stored with the commit; the stream checkpoint carries it only for a repartition's
// partitions, and sessions do not use it yet.
//
// # Performance
//
// Tumbling keeps, per partition and open window, a map from key to an index into a slice of
// inline accumulators; closed windows' maps are cleared and reused, so a record costs one map
// lookup and one Add and allocates nothing. Sliding keeps panes of gcd(size, slide): a record
// updates one pane of its key, in a pane-major slab so that the current pane of every key
// shares cache lines; windows are merged from panes with two stacks (suffix merges flipped
// from a running back merge), O(1) merges per key and window amortised, whatever size/slide
// is. EveryBatch partials of sliding windows merge panes directly, O(size/gcd) per window.
//
// Measured through a whole pipeline (source input included, about 45 ns of it) with 10,000
// keys and batches of 10,000 records on a busy 2-core Xeon: tumbling with Stats about 75 ns
// per record, sliding 10 minutes every 10 seconds about 90 ns (1.2 times tumbling), sessions
// about 90 ns, and no allocation per record. Open tumbling state takes about 90 bytes per key
// (string key, Stats); sliding state takes, per key, a ring of the next power of two above
// size/gcd(size, slide) plus the out-of-orderness in panes, each an accumulator and 8 bytes
// (a record far ahead of the windows still to fire, after a gap in event time, first fires
// those its watermark closes, so the rings span only what stays open; TestSlidingGapNotSpanned).
// See bench_test.go.
//
// # Stats
//
// The operator implements stream.StateReporter, so every stream.BatchStats reports, besides
// its entries (StateSize: keys in open windows, sliding series, keys with sessions), the windows open
// (the windows of a partition that hold data and were not emitted: tumbling buckets, sliding
// windows still to fire that hold a live pane, sessions), the records
// set aside since it was created, by reason (Late: stream.ReasonLate; KeyLimit:
// stream.ReasonKeyLimit, as LateCount and KeyLimitCount), the split keys (SplitKeys, as
// Windowed.SplitKeys), and an estimate of its bytes. The
// estimate counts the operator's own structures: slices by capacity, buckets kept for reuse,
// the sliding slab of rings, and maps at their entries' key and value sizes plus a control
// byte, at 7/8 load. Keys and accumulators count at their shallow size (unsafe.Sizeof): what
// they point to (a string key's bytes, a Quantile sketch's bins) is not counted. Reporting
// costs a pass over each partition's windows, over its keys for sessions (as StateSize
// does), once per batch; nothing per record.
//
// # Concurrency
//
// Aggregate builds the operator; the pipeline runs it from its own goroutine, one partition
// at a time. LateCount and KeyLimitCount are safe for concurrent use.
package window
