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
// dropped silently. A fetch refused by the ACLs (the user may see the topic but not read
// it) fails Load and LoadPartition with ErrNotAuthorized; a loaded table stops following
// the partition and logs it at Error. Other consumer errors (an outage) are retried by
// sarama, counted and logged;
// when records are deleted ahead of the consumer (the retention of a compact,delete topic,
// delete-records), it reads on from the log's new start. A topic deleted and created again
// under the same name is another topic: within about 5 s (its id changed, or, from brokers
// that give no topic ids (Config.Version before 2.8), the topic was missing or the log's end
// went back before what was read) the table drops the keys it read from the old one, logs it
// at Warn and reads the new one from its start (without ids, a new log already longer than
// the old one's read part, created between two checks, goes unnoticed).
//
// Versions: a key keeps at most WithVersions (default 8) versions, tombstones included; one
// more drops its oldest. A version with the timestamp of one held replaces it; one older than
// all of a full key's versions is ignored. A deleted key (its newest version a tombstone) is
// kept, with its history, for WithTombstoneRetention of record time (default 24 h, Kafka's
// default delete.retention.ms), then forgotten, as compaction drops it from the topic; so a
// table of short-lived keys does not grow with every key it ever held. A lookup before the key's oldest retained version returns nothing, or that
// version with WithOldestFallback. Compaction keeps only the last record of each key in the
// log, so after a restart (a new Load) a key's history may start later than before: lookups
// are deterministic only while the versions they fall on are retained (see join.Enrich).
// Timestamps should grow with offsets per key (one producer per key): Latest is the newest
// by timestamp, which compaction's survivor (the last by offset) is only then. A version
// older than a key's tombstone, read after it within the retention (a late update, a
// producer's retry), goes into the key's history and does not bring the key back; once the
// key is forgotten, such a version brings it back, from its own timestamp on. A record
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
// before it consumes anything, and stops if a fetch or a commit is refused later, or the
// fetch of a claimed partition's committed checkpoint or the check of its offsets; a Producer's
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
// sarama's own metrics (histograms, meters and counters per request and per broker in a
// go-metrics registry, sarama.Config.MetricRegistry) are not recorded: the package reads
// none of them, and recording them cost about 0.7 % of the fleet job's CPU. Every sarama
// client the package builds records into a registry that hands back go-metrics' Nil
// metrics. go-metrics' process-wide switch (metrics.UseNilMetrics) is left as it is, for a
// program that uses go-metrics itself; one that wants sarama's metrics gives its clients a
// registry of its own with WithSaramaConfig.
package kafka
