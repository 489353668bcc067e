package kafka

// Tests of helper-98's review of the output side (producer.go, txn.go, txn_failed.go): each failed on the code before.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// tooLargeProducer is a transactional producer whose every send is refused as sarama and the
// broker refuse a message that is too large: the transaction goes to an abortable error
// state, and the abort succeeds.
type tooLargeProducer struct {
	sarama.SyncProducer
	err    error
	sends  int
	status sarama.ProducerTxnStatusFlag
}

func (f *tooLargeProducer) BeginTxn() error {
	f.status = sarama.ProducerTxnFlagInTransaction
	return nil
}
func (f *tooLargeProducer) SendMessages(m []*sarama.ProducerMessage) error {
	f.sends++
	f.status = sarama.ProducerTxnFlagInError | sarama.ProducerTxnFlagAbortableError
	return sarama.ProducerErrors{{Msg: m[0], Err: f.err}}
}
func (f *tooLargeProducer) AddOffsetsToTxnWithGroupMetadata(map[string][]*sarama.PartitionOffsetMetadata, *sarama.ConsumerGroupMetadata) error {
	return nil
}
func (f *tooLargeProducer) CommitTxn() error { return nil }
func (f *tooLargeProducer) AbortTxn() error {
	f.status = sarama.ProducerTxnFlagReady
	return nil
}
func (f *tooLargeProducer) TxnStatus() sarama.ProducerTxnStatusFlag { return f.status }

// TestExactlyOnceOversizedMessageIsPermanent: an exactly-once Producer handed a message larger
// than the producer's MaxMessageBytes (or one the broker refuses for its size) took it into
// the transaction (Write returned nil); every commit then failed with an error that is not
// permanent, was aborted, and kept the message pending for the next commit. The pipeline only
// warns about a failed commit and goes on, so the Source ran on committing nothing, its
// pending output growing with every batch, while the idempotent Producer stops on the same
// message at once (a permanent error).
func TestExactlyOnceOversizedMessageIsPermanent(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	big := bytes.Repeat([]byte("x"), 2<<20) // over sarama's default Producer.MaxMessageBytes (1,000,000)

	t.Run("write", func(t *testing.T) {
		tx := newTxn(Config{Group: "g"}, "t", log, nil)
		prod := &tooLargeProducer{err: sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes")}
		tx.prod = prod
		tx.bind("out")
		p := &Producer[Message]{topic: "out", enc: EncoderFunc[Message](identity), txn: tx}
		err := p.Write(t.Context(), []Message{{Value: big}})
		require.Error(t, err, "a message the producer can never send is refused at Write, as the idempotent Producer refuses it")
		require.True(t, stream.IsPermanent(err), "permanent: %v", err)
		require.Zero(t, tx.pendingCount())
	})

	for name, cause := range map[string]error{
		"client": sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes"),
		"broker": sarama.ErrMessageSizeTooLarge, // the topic's max.message.bytes below the producer's limit
	} {
		t.Run("commit/"+name, func(t *testing.T) {
			tx := newTxn(Config{Group: "g"}, "t", log, nil)
			prod := &tooLargeProducer{err: cause}
			tx.prod = prod
			tx.bind("out")
			var sent atomic.Int64
			// A message that passes the client's check but that the broker refuses (or, for
			// "client", one the check let through).
			require.NoError(t, tx.add(t.Context(), []Message{{Topic: "out", Value: []byte("v")}}, &sent))
			sess := memberSession{&recordingSession{}}
			build := func(bool) []txnOffset {
				return []txnOffset{{sess: sess, topic: "in", part: 0, off: 10, meta: "m"}}
			}
			err := tx.commit(t.Context(), build, nil)
			require.Error(t, err)
			require.True(t, stream.IsPermanent(err), "a message that can never be committed stops the pipeline: %v", err)
			require.True(t, tx.broken())
			err = tx.commit(t.Context(), build, nil)
			require.Error(t, err)
			require.Equal(t, 1, prod.sends, "not sent again and again with every later commit")
		})
	}
}

// blockingSyncProducer is a producer whose Close waits for release, as sarama's does while
// messages are in flight in a broker outage (its retries).
type blockingSyncProducer struct {
	sarama.SyncProducer
	release chan struct{}
}

func (b *blockingSyncProducer) Close() error {
	<-b.release
	return nil
}

type closeClient struct {
	sarama.Client
	closed atomic.Bool
}

func (c *closeClient) Close() error { c.closed.Store(true); return nil }

// TestProducerCloseHonoursContext: the pipeline bounds its outputs' Close by the shutdown
// grace once Run's context ended (stream.closeOutputs, helper-90's review), so that a producer
// with messages in flight in a broker outage does not hold a stopped process for its retries.
// Producer.Close (and DeadLetterSink.Close, which is it) ignored its context: it waited in
// sarama's Close for as long as the in-flight messages took, holding the Producer's lock.
func TestProducerCloseHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sp := &blockingSyncProducer{release: make(chan struct{})}
		client := &closeClient{}
		p := &Producer[int]{topic: "out", sp: sp, client: client}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- p.Close(ctx) }()
		<-ctx.Done()
		synctest.Wait()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.True(t, client.closed.Load(), "the client is closed, so that the in-flight retries end")
		default:
			close(sp.release)
			<-done
			t.Fatal("Close still waits for the producer after its context ended")
		}
		close(sp.release)
		synctest.Wait()
	})
}

// TestProducerConnectHonoursContext: the first Write connects the client, and sarama's
// NewClient ignores any context: with brokers that do not answer (an outage that leaves
// connections hanging, a security group that drops packets) it waits for the metadata's
// retries, each up to Net.ReadTimeout or DialTimeout, minutes with the defaults. Write
// ignored its context meanwhile (the shutdown grace did not cut it), and held the Producer's
// lock, so that Close waited as long. The exactly-once producer's connect already honours
// its context (txn.connect).
func TestProducerConnectHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() { // accept and never answer
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		_ = ln.Close()
		<-accepted
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	tune := func(sc *sarama.Config) {
		sc.Net.ReadTimeout = 10 * time.Second
		sc.Metadata.Retry.Max = 0
	}
	p, err := NewProducer(Config{Brokers: []string{ln.Addr().String()}}, "out", JSONValue[int](nil), WithSaramaConfig(tune))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = p.Write(ctx, []int{1})
	took := time.Since(start)
	require.Error(t, err)
	require.Less(t, took, 3*time.Second, "Write returns once its context ended, not after the client's timeouts (%v)", err)
	start = time.Now()
	require.NoError(t, p.Close(t.Context()))
	require.Less(t, time.Since(start), 3*time.Second)
}

// TestProducerInvalidSaramaConfigIsPermanent: a WithSaramaConfig that sarama refuses (its
// Config.Validate: here more than one request in flight beside the idempotent producer, a
// common throughput tweak) fails every connection the same way, before any network I/O. The
// Producer (and the exactly-once producer) returned it as an error that may pass, so the
// pipeline retried the batch for ever, while the flush setting checkFlush refuses is
// permanent.
func TestProducerInvalidSaramaConfigIsPermanent(t *testing.T) {
	tune := WithSaramaConfig(func(sc *sarama.Config) { sc.Net.MaxOpenRequests = 5 })
	p, err := NewProducer(Config{Brokers: []string{"127.0.0.1:1"}}, "out", JSONValue[int](nil), tune)
	require.NoError(t, err)
	err = p.Write(t.Context(), []int{1})
	require.Error(t, err)
	require.True(t, stream.IsPermanent(err), "no retry gets past an invalid configuration: %v", err)
	require.NoError(t, p.Close(t.Context()))
}
