// Command nexmark runs the Nexmark queries q0, q1, q2, q3, q5, q7, q8 and q11 of package
// bench/nexmark through the engine (q3 and q8 repartition through an in-memory exchange),
// each over the same generated events, and prints each one's throughput in events per
// second per core (events per CPU-second of the process, which includes generating the
// events, as Flink's figures include its generator source) beside Flink 1.13's published
// per-core figure:
//
//	nexmark q0: 1234567 events/s/core (Flink 1.13: 155000, 8.0x)
//
// Usage: go run ./bench/nexmark/cmd/nexmark [-events 5000000] [-queries q0,q3,q8] (make bench-nexmark).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fleetstream/fleetstream/bench/nexmark"
)

func main() {
	events := flag.Int64("events", 5_000_000, "events per query")
	rate := flag.Int("rate", nexmark.DefaultRate, "events per second of event time")
	seed := flag.Uint64("seed", 1, "generator seed")
	queries := flag.String("queries", "", "comma-separated queries to run (default all)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *events, *rate, *seed, *queries); err != nil {
		fmt.Fprintln(os.Stderr, "nexmark:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, events int64, rate int, seed uint64, only string) error {
	fmt.Fprintf(os.Stderr, "nexmark: %d events per query, %d events/s of event time, GOMAXPROCS %d\n", events, rate, runtime.GOMAXPROCS(0))
	cfg := nexmark.Config{Events: events, Rate: rate, Seed: seed}
	for _, q := range nexmark.Queries {
		if only != "" && !slices.Contains(strings.Split(only, ","), q.Name) {
			continue
		}
		runtime.GC() // start each query without the previous one's garbage
		debug.FreeOSMemory()
		cpu0, wall0 := cpuTime(), time.Now()
		results, err := nexmark.Run(ctx, q, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", q.Name, err)
		}
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		perCore := float64(events) / cpu.Seconds()
		// The figure line alone on stdout, so runs can be compared by a script; the details
		// on stderr.
		fmt.Printf("nexmark %s: %.0f events/s/core (Flink 1.13: %.0f, %.1fx)\n", q.Name, perCore, q.Flink, perCore/q.Flink)
		fmt.Fprintf(os.Stderr, "  %s: %.0f events/s wall, %.2f CPU-s, %.2f s, %d results\n",
			q.Name, float64(events)/wall.Seconds(), cpu.Seconds(), wall.Seconds(), results)
	}
	return nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
