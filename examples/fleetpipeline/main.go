// Command fleetpipeline is fleetstream's bundled fleet job, the Spark Streaming job it
// replaces: it reads cab telemetry JSON from a Kafka topic (bad records and late events go to
// <topic>.dlq, naming the input record's topic, partition and offset, also after the
// repartition of -rekey-by-cab) and writes to OpenSearch
//
//   - per-cab stats for tumbling event-time windows (default 1 minute) to cab-stats-YYYY.MM.DD,
//   - zone demand per geohash-6 cell for 5-minute windows to zone-demand-YYYY.MM.DD,
//   - with -requests-topic, supply and demand per cell (ride requests made and cancelled,
//     available cabs, their ratio) for the same windows to zone-supply-YYYY.MM.DD, and each
//     assigned request's time to pickup (an event-time join with its cab's trip start) to
//     ride-pickups-YYYY.MM.DD,
//   - with -registry-topic, each cab's fleet, vehicle type and driver (a temporal join with
//     the fleet registry's compacted topic) in its cab-stats documents,
//   - alerts (speeding, harsh braking, long idle, geofence, device silent) to
//     cab-alerts-YYYY.MM.DD and to the Kafka topic cab-alerts,
//
// with deterministic document ids, so a restart or a rebalance replays without duplicating.
// Each day's indexes are created in the last hour of the day before, so that the first batch
// after midnight does not wait for OpenSearch to create them.
// Without flags it uses the testenv services (make services-up). It prints a status line
// every few seconds and stops gracefully on SIGINT or SIGTERM, within -shutdown-timeout (25s,
// under Kubernetes' 30s before it kills a pod; past it the job exits 1, and the next run
// reads again what was not committed); with -exit-when-idle it ends
// by itself once the topic is drained (exit 0), and -bounded once it read the end offsets
// found at start: a stop of those before their end exits 1, since windows were left unwritten.
//
//	go run ./examples/fleetpipeline -exit-when-idle 5s
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/fleetstream/fleetstream/examples/internal/cli"
	"github.com/fleetstream/fleetstream/stream"
)

func main() {
	fs := flag.NewFlagSet("fleetpipeline", flag.ExitOnError)
	cfg := registerFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		// flag stops at the first argument that is not a flag, and ignores every flag after
		// it: "-zone-demand false" set zone demand on and dropped the rest of the line.
		fmt.Fprintf(os.Stderr, "fleetpipeline: unexpected argument %q: every flag takes its value as -flag value or -flag=value, a boolean one only as -flag=false\n", fs.Arg(0))
		os.Exit(2)
	}
	if err := cfg.validate(); err != nil {
		// Exit 2, as for the flag package's own errors: the command line is wrong.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "fleetpipeline:", line)
		}
		os.Exit(2)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.gcPercent)
	}
	if cfg.procs > 0 {
		runtime.GOMAXPROCS(cfg.procs)
	}

	stopProfiles, err := startProfiles(cfg.cpuProfile, cfg.memProfile)
	if err != nil {
		// A path that cannot be written: the command line is wrong, as for validate's errors.
		fmt.Fprintln(os.Stderr, "fleetpipeline:", err)
		os.Exit(2)
	}
	// Once: a second interrupt writes the profiles before it exits, maybe as run returns.
	stopProfiles = sync.OnceValue(stopProfiles)
	ctx, stop := stopOnSignal(os.Stderr, cfg.stopTimeout, func() { _ = stopProfiles() })
	defer stop()
	err = run(ctx, cfg, os.Stderr)
	err = errors.Join(err, stopProfiles())
	if err != nil { // run returns nil for a clean stop (SIGINT, SIGTERM; but of a run that ends by itself before its end) and any failure as is
		fmt.Fprintln(os.Stderr, "fleetpipeline:", err)
		if errors.Is(err, stream.ErrOperatorChanged) {
			// The library's message names its option; this job's is a flag.
			fmt.Fprintln(os.Stderr, "fleetpipeline: to accept the change, run once with -accept-changed-operators (it sets stream.WithColdStartChanged)")
		}
		os.Exit(1)
	}
}

