// Package opensearch writes stream results to OpenSearch: a bulk sink with deterministic
// document IDs, bounded memory, retries and dead letters; the index templates of every index
// fleetstream writes; and the connection settings for self-managed clusters (basic auth over
// TLS) and Amazon OpenSearch Service and Serverless (SigV4). It is built on opensearch-go v4.
//
// A Client (NewClient) holds the connection; Sink (NewSink) implements stream.Sink and
// stream.Closer, so stream.To(results, sink) makes it a pipeline output.
//
// # Delivery
//
// Write returns nil only once every document of the batch is indexed or handed to the
// dead-letter output, so the pipeline acknowledges a batch (and commits its Kafka offsets)
// only after its results are in OpenSearch. Documents carry deterministic IDs (WindowID for
// window results: pipeline, key, window start and end), and the default bulk action, index,
// replaces a document with the same ID: a batch replayed after a crash, a rebalance or a retry
// overwrites its earlier copy (result "updated", counted in Stats.Updated) instead of adding a
// second one. Ingestion is at least once; the indexes hold each result exactly once.
//
// Within one batch, values with the same index and ID collapse to the last one (counted in
// Stats.Superseded), as if written in order: concurrent requests and item retries could
// otherwise let an older value win.
//
// Data streams only accept the create action (WithDataStream); a replayed document then
// fails with 409, which the sink counts in Stats.Existed and treats as success.
//
// Index names come from the document: FixedIndex, DailyIndex (prefix-2026.11.25 from an
// event or window time, in UTC) or any func(T) string.
//
// A batch is cut into bulk requests of about the flush size (WithFlushBytes), sent by up to
// WithConcurrency requests at a time; the bodies of requests in flight or waiting for a retry
// are bounded by WithMaxInFlightBytes, and encoding waits while the bound is reached, so
// memory stays bounded during an outage.
//
// # Retries
//
// A bulk request is sent again whole after a transport error (connection refused or reset),
// a timeout (Config.RequestTimeout per attempt) or a 408, 429 or 5xx status. Inside a
// successful response, items that failed with 429 or 5xx are sent again in a new, smaller
// request that holds only them. Both wait with exponential backoff and jitter between
// Backoff.Initial and Backoff.Max. Attempts are unlimited by default: an outage blocks Write,
// and so the pipeline, instead of losing data; when ctx ends Write returns ctx.Err(). With
// Backoff.MaxAttempts set, Write fails after that many attempts with a retryable error and
// the pipeline's own retry policy takes over. The pipeline writes the batch in flight with a
// context that shutdown does not cancel, so during an outage Run returns only once the batch
// is written; set MaxAttempts to bound that wait: Write then fails, and the pipeline's retry
// loop, which watches ctx, stops without acknowledging the batch. A request refused as a whole with another 4xx
// (401, 403, 413) fails Write with an error marked stream.Permanent.
//
// # Dead letters
//
// Items rejected permanently (a mapping error such as a string in a numeric or geo_point
// field, any other 4xx item error) and values the Mapping cannot encode are collected as
// Rejected, with the index, ID, document, status and reason, and handed once per Write to the
// DeadLetter of WithDeadLetter: a DeadLetterFunc, a JSON-lines writer (NewJSONLines,
// OpenJSONLinesFile) or the kafka package's producer. They are counted in Stats.DeadLettered.
// Without a dead-letter output such a Write fails with a permanent *RejectedError: nothing is
// dropped silently (DiscardDeadLetters opts in to dropping).
//
// # Index templates
//
// Client.EnsureTemplates installs composable index templates (PUT _index_template) for
// cab-stats-*, zone-demand-*, cab-alerts-* and, with WithRawTelemetry, cab-telemetry-*:
// geo_point locations, date times, keyword IDs, typed numbers, and unknown strings as
// keywords. It is idempotent; call it at start. WithReplicas(0) suits a single node.
//
// # Auth
//
// Config takes node addresses, basic auth (Username and Password, or user:pass@ in the URL),
// a CA certificate (CACertFile or CACertPEM), and, discouraged, InsecureSkipVerify. For
// Amazon OpenSearch Service (service "es") and OpenSearch Serverless ("aoss") set Config.AWS:
// requests are signed with SigV4 through opensearch-go's signer, with credentials from the
// given aws.Config or the default chain. Credentials never appear in logs or errors. An
// invalid Config, Mapping or option fails construction with an error wrapping
// ErrInvalidConfig that names the setting.
//
// # Stats
//
// Sink.Stats returns counters since the sink was created: documents created (Indexed),
// replaced (Updated), existing (Existed), failed item attempts (Failed), documents sent again
// (Retried), request retries, dead letters, requests, bytes, and the bulk latency (last,
// mean, max and a histogram over LatencyBounds). WithBulkHook sees every request attempt.
package opensearch
