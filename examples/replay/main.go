// Command replay produces cab telemetry to Kafka, keyed by cab_id: the real Porto taxi sample
// (../shared/data/porto/train.1k.csv), a simulated fleet, or both, as fast as possible, at a
// rate, or at the data's own pace sped up by a factor. It creates the topic if it is missing.
//
//	go run ./examples/replay -source porto,sim -sim-events 500000
//
// -skip and -limit produce a part of the same sequence, so a replay can be split in two.
// SIGUSR1 lifts -rate: the rest is produced as fast as possible (a paced replay cut short
// without losing its tail).
// -requests-topic also produces the booking app's ride requests of the produced trips
// (fleetsim.Requests), and -registry-topic the fleet registry of the replayed cabs
// (fleetsim.Registry; -registry-version and -registry-from publish an update).
//
// The Porto events keep their 2013 times unless -shift moves the first one to now; simulated
// events start after the last Porto event, so that in every partition time moves forward.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/fleetstream/fleetstream/examples/internal/cli"
	"github.com/fleetstream/fleetstream/examples/internal/feed"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/telemetry/fleetsim"
)

type options struct {
	topic      string
	partitions int
	feed       feed.Options
	rate       float64
	batch      int
	quiet      bool
	skip       int
	limit      int
	unkeyed    bool
	requests   string
	registry   string
	regVersion int
	regFrom    string
	// unpace, when it receives, lifts -rate for the rest of the replay (SIGUSR1).
	unpace <-chan os.Signal
}

func main() {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	kf := cli.KafkaFlags(fs)
	var o options
	fs.StringVar(&o.topic, "topic", "cab-telemetry", "Kafka topic to produce to")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the topic, if it has to be created")
	fs.StringVar(&o.feed.Sources, "source", "porto", "what to replay: porto, sim, or porto,sim")
	fs.StringVar(&o.feed.Porto, "porto", "../shared/data/porto/train.1k.csv", "the Porto sample (CSV)")
	fs.BoolVar(&o.feed.Shift, "shift", false, "shift Porto event times so the first event is now")
	fs.Float64Var(&o.feed.Speedup, "speedup", 0, "replay Porto at its own pace divided by this factor (implies -shift); 0: as fast as possible")
	fs.Float64Var(&o.rate, "rate", 0, "events per second; 0: as fast as possible")
	fs.IntVar(&o.feed.SimEvents, "sim-events", 500_000, "number of simulated events")
	fs.IntVar(&o.feed.SimCabs, "sim-cabs", 200, "simulated fleet size")
	fs.Uint64Var(&o.feed.Seed, "seed", 1, "simulator seed")
	fs.BoolVar(&o.feed.Faults, "faults", true, "inject faults into the simulated fleet (speeding, harsh braking, GPS jumps, out-of-order, duplicates, malformed)")
	fs.IntVar(&o.batch, "batch", 2000, "messages per produce request batch")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&o.unkeyed, "unkeyed", false, "produce without keys, round-robin over the partitions (as an IoT hub that does not key by cab_id); fleetpipeline then needs -rekey-by-cab")
	fs.StringVar(&o.requests, "requests-topic", "", "also produce the booking app's ride requests derived from the produced trips (fleetsim.Requests) to this topic, keyed by request ID; empty: none")
	fs.StringVar(&o.registry, "registry-topic", "", "also write the fleet registry of the replayed cabs (fleetsim.Registry: fleet, vehicle type, driver) to this compacted topic, keyed by cab ID; empty: none")
	fs.IntVar(&o.regVersion, "registry-version", 1, "the registry's version: another version changes the drivers (a registry update)")
	fs.StringVar(&o.regFrom, "registry-from", "", "the time (RFC 3339) from which the registry entries hold, as their record timestamps; empty: from the beginning (1970)")
	fs.IntVar(&o.skip, "skip", 0, "leave out the first N messages of the replay (to resume or split one)")
	fs.IntVar(&o.limit, "limit", 0, "produce at most N messages after -skip; 0: all")
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	unpace := make(chan os.Signal, 1)
	signal.Notify(unpace, syscall.SIGUSR1)
	o.unpace = unpace
	if err := run(ctx, kf.Config(), o, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg kafka.Config, o options, out io.Writer) error {
	msgs, err := feed.Messages(o.feed, out)
	if err != nil {
		return err
	}
	if o.skip < 0 || o.limit < 0 {
		return fmt.Errorf("-skip %d, -limit %d: want counts of at least 0", o.skip, o.limit)
	}
	msgs = msgs[min(o.skip, len(msgs)):]
	if o.limit > 0 && o.limit < len(msgs) {
		msgs = msgs[:o.limit]
	}

	n, err := kafka.EnsureTopic(ctx, cfg, o.topic, int32(o.partitions), 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "topic %s: %d partitions\n", o.topic, n)
	key := func(m fleetsim.Message) []byte { return []byte(m.Key) }
	var popts []kafka.ProducerOption
	if o.unkeyed {
		key = func(fleetsim.Message) []byte { return nil }
		popts = append(popts, kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Producer.Partitioner = sarama.NewRoundRobinPartitioner }))
	}
	prod, err := kafka.NewProducer(cfg, o.topic, kafka.KeyValue(key,
		func(m fleetsim.Message) ([]byte, error) { return m.Value, nil },
	), popts...)
	if err != nil {
		return err
	}
	defer prod.Close(context.WithoutCancel(ctx))

	var pacer *fleetsim.Pacer
	if o.rate > 0 {
		if pacer, err = fleetsim.NewPacer(o.rate, nil); err != nil {
			return err
		}
	}
	bar := newProgress(out, len(msgs), o.quiet)
	start := time.Now()
	for chunk := range slices.Chunk(msgs, max(o.batch, 1)) {
		if o.feed.Speedup > 0 {
			// Wait until the chunk's first event is due at the sped-up pace.
			if d := time.Until(chunk[0].Event.Time); d > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
		for range chunk {
			if pacer == nil {
				break
			}
			select {
			case <-o.unpace:
				pacer = nil
				fmt.Fprintf(out, "-rate lifted (SIGUSR1) after %d messages: producing the rest as fast as possible\n", bar.n)
				continue
			default:
			}
			if err := pacer.Wait(ctx); err != nil {
				return err
			}
		}
		if err := prod.Write(ctx, chunk); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			return fmt.Errorf("produce: %w", err)
		}
		bar.add(len(chunk))
	}
	bar.done()
	el := time.Since(start)
	fmt.Fprintf(out, "produced %d messages to %s in %v (%.0f msg/s)\n", len(msgs), o.topic, el.Round(time.Millisecond), float64(len(msgs))/el.Seconds())
	if o.requests != "" {
		if err := produceRequests(ctx, cfg, o, msgs, out); err != nil {
			return err
		}
	}
	if o.registry != "" {
		return produceRegistry(ctx, cfg, o, msgs, out)
	}
	return nil
}

