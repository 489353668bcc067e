// The test helpers: service addresses from env.sh (KafkaBrokers, OpenSearchURL, KafkaSCRAM),
// which skip or fail the test when unset; StopService and StartService; RepoRoot, UniqueName
// and FaultTest.

package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Environment variables written to env.sh by `testenv/services.sh up` (testenv/env.sh, or
// $FLEETSTREAM_TESTENV_RUN/env.sh when that is set).
const (
	EnvRequire        = "FLEETSTREAM_REQUIRE_SERVICES"
	EnvKafkaBrokers   = "FLEETSTREAM_KAFKA_BROKERS"
	EnvOpenSearchURL  = "FLEETSTREAM_OPENSEARCH_URL"
	EnvSCRAMBrokers   = "FLEETSTREAM_KAFKA_SCRAM_BROKERS"
	EnvSCRAMUser      = "FLEETSTREAM_KAFKA_SCRAM_USER"
	EnvSCRAMPassword  = "FLEETSTREAM_KAFKA_SCRAM_PASSWORD"
	EnvSCRAMMechanism = "FLEETSTREAM_KAFKA_SCRAM_MECHANISM"
)

// serviceTimeout bounds one services.sh stop/start.
const serviceTimeout = 5 * time.Minute

// Required reports whether FLEETSTREAM_REQUIRE_SERVICES=1 (set by make test): then a missing
// service fails the test instead of skipping.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// unavailable skips the test, or fails it when services are required.
func unavailable(t testing.TB, what, variable string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %s is unset; start the services with `make services-up` "+
		"and `. testenv/env.sh`, or run `make test`", what, variable)
	if Required() {
		t.Fatalf("%s (%s=1 makes this a failure)", msg, EnvRequire)
	}
	t.Skip(msg)
}

// lookup returns a variable's trimmed value, skipping or failing the test when it is empty.
func lookup(t testing.TB, what, variable string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(variable))
	if v == "" {
		unavailable(t, what, variable)
	}
	return v
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// KafkaBrokers returns FLEETSTREAM_KAFKA_BROKERS split on ",": the plain (no auth) listener.
// It skips the test, or fails it when [Required], when the variable is unset.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	brokers := splitList(lookup(t, "Kafka", EnvKafkaBrokers))
	if len(brokers) == 0 {
		unavailable(t, "Kafka", EnvKafkaBrokers)
	}
	return brokers
}

// OpenSearchURL returns FLEETSTREAM_OPENSEARCH_URL (e.g. http://127.0.0.1:19200) without a
// trailing slash. It skips the test, or fails it when [Required], when the variable is unset.
func OpenSearchURL(t testing.TB) string {
	t.Helper()
	return strings.TrimRight(lookup(t, "OpenSearch", EnvOpenSearchURL), "/")
}

// SCRAM describes the broker's SASL/SCRAM listener and its test user.
type SCRAM struct {
	Brokers   []string
	User      string
	Password  string
	Mechanism string // "SCRAM-SHA-512"
}

// KafkaSCRAM returns the SASL/SCRAM listener and credentials. It skips the test, or fails it
// when [Required], when they are unset.
func KafkaSCRAM(t testing.TB) SCRAM {
	t.Helper()
	s := SCRAM{
		Brokers:   splitList(lookup(t, "Kafka's SCRAM listener", EnvSCRAMBrokers)),
		User:      lookup(t, "Kafka's SCRAM user", EnvSCRAMUser),
		Password:  lookup(t, "Kafka's SCRAM password", EnvSCRAMPassword),
		Mechanism: strings.TrimSpace(os.Getenv(EnvSCRAMMechanism)),
	}
	if len(s.Brokers) == 0 {
		unavailable(t, "Kafka's SCRAM listener", EnvSCRAMBrokers)
	}
	if s.Mechanism == "" {
		s.Mechanism = "SCRAM-SHA-512"
	}
	return s
}

// StopService stops one service ("kafka" or "opensearch") with `testenv/services.sh stop`,
// keeping its data. It fails the test on error.
func StopService(t testing.TB, name string) {
	t.Helper()
	services(t, "stop", name)
}

