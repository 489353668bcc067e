// The job's dead-letter producer at the job's end, when its broker went silent.

package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// silenceable is a network to the real broker that can go silent, as one cut by a firewall
// or a hung broker: once silenced, what the client sends is swallowed and nothing more is
// read (reads still end at their deadlines). swallowed receives a value at each write it
// swallows. It is a sarama proxy dialer (Net.Proxy).
type silenceable struct {
	mu        sync.Mutex
	silent    bool
	conns     []net.Conn
	swallowed chan struct{}
}

func newSilenceable(t *testing.T) *silenceable {
	n := &silenceable{swallowed: make(chan struct{}, 1)}
	t.Cleanup(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, c := range n.conns {
			_ = c.Close()
		}
	})
	return n
}

func (n *silenceable) Dial(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns = append(n.conns, c)
	return &silenceableConn{Conn: c, n: n}, nil
}

func (n *silenceable) silence() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.silent = true
}

func (n *silenceable) isSilent() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.silent
}

type silenceableConn struct {
	net.Conn
	n *silenceable
}

func (c *silenceableConn) Write(p []byte) (int, error) {
	if c.n.isSilent() {
		select {
		case c.n.swallowed <- struct{}{}:
		default:
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *silenceableConn) Read(p []byte) (int, error) {
	for {
		k, err := c.Conn.Read(p)
		if err != nil || !c.n.isSilent() {
			return k, err
		}
	}
}

// TestDeadLetterCloseBoundedOnSilentBroker: the job closed its dead-letter producer at its
// end with context.WithoutCancel(ctx), no deadline. A dead letter still in flight (its write
// abandoned when the batch was cancelled: a stop, or an error) when the broker went silent
// held the job's exit for the producer's retries, ten of a 30 s read timeout and a metadata
// refresh each. The close is now bounded, and fails naming the topic and what was not
// flushed, so that the job exits 1.
func TestDeadLetterCloseBoundedOnSilentBroker(t *testing.T) {
	s := needServices(t)
	topic := testenv.UniqueName(t, "dlq-silent")
	ensureTopic(t, s, topic)
	network := newSilenceable(t)
	dlq, err := kafka.NewDeadLetterSink(kafka.Config{Brokers: strings.Split(s.brokers, ",")}, topic,
		kafka.WithSaramaConfig(func(sc *sarama.Config) { sc.Net.Proxy.Enable, sc.Net.Proxy.Dialer = true, network }))
	require.NoError(t, err)
	letter := func(offset int64) []stream.DeadLetter {
		return []stream.DeadLetter{{Reason: stream.ReasonDecode, Err: "not JSON", Topic: "cab-telemetry", Offset: offset, Value: []byte("{")}}
	}
	require.NoError(t, dlq.Write(t.Context(), letter(1)), "the producer is connected")

	network.silence()
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-network.swallowed; cancel() }() // the batch is cancelled with its dead letter in flight
	require.ErrorIs(t, dlq.Write(ctx, letter(2)), context.Canceled)

	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- closeDeadLetters(ctx, dlq, 500*time.Millisecond) }()
	select {
	case err = <-done:
	case <-time.After(time.Minute): // the bound of the test, not a wait for an event
		t.Fatal("the dead-letter producer's close did not end within a minute of the job's end")
	}
	require.Less(t, time.Since(start), 10*time.Second)
	require.ErrorContains(t, err, "dead-letter topic "+topic+": dead letters in flight at the job's end were not acknowledged by Kafka within 500ms (kafka: producer close: 1 message in flight abandoned: context deadline exceeded)")
	require.ErrorContains(t, err, "the next run reads them and writes their dead letters again")
}
