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
// min(3, brokers) (WithReplication), unlimited retention and a max.message.bytes that takes
// whatever its producer's MaxMessageBytes allows (an existing topic's own, read when the
// exchange opens, sizes its messages if smaller), purged below the group's
// committed offsets (WithPurgeInterval); an existing topic with another count is refused
// (ErrPartitionMismatch), since keys would move away from their state, and so is one that
// another consumer group has committed offsets of (ErrRepartitionInUse): another pipeline
// with the same name, whose records the dedup would mix with this one's (name the topic
// after the group, as Kafka Streams does with its application id). Kafka cannot say which
// groups read a topic, so that check lists the cluster's consumer groups and fetches their
// offsets of the topic; it runs only while the pipeline's group has committed nothing of an
// existing topic (a topic Open creates has no group's offsets, and a group that came after
// this one's first commit was refused by its own check), and sees only the groups the
// principal may describe (Describe on the cluster lists them all; the groups whose offsets
// it may not read are named in one warning). The upstream side
// produces each record to the partition the pipeline chose with an idempotent producer that
// keeps each partition's order; the downstream side consumes the topic as a further member of
// the pipeline's consumer group (the Source's Config and group), with the Source's claims,
// backpressure and commits, and stores the repartition's dedup and watermark state in the
// offset metadata. Numbering, deduplication and watermarks are the pipeline's: see
// "Repartition" in package stream for why every record counts exactly once downstream.
//
// That argument needs the exchange to write a partition's records in the order they are
// sent, none after one that failed: the dedup keeps only the highest sequence number seen per
// upstream partition, so a failed record written again after a later one of its upstream and
// downstream partition would be dropped as a copy, lost. The producer's retries cannot give
// that alone: sarama, once a message failed for good (its retries spent: about an hour
// without the partition's leader; or an error it does not retry), bumps the idempotent
// producer's epoch and writes the partition's next messages. So Send hands a partition's
// messages to the producer one at a time, the next once the one before it was acknowledged,
// and none after one that failed; the pipeline sends the batch again (or, after a restart,
// replays it), and the failed records are written before anything later of their partition
// (TestExchangeSendNothingAfterAFailedMessage). A Send abandoned when its context ended has
// at most one message of each partition in the producer: the next Send waits for their
// results before it hands anything over, and returns the error of one that failed. Each
// partition waits for one acknowledgement per message, all partitions at once: a Send takes
// as many round trips as its largest partition has messages: one per 64 KiB, since a
// message holds the marks of every upstream partition beside the records (the record format
// in exchange_format.go says why that is sound). When a mark ended its message, the fleet
// job's drain of the demo topic sent about five messages per downstream partition in a batch
// (906 in 28 batches to six partitions), and handing them over one at a time rather than
// all at once had cost 4.8 % of its CPU per event (p=0.037, six interleaved pairs); now it
// sends one per downstream partition in a batch.
//
// A record is a 15-byte header (varints) and the codec's bytes, about 25 bytes for a pair of
// a short string and a small integer. Send packs the records it writes to one partition into
// Kafka messages of up to 64 KiB, marks among them, and the consumer hands a
// message's records to the pipeline together under the message's offset, so a batch and a
// commit never split one: the producer's and consumer's work per message is spent once per
// few thousand records (Exchange.SentMessages). A release that reads only single-record
// messages stops on a packed one, and one that wants a mark last in its message on a
// message of this release (format version 3): upgrade a pipeline's instances together, or
// let its repartitions drain first. An end mark, which a bounded run sends as its input ends, carries
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
// restart fences it, or the broker aborts the transaction (after 30 to 40 s): a Source
// starts its transactional producer, whose InitProducerId fences the predecessor with its id
// and aborts that one's open transaction, before it fetches its group's offsets
// (TestExactlyOnceRestartFencesOpenOffsets).
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
// The invariant behind these rules: a transaction holds output made from a partition's
// records only if it also holds that partition's offsets, under a generation in which this
// member still owns it, or before its revocation returns. So a revocation waits until the
// pipeline let the partition go (or, once a bounded input ended and the pipeline may have
// taken its last batch, until it acknowledged the partition's end: the results of all its
// records are written), commits what is pending with the generation of the moment, and only
// then hands the partition over; cooperative rebalancing (the default strategy) revokes after
// the new generation formed, and a commit then carries it. A revocation after a bounded
// input ended used to skip all of that: the output of the partition's records, left pending
// by a commit that the new generation refused, was committed by the next transaction with the
// offsets of the partitions kept while the next owner replayed them (2 runs in 128 of
// TestSourceBoundedTwoInstancesHeldCommits under -race). A bounded run whose last commit was
// refused so tries it again (stream.Pipeline.Run, five tries) instead of failing; a commit
// that release makes and a new generation refuses poisons the transaction (the pending output
// is dropped, the Source stops), since the pipeline's next try would commit it without the
// partition's offsets. WithEndWhenCaughtUp acknowledges no partition's end, so there a
// revocation after the input ended waits for the pipeline to stop the Source after its last
// commit: a last batch that takes longer than 4/5 of the rebalance timeout then stops the
// Source with ErrTransaction (a restart replays), where before its output could be written
// twice. Tests: TestReleaseAfterEndWaitsForTheEndsAck, TestReleaseCommitRefusedPoisons,
// TestReleaseAfterEndWithoutRecords (offline), TestSourceBoundedTwoInstancesHeldCommits.
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