// StartService starts one service ("kafka" or "opensearch") with `testenv/services.sh start`
// and returns once it is ready again. It fails the test on error. It is safe in t.Cleanup.
func StartService(t testing.TB, name string) {
	t.Helper()
	services(t, "start", name)
}

func services(t testing.TB, verb, name string) {
	t.Helper()
	if name != "kafka" && name != "opensearch" {
		t.Fatalf("testenv: unknown service %q: want \"kafka\" or \"opensearch\"", name)
	}
	script := filepath.Join(RepoRoot(t), "testenv", "services.sh")
	// Not t.Context(): that is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), serviceTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script, verb, name)
	cmd.Stdout = &out
	cmd.Stderr = &out
	// The script's children are detached; don't wait for pipes they might hold.
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		t.Fatalf("testenv: services.sh %s %s: %v\n%s", verb, name, err, out.String())
	}
	t.Logf("testenv: services.sh %s %s took %v", verb, name, time.Since(start).Round(100*time.Millisecond))
}

// RepoRoot returns the repository root: the nearest directory at or above the working
// directory that holds go.mod. It fails the test when there is none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: working directory: %v", err)
	}
	root, err := findRoot(dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func findRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod at or above " + dir)
		}
		d = parent
	}
}

var nameCounter atomic.Uint64

// maxPrefix keeps names well below Kafka's 249 and OpenSearch's 255 byte limits.
const maxPrefix = 200

// UniqueName returns prefix followed by a short unique suffix, e.g. "orders-3f9a07c1-1". The
// result is lowercase and uses only [a-z0-9_-] (other characters of prefix become '-'), and it
// starts with a letter or digit, so it is a valid Kafka topic, consumer group and OpenSearch
// index name.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= maxPrefix {
			break
		}
	}
	p := b.String()
	if p == "" || p[0] == '-' || p[0] == '_' {
		p = "t" + p
	}
	var buf [4]byte
	if _, err := rand.Read(buf[:]); err != nil {
		t.Fatalf("testenv: random name suffix: %v", err)
	}
	return fmt.Sprintf("%s-%s-%d", strings.TrimRight(p, "-_"), hex.EncodeToString(buf[:]), nameCounter.Add(1))
}

// FaultTest marks a test that stops or restarts a shared service. Such tests take the service
// away from every test running at the same time, other packages' included, so they are named
// TestFault... and run in a step of their own, one package at a time:
//
//	FLEETSTREAM_FAULT_TESTS=1 go test -p 1 -run '^TestFault' ./...
//
// which `make test` does after the main run (which skips them with -skip '^TestFault').
// Without FLEETSTREAM_FAULT_TESTS=1 the test is skipped, or fails when Required.
func FaultTest(t testing.TB) {
	t.Helper()
	if !strings.HasPrefix(t.Name(), "TestFault") {
		t.Fatalf("testenv: %s stops shared services: name it TestFault...", t.Name())
	}
	if os.Getenv("FLEETSTREAM_FAULT_TESTS") == "1" {
		return
	}
	if Required() {
		t.Fatalf("testenv: %s is a fault test; it runs in the fault step (FLEETSTREAM_FAULT_TESTS=1, see make test), not here", t.Name())
	}
	t.Skip("testenv: fault test stops shared services; run with FLEETSTREAM_FAULT_TESTS=1 go test -p 1 -run '^TestFault' ./...")
}

// GroupInstanceIDs returns the group instance ids (static membership, KIP-345) of the members
// of a consumer group on the test's brokers, sorted; members without one are left out.
func GroupInstanceIDs(t testing.TB, brokers []string, group string) []string {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatalf("testenv: admin: %v", err)
	}
	defer func() { _ = admin.Close() }()
	gs, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(gs) != 1 {
		t.Fatalf("testenv: describe group %s: %v (%d groups)", group, err, len(gs))
	}
	var ids []string
	for _, m := range gs[0].Members {
		if m.GroupInstanceId != nil {
			ids = append(ids, *m.GroupInstanceId)
		}
	}
	slices.Sort(ids)
	return ids
}
