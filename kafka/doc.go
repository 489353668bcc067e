// Package kafka connects pipelines to Apache Kafka and Amazon MSK: Source consumes topics as
// a member of a consumer group and feeds a stream.Pipeline; Producer is a stream.Sink that
// writes to a topic with an idempotent producer, or exactly once in the Source's commit
// transaction (WithExactlyOnce). Both are built on IBM/sarama.
//
//	src, err := kafka.NewSource(kafka.Config{
//		Brokers: []string{"b-1.msk.example:9096"},
//		Group:   "cab-stats",
//		Topics:  []string{"cab-telemetry"},
//		TLS:     kafka.TLS{Enable: true},
//		SASL:    kafka.SASL{Mechanism: kafka.SASLSCRAMSHA512, User: "fleet", Password: pw},
//	}, kafka.JSON[Event]())
//	events := stream.From(p, src)
//
// # Delivery and commits
//
// Auto-commit is off. The pipeline calls Source.Commit after a batch was acknowledged (every
// output succeeded) with, per partition, the next offset that may be committed; that offset
// is already held back by any open window or other state that still needs older records.
// The Source marks exactly those offsets and commits them through the group session, and
// once more when it gives a partition up. Commit waits for the commit at most two seconds
// (commitWait): while its member rejoins the group, sarama holds the commit until every
// member has rejoined, and another member of the same pipeline may need the pipeline's next
// batch to give a revoked partition up first; the commit then goes on in the background,
// so at a crash meanwhile the replay starts from the offsets committed before (more replay,
// same results). The commits go to the group coordinator over a client of their own, with
// the session's member id and generation, as Kafka's own consumer talks to its coordinator
// over a connection of its own: on the consumer's connection a commit queued behind a fetch
// that the broker holds up to Fetch.MaxWait once the consumer is caught up
// (TestCommitNotQueuedBehindFetch; a bounded read of a million records ended 0.1 s sooner).
// Where that fails (a rebalance, an unreachable coordinator), the commit goes through the
// session as before. Nothing else is ever committed, so
// after a crash, a rebalance or a broker outage the next owner replays from the committed
// offset and rebuilds open state: delivery into the pipeline is at-least-once, and sinks that
// write with deterministic ids make results effectively exactly-once.
//
// A commit carries the pipeline's checkpoint as its offset metadata, which the broker
// bounds by offset.metadata.max.bytes (4096 bytes by default). A repartition's marks take
// about 12 bytes per upstream partition (stream's format "x2;"), so a repartition of two
// inputs of about 150 partitions each comes near the default. A commit the broker refuses for its size stops the
// Source with ErrCommitMetadataTooLarge, which says so (TestCommitMetadataTooLarge): no
// later commit of the partition would pass, and running on would commit nothing while the
// job looked healthy.
//
// Partition ids: the pipeline sees topic i of Config.Topics, partition p as id i<<16 | p
// (Source.PartitionID, Source.TopicPartition), so a single topic keeps Kafka's numbers and
// ids agree across instances and restarts. Every instance must list the topics in the same
// order.
//
// A Codec decodes each record and returns its event time; the zero time selects the
// record's Kafka timestamp. A PartitionCodec gets a codec of its own for every claimed
// partition, used from that partition's goroutine only: room for state such as an intern
// table of ids, without locks. A codec that is also a DecoderInto decodes each record in its
// place in the Source's queue, saving a copy of every value. WithMeta wraps a codec so values carry the topic, partition,
// offset, key, timestamp and headers (Envelope[T]). Source.Origin maps a partition id back
// to its topic and Kafka partition: the Source's own id, which is the pipeline's only when
// the Source is the pipeline's first; for dead letters made further down the pipeline, pass
// stream.Pipeline.Origin, which maps the pipeline's ids of every source.
//
// # Event time
//
// Every event time, from the payload or the Kafka timestamp, is checked with
// stream.Input.CheckEventTime before the record enters the pipeline: a time outside what
// time.Time.UnixNano represents (about years 1678 to 2262), or further ahead of the
// pipeline's clock than stream.WithMaxFutureEventTime allows (default one hour), sends the
// record to the dead letters with the reason stream.ReasonEventTime. Such a record never
// moves a watermark, so a bad device clock cannot make the later records of its partition
// late.
//
// # Topics
//
// A Source never creates topics (sarama's Metadata.AllowAutoTopicCreation is off for its
// client). Run fails before anything is consumed when a source topic does not exist, and a
// running Source asks the broker every five seconds whether its topics still exist: a topic
// the broker reports missing at two checks in a row (so within about 10 to 15 seconds of its
// deletion) stops it with an error (Run returns it) instead of a silent wait.
//
// A topic name Kafka would refuse is refused where it is given (ErrInvalidOption).
// CheckTopic says what is wrong with one (the character Kafka refuses and its position, the
// length past 249, "." or ".."), for a program to check its configuration before it
// connects.
//
// The positions the pipeline commits carry its replay checkpoint (stream.Position.Meta),
// which the Source stores as the Kafka offset metadata and hands back to the pipeline when it
// claims the partition again (stream.Input.Resume), so that each operator replays from its
// own start. A partition is not read before its checkpoint is: when the group's coordinator
// cannot answer for a moment (loading its offsets after a broker moved it), the session fails
// and the Source joins again after a backoff, or a partition a cooperative rebalance adds
// waits; a fetch that the ACLs refuse stops the Source (ErrNotAuthorized).
//
// # Rebalancing
//
// The default strategy is cooperative-sticky (Config.Rebalance.Strategy): on a rebalance only
// the partitions that move stop; the others keep consuming. When the Source gains a
// partition it tells the pipeline (stream.Input.Assign) and resumes from the committed
// offset. When it loses one (a revocation, the session ending, or a broker outage) it calls
// stream.Input.Revoke, waits (at most 4/5 of Config.Rebalance.Timeout) until the pipeline
// acknowledged and committed the batch in flight and dropped the partition's buffered
// records and state, and commits once more before it lets go. Eager strategies (sticky,
// range, roundrobin) do the same for every partition at each rebalance.
//
// Static membership (Config.Rebalance.InstanceID, Kafka's group.instance.id, KIP-345): a
// member with an instance id does not leave the group when it stops. Its partitions stay
// assigned to it, unread, until Config.Rebalance.SessionTimeout passes without it, and an
// instance that comes back with the same id within that time takes them again with no
// rebalance: a rolling restart of N instances moves no partition (with dynamic members each
// restart moves the instance's partitions away and back, and each move replays from the
// committed offsets and rebuilds open windows). Set the session timeout above the time a
// restart takes (Kafka Streams suggests minutes); a crashed instance's partitions then wait
// that long for another owner. Every instance needs an id of its own that it keeps across
// restarts; Exchanges and other Sources of the same group in one process are members too,
// and an Exchange adds its name to the id (id.name), while two Sources of one process with
// the same group and id are refused at Run. A process that joins with an id in use fences
// the member that had it: that Source stops with ErrFencedInstance instead of joining again,
// which would fence the other in turn (TestStaticMembership). Under exactly once the
// transactions' offset commits carry the instance id.
//
// # Backpressure
//
// Each claimed partition has one goroutine that decodes records and moves them into the
// pipeline's bounded input with TryPushBatch. When the input is full the goroutine holds
// what it fetched meanwhile, and pauses the partition (sarama Pause: no more fetches for it)
// only once that hold is full (4,096 records or 4 MiB, see Memory) or a bounded partition
// was read to its end; it waits for the pipeline to drain the input, still watching for the
// end of the session, and resumes. Pausing every partition as soon as the input was full
// left sarama's fetcher idle for 100 ms at a time while a batch ran. It never blocks in the
// input, so a rebalance is never held up by a slow pipeline for longer than one batch.
//
// # Memory
//
// What a Source holds, with the defaults, for P partitions it owns:
//
//   - fetch: one fetch request per broker returns at most Config.Fetch.RequestMaxBytes
//     (2 MiB) over its partitions, at most Config.Fetch.MaxBytes (512 KiB) of each, counted
//     as stored, so compressed; decompressed, a response takes the compression ratio times
//     that (lz4 JSON telemetry: about 5x, so about 10 MiB per broker);
//   - channel: up to 128 fetched records per partition wait in sarama's channel, and each
//     keeps the decompressed batch it came from alive (at most one response's batches);
//   - hold: each partition's goroutine keeps at most 4,096 fetched records, or 4 MiB of keys
//     and values (2x Fetch.MaxBytes if larger), that the input had no room for; it pauses
//     the partition's fetching only once its hold is full;
//   - buffer: the pipeline's input (stream.WithBuffer: 100,000 records or 64 MiB by
//     default), plus the batch being processed;
//   - state: whatever open windows and other operators retain (the pipeline's, not the
//     Source's).
//
// The Source's own share (fetch + channel + hold) is thus about 10 MiB per broker plus at
// most 4 MiB per partition, whatever the backlog, and grows with the compression ratio only
// within one response. Measured: examples/fleetpipeline catching up a backlog of 3 M
// lz4-compressed events on 6 partitions peaks at about 250 MiB RSS (it was 690 MiB with
// 4 MiB per-partition fetches, no request bound and 1,024-record channels). Raise
// Fetch.MaxBytes and RequestMaxBytes for throughput over long round trips, lower them for
// memory; a Go memory limit (GOMEMLIMIT) bounds the heap's slack too.
//
// # Bounded mode
//
// WithBounded turns the Source into a backfill: at start it reads the end offset of every
// partition and reads each up to there; records written after the start are left for the
// next run. Each partition ends by itself: once its records up to the end offset are pushed,
// the Source ends the partition's input (stream.Input.End), so that its watermark goes to
// the end of time and its windows close in the next batch while other partitions are still
// read. The commit after that batch was acknowledged carries stream.Position.Ended, and the
// Source stores "~end:<end offset>~" before the pipeline's checkpoint in the offset
// metadata: the partition was read to that end and the results made from it were written.
// The committed offset itself stays where the windows still open at the end held it, so
// that a run on the next records completes them (see "Runs one after another" in package
// stream).
//
// A partition is done once this Source ended it, or the group's commit of it has an offset at
// its end or an ended marker for this run's end offset or a later one (another member, or an
// earlier run that had the same end). When every partition is done the Source closes the
// input, the pipeline writes and commits the final batch, and Run returns nil. What holds,
// with any number of instances in the group, joining and leaving at any time:
//
//  1. Run returns nil only once every partition was read to the end offset this instance
//     read at its start, by some instance, and the results made from it were written and
//     acknowledged: another member's partition counts only by its commit, which it makes
//     after the batch that closed the partition's windows.
//  2. It never waits for another instance's input to end. Before each partition ended by
//     itself, a partition counted as done only once its committed offset reached its end,
//     which open windows keep from happening until the owner's input ends (and for the next
//     run after it): two instances that each owned partitions waited for each other for ever
//     (TestSourceBoundedTwoInstancesHeldCommits, with and without exactly once).
//  3. An instance that leaves before a partition of its was done hands it to the group,
//     whose next owner reads it from the committed checkpoint; every other instance is
//     still reading then (its input ends only once every partition is done). A partition
//     claimed with an ended marker for its end is not read again.
//  4. Through a repartition, an upstream partition's end mark is sent in the batch that ends
//     it, before its ended marker is committed: an instance whose input ended has every
//     upstream partition's end mark of this run in the repartition topic.
//
// Limits: instances that started with different end offsets (records were written between
// their starts) count a partition that another member ended at a lower end only once they
// read it themselves, after that member left. A release before the marker reads such
// metadata as a checkpoint of an unknown format: it refuses it, with a warning, and the
// partition's operators start cold from the committed offset.
//
// # Dead letters
//
// A record whose Decode fails (not decodable: stream.ReasonDecode; invalid, an
// InvalidError: stream.ReasonInvalid) or whose event time is unusable
// (stream.ReasonEventTime) never stops the pipeline and is never lost: before any later
// record of its partition enters the pipeline, it is written to the dead-letter output as a
// stream.DeadLetter. The output is a stream.DeadLetterSink: by default a DeadLetterSink
// writing to the topic "<source topic>.dlq" (WithDeadLetterTopic names another), or any sink
// (WithDeadLetters), such as one DeadLetterSink that the pipeline's late records and a
// search sink's rejected documents share. In a topic, a dead letter keeps its original key,
// value and headers plus x-fleetstream-source-topic, -source-partition, -source-offset,
// -source-timestamp, -error and -reason. A DeadLetterSink is sized to the topic's
// max.message.bytes, read at start; a dead letter that does not fit is written truncated
// (x-fleetstream-truncated, -original-size, -value-sha256; the original stays in its
// source topic), so a dead letter is always writable.
//
// A claimed partition's dead letters are written only once the pipeline accepted the
// partition with its committed checkpoint (stream.Input.Accepted): at the first batch after
// the claim, or at the next attempt of a batch being retried. Meanwhile the records before the
// first dead letter are pushed, and those after it wait, as for a slow write. A restart that
// the pipeline refuses at that batch (stream.ErrOperatorChanged: a checkpoint written under
// other operator parameters; stream.ErrInputChanged) writes none: it commits nothing, so a
// job restarted again and again after the refusal (a crash loop) would otherwise write the
// same dead letters from the committed offset at every restart. Once the partition is
// accepted, nothing differs: every record that cannot be used still reaches the dead letters
// before its offset is committed (TestRefusedRestartWritesNoDeadLetter).
//
// Records before a dead letter are still pushed while it is being written: before the
// write and between its retries (unless the pipeline's input is full), and the other
// partitions go on meanwhile. A failed write
// is retried with exponential backoff and jitter until it succeeds or the partition is
// given up; a permanent error (stream.IsPermanent: the topic refuses the producer, say)
// stops the Source, and Run returns it: the pipeline stops with an error rather than skip a
// record it could not store. A dead-letter topic that does not exist and will not be
// created (the broker's auto.create.topics.enable is false, or the sink's client does not
// ask, Metadata.AllowAutoTopicCreation) is such an error, wrapping ErrTopicNotFound and
// naming the topic: Run fails before anything is consumed, or, for a topic deleted later, at
// the first dead letter after sarama's retries, rather than stall the partition at its bad
// record for ever. Dead-lettered offsets are then
// committed like any other, never before their dead letters were acknowledged: a commit that
// reaches the record before them extends over them, and if everything before them is already
// committed they are marked at once and committed in the background, as the pipeline's
// commits are (one commit of the session at a time, taking every offset marked by then, so
// that a run of dead letters costs a few commits, not one each). They are
// counted (Source.DeadLettered) and logged at Warn: the first ten one by one, then at most
// one line every ten seconds that also says how many were not logged since the last one.
//
// # Caught up
//
// WithEndWhenCaughtUp ends the input once every owned partition was read to its high-water
// mark, and no partition of the topics got a record, for the idle time. The whole topics
// count, not only the owned partitions: with several instances, one whose partitions got
// nothing for a while as others still received records would otherwise end its partitions
// for good (a repartition's end marks), and records that reached them later would be late.
// The high-water marks are fetched from the partition leaders after the last record was read,
// every eighth of the idle time (at most a second apart), on a client of the monitor's own (on
// the consumer's, each request waited behind a fetch held for Fetch.MaxWait); while the broker
// cannot be reached nothing counts as caught up, so an outage never ends a job early. The idle
// time counts from the first look at which the topics' ends had not moved since the previous
// one, or, when the instance owns every partition of its topics and has read each to the end
// just fetched, from the look that found its last records read: nothing can have reached
// them since. A look that fails in between (an outage) starts the count over from a look
// after it. The Sources of one pipeline share the one option
// WithEndWhenCaughtUp returns (a CaughtUp), and their inputs end together, once every one of
// them is caught up and idle: an input that is quiet for the idle time while another's
// records still flow (ride requests beside telemetry) must not end, or what reaches it
// afterwards is left out of the windows it belongs to. Every partition of the topics must
// also have an owner in the group (by the group's coordinator), and those assigned to this
// instance must be claimed: a partition added to a topic near the end of a job is read before
// its input ends (see "Added partitions"). Partitions other members own count as covered only
// once the group's members have been the same for the session timeout and half as much again:
// a member killed a moment ago stays in the group, with its partitions, until the coordinator
// expires it (TestCaughtUpWaitsForDeadMember, on the real broker).
//
// # Added partitions
//
// Partitions added to a source topic while the pipeline runs are found within
// Config.MetadataRefresh (default 5s) by the group's leader, whose rebalance assigns them;
// each is read from its start, with InitialOffset OffsetNewest too: newest applies to the
// partitions a topic has when the group first reads it, whose ends the Source commits before
// it joins. The Source logs the new count at Warn: a producer
// that places keys by hash sends a key elsewhere once the count changes, so state that the
// pipeline keeps per partition by the record's key (a stream not repartitioned) splits from
// then on; repartition by the key (stream.Repartition) to keep it whole. Records of a new
// partition that arrive behind the watermark are late, as any. A bounded Source
// (WithBounded) reads only the partitions present at its start, logs the others at Warn and
// leaves their records to the next run; its PartitionCount stays, so that a repartition's
// end does not wait for partitions the run does not read.
//
// # Data loss
//
// Records the Source had yet to be done with may be gone from Kafka: a retention (or
// DeleteRecords) removed them from a partition's start while the group stayed away or lagged
// behind, or the group's committed offset lies past the partition's end (the topic was
// deleted and made again). sarama would go on from the partition's start (or stop reading a
// partition whose fetch fell out of range) without a word; the Source instead stops with a
// permanent error wrapping ErrDataLoss that names the partition and the offsets, as Spark's
// Kafka source does by default (failOnDataLoss): the job exits non-zero, and so does every
// restart until someone decides. WithAcceptDataLoss is that decision made in advance: the
// Source logs the loss at Error, counts it (Source.Lost), and goes on from the partition's
// start (joining the group again when the fetch fell out of range while reading); windows
// that the deleted records belonged to are then incomplete. A repartition (Exchange) always
// stops: its records are the pipeline's own state in transit, numbered for the dedup. Its
// topic does not lose them to a retention: an Exchange makes it with unlimited retention
// (retention.ms and retention.bytes -1, cleanup.policy delete, whatever the cluster's
// defaults) and deletes what the group has committed past (WithPurgeInterval, every
// 30 s by default, at most once a second, and when the Source stops), as Kafka Streams
// does. A repartition topic made by an earlier release keeps the broker's retention: set
// retention.ms to -1 on it.
package kafka