// produceRegistry writes the registration of every cab in msgs to o.registry, valid from
// o.regFrom (the records' timestamps).
func produceRegistry(ctx context.Context, cfg kafka.Config, o options, msgs []fleetsim.Message, out io.Writer) error {
	from := time.Unix(0, 0).UTC()
	if o.regFrom != "" {
		t, err := time.Parse(time.RFC3339Nano, o.regFrom)
		if err != nil {
			return fmt.Errorf("-registry-from %q: %w", o.regFrom, err)
		}
		from = t
	}
	if o.regVersion < 1 {
		return fmt.Errorf("-registry-version %d: want 1 or more", o.regVersion)
	}
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if m.Event.CabID != "" {
			ids = append(ids, m.Event.CabID)
		}
	}
	regs := fleetsim.Registry(ids, o.regVersion)
	if _, err := kafka.EnsureCompactedTopic(ctx, cfg, o.registry, int32(o.partitions), 1); err != nil {
		return err
	}
	prod, err := kafka.NewProducer(cfg, o.registry, kafka.EncoderFunc[telemetry.CabRegistration](func(r telemetry.CabRegistration) (kafka.Message, error) {
		v, err := telemetry.AppendRegistration(nil, r)
		return kafka.Message{Key: []byte(r.CabID), Value: v, Timestamp: from}, err
	}))
	if err != nil {
		return err
	}
	defer prod.Close(context.WithoutCancel(ctx))
	for chunk := range slices.Chunk(regs, max(o.batch, 1)) {
		if err := prod.Write(ctx, chunk); err != nil {
			return fmt.Errorf("produce the registry: %w", err)
		}
	}
	fmt.Fprintf(out, "produced %d registrations (version %d, from %s) to %s\n", len(regs), o.regVersion, from.Format(time.RFC3339), o.registry)
	return nil
}

// produceRequests produces the ride requests of the trips in msgs to o.requests.
func produceRequests(ctx context.Context, cfg kafka.Config, o options, msgs []fleetsim.Message, out io.Writer) error {
	evs := make([]telemetry.Event, 0, len(msgs))
	for _, m := range msgs {
		if !m.Malformed {
			evs = append(evs, m.Event)
		}
	}
	reqs := fleetsim.Requests(evs)
	if _, err := kafka.EnsureTopic(ctx, cfg, o.requests, int32(o.partitions), 1); err != nil {
		return err
	}
	prod, err := kafka.NewProducer(cfg, o.requests, kafka.KeyValue(
		func(r telemetry.Request) []byte { return []byte(r.RequestID) },
		func(r telemetry.Request) ([]byte, error) { return telemetry.AppendRequest(nil, r) },
	))
	if err != nil {
		return err
	}
	defer prod.Close(context.WithoutCancel(ctx))
	for chunk := range slices.Chunk(reqs, max(o.batch, 1)) {
		if err := prod.Write(ctx, chunk); err != nil {
			return fmt.Errorf("produce requests: %w", err)
		}
	}
	fmt.Fprintf(out, "produced %d ride requests to %s\n", len(reqs), o.requests)
	return nil
}

// progress draws a progress bar on a terminal, or a line every few seconds elsewhere.
type progress struct {
	w          io.Writer
	total, n   int
	tty, quiet bool
	start      time.Time
	last       time.Time
}

func newProgress(w io.Writer, total int, quiet bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	return &progress{w: w, total: total, tty: tty, quiet: quiet, start: time.Now()}
}

func (p *progress) add(n int) {
	p.n += n
	every := 3 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if p.quiet || time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	const width = 30
	frac := float64(p.n) / float64(max(p.total, 1))
	fill := int(frac * width)
	rate := float64(p.n) / time.Since(p.start).Seconds()
	line := fmt.Sprintf("[%s%s] %3.0f%% %d/%d messages %.0f msg/s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, p.n, p.total, rate)
	if p.tty {
		fmt.Fprint(p.w, "\r"+line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	if p.quiet {
		return
	}
	p.draw()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
