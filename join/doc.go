// Package join joins two keyed streams in event time: Interval, a record of the left input
// with the records of the right input of the same key within bounds around its time (Flink's
// interval join, Spark's stream-stream join with a time range), and Window, the records of
// both inputs of the same key in the same tumbling window (Kafka Streams' windowed
// KStream-KStream join). Both are inner joins by default, left-outer with
// WithKind(LeftOuter). Enrich joins a stream with a table as of each record's event time (see
// "Stream-table join"); EnrichCoPartitioned with a table split like the stream (see
// "Co-partitioned tables").
//
//	orders := stream.Map(ordersIn, func(o Order) stream.Pair[string, Order] { return stream.KV(o.ID, o) })
//	payments := stream.Map(paymentsIn, func(p Payment) stream.Pair[string, Payment] { return stream.KV(p.OrderID, p) })
//	// ex: a kafka.NewExchange[stream.Pair[string, join.Side[Order, Payment]]] with a JSON codec
//	paid, err := join.Interval(orders, payments, ex, 0, 15*time.Minute,
//		join.WithKind(join.LeftOuter), join.WithName("order-payment"))
//	if err != nil {
//		return err // wraps join.ErrInvalidOption
//	}
//	stream.To(paid.Joined(), sink) // a row per order and payment, and per unpaid order
//	late := stream.Map(paid.Late(), func(l join.Late[string, Order, Payment]) stream.DeadLetter {
//		v, _ := json.Marshal(l.Side) // or the record of its side, as its topic holds it
//		return l.DeadLetter(nil, []byte(l.Key), v)
//	})
//	stream.To(late, deadLetters) // records that came too late to be joined (ExampleLate_DeadLetter)
//
// # Co-partitioning
//
// The two inputs may come from different sources (topics) with different partition counts,
// keyed by anything. Interval and Window map each input to a tagged union, Side[A, B], unite
// them (stream.Stream.Union: a union of streams of several sources is allowed, each element
// keeping its own partition and offset) and route the union through ONE repartition
// (stream.Repartition over the Exchange passed in, partition stream.HashKey(key) % n). So all
// records of a key, from both inputs, meet in one partition of the repartition, and the
// partition's watermark is the minimum over every upstream partition of both inputs (the
// repartition's marks). The join operator runs on those partitions. CoPartition and Tag are
// the two steps on their own; IntervalOn and WindowOn take the co-partitioned stream.
//
// # Watermark
//
// The join judges everything on its watermark E: the highest of the watermarks the
// partition's marks brought so far (stream.PartitionContext.Marks), each taken at its
// position, between the records before and after it (EndOfTime at the end of input). In a
// repartition's partition it never uses the newest event time it has seen. Since the marks
// are part of the partition's record order, so is everything below: output, and the offsets
// it carries, do not depend on how batches cut the partition.
//
// # Invariants
//
//  1. Interval(lower, upper): a left record at ta and a right record at tb of the same key
//     match when ta-lower <= tb <= ta+upper (inclusive); Window(size): when floor(ta/size) ==
//     floor(tb/size). Bounds are non-negative and the size positive, else ErrInvalidOption.
//  2. A record is late when its time is behind E at its position (Interval: t < E; Window:
//     its window's end <= E). A late record goes to the Late side stream (Reason
//     stream.ReasonLate, counted by LateCount), is never joined and never dropped silently. A
//     record that was on time in its upstream partition is never late (the repartition's
//     marks before it are at most its upstream watermark), unless E was raised past it by a
//     watermark that later moved back (see Limits).
//  3. Every pair of records that are not late and match is emitted exactly once, in the batch
//     in which the second of them arrives (Joined.Matched true), never a pair that does not
//     match. Joined.Time, the row's event time, is max(ta, tb); the element's offset is the
//     position of the record that made the pair (the newer of the two).
//  4. LeftOuter: every left record that is not late and has no partner is emitted exactly
//     once with Matched false, when no partner can come any more: Window, when E reaches
//     its window's end; Interval, once E > ta+upper, when E passes the end of the expiry
//     bucket of ta+upper (buckets of (lower+upper)/8, at least 1 ms and at most 1 s).
//     Joined.Time is then ta; the element's offset is the position of the mark that moved E
//     there (the end of the partition at the end of input).
//  5. State is bounded by the watermark: a left record can match nothing once E > ta+upper, a
//     right record once E > tb+lower (no record that is not late is within their bounds);
//     they are dropped when E passes the end of that expiry's bucket. A window's records are
//     dropped when E reaches its end. At the end of input the state is empty.
//
// # Replay
//
// No state is checkpointed: Retained (stream.Operator) returns the position of the oldest
// record held, moved back to the earliest partner before it of each left record from there
// on, so a replay from there emits every row of such a left record again, in the same order
// (a reader that keeps a left record's first row keeps the same one: TestReplayRowsOfLeftRecord),
// and a LeftOuter join does not emit as unmatched a record that matched. A replay of the
// partition from scratch, or from the position Retained returned after any batch (the
// committed checkpoint), rebuilds the same state and gives the same rows for every record
// after that batch; rows for the records before it are
// pairs already emitted (sinks overwrite them by deterministic ids), never a wrong unmatched
// row. Late records are reported once per acknowledged batch: the checkpoint records the late
// stream's own replay start, the end of the last batch acknowledged before the commit, and a
// replay reports only the late records after it (stream.PartitionContext.SkippedBefore;
// TestReplayReportsLateOnce). A crash after a batch's dead letters were written and before it
// was acknowledged, or a replay without a usable checkpoint, reports them again (at least
// once, like every dead letter).
// A replay from before every position the join returned (a refused checkpoint, with which the
// pipeline starts every operator at the committed offset) may emit a left record as
// unmatched whose partners all came before that offset.
//
// A stateful operator that reads the rows (a window counting payments per order, a dedup)
// gets each row exactly once over a crash and its replay: a replay skips, for such a reader,
// the elements before its checkpointed start (package stream, "Delivery"), so a row must
// carry the position where it was made, not where its oldest record was; otherwise a row
// first made by the replay, from a record before the reader's start, was taken for one the
// reader had counted (TestReaderOfJoinAfterCrash, and TestCrashSweep's pass-through reader,
// failed before). EnrichCoPartitioned's withheld records (stream.Withholder) likewise reach
// a reader when a replay enriches them (TestReaderOfStalledEnrichAfterRestart).
//
// A replay start is computed for the join's bounds (Window: its size) and kind, which are
// its parameters (stream.Parameterized): each commit's checkpoint records their hash, and a
// restart under other ones stops with stream.ErrOperatorChanged before any row, instead of
// resuming a checkpoint written under the old ones and mixing rows of both (an upper bound
// changed from 10 s to 30 s across a crash once left 2,153 of 13,008 rows missing against the
// new bounds and 28 extra, exit 0). stream.WithColdStartChanged accepts the change: the join
// then starts cold from the committed offset, with what that costs (package stream,
// "Restarts with changed operators"; stream's TestRestartWithChangedJoinStops). Enrich and
// EnrichCoPartitioned keep no state that a replay rebuilds and describe no parameters: a
// change of their kind applies from the committed offset on.
//
// Proven by TestOracle (rows against a brute force, both joins, both kinds), TestReplayBatchSizes
// (a repartition log replayed in batches of 1, 7 and 500 records) and TestCrashSweep (a
// crash at every batch, and a second one during the replay).
//
// # Outside a repartition
//
// IntervalOn and WindowOn also accept the Tag of two streams whose partitions already hold
// every record of a key (two event types of one topic keyed by the join key). There the
// watermark at a record is the partition's newest event time so far minus
// stream.WithMaxOutOfOrderness (as package window's), and the partition's watermark at the end
// of each batch (the pipeline's once the partition is idle). A replay from a committed
// offset starts that newest time afresh, so which records are late may differ after a crash.
//
// # Limits
//
// The repartition's watermark moves back when an idle upstream partition becomes active
// behind the others. E does not: records between the two are late, and a replay that starts
// while the watermark is below E (whose E starts at the lower watermark) may join records the
// first run reported late. Without idleness (no upstream partition idle for
// stream.WithIdleTimeout) the watermark never moves back. A Window join keeps a window's
// records until it closes; an Interval join, per key, the records of the last lower+upper of
// event time plus the watermark's lag. Right-outer and full-outer joins are not provided.
//
// An unmatched row of a LeftOuter join carries its left record's time ta (invariant 4) but is
// made once E passed ta+upper (Window: the window's end), at the mark that moved E there. An
// event-time window that reads the rows in the same partition judges the row on the
// watermark before that mark, so it takes the row for late (its Late stream) unless its grace
// covers upper plus an expiry bucket, at most a second (Window: the join's window size).
// Matched rows carry the time of their newer record, never behind the watermark
// (TestUnmatchedRowsDownstreamWindow).
//
// # Performance
//
// Interval keeps, per key, the left and the right records inline in two slices sorted by
// event time (a record usually goes at the end: near order costs nothing), finds partners by
// a search of the other slice, and drops expired records by buckets of expiry time (a map of
// bucket to keys and a heap of bucket numbers), so a record costs a map lookup, a search
// and an append, and allocates nothing in steady state. Measured through a whole pipeline
// (source input included, about 70 ns of it) with 10,000 keys, batches of 10,000 records, a
// row per record and 32,500 records held, on a busy 2-core machine: about 550 ns per record.
// Window keeps, per open window, a map from key to a cell of two slices; a closed window's
// map and cells are reused by the next one: about 300 ns per record, no allocation.
// Open state takes about 110 bytes per record (string key, int values; ReportState estimates
// 85). See bench_test.go.
//
// # Stream-table join
//
// Enrich(s, table, key, merge) emits merge(record, value, found) for every record of s, with
// value the table's value for key(record) as of the record's event time
// (Table.Lookup(key, Elem time)): Flink's event-time temporal join, Kafka Streams'
// KStream-GlobalKTable join with a versioned table. kafka.Table is such a table: every
// instance holds all of it (read from a compacted topic), so Enrich needs no repartition and
// runs where the records are, on any partitioning. Left join by default (found false, value
// the zero value, when the table has no value then: a key unknown, deleted by a tombstone, or
// a time before its first version); WithKind(Inner) emits only the records that found one,
// and counts the others in the operator's stats (stream.OperatorState.Unmatched, in
// BatchStats.State), so that a table missing rows shows. The output element keeps the
// record's event time and offset.
//
// Enrich keeps no state and holds no commit back: a record's row depends only on the record
// and the table's answer for it. So a replay gives the same rows as long as the table still
// holds the versions the lookups fall on. It does not when a version valid at a record's time
// arrived in the table after the record was first joined (the table lags the stream, or an
// update was written late with an earlier timestamp), or when versions the first run used are
// gone: dropped by the table's version limit (kafka.WithVersions), with a deleted key once
// its tombstone is older than kafka.WithTombstoneRetention, or by compaction before a
// restart reloaded the table (compaction keeps only each key's last record, so a lookup
// before that record's timestamp then finds nothing, or that record with
// kafka.WithOldestFallback). Enrich does not wait for the table to catch up with a record's
// event time (Flink's temporal join waits for the table side's watermark): it answers with
// what the table holds when the batch is processed, as of the record's time. Load the table
// (kafka.Table.Load) before the pipeline runs. A kafka.Table counts the versions that came
// after a lookup at or after their timestamp (TableStats.LateVersions, logged at Warn): how
// often the table lagged the stream, so that records could be enriched with an older value
// than a later replay would give.
//
// Cost: a lookup per record (kafka.Table: a map access under a read lock, then a scan of at
// most WithVersions versions) and the merge; the operator allocates nothing. Measured
// (BenchmarkEnrich: 10,000 keys of 4 versions each, keys in random order, on a 2-core
// machine under a load of 4 to 8): 500 ns to 1 us per record through the whole pipeline,
// against 70 to 140 ns without Enrich. Most of it is the memory access of a table much
// larger than the CPU caches for random keys: BenchmarkTableLookup in package kafka takes
// 1 to 2 us per lookup in a table of 100,000 keys on that machine, and about 100 ns with
// 1,000 keys.
//
// # Co-partitioned tables
//
// EnrichCoPartitioned(s, table, key, merge) is Enrich with a PartitionedTable, a table split
// like the stream (kafka.Table with kafka.WithCoPartitioned; Kafka Streams' KStream-KTable
// join): a record of stream partition p is looked up in table partition p (the source's own
// partition id; WithTablePartition maps pipeline partition ids otherwise), so an instance
// holds only the table partitions of the stream partitions it owns. The pipeline calls
// every operator for every live partition at each batch, records or not, so the operator
// loads a stream partition's table partition in the first batch after the assignment,
// before it enriches any record of it: the pipeline waits, at most WithLoadTimeout on the
// pipeline's clock (stream.WithClock; default DefaultLoadTimeout, 10 minutes; package
// kafka's "Co-partitioned tables" says how long a load takes), and no longer once the
// pipeline is asked to stop (stream.PartitionContext's Context): the partition then stalls
// as below, and the next run loads it. Revocation is observable: the pipeline calls the
// operator's Drop for a revoked partition, and the operator releases the table partition
// then; a partition assigned again is loaded again.
//
// A load that fails or times out before any record of its partition came is tried again at
// the next batch. Once records came, they may neither pass unenriched nor be enriched later
// out of order: the partition emits nothing more in this run, and the operator holds its
// commits before the first of them (stream.Operator.Retained), so that the next run or the
// partition's next owner replays and enriches them; the stall is logged at Error through the
// pipeline's logger, and shows as the partition's growing lag. A stream partition that the
// table does not have (a stream with more partitions) fails so; kafka.WithCoPartitioned's
// check at Load catches a count mismatch before the pipeline runs, with the fix (repartition
// the stream with stream.RepartitionBy and kafka.KeyHash into the table's partition count).
//
// What no count can catch is a stream with as many partitions but not keyed by the table's
// key: its records are looked up in table partitions that do not hold their keys, and find
// nothing or an older value. The operator checks one record in four (a few nanoseconds a
// record): a key looked up in another table partition than the last time it was checked
// counts in BatchStats.State's SplitKeys (exported as operator_split_keys_total by
// metrics/prom), and the first one is logged at Warn with the key and both partitions. A
// stream keyed like the table counts 0; a stream keyed otherwise has most keys in several
// partitions, and counts within its first batches. (The check remembers up to 131,072 keys.)
//
// The rest is Enrich's: left join by default, WithKind(Inner), the output element keeps the
// record's event time and offset, a replay gives the same rows while the table partition
// holds the same versions. Cost: one lookup per record in the partition's own rows.
// Measured on a 2-core machine under load (10,000 keys of 4 versions, 4 partitions, 10,000
// records per batch, through the whole pipeline): BenchmarkEnrichCoPartitioned 470 to 540
// ns per record, BenchmarkEnrich 710 ns to 1 us, 70 to 80 ns without an enrichment. The
// co-partitioned one is faster here because a batch is processed partition by partition,
// and a partition's rows (a quarter of the table) stay in the CPU caches better than the
// whole table. BenchmarkTableLookupPartition in package kafka (100,000 keys in 4
// partitions, random keys) costs what BenchmarkTableLookup does, 1 to 2 us per lookup.
//
// # Errors and concurrency
//
// Interval, Window, IntervalOn and WindowOn return an error wrapping ErrInvalidOption for a
// negative bound, a size that is not positive, a nil stream or exchange, inputs of different
// pipelines or a bad option, and then add nothing to the pipeline (Enrich and
// EnrichCoPartitioned: a nil stream, table, key or merge function, or a bad option); a
// graph error of the
// repartition itself (a shared exchange) is recorded on the pipeline (stream.Pipeline.Err).
// The operator runs on the pipeline's goroutine, one partition at a time; Output.LateCount is
// safe for concurrent use.
//
// # Stats
//
// StateSize counts the records held. ReportState (stream.StateReporter) adds the open
// windows (Window), an estimate of the bytes held (records inline, indexes, bookkeeping; not
// what values point to) and the late records so far. EnrichCoPartitioned reports its split
// keys (see "Co-partitioned tables") and the bytes of the keys it remembers for that check.
// Enrich and EnrichCoPartitioned report the records that WithKind(Inner) dropped for want of
// a table value (stream.OperatorState.Unmatched, counted since the operator was created; 0
// for a left join). The stream-stream joins do not count the records an inner join leaves
// without a partner.
package join
