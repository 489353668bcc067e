package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/opensearch"
)

// validate refuses, before anything connects, flag values that make no sense, each error
// naming its flag: the library would refuse most of them later (after the dead-letter topic
// was made), in the words of its options ("Tumbling(0s)" for -stats-window or -zone-window),
// and a few it never sees (-exit-when-idle and -status-every below 0 silently ran for ever
// and printed nothing). Found by helper-86's review. main exits 2 on them, as the flag package
// does on its own errors; run checks them too, for its other callers.
func (c *config) validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{flag}, args...)...))
	}
	if strings.TrimSpace(c.topic) == "" {
		bad("-topic", "empty: name the Kafka topic of cab telemetry")
	}
	if strings.TrimSpace(c.group) == "" {
		bad("-group", "empty: name the Kafka consumer group")
	}
	if strings.TrimSpace(c.name) == "" {
		bad("-name", "empty: name the pipeline (part of every document id)")
	}
	// Kafka topic names: the topics the flags name, and those the job names after them (the
	// dead-letter topic <topic>.dlq, the repartitions <group>-<name>-repartition). The
	// library or the brokers refused them after the dead-letter topic was made (or, for
	// -topic, when making it), naming no flag.
	// -alerts-topic only with -alerts: without alerts the job writes to no such topic, and
	// checking it refused runs over a topic they never touch (-alerts=false with the default
	// cab-alerts as -registry-topic).
	alertsTopic := ""
	if c.alerts {
		alertsTopic = c.alertsTopic
	}
	// topicName checks v, of flag, as part of the topic the job makes (made, with v for *);
	// topic says that v is itself a topic's name (not -group's).
	topicName := func(flag, v, made string, topic bool) {
		if strings.TrimSpace(v) == "" {
			return // refused above, or none
		}
		// kafka.CheckTopic names the character, the length past Kafka's 249 or the names
		// "." and ".." that the brokers refused after the job connected, naming no flag.
		var err error
		if topic {
			err = kafka.CheckTopic(v)
		}
		if err == nil {
			err = kafka.CheckTopic(strings.ReplaceAll(made, "*", v))
		}
		if err != nil {
			bad(flag, "%v", err) // kafka's error quotes the name, a long one by its start
		}
	}
	topicName("-topic", c.topic, "*.dlq", true)
	// The longest repartition's name, "pickups", with -requests-topic; NewExchange's check.
	topicName("-group", c.group, "*-pickups-repartition", false)
	topicName("-alerts-topic", alertsTopic, "*", true)
	topicName("-requests-topic", c.requests, "*", true)
	topicName("-registry-topic", c.registry, "*", true)
	positive := func(flag string, v time.Duration) {
		if v <= 0 {
			bad(flag, "%v: must be positive", v)
		}
	}
	notNegative := func(flag string, v int64, show any) {
		if v < 0 {
			bad(flag, "%v: must not be negative", show)
		}
	}
	positive("-batch", c.batch)
	positive("-stats-window", c.statsWindow)
	positive("-zone-window", c.zoneWindow)
	positive("-pickup-within", c.pickupWithin)
	positive("-kafka-timeout", c.kafkaTimeout)
	positive("-opensearch-timeout", c.osTimeout)
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"-lateness", c.lateness}, {"-out-of-order", c.outOfOrder}, {"-exit-when-idle", c.exitIdle}, {"-status-every", c.statusEvery}, {"-session-timeout", c.sessionTimeout}} {
		notNegative(d.flag, int64(d.v), d.v)
	}
	if c.sessionTimeout > 0 && c.sessionTimeout < time.Second {
		// The library's floor (0 is its default, 10s): refused in its words
		// ("Rebalance.SessionTimeout"), naming no flag, after the dead-letter topic was made.
		bad("-session-timeout", "%v: must be at least 1s (0: Kafka's default of 10s)", c.sessionTimeout)
	}
	if c.bounded && c.exitIdle > 0 {
		// kafka.WithBounded beside WithEndWhenCaughtUp: refused by the library after the
		// dead-letter topic was made, naming the options.
		bad("-bounded", "and -exit-when-idle %v: give one: -bounded ends at the end offsets found at start, -exit-when-idle once every input stayed caught up that long", c.exitIdle)
	}
	if c.stopTimeout < time.Second {
		// The outputs' close alone gets at least a second after a stop (the library's floor).
		bad("-shutdown-timeout", "%v: must be at least 1s", c.stopTimeout)
	}
	if id := c.instanceID; id != "" {
		// Kafka's group.instance.id rules (kafka.CheckInstanceID), before the job connects:
		// the requests source and each repartition's consumer join with the id and a suffix
		// of their own (".requests", ".pickups"), which Kafka's 249 characters must hold too.
		if err := kafka.CheckInstanceID(id); err != nil {
			bad("-group-instance-id", "%v", err)
		} else if err := kafka.CheckInstanceID(id + instanceIDSuffix); err != nil {
			bad("-group-instance-id", "%v (the job adds %q for its ride requests' member)", err, instanceIDSuffix)
		}
	}
	atLeastOne := func(flag string, v int) {
		if v < 1 {
			bad(flag, "%d: must be at least 1", v)
		}
	}
	atLeastOne("-max-batch", c.maxBatch)
	atLeastOne("-concurrent-outputs", c.outputs)
	notNegative("-replicas", int64(c.replicas), c.replicas)
	notNegative("-max-cabs", int64(c.maxCabs), c.maxCabs)
	if c.maxCabs > math.MaxInt/keysPerCab {
		// maxKeys would overflow: 2^62 gave no limit at all, 3e18 a negative one that the
		// library refused after the dead-letter topic was made, naming no flag.
		bad("-max-cabs", "%d: too large: each window operator holds %d times as many keys, past the largest int; at most %d (0: no limit)", c.maxCabs, keysPerCab, math.MaxInt/keysPerCab)
	}
	if c.gcPercent < 0 {
		// As GOGC=off: the collector never runs and the heap grows until the process is
		// killed. GOGC=off in the environment still does it, for a profile.
		bad("-gc-percent", "%d: must not be negative (a negative value turns the garbage collector off, and the job's heap would grow until it is killed)", c.gcPercent)
	}
	if c.procs < 0 {
		bad("-procs", "%d: must not be negative (0: Go's default, every core)", c.procs)
	} else if n := runtime.NumCPU(); c.procs > n {
		// runtime.GOMAXPROCS takes an int32: 2^31 threw "procresize: invalid arg", and a
		// million allocated a scheduler P for each. More than the cores runs no more at once.
		bad("-procs", "%d: more than the %d cores the job may run on (0: every core)", c.procs, n)
	}
	// An output or a second input on the telemetry topic itself.
	if alertsTopic != "" && alertsTopic == c.topic {
		bad("-alerts-topic", "%q is the telemetry topic (-topic): the job would read its own alerts as telemetry", alertsTopic)
	}
	if c.requests != "" && c.requests == c.topic {
		bad("-requests-topic", "%q is the telemetry topic (-topic): both inputs would read it, each in its own format", c.requests)
	}
	if c.registry != "" && (c.registry == c.topic || c.registry == c.requests) {
		bad("-registry-topic", "%q is also an input of the job (-topic or -requests-topic)", c.registry)
	}
	// The job's other outputs, as inputs: the alerts read back as ride requests (each one a
	// dead letter) or as registrations; the dead letters read back as ride requests or
	// registrations, where each one fails again and goes back to the dead-letter topic, for
	// ever.
	if alertsTopic != "" && (alertsTopic == c.requests || alertsTopic == c.registry) {
		bad("-alerts-topic", "%q is also an input of the job (-requests-topic or -registry-topic): the job would read its own alerts", alertsTopic)
	}
	if dlq := c.topic + ".dlq"; dlq == c.requests || dlq == c.registry || dlq == alertsTopic {
		bad("-topic", "the dead-letter topic %q (-topic and .dlq) is also -requests-topic, -registry-topic or -alerts-topic", dlq)
	}
	if c.httpAddr != "" {
		// net.Listen refused it only after the job had connected to Kafka and OpenSearch
		// (the dead-letter topic made, the templates installed): "-http 9464" for ":9464".
		if _, port, err := net.SplitHostPort(c.httpAddr); err != nil {
			bad("-http", "%q: not host:port (e.g. 127.0.0.1:9464, :9464; empty: none): %v", c.httpAddr, err)
		} else if port != "" && strings.Trim(port, "0123456789") == "" {
			// A number must fit 16 bits (a service name, "http", is net.Listen's to look up).
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				bad("-http", "%q: port %s is not in 0-65535", c.httpAddr, port)
			}
		}
	}
	if c.cpuProfile != "" && c.memProfile != "" && filepath.Clean(c.cpuProfile) == filepath.Clean(c.memProfile) {
		// Two files open on one path: the allocation profile, written at the end over the
		// CPU profile's start, left neither readable.
		bad("-memprofile", "%q is also -cpuprofile: give each profile a file of its own", c.memProfile)
	}
	if err := checkIndexTag(c.indexTag); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.opensearch.Config(); err != nil {
		errs = append(errs, err) // -opensearch-sigv4
	}
	return errors.Join(errs...)
}

// checkIndexTag refuses an -index-tag that no OpenSearch index name may hold: OpenSearch
// would refuse every document (invalid_index_name_exception; helper-64's "gC" sent each to
// the dead letters while the job ran on and exited 0; the sink now stops, after the job
// connected). It checks, with OpenSearch's rules (opensearch.CheckIndexName), the longest
// index name the job makes with the tag: ride-pickups-<tag>-YYYY.MM.DD.
func checkIndexTag(tag string) error {
	c := config{indexTag: tag}
	if err := opensearch.CheckIndexName(c.index("ride-pickups") + "-2026.11.25"); err != nil {
		return fmt.Errorf("-index-tag %q: %w", tag, err)
	}
	return nil
}

// instanceIDSuffix is the longest suffix a member of the job's group adds to
// -group-instance-id: the requests source's (run); the repartitions add "." and their names
// ("zones", "cabs", "supply", "pickups").
const instanceIDSuffix = ".requests"
