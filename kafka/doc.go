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
// same results). Nothing else is ever committed, so
// after a crash, a rebalance or a broker outage the next owner replays from the committed
// offset and rebuilds open state: delivery into the pipeline is at-least-once, and sinks that
// write with deterministic ids make results effectively exactly-once.
//
// A commit carries the pipeline's checkpoint as its offset metadata, which the broker
// bounds by offset.metadata.max.bytes (4096 bytes by default). A repartition's marks take
// about 27 bytes per upstream partition, so a repartition of two inputs of about 70
// partitions each reaches the default. A commit the broker refuses for its size stops the
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
// table of ids, without locks. WithMeta wraps a codec so values carry the topic, partition,
// offset, key, timestamp and headers (Envelope[T]). Source.Origin maps a partition id back
// to its topic and Kafka partition, for dead letters made further down the pipeline.
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
// The positions the pipeline commits carry its replay checkpoint (stream.Position.Meta),
// which the Source stores as the Kafka offset metadata and hands back to the pipeline when it
// claims the partition again (stream.Input.Resume), so that each operator replays from its
// own start.
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
// pipeline's bounded input with TryPushBatch. When the input is full the goroutine pauses the
// partition (sarama Pause: no more fetches for it), keeps at most 4x the channel buffer of
// already-fetched records, and waits for the pipeline to drain the input, still watching
// for the end of the session; then it resumes. It never blocks in the input, so a
// rebalance is never held up by a slow pipeline for longer than one batch.
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
// (WithBounded) reads only the partitions present at its start.
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
// (retention.ms -1) and deletes what the group has committed past (WithPurgeInterval, every
// 30 s and when the Source stops), as Kafka Streams does. A repartition topic made by an
// earlier release keeps the broker's retention: set retention.ms to -1 on it.
//
// # Tables
//
// Table[K, V] is a key-value table of a compacted topic, replicated whole in every instance
// (Kafka Streams' GlobalKTable; WithCoPartitioned makes a KTable instead, see "Co-partitioned
// tables"): it reads every partition itself with a plain consumer, from
// the oldest offset, outside any consumer group, and commits nothing. Each record is a
// version of its key, valid from its record timestamp (CreateTime as the producer set it);
// a tombstone (nil value) deletes the key from its timestamp on. Lookup(key, at) returns the
// version valid at event time at, the one with the latest timestamp at or before at, so an
// enrichment (package join, Enrich) joins each event with the value as of the event (Flink's
// event-time temporal join); Latest returns the version with the newest timestamp.
//
// Load reads each partition up to the end offset it had when Load started, then returns;
// records written since keep being applied in the background until Close. So after Load, a
// lookup sees at least every record written before Load started. Load fails at once if the
// topic does not exist (ErrTopicNotFound: a Table never creates it; EnsureCompactedTopic
// does, with cleanup.policy=compact, and refuses an existing topic that is not compacted,
// ErrNotCompacted); a topic that is not compacted only gets a warning from Load. A record
// that decode refuses is skipped, counted (TableStats.DecodeErrors) and logged at Warn, never
// dropped silently. Consumer errors (an outage) are retried by sarama, counted and logged;
// when records are deleted ahead of the consumer (the retention of a compact,delete topic,
// delete-records), it reads on from the log's new start.
//
// Versions: a key keeps at most WithVersions (default 8) versions, tombstones included; one
// more drops its oldest. A version with the timestamp of one held replaces it; one older than
// all of a full key's versions is ignored. A key whose retained versions are all tombstones
// is forgotten. A lookup before the key's oldest retained version returns nothing, or that
// version with WithOldestFallback. Compaction keeps only the last record of each key in the
// log, so after a restart (a new Load) a key's history may start later than before: lookups
// are deterministic only while the versions they fall on are retained (see join.Enrich).
// Timestamps should grow with offsets per key (one producer per key): Latest is the newest
// by timestamp, which compaction's survivor (the last by offset) is only then. A record
// without a timestamp is valid from the beginning of time.
//
// The Table reads with read_committed: records of aborted transactions are never applied.
// A partition whose last records before the end offset are transaction markers or aborted
// records (which the consumer never delivers) counts as loaded once a fetch shows that
// nothing else is left before it; a transaction still open at the end offset holds Load
// until it ends (at most the producer's transaction timeout).
//
// Late versions: a lookup answers with what the table holds when it is made. A version read
// after a lookup at or after its timestamp came late: a lookup of its key between its
// timestamp and its arrival, if there was one, answered with an older version or none, and a
// replay would answer with it. The Table keeps the latest time it was looked up at (Lookup,
// LookupPartition; not Latest), to the millisecond, one number per table (per partition of a
// co-partitioned table), and counts the versions read with a timestamp at or before it
// (TableStats.LateVersions), logged at Warn with the version's time and the lookup's. So it
// counts how often the table lagged the lookups' event time, not which lookups were wrong (a
// count per key would write into the table's memory at every lookup). The usual causes: the
// table's producer lags the stream, or writes updates with timestamps in the past.
//
// Limits: partitions added to the topic after Load started are not read. The whole table
// (with WithCoPartitioned, the partitions held: see below) lives in memory (each version: its timestamp, a flag and V, plus the map's key). Lookup and
// Latest take a read lock and are safe for concurrent use with the updates.
//
// # Co-partitioned tables
//
// WithCoPartitioned makes a Table co-partitioned (Kafka Streams' KTable), for tables too
// large to replicate in every instance. Load connects, checks that the topic exists and that
// each stream topic named in WithCoPartitioned has as many partitions, and reads nothing.
// LoadPartition(ctx, p) reads partition p from its oldest offset up to its end offset at the
// call, returns, and keeps following p until as many Release(p) as successful
// LoadPartition(p) calls; a released partition's keys are dropped. LookupPartition(p, key,
// at) answers from partition p alone (Lookup from every partition held), and
// TableStats.Partitions lists the partitions held. join.EnrichCoPartitioned drives it: it
// loads the table partition of each stream partition the first time it processes it, before
// it enriches any record of it, and releases it when the pipeline drops the stream
// partition (a revocation). So an instance holds the table partitions of the stream
// partitions it owns, and a rebalance moves them along with the stream.
//
// The wait: the pipeline's goroutine waits in LoadPartition, and since the pipeline
// processes one batch at a time, the whole pipeline waits; the Source meanwhile fills the
// bounded input and then pauses (backpressure). A load reads the partition up to its end
// offset at the call, so it takes about the partition's size over the consumer's throughput
// (fetches of at most Config.Fetch.MaxBytes per partition), plus one probe interval (250 ms)
// when the partition ends in transaction markers; a transaction still open at the end
// offset holds it until the transaction ends (at most the producer's transaction timeout),
// and a broker outage until the broker is back. join.WithLoadTimeout bounds the wait
// (default 10 minutes); see join's "Co-partitioned tables" for what happens then. While a
// load holds the pipeline, a revocation waits too: the Source gives the pipeline at most 4/5
// of Config.Rebalance.Timeout to drop the partition, then lets go of it (the next owner
// replays from the committed offset, as after a crash); keep loads shorter than that, or
// raise the timeout.
//
// Co-partitioning: a record finds its key only if the key is in the table partition with
// the record's partition number. So the two topics must have the same partition count and
// be written keyed by the same bytes (the enrichment's key function returns the table's
// key) with the same partitioner. The Producer of this package places a keyed message with
// sarama's hash partitioner: 32-bit FNV-1a of the key's bytes, |int32(hash)| % partitions
// (KeyHash). The Apache Kafka Java client (and so Kafka Connect, kafka-console-producer,
// Kafka Streams) uses murmur2: (murmur2(key) & 0x7fffffff) % partitions (Murmur2KeyHash,
// sarama.NewMurmur2Partitioner). Topics written by the two kinds of producer are not
// co-partitioned, whatever their counts. Only counts can be checked: at Load against
// WithCoPartitioned's stream topics, and by LoadPartition, which refuses a partition the
// table's topic does not have (both ErrNotCoPartitioned, naming the fix); keys placed by
// another partitioner only show as keys not found.
//
// The fix for a stream that is not co-partitioned with its table (another partition count,
// another key or another partitioner) is a repartition into the table's partitioning:
// stream.RepartitionBy(keyed, name, exchange, func(x T) uint64 { return kafka.KeyHash(key(x)) })
// over a NewExchange with WithPartitions(table.PartitionCount()) (Murmur2KeyHash for a table
// written by the Java client), then EnrichCoPartitioned on the repartitioned stream, whose
// partitions are the exchange topic's. stream.Repartition places keys by stream.HashKey
// (64-bit FNV-1a), not like any producer: use RepartitionBy.
//
// Limits: a table partition is read from its start at each LoadPartition, so a rebalance
// that moves a stream partition reloads its table partition in the new owner (Kafka
// Streams restores a local store from a changelog; there is none here). Partitions added to
// either topic after Load are not checked.
//
// # Auth/MSK
//
// Config covers self-managed Kafka and Amazon MSK: TLS with the system roots or a CA, mutual
// TLS with a client certificate, SASL/PLAIN, SASL/SCRAM-SHA-256 and -512 (xdg-go/scram), and
// MSK IAM (SASLAWSMSKIAM: OAUTHBEARER with tokens from aws-msk-iam-sasl-signer-go, signed
// with the default AWS credential chain, a profile or an assumed role, and refreshed before
// they expire). Invalid settings fail at construction with an error wrapping
// ErrInvalidOption that names the setting. Credentials are never logged or put in an error:
// Config, SASL and TLS redact them in String, GoString and LogValue. TLS.InsecureSkipVerify
// (tests only) is logged as a warning whenever a client connects with it.
//
// Permissions: a request that the brokers' ACLs refuse fails with an error wrapping
// ErrNotAuthorized and the broker's error (sarama.ErrTopicAuthorizationFailed,
// ErrGroupAuthorizationFailed, ErrTransactionalIDAuthorizationFailed,
// ErrClusterAuthorizationFailed) that names the resource, the principal and the operation to
// grant. Source.Run checks its topics, its group and (exactly once) its transactional id
// before it consumes anything, and stops if a fetch or a commit is refused later; a Producer's
// refused write is permanent (stream.IsPermanent). None is retried: no retry gets past an ACL.
// An Exchange's purge of its repartition topic needs Delete on the topic; without it the
// purge is logged once at Warn and stops, and the topic then needs a retention.
//
// # Stats
//
// Source implements Stats() stream.SourceStats, which the pipeline copies into every
// BatchStats: records and bytes consumed, and for every partition this instance owns, keyed
// "topic/partition", its lag (high-water mark minus committed offset), its read offset (after
// the last record pushed into the pipeline or dead-lettered; dead letters after the last
// pushed record are read, so they are not read lag) and its high-water mark. Once every
// partition it owns was read to its high-water mark, it tells the pipeline so
// (stream.Input.ReadToEnd): a catch-up's last batch then starts at once. A partition never
// written to counts as read to its end; one not read yet whose records all expired, or whose
// log ends with a transaction marker, does not: that last batch then waits a tenth of the
// interval.
// Source.DeadLettered counts dead letters; Producer.Sent counts acknowledged messages.
//
// # Producer
//
// Producer[T] encodes values with an Encoder (key and value, optionally topic and headers)
// and waits in Write until the broker acknowledged every message. It uses the idempotent
// producer (acks=all, one request in flight), so the client's own retries neither duplicate
// nor reorder; a batch that the pipeline writes again is appended again, so consumers should
// treat the key as the identity. Encoding errors and messages the broker can never accept are
// permanent (stream.IsPermanent). The dead-letter producer (DeadLetterSink) is always this
// at-least-once kind: a replay may write a dead letter twice, with the same source headers.
//
// # Repartition
//
// NewExchange is the Kafka transport of stream.Repartition: the topic
// "<pipeline>-<name>-repartition", created when the pipeline starts with the partition count
// of the source topics (WithPartitions, WithPartitionsOf), a replication factor of
// min(3, brokers) (WithReplication) and unlimited retention, purged below the group's
// committed offsets (WithPurgeInterval); an existing topic with another count is refused
// (ErrPartitionMismatch), since keys would move away from their state, and so is one that
// another consumer group has committed offsets of (ErrRepartitionInUse): another pipeline
// with the same name, whose records the dedup would mix with this one's (name the topic
// after the group, as Kafka Streams does with its application id). The upstream side
// produces each record to the partition the pipeline chose with an idempotent producer that
// keeps each partition's order; the downstream side consumes the topic as a further member of
// the pipeline's consumer group (the Source's Config and group), with the Source's claims,
// backpressure and commits, and stores the repartition's dedup and watermark state in the
// offset metadata. Numbering, deduplication and watermarks are the pipeline's: see
// "Repartition" in package stream for why every record counts exactly once downstream.
//
// A record is a 15-byte header (varints) and the codec's bytes, about 25 bytes for a pair of
// a short string and a small integer. Send packs the records it writes to one partition into
// Kafka messages of up to 64 KiB (a mark ends its message), and the consumer hands a
// message's records to the pipeline together under the message's offset, so a batch and a
// commit never split one: the producer's and consumer's work per message is spent once per
// few thousand records (Exchange.SentMessages). A release that reads only single-record
// messages stops on a packed one: upgrade a pipeline's instances together, or let its
// repartitions drain first. An end mark, which a bounded run sends as its input ends, carries
// the run that sent it (see "Runs one after another" in package stream); a release before
// that stops on one, and a bounded run commits before its end marks, so drain the
// repartitions with an unbounded run before rolling back. A record of the topic that cannot be decoded stops the
// pipeline with ErrCorruptRepartition rather than going to a dead-letter output, which would
// silently lose a counted record; so does a checkpoint that cannot be fetched, until the
// group session is joined again. Change a repartition's codec only with its topic drained.
//
// # Exactly once
//
// WithExactlyOnce(src) binds a Producer to the Source of its pipeline: a consumer reading the
// topic with read_committed (WithReadCommitted, or isolation.level=read_committed) sees each
// message exactly once after any crash or restart, as with Kafka Streams' exactly_once_v2.
// Bind it to the source its output is made from: after a stream.Repartition, to the
// Exchange (an Exchange is Transactional), so that the messages commit with the repartition
// topic's offsets. Two mechanisms make it so.
//
// Transactions. Write only encodes the batch and hands it to the Source's transaction. When
// the pipeline commits the batch (Source.Commit, after every output succeeded), the Source
// begins a transaction, produces the pending messages, adds the offsets with their
// checkpoints (stream.Position.Meta) through TxnOffsetCommit with the group's generation and
// member id, and commits. So a batch's messages become visible exactly when its offsets are
// committed: a crash before the commit aborts both (a restart with the same transactional id
// fences the killed producer and aborts its open transaction at once), and the replay makes
// them again; a member that a rebalance left behind cannot commit (the coordinator refuses its
// generation). A Source that a Producer is bound to reads with read_committed, as Kafka
// Streams' consumers do under exactly once, so that its group's offset fetches wait for the
// offsets of a transaction that is still completing (require_stable, KIP-447): a partition's
// new owner starts after the last transaction of the owner before it, never from the offset
// before that one, whose records it would process again while the read-back, which stops at
// the last stable offset, could not yet see their output (TestExactlyOnceStartsAtStableOffsets).
// An owner killed between its offsets and its commit holds the partition back until its
// restart fences it, or the broker aborts the transaction (after 30 to 40 s).
// A transaction lives only during the commit, so a slow output (OpenSearch down
// for minutes) never holds one open. A transaction with messages always commits the offsets
// of every partition the Source owns, the same ones again when the batch moved none (held
// back, with the same checkpoint, or with the one the claim resumed from): the coordinator
// checks the group generation only with offsets, and messages committed without them
// (before, such a batch's messages were) would pass for a member that the group left
// behind, after the partition's next owner read its output back, and be written twice. A Source that owns no partition keeps its messages
// pending; at a stop, pending messages are dropped, and the replay from the committed
// checkpoint makes them again. A failed commit is aborted and its messages stay pending for
// the next one; a fenced producer, a stale generation, a commit cut off by the shutdown, a
// commit given up on once it had begun (its outcome unknown: a broker down while it ran,
// TestFaultExactlyOnceBrokerRestart), a revocation while messages are pending that cannot
// commit with them, or a revoked partition
// that the pipeline does not let go within 4/5 of the rebalance timeout (its batch in flight
// held up, by an output down for instance) stops the Source with an error wrapping
// ErrTransaction (Run returns it): the restart replays from the committed checkpoints, which
// is exact. The last one used to go on: the held batch's output, made in part from the
// revoked partition's records or windows, was committed by the next transaction (with the
// offsets of the partitions still owned) while the partition's next owner replayed the same
// records, and read_committed consumers saw that output twice
// (TestSourceBoundedTwoInstancesHeldCommits, exactly once). Kafka Streams rejoins the group
// instead, with every task closed and reloaded; here that would mean dropping every
// partition's state in the running pipeline, which it does not yet offer.
//
// Replayed output. Transactions alone do not suffice with replay-based recovery: the
// committed offset is held back to the oldest record that open state needs, and a stateful
// operator replays from its own start in the checkpoint (stream.Operator.Retained). Records
// between that start and the committed batch end are processed twice, and an operator whose
// output for a record depends on the records before it (the cab tracker: each event against
// the cab's previous one) emits their outputs again. Measured offline on the fleet job's graph
// with the Porto and simulated data: 43 to 193 alerts emitted a second time per crash, each
// byte for byte the same as its first copy, all of them in committed transactions. So every
// commit also stores in the offset metadata, after the pipeline's checkpoint, where the
// committed output of the producer's topics ended when the first record after the committed
// offset was pushed into the pipeline (the snapshot is taken before the push: the pipeline
// may commit the record's output before the push is noted), and the offset after the last
// record pushed so far by this or any earlier owner. For a record that an earlier owner
// pushed too, the bound is the one of the claim's checkpoint: that owner's output made from
// it lies after that bound, however late the record is pushed again. So nothing made from
// the replay can lie before the bound. A Source
// that claims a partition reads the output topics from there to their last stable offset with
// read_committed, before the next output is written, once every transaction open on them when
// it starts has ended (another instance's, killed in its commit, pinned the last stable offset
// below the output committed after it until the broker aborted it: at most txnTimeout plus 15
// s, then it reads to where it can and logs a warning), and a bound Producer drops a message
// identical (topic, key, value and headers) to a committed one it has not yet matched. Outputs
// with deterministic content (the tracker's alerts have deterministic ids and are identical
// when replayed) are then written exactly once. Two genuinely different outputs with the same
// bytes within a replay would be collapsed into one; an Encoder that must keep such repeats
// should add a distinguishing header. Source.Duplicates counts the dropped messages. Output
// that the topic's retention deleted before the read-back got to it cannot be matched: the
// read-back goes on from the log's start, logs a warning with the range, and the replay
// writes that output again (its first copies are gone).
//
// Costs and rules: one transaction per committed batch (a few round trips, measured in
// BenchmarkProducerExactlyOnce); a read-back of the replay's output at each restart or
// claim; a bound Producer writes only to its own topic; every instance needs its own
// transactional id for each Source or Exchange a Producer binds to, stable across restarts
// (WithTransactionalID, an option of both; the default uses the host name, and an
// Exchange's adds its name). Read the topic with read_committed; read_uncommitted consumers also see the messages
// of aborted transactions.
package kafka
