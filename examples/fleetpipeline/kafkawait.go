// The job's waits on Kafka during its start (-kafka-timeout): checking its input topics,
// making its topics and loading the fleet registry. A broker that accepts connections and
// never answers (a port of another service, a proxy without its backend, a wrong -kafka-tls
// or -kafka-sasl on some clusters) held the start for as long as sarama's retries of each
// request took: 30 s read timeouts, ten metadata retries and more, over a quarter of an hour
// before the first error, and the registry's load without an end; brokers that refused
// connections (stopped, restarting) failed it after sarama's 2.5 s of retries. As Kafka
// Streams' and Spark's clients do (their default.api.timeout.ms is a minute), the start now
// waits for Kafka (startwait.go) up to a bound, naming the brokers and the flag when it gives
// up.

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/telemetry"
)

// errNoAnswer is the cause of a registry load that read nothing for -kafka-timeout.
var errNoAnswer = errors.New("no answer from Kafka")

// kafkaHint ends the error of a wait on Kafka that gave up.
const kafkaHint = "check that the address and port are a Kafka listener's and that the brokers are up, " +
	"and -kafka-tls and -kafka-sasl against its security protocol"

// kafkaWait is the start's wait on Kafka, logging to log (nil: nowhere).
func (c *config) kafkaWait(log *slog.Logger) *startWait {
	return &startWait{
		service:   "Kafka",
		at:        strings.Join(c.kafka.Config().Brokers, ",") + " (-brokers)",
		flag:      "-kafka-timeout",
		bound:     c.kafkaTimeout,
		hint:      kafkaHint,
		transient: transientKafka,
		log:       orDiscard(log),
	}
}

// noAnswer is the error of a step of the start that Kafka did not answer within the bound.
func (c *config) noAnswer(step, waited string) error {
	return fmt.Errorf("%s: %s from Kafka at %s (-brokers) within %v (-kafka-timeout): %s",
		step, waited, strings.Join(c.kafka.Config().Brokers, ","), c.kafkaTimeout, kafkaHint)
}

// ensureTopic is kafka.EnsureTopic, tried again while Kafka is away for at most
// -kafka-timeout; step names the topic's use in the error.
func (c *config) ensureTopic(ctx context.Context, cfg kafka.Config, step, topic string, partitions int32, log *slog.Logger) error {
	return c.kafkaWait(log).wait(ctx, step, func(ctx context.Context) error {
		_, err := kafka.EnsureTopic(ctx, cfg, topic, partitions, kafka.DefaultReplication)
		return err
	})
}

