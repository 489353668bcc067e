// Package testenv connects fleetstream's integration tests to the real Apache Kafka and
// OpenSearch that testenv/services.sh runs on the loopback interface.
//
// # Starting the services
//
// `make services-up` (or `./testenv/services.sh up`) resolves the servers' jars from Maven
// Central once, starts a single-node Kafka (KRaft, with a plain and a SASL/SCRAM-SHA-512
// listener, ACLs enforced but open where none is set) and a single OpenSearch node, waits
// until both answer, and writes testenv/env.sh ($FLEETSTREAM_TESTENV_RUN/env.sh when that is
// set: sessions that share a checkout with their own run directory and ports keep their own).
// Source it (`. testenv/env.sh`) before `go test`; `make services-down` stops both. `make test`
// does all of that around the whole suite.
//
// # Environment
//
// The helpers read the addresses from the variables env.sh exports:
// FLEETSTREAM_KAFKA_BROKERS, FLEETSTREAM_OPENSEARCH_URL and FLEETSTREAM_KAFKA_SCRAM_BROKERS,
// FLEETSTREAM_KAFKA_SCRAM_USER, FLEETSTREAM_KAFKA_SCRAM_PASSWORD,
// FLEETSTREAM_KAFKA_SCRAM_MECHANISM. When a variable is unset the test is skipped, unless
// FLEETSTREAM_REQUIRE_SERVICES=1 (set by `make test`), in which case it fails: a suite that is
// meant to hit real services must not pass by skipping them.
//
// # Isolation
//
// All tests share one broker and one node. Give every topic, consumer group and index its own
// name with [UniqueName] and clean up what you create.
//
// # Fault tests
//
// [StopService] and [StartService] stop and restart one service and keep its data, so a test
// can take OpenSearch away for a while or restart the Kafka broker mid-stream. They affect
// every test that runs at the same time, including other packages' test binaries that
// `go test ./...` runs in parallel; such tests should say so in their name and be written to
// tolerate, or be run apart from, the rest.
package testenv
