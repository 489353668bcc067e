// Package feed builds the message sequence the example programs replay: the Porto sample, a
// simulated fleet after it, or both. The replay command produces it to Kafka; the fleet
// pipeline's offline tests run the same sequence through the pipeline's graph.
package feed

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

// Options say what to replay.
type Options struct {
	Sources string // "porto", "sim" or "porto,sim"
	Porto   string // the Porto sample (CSV)
	// Shift moves the Porto events so that the first one is now; Speedup (if > 0) also
	// divides their pace by it.
	Shift   bool
	Speedup float64
	// SimEvents events from SimCabs simulated cabs, from Seed; Faults injects speeding, harsh
	// braking, GPS jumps, out-of-order events, duplicates and malformed messages.
	SimEvents int
	SimCabs   int
	Seed      uint64
	Faults    bool
}

// Messages returns the sequence, keyed by cab id, and writes a line about each part to log.
// Simulated events start after the last Porto event, so that time moves forward in every
// partition.
func Messages(o Options, log io.Writer) ([]fleetsim.Message, error) {
	var msgs []fleetsim.Message
	var lastEvent time.Time
	for _, src := range strings.Split(o.Sources, ",") {
		switch strings.TrimSpace(src) {
		case "porto":
			opts := fleetsim.PortoOptions{}
			if o.Shift || o.Speedup > 0 {
				opts.Start = time.Now().UTC()
				opts.Speedup = o.Speedup
			}
			events, st, err := fleetsim.LoadPorto(o.Porto, opts)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "porto: %d events from %d cabs (%d trips, %d empty)\n", len(events), st.TaxisWithPoints, st.Trips, st.EmptyTrips)
			for m := range fleetsim.Replay(events) {
				msgs = append(msgs, m)
			}
			if len(events) > 0 {
				lastEvent = events[len(events)-1].Time
			}
		case "sim":
			cfg := fleetsim.Config{Seed: o.Seed, Cabs: o.SimCabs}
			if !lastEvent.IsZero() {
				cfg.StartTime = lastEvent.Add(time.Minute).Truncate(time.Minute)
			}
			if o.Faults {
				cfg.Faults = fleetsim.Faults{Speeding: 0.002, HarshBraking: 0.002, GPSJump: 0.001, OutOfOrder: 0.01, Duplicate: 0.002, Malformed: 0.0005}
			}
			sim, err := fleetsim.New(cfg)
			if err != nil {
				return nil, err
			}
			for range o.SimEvents {
				msgs = append(msgs, sim.Next())
			}
			fmt.Fprintf(log, "sim: %d events from %d cabs, seed %d\n", o.SimEvents, o.SimCabs, o.Seed)
		default:
			return nil, fmt.Errorf("-source %q: want porto, sim or porto,sim", src)
		}
	}
	return msgs, nil
}