// checkInputs checks that the job's input topics exist (-topic, -requests-topic,
// -registry-topic), waiting for Kafka as ensureTopic does. It runs before the job makes any
// topic of its own: a mistyped -topic left its dead-letter and alerts topics behind (on MSK,
// replicated, until someone deletes them), made before the Source found the topic missing.
func (c *config) checkInputs(ctx context.Context, cfg kafka.Config, log *slog.Logger) error {
	w := c.kafkaWait(log)
	for _, in := range []struct{ flag, topic string }{{"-topic", c.topic}, {"-requests-topic", c.requests}, {"-registry-topic", c.registry}} {
		if in.topic == "" {
			continue
		}
		err := w.wait(ctx, in.flag+" "+in.topic, func(ctx context.Context) error {
			err := topicExists(ctx, cfg, in.topic)
			switch {
			case !errors.Is(err, kafka.ErrTopicNotFound):
				return err
			case in.flag == "-registry-topic":
				// As loadRegistry says it, the library's error kept: a Table's.
				return fmt.Errorf("no such topic: check the name, or create it compacted (replay -registry-topic writes one): %w", err)
			}
			// Not the library's error, which is the probe's (a Table's: "create it with
			// kafka.EnsureCompactedTopic").
			return fmt.Errorf("source topic %q does not exist: check the name, or create it first "+
				"(the job makes its dead-letter, alerts and repartition topics, never its inputs): %w", in.topic, kafka.ErrTopicNotFound)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// topicExists fails with kafka.ErrTopicNotFound unless topic exists, and makes nothing: the
// Load of a co-partitioned kafka.Table connects, checks the topic and reads nothing
// (kafka.WithCoPartitioned), and a Table never creates its topic.
func topicExists(ctx context.Context, cfg kafka.Config, topic string) error {
	probe, err := kafka.NewTable(cfg, topic, func(key, _ []byte) (string, struct{}, error) {
		return string(key), struct{}{}, nil
	}, kafka.WithCoPartitioned())
	if err != nil {
		return err
	}
	if err := probe.Load(ctx); err != nil {
		return err // Load closed it
	}
	return probe.Close()
}

// transientKafka reports whether an error of a request to Kafka may pass: brokers that
// cannot be reached or closed the connection (refused, reset, EOF, timed out: sarama's
// ErrOutOfBrokers), or that cannot serve the request now (a leader, broker, replica or
// controller not available, a request timed out). Refusals that will not change are not:
// authentication or authorization refused, a missing topic, an invalid setting, a TLS
// handshake that failed.
func transientKafka(err error) bool {
	switch {
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed), errors.Is(err, kafka.ErrNotAuthorized),
		errors.Is(err, kafka.ErrTopicNotFound), errors.Is(err, kafka.ErrInvalidOption), tlsFailure(err):
		return false
	}
	for _, e := range []error{
		sarama.ErrOutOfBrokers, sarama.ErrNotConnected, sarama.ErrLeaderNotAvailable, sarama.ErrNotLeaderForPartition,
		sarama.ErrRequestTimedOut, sarama.ErrBrokerNotAvailable, sarama.ErrReplicaNotAvailable, sarama.ErrNetworkException,
		sarama.ErrNotController, sarama.ErrNotEnoughReplicas, sarama.ErrKafkaStorageError, sarama.ErrThrottlingQuotaExceeded,
		syscall.ECONNREFUSED, syscall.ECONNRESET, io.EOF, io.ErrUnexpectedEOF, os.ErrDeadlineExceeded,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// tlsFailure reports whether err holds a failed TLS handshake: a certificate that does not
// verify, an alert of the other side, a plain-text listener answering a TLS client.
func tlsFailure(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		header    tls.RecordHeaderError
		alert     tls.AlertError
		authority x509.UnknownAuthorityError
		host      x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &authority) || errors.As(err, &host) || errors.As(err, &invalid)
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

// loadRegistry makes the table of -registry-topic and loads it (loadWithin), with a new
// table after an attempt that failed while Kafka is away, for at most -kafka-timeout
// (kafkaWait). The caller closes the table it returns; one that did not load is closed by
// its Load.
func (c *config) loadRegistry(ctx context.Context, cfg kafka.Config, log *slog.Logger) (*kafka.Table[string, telemetry.CabRegistration], error) {
	cfg.Group, cfg.Topics = "", nil
	step := "-registry-topic " + c.registry
	loadStart := time.Now()
	var registry *kafka.Table[string, telemetry.CabRegistration]
	// Each attempt's load is bounded on silence (loadWithin), not by the wait's bound: a
	// large registry takes as long as it takes to read.
	err := c.kafkaWait(log).wait(ctx, step, func(context.Context) error {
		t, err := kafka.NewTable(cfg, c.registry, func(key, value []byte) (string, telemetry.CabRegistration, error) {
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
			return err
		}
		// Not t.Close after an error: Load closes the table it failed to load, in the
		// background while a connection attempt still runs (Close waits for it, which on a
		// silent broker took minutes: the job's stop, Ctrl-C, waited with it).
		if err := c.loadWithin(ctx, t); err != nil {
			if errors.Is(err, kafka.ErrTopicNotFound) {
				// The library's hint is a Go function (kafka.EnsureCompactedTopic); the
				// operator's fix is the flag's value or the topic.
				return fmt.Errorf("no such topic: check the name, or create it compacted (replay -registry-topic writes one): %w", err)
			}
			return err
		}
		registry = t
		return nil
	})
	if errors.Is(err, errNoAnswer) {
		return nil, c.noAnswer(step, "nothing read")
	}
	if err != nil {
		return nil, err
	}
	log.Info("fleetpipeline: registry loaded", "topic", c.registry, "cabs", registry.Len(), "took", time.Since(loadStart).Round(time.Millisecond))
	return registry, nil
}
