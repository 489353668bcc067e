// Package kafka connects pipelines to Apache Kafka and Amazon MSK: Source consumes topics as
// a member of a consumer group and feeds a stream.Pipeline; Producer is a stream.Sink that
// writes to a topic with an idempotent producer. Both are built on IBM/sarama.
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
// The Source marks exactly those offsets and commits them synchronously through the group
// session, and once more when it gives a partition up. Nothing else is ever committed, so
// after a crash, a rebalance or a broker outage the next owner replays from the committed
// offset and rebuilds open state: delivery into the pipeline is at-least-once, and sinks that
// write with deterministic ids make results effectively exactly-once.
//
// Partition ids: the pipeline sees topic i of Config.Topics, partition p as id i<<16 | p
// (Source.PartitionID, Source.TopicPartition), so a single topic keeps Kafka's numbers and
// ids agree across instances and restarts. Every instance must list the topics in the same
// order.
//
// A Codec decodes each record and returns its event time; the zero time selects the
// record's Kafka timestamp. WithMeta wraps a codec so values carry the topic, partition,
// offset, key, timestamp and headers (Record[T]).
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
// # Backpressure
//
// Each claimed partition has one goroutine that decodes records and moves them into the
// pipeline's bounded input with TryPushBatch. When the input is full the goroutine pauses the
// partition (sarama Pause: no more fetches for it), keeps at most 4x the channel buffer of
// already-fetched records, and waits for the pipeline to drain the input, still watching
// for the end of the session; then it resumes. It never blocks in the input, so a
// rebalance is never held up by a slow pipeline for longer than one batch. Memory is bounded
// by the input's bounds plus, per partition, one fetch (Config.Fetch.MaxBytes) and that hold.
//
// # Bounded mode
//
// WithBounded turns the Source into a backfill: at start it reads the end offset of every
// partition, reads each up to there, and then closes the input. The pipeline then closes
// every window, writes and commits the final batch, and Run returns nil. Partitions that
// other group members own count as done once the group's committed offset reaches their end.
// Records written after the start are left for the next run.
//
// # Dead letters
//
// A record whose Decode fails (not decodable, or invalid) never stops the pipeline and is
// never lost: before any later record of its partition enters the pipeline, it is written to
// the dead-letter output, by default the topic "<source topic>.dlq" (WithDeadLetterTopic,
// WithDeadLetters), with its original key, value, timestamp and headers plus
// x-fleetstream-source-topic, -source-partition, -source-offset and -error. The write is
// retried until it succeeds or the partition is given up. Dead-lettered offsets are then
// committed like any other: a commit that reaches the record before them extends over them,
// and if everything before them is already committed they are committed at once. They are
// counted (Source.DeadLettered) and logged at Warn: the first ten one by one, then at most
// one line every ten seconds that also says how many were not logged since the last one.
//
// # Auth/MSK
//
// Config covers self-managed Kafka and Amazon MSK: TLS with the system roots or a CA, mutual
// TLS with a client certificate, SASL/PLAIN, SASL/SCRAM-SHA-256 and -512 (xdg-go/scram), and
// MSK IAM (SASLAWSMSKIAM: OAUTHBEARER with tokens from aws-msk-iam-sasl-signer-go, signed
// with the default AWS credential chain, a profile or an assumed role, and refreshed before
// they expire). Invalid settings fail at construction with an error wrapping
// ErrInvalidConfig that names the setting. Credentials are never logged or put in an error:
// Config, SASL and TLS redact them in String, GoString and LogValue.
//
// # Stats
//
// Source implements Stats() stream.SourceStats, which the pipeline copies into every
// BatchStats: records and bytes consumed, and the lag of every partition this instance
// owns (high-water mark minus committed offset, keyed "topic/partition").
// Source.DeadLettered counts dead letters; Producer.Sent counts acknowledged messages.
//
// # Producer
//
// Producer[T] encodes values with an Encoder (key and value, optionally topic and headers)
// and waits in Write until the broker acknowledged every message. It uses the idempotent
// producer (acks=all, one request in flight), so the client's own retries neither duplicate
// nor reorder; a batch that the pipeline writes again is appended again, so consumers should
// treat the key as the identity. Encoding errors and messages the broker can never accept are
// permanent (stream.IsPermanent).
package kafka
