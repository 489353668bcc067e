// The bound of the job's start on Kafka (-kafka-timeout), offline: Kafka is a listener that
// accepts connections and never answers.

package main

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestStartBoundedOnSilentKafka: a broker that accepts the connection and never answers held
// the job in its start (kafka.EnsureTopic of the dead-letter topic) for over a quarter of an
// hour, printing nothing. The start now fails after -kafka-timeout, naming the broker and the
// flags, and the job exits 1. Its first step on Kafka is the check of its input topic.
func TestStartBoundedOnSilentKafka(t *testing.T) {
	broker, _ := testenv.SilentListener(t)
	args := []string{"-brokers", broker, "-opensearch", "http://" + deadAddr(t), "-http=", "-kafka-timeout", "300ms"}
	err := run(t.Context(), testConfig(t, args...), io.Discard)
	require.Error(t, err)
	for _, want := range []string{"-topic cab-telemetry: no answer from Kafka at " + broker + " (-brokers) within 300ms (-kafka-timeout)", "-kafka-tls"} {
		require.Contains(t, err.Error(), want)
	}

	out, err := exec.Command(pipelineBin, args...).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "got:\n%s", out)
	require.Equal(t, 1, ee.ExitCode(), "got:\n%s", out)
	require.Contains(t, string(out), "fleetpipeline: -topic cab-telemetry: no answer from Kafka at "+broker)
}

// TestRegistryLoadBoundedOnSilentKafka: the registry's load (-registry-topic) on a broker
// that never answers waited without an end; it fails after -kafka-timeout without a record
// read, naming the topic, the broker and the flag.
func TestRegistryLoadBoundedOnSilentKafka(t *testing.T) {
	broker, _ := testenv.SilentListener(t)
	c := testConfig(t, "-brokers", broker, "-registry-topic", "fleet-registry", "-kafka-timeout", "300ms")
	table, err := c.loadRegistry(t.Context(), c.kafka.Config(), logger(io.Discard, false))
	require.Nil(t, table)
	require.ErrorContains(t, err, "-registry-topic fleet-registry: nothing read from Kafka at "+broker+" (-brokers) within 300ms (-kafka-timeout)")
}

// fakeTable is a registry whose Load reads a record every interval until it has n, or, with
// interval 0, reads nothing until its ctx ends.
type fakeTable struct {
	interval time.Duration
	n        int64
	records  atomic.Int64
}

func (f *fakeTable) Load(ctx context.Context) error {
	for f.records.Load() < f.n || f.interval == 0 {
		if f.interval == 0 {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.interval):
			f.records.Add(1)
		}
	}
	return nil
}

func (f *fakeTable) Stats() kafka.TableStats { return kafka.TableStats{Records: f.records.Load()} }

// TestRegistryLoadBoundIsOnSilence: -kafka-timeout bounds a load without progress, not a long
// one that reads: a registry that takes twenty timeouts to read, a record every half timeout,
// loads; one that reads nothing fails after about one timeout; a stop ends the wait at once.
func TestRegistryLoadBoundIsOnSilence(t *testing.T) {
	c := testConfig(t, "-kafka-timeout", "1m", "-registry-topic", "fleet-registry")
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		require.NoError(t, c.loadWithin(t.Context(), &fakeTable{interval: 30 * time.Second, n: 40}))
		require.Equal(t, 20*time.Minute, time.Since(start))
	})
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		err := c.loadWithin(t.Context(), &fakeTable{})
		require.ErrorIs(t, err, errNoAnswer)
		took := time.Since(start)
		require.GreaterOrEqual(t, took, time.Minute)
		require.LessOrEqual(t, took, time.Minute+c.kafkaTimeout/8, "checked every eighth of the bound")
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(10*time.Second, cancel)
		start := time.Now()
		err := c.loadWithin(ctx, &fakeTable{})
		require.True(t, errors.Is(err, context.Canceled), "a stop is no timeout: %v", err)
		require.Equal(t, 10*time.Second, time.Since(start))
	})
}

// TestRegistryLoadStopsAtOnce: a stop (Ctrl-C) while the registry loads from a broker that
// never answers ends the load at once; the job's deferred Close of the table waited for the
// connection attempt in flight, minutes on a silent broker.
func TestRegistryLoadStopsAtOnce(t *testing.T) {
	broker, accepted := testenv.SilentListener(t)
	c := testConfig(t, "-brokers", broker, "-registry-topic", "fleet-registry")
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-accepted; cancel() }()
	table, err := c.loadRegistry(ctx, c.kafka.Config(), logger(io.Discard, false))
	require.Nil(t, table)
	require.ErrorIs(t, err, context.Canceled)
}
