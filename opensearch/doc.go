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
// otherwise let an older value win. When the last one cannot be made into a document, the
// latest earlier one that can is written, and those that cannot are dead-lettered. With op
// type create (WithOpType(OpCreate), WithDataStream) they collapse to the first one instead,
// again as if written in order: the first is created and the later ones find it (409); when
// the first cannot be made into a document, the next one that can is written.
//
// Across batches, one limit: a bulk request abandoned on a timeout (Config.RequestTimeout),
// or answered with a 502 or 504 by a proxy that passed it on, may still be queued in
// OpenSearch, which does not cancel a bulk request whose connection closed. The sink sends
// its documents again and the pipeline goes on, so the abandoned request may run after a
// later batch wrote a newer value of one of its IDs, and put the older value back until the
// ID is written again. An output that writes each ID with one value (final window results,
// whose replays write the same value) is not affected; one that writes an ID several times
// (partial results, a window's revisions across bounded runs) is. A RequestTimeout well
// above the cluster's slowest bulk makes it rarer. Versions would not fix it safely: an
// external version must grow with every value of an ID and be the same on replay, which
// neither Kafka offsets (several partitions, batch boundaries) nor wall clocks give.
//
// Data streams only accept the create action (WithDataStream); a document replayed into the
// backing index that holds it fails with 409, which the sink counts in Stats.Existed and
// treats as success.
//
// Exactly once holds only within one index: an ID is unique per index, not per data stream or
// alias. A document replayed after its data stream rolled over (a rollover by hand or by an
// ISM policy) is created again in the new write index, beside its copy in the old backing
// index (no 409, counted in Stats.Indexed), and the same goes for an alias with a write index
// that rolls over. Data streams and rollover aliases are therefore at least once: a replay
// that spans a rollover duplicates. Where exactly once matters, write to plain indexes whose
// name the document decides (FixedIndex, DailyIndex: a replay names the same index).
//
// Index names come from the document: FixedIndex, DailyIndex (prefix-2026.11.25 from an
// event or window time, in UTC) or any func(T) string. OpenSearch refuses every document
// for a name that breaks its rules (upper case, a space, one of \ / * ? " < > | , # :, a
// leading _ - or +, more than 255 bytes), and Write fails (see Dead letters); a program
// checks a fixed name, or a daily prefix made into a whole name, at its start with
// CheckIndexName. OpenSearch creates an index on the first bulk request into it, which waits for that (40 to 90 ms on an idle node, more on a
// busy cluster); WithIndexAhead creates the next day's daily index in the last hour, say, of
// the day before, where the first bulk request into it would have (action.auto_create_index),
// passing over a node that gives no usable answer as EnsureTemplates does.
//
// A batch is cut into bulk requests of about the flush size (WithFlushBytes, 256 KiB by
// default), sent by up to WithConcurrency requests at a time; the bodies of requests in flight or waiting for a retry
// are bounded by WithMaxInFlightBytes, and encoding waits while the bound is reached, so
// memory stays bounded during an outage.
//
// # Retries
//
// A bulk request is sent again whole after a transport error (connection refused or reset),
// a timeout (Config.RequestTimeout per attempt), a 408, 429 or 5xx status (but 501 Not
// Implemented and 505 HTTP Version Not Supported, which no retry changes), or a write block.
// Inside a successful response, items that failed with 429, 5xx or a write block are sent
// again in a new, smaller request that holds only them; an item that an ingest pipeline's
// fail processor refused (500, fail_processor_exception) is not, since the document's content
// decided it: it is dead-lettered. An item refused with 400 "mapper [f] cannot be changed from
// type [long] to [float]" (illegal_argument_exception) lost a race: concurrent requests into a
// new index or data stream mapped a field dynamically, each its own way. The mapping is
// settled by then, so it is sent again once, at once, and dead-lettered only if refused
// again. That resend is no attempt of the retry policy (each document goes again at most
// once, so it cannot loop): it happens with MaxAttempts 1 and after the last attempt
// allowed too, and waits for no backoff; a response that also turned other items away for
// now (429) is an attempt as before, and the raced documents go with their retry. With
// several Config.Addresses, a request answered 502, 503 or 504 (a node cut off from its
// cluster answers 503 no cluster-manager; a proxy with nothing behind it, 502), or that could
// not connect to its node (connection refused: a node that is down; a name that does not
// resolve), goes at once to the next address, once to each within an attempt, and waits for
// no backoff: it reached no node that could serve it. (A 429 waits: it is backpressure. A
// request that timed out waits too: its node may still run it.) Retried
// requests and items wait with exponential backoff and jitter under a stream.RetryPolicy,
// the same type as the pipeline's: DefaultRetry (100ms to 10s, 10 attempts of the same
// documents) or WithRetry's. When MaxAttempts is reached,
// Write fails with a retryable error (where the request failed whole and there are several
// addresses, one that names every node and what it last did: a timeout, a refused
// connection, a status, or that it was not tried) and the pipeline's retry policy takes
// over: it writes
// the batch again (IDs make that safe) or, when ctx ends, stops without acknowledging it, so
// an outage is bounded by the policies given, never by an inner infinite loop. MaxAttempts 0
// retries within Write until ctx ends; Write then returns ctx.Err(), unwrapped.
//
// An address that answers, but not as OpenSearch, is not an outage: a retry would only get
// the same answer. A 404, 405 or 501 to POST /_bulk (another service, a wrong port, a path a
// proxy does not serve, a plain web server such as python3 -m http.server), a 400 that is not OpenSearch's refusal of a document (a TLS port's or a
// proxy's page for plain HTTP, OpenSearch's "no handler found for uri" at a path prefix it
// has no handler for), a 2xx that is not a bulk response (a web page, another service's
// JSON, a proxy's login page) or not a 200 (OpenSearch answers every bulk request it ran
// with 200; an asynchronous gateway's 202 says nothing of the documents), bytes that are not
// TLS in answer to https:// or not HTTP (a plain HTTP port, OpenSearch's transport port
// 9300): each fails Write with an error wrapping ErrNotOpenSearch, marked stream.Permanent,
// that names the URL (never its credentials) and quotes what answered; nothing of the
// request is acknowledged, dead-lettered or retried. (A server that answers and closes without reading the request,
// as a TLS port and the transport port do, may reset the connection before its answer is
// read: that attempt looks like an outage and is retried, until one reads the answer.) A
// cluster that refuses what every request of the sink holds fails Write the same way,
// permanent and naming the setting: with rest.action.multi.allow_explicit_index false (an
// Amazon OpenSearch Service advanced option) it refuses the index names of the action lines
// (400 "explicit index in bulk is not allowed"), which the sink split down to single
// documents and dead-lettered one by one. A document that an ingest pipeline drops (its
// item answered 200 "noop") is written as far as the sink can tell.
// Where nothing answers (connection refused or reset, a name that does not resolve, a
// timeout), or what answers says the node is away (408, 429, 5xx but 501 and 505: a proxy in front of a
// node that is down), the sink retries as above: a pipeline started before its node is up
// waits, and writes everything once the node answers. Meanwhile it logs at Warn, a few lines
// per 30 s at most, the URL, how long the sink has been failing (failing_for) and the error.
// An address that closes the connection without an HTTP answer (net/http's bare "EOF", a
// reset, a broken pipe: what a Kafka broker's port does with an HTTP request) is retried the
// same way, and the error, the Warn lines and Stats.LastError say what it means: where the
// address never gave the client an HTTP answer, "the address closed the connection without
// an HTTP answer: is it OpenSearch's HTTP port (9200 by default), or a proxy whose node is not
// up yet?"; where it did, that the node closed it (stopping or restarting). It is not made
// permanent after some attempts, though a wrong port would deserve it: a proxy in front of a
// node that is not up yet does the same (Docker's userland proxy for a published port,
// kubectl port-forward, an SSH tunnel, a TCP load balancer), and a pipeline started with
// its compose file before OpenSearch listens must wait for it, not stop. The retry policies
// bound it as any outage; the first Warn line says what to check.
// A node that takes a request and does not answer it (a stopped or stalled process, a long
// garbage collection, a disk that hangs) fails nothing until the request timeout
// (Config.RequestTimeout, a minute by default). So that it is not unseen meanwhile, a request
// attempt (bulk or other) that has waited Config.SlowRequest (DefaultSlowRequest, 10 s)
// without its answer is logged at Warn ("opensearch: request still waiting for its answer")
// with its node's URL, the request (POST /_bulk), how long it has waited (waiting_for), the
// timeout, its bytes and how far it got (phase: connecting, sending the request, waiting for
// the response, reading the response; with an *http.Transport), again every 30 s while it
// waits, and at Info when it ends: answered (its status, how long it took) or not. A sink's
// Stats.SlowSince is when its oldest bulk request still waiting past the threshold was sent,
// for a status page. Neither the timeout nor the retries change: a late answer within the
// timeout is a success.
// A server certificate that does not verify (signed by an authority the client does not
// trust, not valid for the address's host name, expired) will not verify on the next
// attempt either: Write fails at once with an error wrapping ErrCertificate, marked
// stream.Permanent, that names the URL, the verification error and what to check (CACertFile
// or CACertPEM, the host name, the certificate's dates). So does a server that refuses the
// client's certificate or the handshake with a TLS alert (a certificate required and none
// given, one it does not trust, expired or revoked; TLS 1.2's handshake_failure, which also
// answers a version or cipher suite not shared): no alert comes from an outage. In TLS 1.3
// the server sends that alert after the client's side of the handshake is done, while the
// request is on its way, and closes the connection: when the reset of that connection
// reaches the client before the alert does, the attempt fails as an outage and is retried,
// and the first attempt that reads the alert stops the sink (about half the attempts read it
// on loopback). A TLS handshake that times out or whose connection is reset is an outage,
// retried as above.
// A one-segment path (https://host:9200/x) is no mistake to OpenSearch: POST /x/_bulk is the
// bulk API with a default index, which the sink's actions override.
//
// A response body is read up to a cap, so that a proxy or a node sending an endless body
// cannot make the process read it into memory. A bulk response's cap grows with its request:
// 64 KiB, 1 KiB per document and 8 times the request's bytes (an error for a rejected
// document quotes its field value, up to 4 times); a response with an error status is decided
// by its status and the first 64 KiB of its body; other responses (index templates) are
// capped at 64 KiB. A 2xx body over its cap fails the request with a *ResponseError wrapping
// ErrBodyTooLarge and naming the cap, retried like a transport error; nothing in it counts as
// written or rejected.
//
// A bulk response to a bulk request that is not the one asked for (not one item per
// document, an item of another action or without a status, a success without its result)
// is retried the same way, with a *ResponseError that gives the status, the content type and
// the start of the body; no document of it counts as written or rejected. When the retry
// policies give up, the pipeline stops with that error, the batch unacknowledged, and the
// next run replays it. Items are matched to documents by position: OpenSearch answers in
// request order, and the sink asks only for their statuses, results and errors.
//
// A write block (error type cluster_block_exception: index.blocks.write, index.blocks.read_only,
// or the flood-stage read_only_allow_delete block that OpenSearch sets when a disk fills up,
// with status 403 or 429) is temporary: an operator or freed disk space lifts it. It is
// retried like a 429, logged (a few lines per 30 s at most) and counted in Stats.Blocked.
//
// A request refused whole with 400 (OpenSearch's validation error, an error object with a
// type, that names one document) or 413 (too large) does not stop the pipeline: the sink splits it in halves, and halves again, until
// the documents OpenSearch refuses are alone in their request; those go to the dead-letter
// output with the status, type and reason of the refusal, and the rest is written (counted in
// Stats.Split). A request refused whole with another 4xx (401, or a 403 that is not a block:
// bad credentials or permissions), or with 505, fails Write with an error marked
// stream.Permanent.
//
// Every error for an answer with an error status is an *HTTPError that names what the
// request was for, its method and URL (credentials masked), the status and the start of the
// body; an error for an answer that is not OpenSearch's is a *ResponseError that names the URL.
// A redirect (a proxy sending http:// to https://, an old host name to a new one) is not
// followed: it fails Write permanently, and the error names where it leads.
//
// # Document IDs
//
// OpenSearch refuses IDs longer than 512 bytes. The sink replaces any longer ID, whatever
// built it (WindowID is always 32 bytes; a Mapping.ID or Doc.ID may hold an unbounded key) by
// a stable one: its first 400 bytes (cut at a character boundary), "~sha256:" and the hex
// SHA-256 of the whole ID. The same ID always gives the same replacement, so a replay
// overwrites; such documents are counted in Stats.LongIDs and logged (rate limited). Dead
// letters carry the ID as sent.
//
// An ID must be text: a JSON string holds UTF-8 only (encoding/json writes each byte that is
// not UTF-8 as U+FFFD), so IDs that differ only in such bytes (binary Kafka keys) would name
// one document, one value overwriting the other. The sink replaces an ID that is not
// valid UTF-8 the same way as a long one: its start with each invalid byte written as U+FFFD
// ("cab\xff" gives "cab\uFFFD~sha256:" and 64 hex digits), which keeps distinct IDs distinct
// and a replay overwriting; such documents are counted in Stats.InvalidIDs and logged. To
// keep binary keys readable, encode them yourself (hex, base64) in Mapping.ID or Doc.ID. An
// index name that is not valid UTF-8 is never changed: the value is dead-lettered (Reason
// stream.ReasonEncode, Err naming the index with the invalid bytes escaped).
//
// # Dead letters
//
// The dead-letter output (WithDeadLetter) is a stream.DeadLetterSink, the one dead-letter
// contract of fleetstream: a stream.DeadLetterFunc, a JSON-lines file (NewJSONLines,
// OpenJSONLinesFile) or the kafka package's dead-letter producer. The sink sends it, once per
// Write and before Write returns, the documents that will never be indexed as they are:
//
//   - documents OpenSearch rejected permanently (a mapping error such as a string in a
//     numeric or geo_point field, any other 4xx item error, an ingest pipeline's fail
//     processor's refusal, a document isolated from a request refused whole), with Reason stream.ReasonRejected, Err "<type>: <reason>" as
//     OpenSearch gave them, Status, Index, ID and Value the document's JSON. Items refused
//     with 401 or 403 (not a write block) are the exception: the user or role may not write
//     the index, which is no fault of the documents, so Write fails with a permanent
//     *HTTPError that names the URL, the index and the reason, and nothing is dead-lettered;
//     the batch is written again once the permissions are right. So do items refused for
//     their index, which would refuse any document alike (index_not_found_exception: the
//     index is missing and action.auto_create_index does not let OpenSearch create it;
//     index_closed_exception; an alias without a write index; a data stream written with
//     op type index, not WithDataStream; an index whose default or final ingest pipeline
//     does not exist; the cluster's shard limit, which keeps OpenSearch from creating a
//     new day's index; a name that breaks OpenSearch's rules for index names,
//     invalid_index_name_exception, as an upper-case fixed name does), when every item of
//     their request was refused so: the index the
//     request writes to (a fixed name, an alias, today's daily index) takes no document,
//     and the error says what to do about it. Before, every document went to the dead
//     letters, the batches were acknowledged, and the job looked healthy. When other
//     documents of the batch went to indexes that take documents (written, found existing,
//     or refused for their own fault; a 429 or 5xx says nothing until its retry is
//     answered), in the same request or another, the refused ones
//     are for an index made from the document (an old day's index that a lifecycle policy
//     closed or deleted, reached by a late record or a replay; a name made from a field of
//     the document that OpenSearch refuses): they are dead-lettered, with
//     the refusal and the fix in Err. This is decided over the whole batch, so where the
//     batch is split into requests does not change it. A batch that holds only such
//     documents still fails Write, as above;
//   - values that cannot be made into a document, with Reason stream.ReasonEncode: the
//     Mapping failed (or its Body returned a slice that does not extend dst), the index name
//     is empty or not valid UTF-8, or the document is not a JSON object. The sink never
//     sends OpenSearch invalid JSON: a document that is not valid JSON (+Inf or NaN written
//     by an appender, which JSON cannot represent, or bytes that are
//     not UTF-8) is an encode error. Value always
//     carries the document: the bytes produced when there are some, otherwise the value as
//     encoding/json writes it, otherwise as JSON with non-finite numbers written as strings
//     ("+Inf", "NaN"), otherwise as fmt's %+v; Err then says which rendering Value holds.
//
// They are counted in Stats.DeadLettered. An error of the dead-letter output fails the Write
// (retryably: the batch is written again with the same IDs). Without a dead-letter output
// such a Write fails with a permanent *RejectedError: nothing is dropped silently
// (DiscardDeadLetters opts in to dropping).
//
// # Index templates
//
// Client.EnsureTemplates installs composable index templates (PUT _index_template) for
// cab-stats-*, zone-demand-*, zone-supply-*, ride-pickups-*, cab-alerts-* and, with
// WithRawTelemetry, cab-telemetry-*: geo_point locations, date times, keyword IDs, typed
// numbers, and unknown strings as keywords (one longer than 8,191 characters is kept in
// _source, not indexed, so it cannot make OpenSearch refuse the document). It is
// idempotent, and replaces the templates an older SDK installed; call it at start.
// WithReplicas(0) suits a single node.
// It does not retry, but a request that gets no answer from its node (refused, reset, timed
// out), or an answer saying that the node cannot serve it now (408, 429, 5xx but 501 and
// 505: a node cut off
// from its cluster answers 503), goes to the client's next address, at most once to each:
// with several, a node that takes connections and never answers costs one request timeout
// (Config.RequestTimeout), and the transport passes it over for the rest of the call. An
// error names the URL (where no address served the request, every node's and what it did:
// a timeout, a refused connection, a status, or its last failure where the transport passed
// it over), and wraps
// ErrNotOpenSearch when what answered is not OpenSearch (a 404 or 501, a web page, a 200 that is
// not an acknowledgement); a template OpenSearch refuses (a WithRefreshInterval it cannot
// parse) is an *HTTPError with its reason.
// Client.PutTemplates installs templates of one's own the same way, for the indexes a
// pipeline writes with its own Mapping.
//
// # Auth
//
// Config takes node addresses, basic auth (Username and Password, or user:pass@ in the URL),
// a CA certificate (CACertFile or CACertPEM), a client certificate for mutual TLS
// (ClientCertFile and ClientKeyFile, or the PEMs: OpenSearch's security plugin authenticates
// by it), and, discouraged, InsecureSkipVerify. For
// Amazon OpenSearch Service (service "es") and OpenSearch Serverless ("aoss") set Config.AWS:
// requests are signed with SigV4 through opensearch-go's signer, with credentials from the
// given aws.Config or the default chain (whose temporary credentials it renews 2.5 to 5
// minutes before they expire). A request AWS refuses because its token or signature expired on the
// way (403, "The security token included in the request is expired", "Signature expired":
// HTTPError.SignatureExpired) is retried, signed anew; an invalid token stays permanent. Credentials never appear in logs or errors, nor
// where an error or a dead letter quotes a response body that echoes them (a proxy's page):
// the password, user:password and its base64, and the headers a request carried (its
// Authorization, SigV4's signature and session token), as they are or JSON-escaped. An
// invalid Config, Mapping or option fails construction with an error wrapping
// ErrInvalidOption that names the setting.
//
// # Stats
//
// Sink.Stats returns counters since the sink was created: documents created (Indexed),
// replaced (Updated), existing (Existed), failed item attempts (Failed), documents sent again
// (Retried), request retries, write blocks (Blocked), split requests (Split), long IDs
// replaced (LongIDs), IDs not valid UTF-8 replaced (InvalidIDs), dead letters, requests, bytes, and the bulk latency (last, mean, max
// and a histogram over LatencyBounds). FailingSince, FailedAttempts and LastError describe
// the failures under way, and SlowSince a bulk request that waits long for its answer (see
// Retries). WithBulkHook sees every request attempt.
package opensearch