// config is everything the flags set.
type config struct {
	kafka          *cli.Kafka
	opensearch     *cli.OpenSearch
	topic          string
	group          string
	name           string
	alertsTopic    string
	requests       string
	registry       string
	txnID          string
	instanceID     string        // -group-instance-id
	sessionTimeout time.Duration // -session-timeout
	kafkaTimeout   time.Duration // -kafka-timeout
	osTimeout      time.Duration // -opensearch-timeout
	stopTimeout    time.Duration // -shutdown-timeout
	statsWindow    time.Duration
	zoneWindow     time.Duration
	pickupWithin   time.Duration
	lateness       time.Duration
	outOfOrder     time.Duration
	batch          time.Duration
	outputs        int // -concurrent-outputs
	maxBatch       int // -max-batch
	exitIdle       time.Duration
	bounded        bool
	acceptLoss     bool
	acceptChange   bool // -accept-changed-operators
	zoneDemand     bool
	alerts         bool
	rekeyByCab     bool
	statusEvery    time.Duration
	replicas       int
	indexTag       string
	maxCabs        int
	httpAddr       string
	verbose        bool
	cpuProfile     string
	memProfile     string
	gcPercent      int
	procs          int
}

func registerFlags(fs *flag.FlagSet) *config {
	c := &config{}
	c.kafka = cli.KafkaFlags(fs)
	c.opensearch = cli.OpenSearchFlags(fs, c.kafka)
	fs.StringVar(&c.topic, "topic", "cab-telemetry", "Kafka topic of cab telemetry (JSON, keyed by cab_id)")
	fs.StringVar(&c.group, "group", "fleetpipeline", "Kafka consumer group")
	fs.StringVar(&c.name, "name", "fleetpipeline", "pipeline name, part of every document id")
	fs.StringVar(&c.alertsTopic, "alerts-topic", "cab-alerts", "Kafka topic alerts are also written to (empty: none)")
	fs.StringVar(&c.requests, "requests-topic", "", "Kafka topic of the booking app's ride requests (JSON, keyed by request_id; replay -requests-topic writes them): adds supply and demand per zone and -zone-window to zone-supply-YYYY.MM.DD and the time to pickup to ride-pickups-YYYY.MM.DD, through the topics <group>-supply-repartition and <group>-pickups-repartition (empty: none)")
	fs.StringVar(&c.registry, "registry-topic", "", "compacted Kafka topic of the fleet registry (JSON, keyed by cab_id; replay -registry-topic writes it): loaded at start, followed while running, and joined to each cab-stats document as of its window (fields fleet, vehicle_type, driver_id) (empty: none)")
	fs.DurationVar(&c.pickupWithin, "pickup-within", 15*time.Minute, "with -requests-topic: how long after its assignment a request's cab may pick up to count as its pickup (ride-pickups-YYYY.MM.DD)")
	fs.StringVar(&c.instanceID, "group-instance-id", "", "static group membership (Kafka's group.instance.id, KIP-345): an id of this instance's own that it keeps across restarts (a StatefulSet pod's name), so that a restart within -session-timeout takes the instance's partitions back with no rebalance; a process that starts with an id in use stops the one that had it (empty: dynamic membership)")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 10*time.Second, "how long the group waits for a silent member before its partitions move, at least 1s; with -group-instance-id, make it longer than a restart takes")
	fs.DurationVar(&c.kafkaTimeout, "kafka-timeout", 3*time.Minute, "how long each of the job's waits for Kafka at its start may last: checking that its input topics exist (before it makes any topic), making the dead-letter and -alerts-topic topics, and loading -registry-topic with nothing read for this long (a large registry may take longer, while it reads). Brokers that refuse connections or cannot serve yet (a restart, a job started together with its cluster) are tried again, with a line every few seconds; past it the job exits 1 naming the brokers, the step and how long it waited (also for a port that is not a Kafka listener, a -kafka-tls or -kafka-sasl that does not match it). A refusal that will not pass (a wrong password, a missing input topic, a failed TLS handshake) exits 1 at once, and so does a stop (SIGINT, SIGTERM) once an attempt failed. The Kafka clients give a broker that takes the connection and never answers 90s before they try the next of -brokers, so this leaves room for two such brokers")
	fs.DurationVar(&c.osTimeout, "opensearch-timeout", 2*time.Minute, "how long the job's start waits for OpenSearch to install the index templates: a node that refuses connections, does not answer, or answers that it cannot serve yet (a 5xx: a restart, a job started together with its cluster) is tried again, with a line every few seconds; past it the job exits 1 naming the URL, the step and how long it waited (also for a port that is not an OpenSearch node's HTTP port, a hung node, a load balancer with nothing behind it). An answer that will not change (credentials refused, a URL that is not OpenSearch, a certificate that does not verify) exits 1 at once, and so does a stop (SIGINT, SIGTERM) once an attempt failed. Each request to OpenSearch is also bounded by a minute")
	fs.DurationVar(&c.stopTimeout, "shutdown-timeout", 25*time.Second, "how long the job's stop after SIGINT or SIGTERM may take in all, at least 1s: the pipeline's stop (the batch in flight, its commit, the sources' stop and the outputs' close: stream.WithShutdownTimeout) gets four fifths of it, the batch in flight most of that, the dead-letter producer's close what is left. Past it the job exits 1 saying so: what it had not written and committed by then is read again from the committed offsets by the next run, so nothing is lost. Keep it below the time the scheduler gives a stop before it kills the process: Kubernetes' terminationGracePeriodSeconds, 30s by default")
	fs.StringVar(&c.txnID, "transactional-id", "", "transactional id of the exactly-once producer of -alerts-topic: unique per instance and the same across its restarts (default fleetstream-<group>-<hostname>-<client id>, with -cabs after it under -rekey-by-cab, so set it when several instances run on one host: one would fence the other)")
	fs.DurationVar(&c.statsWindow, "stats-window", time.Minute, "cab stats window (tumbling, event time)")
	fs.DurationVar(&c.zoneWindow, "zone-window", 5*time.Minute, "zone demand window (tumbling, event time)")
	fs.DurationVar(&c.lateness, "lateness", 30*time.Second, "allowed lateness (grace) after a window's end")
	fs.DurationVar(&c.outOfOrder, "out-of-order", 30*time.Second, "maximum out-of-orderness of events within a partition")
	fs.DurationVar(&c.batch, "batch", time.Second, "batch interval")
	fs.IntVar(&c.maxBatch, "max-batch", 20_000, "most records a batch takes, the bound of the source buffer (Spark's maxOffsetsPerTrigger): while catching up, batches of this size run back to back; larger ones hold more memory for little speed")
	fs.IntVar(&c.outputs, "concurrent-outputs", 3, "how many of a batch's outputs (cab stats, zone demand, alerts, dead letters, and with -requests-topic zone supply and ride pickups: each index or topic) are written at once; 1 writes them one at a time in order, as Spark Streaming does. A batch's cab-stats, zone-demand and alerts bulks go to indexes of their own, which OpenSearch writes on threads of their own: 3 drained the demo data 11 % faster than 1 with OpenSearch on the job's two cores (BENCHMARKS.md, 2026-12-06)")
	fs.DurationVar(&c.exitIdle, "exit-when-idle", 0, "once every partition of every input (the telemetry and -requests-topic) has been caught up this long, close all windows, commit and exit 0 (0: run until stopped; a stop before that exits 1); the commit stays at the first record of each partition's oldest window still open on its watermark (its end plus -lateness not yet reached), so a later run that receives more records of those windows rebuilds and completes them, as one run would")
	fs.BoolVar(&c.acceptLoss, "accept-data-loss", false, "when records of an input that the group had yet to read were deleted (retention overtook the job, or the topic was made again), go on from the partition's start and log the loss at Error, instead of exiting non-zero (Spark's failOnDataLoss=false)")
	fs.BoolVar(&c.acceptChange, "accept-changed-operators", false, "accept a restart under other window or join parameters (-stats-window, -zone-window, -lateness, -pickup-within, ...) than the committed checkpoint's: the changed operators start cold from the committed offset (stream.WithColdStartChanged; README, Delivery guarantees 8); without it such a restart stops with stream.ErrOperatorChanged before writing anything")
	fs.BoolVar(&c.bounded, "bounded", false, "read each partition up to the end offset it had at start, then close all windows, commit and exit 0 (a backfill; a stop before that exits 1); see also -exit-when-idle")
	fs.BoolVar(&c.zoneDemand, "zone-demand", true, "compute zone demand (-zone-demand=false: off)")
	fs.BoolVar(&c.rekeyByCab, "rekey-by-cab", false, "repartition the input by cab_id (through the topic <group>-cabs-repartition) before the tracker and the cab stats: needed when the producer does not key messages by cab_id (round-robin IoT hubs); costs a produce and a consume per event")
	fs.BoolVar(&c.alerts, "alerts", true, "detect alerts and write them to OpenSearch and -alerts-topic (-alerts=false: off)")
	fs.DurationVar(&c.statusEvery, "status-every", 5*time.Second, "how often to print the status line (rate, lag, watermark, windows, alerts, dead letters) to stderr; /metrics and the status page (-http) do not depend on it (0: none)")
	fs.IntVar(&c.replicas, "replicas", 0, "number of replicas in the index templates (0 on a single node)")
	fs.StringVar(&c.indexTag, "index-tag", "", `tag in the index names, e.g. "test1" gives cab-stats-test1-YYYY.MM.DD (still matched by the templates)`)
	fs.IntVar(&c.maxCabs, "max-cabs", 100_000, "most cabs the alert tracker holds (each window operator holds 4x as many keys in open windows); past it, new cabs' events go to the dead-letter topic with reason key_limit (0: no limit)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:9464", "address of the live status page (/), Prometheus /metrics, /healthz and /readyz (empty: none); served from the start: /healthz answers 200 while the job connects and loads its tables (up to 10 minutes), /readyz 503 until its first batch")
	fs.BoolVar(&c.verbose, "v", false, "log at debug level")
	fs.IntVar(&c.gcPercent, "gc-percent", 200, "the garbage collector's target, as GOGC (which wins when set): the heap grows to this percentage over the live heap before a collection. The job's live heap is small and bounded (the source buffer, the open windows), so it trades memory for CPU: 200 took 3 % to 10 % less CPU than Go's default of 100 for about 35 % more peak memory (drains of the demo topic and of 3,000,000 events)")
	fs.IntVar(&c.procs, "procs", 0, "how many of the machine's cores the job's code runs on at once (GOMAXPROCS, at most the cores; 0: Go's default, every core the machine or its container gives, or the GOMAXPROCS variable). On a machine the job shares with busy neighbours, its Kafka and OpenSearch in the benchmark, fewer than the cores saves the CPU its threads spend handing work to each other, for a slower catch-up: 1 on the benchmark's 2 cores took 4-13 % less CPU per event and drained 3-11 % slower (four bench-e2e runs each way, BENCHMARKS.md, 2026-12-07)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	fs.StringVar(&c.memProfile, "memprofile", "", "write an allocation profile to this file when the run ends (go tool pprof -sample_index=alloc_space)")
	return c
}

