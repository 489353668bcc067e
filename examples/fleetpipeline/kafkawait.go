// The job's waits on Kafka during its start (-kafka-timeout): making its topics and loading
// the fleet registry. A broker that accepts connections and never answers (a port of another
// service, a proxy without its backend, a wrong -kafka-tls or -kafka-sasl on some clusters)
// held the start for as long as sarama's retries of each request took: 30 s read timeouts,
// ten metadata retries and more, over a quarter of an hour before the first error, and the
// registry's load without an end. As Kafka Streams' and Spark's clients do (their
// default.api.timeout.ms is a minute), the start fails after a bounded wait instead, naming
// the brokers and the flag.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/telemetry"
)

// errNoAnswer is the cause of a wait on Kafka that ran past -kafka-timeout.
var errNoAnswer = errors.New("no answer from Kafka")

// noAnswer is the error of a step of the start that Kafka did not answer within the bound.
func (c *config) noAnswer(step, waited string) error {
	return fmt.Errorf("%s: %s from Kafka at %s (-brokers) within %v (-kafka-timeout): check that the address and port are a Kafka listener's, "+
		"and -kafka-tls and -kafka-sasl against its security protocol", step, waited, strings.Join(c.kafka.Config().Brokers, ","), c.kafkaTimeout)
}

// ensureTopic is kafka.EnsureTopic bounded by -kafka-timeout; step names the topic's use in
// the error.
func (c *config) ensureTopic(ctx context.Context, cfg kafka.Config, step, topic string, partitions int32) error {
	bounded, cancel := context.WithTimeoutCause(ctx, c.kafkaTimeout, errNoAnswer)
	defer cancel()
	_, err := kafka.EnsureTopic(bounded, cfg, topic, partitions, kafka.DefaultReplication)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(bounded), errNoAnswer) {
		return c.noAnswer(step, "no answer")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}

// registryTable is what loadWithin needs of a kafka.Table.
type registryTable interface {
	Load(ctx context.Context) error
	Stats() kafka.TableStats
}

// loadWithin loads t, and fails with errNoAnswer when -kafka-timeout passes without a sign
// of progress: a record read, the lag moving. A large registry takes as long as it takes to read, so the
// bound is on silence, not on the whole load (Kafka Streams' task.timeout.ms is likewise on
// progress).
func (c *config) loadWithin(ctx context.Context, t registryTable) error {
	loadCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- t.Load(loadCtx) }()
	type progress struct{ records, lag int64 }
	seen := func() progress { st := t.Stats(); return progress{st.Records, st.Lag} }
	last, lastAt := seen(), time.Now()
	tick := time.NewTicker(max(c.kafkaTimeout/8, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil && errors.Is(context.Cause(loadCtx), errNoAnswer) {
				return errNoAnswer
			}
			return err
		case now := <-tick.C:
			if p := seen(); p != last {
				last, lastAt = p, now
			} else if now.Sub(lastAt) >= c.kafkaTimeout {
				cancel(errNoAnswer) // Load returns (done) once it closed the table
			}
		}
	}
}

// loadRegistry makes the table of -registry-topic and loads it (loadWithin). The caller
// closes the table it returns; one that did not load is closed by its Load.
func (c *config) loadRegistry(ctx context.Context, cfg kafka.Config, log *slog.Logger) (*kafka.Table[string, telemetry.CabRegistration], error) {
	cfg.Group, cfg.Topics = "", nil
	registry, err := kafka.NewTable(cfg, c.registry, func(key, value []byte) (string, telemetry.CabRegistration, error) {
		if value == nil { // a tombstone: the cab left the registry
			return string(key), telemetry.CabRegistration{}, nil
		}
		r, err := telemetry.DecodeRegistration(value)
		if err == nil && r.CabID != string(key) {
			err = fmt.Errorf("registration of cab %q under key %q", r.CabID, key)
		}
		return r.CabID, r, err
	}, kafka.WithLogger(log))
	if err != nil {
		return nil, err
	}
	loadStart := time.Now()
	if err := c.loadWithin(ctx, registry); err != nil {
		// Not registry.Close: Load closes the table it failed to load, in the background
		// while a connection attempt still runs (Close waits for it, which on a silent broker
		// took minutes: the job's stop, Ctrl-C, waited with it).
		switch {
		case errors.Is(err, errNoAnswer):
			return nil, c.noAnswer("-registry-topic "+c.registry, "nothing read")
		case errors.Is(err, kafka.ErrTopicNotFound):
			// The library's hint is a Go function (kafka.EnsureCompactedTopic); the
			// operator's fix is the flag's value or the topic.
			return nil, fmt.Errorf("-registry-topic %s: no such topic: check the name, or create it compacted (replay -registry-topic writes one): %w", c.registry, err)
		}
		return nil, fmt.Errorf("-registry-topic %s: %w", c.registry, err)
	}
	log.Info("fleetpipeline: registry loaded", "topic", c.registry, "cabs", registry.Len(), "took", time.Since(loadStart).Round(time.Millisecond))
	return registry, nil
}