// startProfiles starts the CPU profile and returns the function that stops it and writes
// the allocation profile; empty paths are off. Its errors name the flag.
func startProfiles(cpu, mem string) (stop func() error, err error) {
	var cf, mf *os.File
	var madeMem bool // mem did not exist: the job made it
	if mem != "" {
		// Opened now, so that a path that cannot be written is refused before the run, not
		// after it (a backfill committed, its exit status then 1 and its profile lost). Not
		// truncated until the profile is written: a start that fails after this (a
		// -cpuprofile that cannot be written) kept no empty file, nor emptied an earlier
		// run's profile.
		mf, err = os.OpenFile(mem, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		madeMem = err == nil
		if errors.Is(err, fs.ErrExist) {
			mf, err = os.OpenFile(mem, os.O_WRONLY, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("-memprofile: %w", err)
		}
	}
	dropMem := func() {
		if mf != nil {
			mf.Close()
			if madeMem {
				os.Remove(mem)
			}
		}
	}
	if cpu != "" {
		if cf, err = os.Create(cpu); err != nil {
			dropMem()
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cf); err != nil {
			cf.Close()
			dropMem()
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
	}
	return func() error {
		var errs []error
		if cf != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cf.Close())
		}
		if mf != nil {
			errs = append(errs, mf.Truncate(0), pprof.Lookup("allocs").WriteTo(mf, 0), mf.Close())
		}
		return errors.Join(errs...)
	}, nil
}

func logger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// stoppedEarly is run's result for a stop (SIGINT, SIGTERM) before the pipeline ended: nil
// for a job that runs until stopped, an error for one that ends by itself (-bounded,
// -exit-when-idle). Such a run exits 0 once it read its input and wrote every window; a stop
// before that leaves windows unwritten (the next run completes them from the committed
// offsets), and exit 0 told the scheduler of a backfill that it was done.
func (c *config) stoppedEarly() error {
	flag := "-bounded"
	switch {
	case c.bounded:
	case c.exitIdle > 0:
		flag = "-exit-when-idle"
	default:
		return nil
	}
	return fmt.Errorf("stopped (SIGINT or SIGTERM) before the input ended (%s): the windows still open were not written; run again to finish, from the committed offsets", flag)
}

// index returns the name prefix of one of the pipeline's indexes.
func (c *config) index(base string) string {
	if c.indexTag == "" {
		return base
	}
	return base + "-" + c.indexTag
}
