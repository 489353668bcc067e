// Producer, a stream.Sink that writes to a topic with an idempotent producer, its encoders,
// and the classification of its produce errors (client_errors.go has the connection errors
// and redaction every client shares).

package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// ErrClosed is returned by Write after Close, marked [stream.Permanent]: a pipeline that
// shares the producer with one that closed it stops instead of retrying for ever.
var ErrClosed = errors.New("kafka: producer closed")

// Encoder turns a value into the message a Producer writes. A message with an empty Topic
// goes to the producer's topic; Partition and Offset are ignored (records are partitioned
// by a hash of the key, so keep keys stable: sarama's FNV-1a, KeyHash, not the murmur2 of
// Kafka's Java client, Murmur2KeyHash; see "Co-partitioned tables" in the package
// documentation).
type Encoder[T any] interface {
	Encode(v T) (Message, error)
}

// EncoderFunc adapts a function to an Encoder.
type EncoderFunc[T any] func(v T) (Message, error)

// Encode calls f.
func (f EncoderFunc[T]) Encode(v T) (Message, error) { return f(v) }

// KeyValue builds an Encoder from a key function and a value encoder.
func KeyValue[T any](key func(T) []byte, value func(T) ([]byte, error)) Encoder[T] {
	return EncoderFunc[T](func(v T) (Message, error) {
		b, err := value(v)
		if err != nil {
			return Message{}, err
		}
		var k []byte
		if key != nil {
			k = key(v)
		}
		return Message{Key: k, Value: b}, nil
	})
}

// JSONValue encodes values with encoding/json and keys them with key (nil: no key).
func JSONValue[T any](key func(T) []byte) Encoder[T] {
	return KeyValue(key, func(v T) ([]byte, error) { return json.Marshal(v) })
}

// Producer is a stream.Sink that writes values to a Kafka topic with an idempotent producer
// (acks from all in-sync replicas, one request in flight per broker, so a retry inside the
// client neither duplicates nor reorders). Write returns only once the broker acknowledged
// every message of the batch.
//
// Kafka appends: when the pipeline replays a batch after a failure, its messages are written
// again. Consumers should treat the key as the identity (last one wins, as in a compacted
// topic).
//
// The client connects on the first Write; Close closes it. A Producer is safe for concurrent
// use.
type Producer[T any] struct {
	cfg   Config
	topic string
	enc   Encoder[T]
	o     producerOptions

	// txn is the Source transaction the Producer writes in (WithExactlyOnce), or nil.
	txn *txn

	mu      sync.Mutex
	client  sarama.Client
	sp      sarama.SyncProducer
	dialing *dialing // a connection under way, or nil
	closed  bool
	// asks is whether the client asks the broker to create a topic it writes to (sarama's
	// Metadata.AllowAutoTopicCreation after the user's tune), set with client.
	asks bool

	sent atomic.Int64
	// inFlight counts the messages of sends under way (abandoned ones too), for Close's
	// error.
	inFlight atomic.Int64

	// ownTopics is false for a DeadLetterSink's producer, which looks at missing topics with
	// its own state (DeadLetterSink.checkMissing).
	ownTopics bool
}

var _ stream.Sink[int] = (*Producer[int])(nil)
var _ stream.Closer = (*Producer[int])(nil)

// NewProducer returns a Producer writing to topic. Only Config's connection settings
// (brokers, client id, version, TLS, SASL) are used.
func NewProducer[T any](cfg Config, topic string, enc Encoder[T], opts ...ProducerOption) (*Producer[T], error) {
	o := producerOptions{common: common{logger: slog.New(slog.DiscardHandler)}}
	nils := applyOpts(opts, func(opt ProducerOption) { opt.applyProducer(&o) })
	errs := append(o.errs, nils...)
	if err := cfg.validate(roleProducer); err != nil {
		errs = append(errs, err)
	}
	if topic == "" {
		errs = append(errs, invalid("topic", "empty"))
	} else if err := topicName("topic", topic); err != nil {
		errs = append(errs, err)
	}
	if enc == nil {
		errs = append(errs, invalid("encoder", "nil"))
	}
	if o.eos != nil && o.tune != nil {
		// It would be ignored without a word: the transaction's producer is src's.
		errs = append(errs, invalid("WithSaramaConfig", "not used with WithExactlyOnce, whose messages are produced by "+
			"the transaction of the Source (or Exchange) bound to: give the option to that one"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	p := &Producer[T]{cfg: cfg, topic: topic, enc: enc, o: o, ownTopics: true}
	if o.eos != nil {
		p.txn = o.eos.transaction()
		p.txn.bind(topic)
	}
	return p, nil
}

// Topic returns the producer's default topic.
func (p *Producer[T]) Topic() string { return p.topic }

// Sent returns how many messages the broker acknowledged.
func (p *Producer[T]) Sent() int64 { return p.sent.Load() }

// connect returns the producer, connecting its client first if need be. sarama's NewClient
// takes no context and, with brokers that do not answer, waits for its metadata retries
// (each up to a dial or read timeout): it runs in the background, and connect returns when
// ctx ends, without holding the Producer's lock meanwhile.
func (p *Producer[T]) connect(ctx context.Context) (sarama.SyncProducer, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, stream.Permanent(ErrClosed)
	}
	if p.sp != nil {
		sp := p.sp
		p.mu.Unlock()
		return sp, nil
	}
	d := p.dialing
	if d == nil {
		d = &dialing{done: make(chan struct{})}
		p.dialing = d
		go p.dial(d)
	}
	p.mu.Unlock()
	select {
	case <-d.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if d.err != nil {
		return nil, d.err
	}
	return d.sp, nil
}

// dialing is a connection under way; err and sp are set before done is closed.
type dialing struct {
	done chan struct{}
	sp   sarama.SyncProducer
	err  error
}

// dial connects the client and publishes the outcome to d (and, on success, to p).
func (p *Producer[T]) dial(d *dialing) {
	client, sp, asks, err := p.newClient()
	p.mu.Lock()
	switch {
	case err == nil && p.closed: // closed meanwhile
		_ = sp.Close()
		_ = client.Close()
		err = stream.Permanent(ErrClosed)
	case err == nil:
		p.client, p.sp, p.asks = client, sp, asks
	}
	p.dialing = nil
	d.sp, d.err = sp, err
	p.mu.Unlock()
	close(d.done)
}

// newClient connects the producer; asks is sc's Metadata.AllowAutoTopicCreation.
func (p *Producer[T]) newClient() (client sarama.Client, sp sarama.SyncProducer, asks bool, err error) {
	sc, err := p.cfg.sarama(roleProducer)
	if err != nil {
		return nil, nil, false, err
	}
	if p.o.tune != nil {
		p.o.tune(sc)
	}
	if err := checkFlush(sc); err != nil {
		return nil, nil, false, err
	}
	if err := sc.Validate(); err != nil { // the same at every try: refused for good
		return nil, nil, false, stream.Permanent(fmt.Errorf("kafka: producer: sarama configuration (WithSaramaConfig): %w", err))
	}
	warnInsecure(p.o.logger, sc)
	client, err = sarama.NewClient(p.cfg.Brokers, sc)
	if err != nil {
		return nil, nil, false, connectError(&p.cfg, err)
	}
	sp, err = sarama.NewSyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		if isNotAuthorized(err) { // e.g. IdempotentWrite on the cluster, on older brokers
			return nil, nil, false, stream.Permanent(p.cfg.notAuthorized(err, access{topics: []string{p.topic}, write: true}))
		}
		return nil, nil, false, fmt.Errorf("kafka: producer: %w", err)
	}
	return client, sp, sc.Metadata.AllowAutoTopicCreation, nil
}

// Write sends batch and waits until the broker acknowledged every message. An encoding
// error, a message too large, an authorization failure, or a topic that does not exist and
// that the write will not create (the broker's auto.create.topics.enable is false, as on
// Amazon MSK by default, or WithSaramaConfig turned Metadata.AllowAutoTopicCreation off: an
// error wrapping ErrTopicNotFound that names it, from Write, or under exactly once from the
// Source's Run or its commit) is permanent (stream.IsPermanent); anything else is retried by
// the pipeline.
func (p *Producer[T]) Write(ctx context.Context, batch []T) error {
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.txn != nil {
		return p.writeTxn(ctx, batch)
	}
	msgs := make([]*sarama.ProducerMessage, len(batch))
	for i, v := range batch {
		m, err := p.enc.Encode(v)
		if err != nil {
			return stream.Permanent(fmt.Errorf("kafka: encode: %w", err))
		}
		msgs[i] = m.toSarama(p.topic)
	}
	return p.send(ctx, msgs)
}

func (p *Producer[T]) send(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	sp, err := p.connect(ctx)
	if err != nil {
		return err
	}
	// SendMessages has no context; it is bounded by the producer's own timeouts and retries.
	done := make(chan error, 1)
	p.inFlight.Add(int64(len(msgs)))
	go func() {
		err := sp.SendMessages(msgs)
		p.inFlight.Add(-int64(len(msgs)))
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The send goes on and its outcome is unknown: the pipeline will write the batch again.
		return ctx.Err()
	}
	if err == nil {
		p.sent.Add(int64(len(msgs)))
		return nil
	}
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) {
		p.sent.Add(int64(len(msgs) - len(perrs)))
		first := perrs[0].Err
		if perrs[0].Msg != nil {
			first = p.cfg.notAuthorized(first, access{topics: []string{perrs[0].Msg.Topic}, write: true})
		}
		err = fmt.Errorf("kafka: produce: %d of %d messages failed, first: %w", len(perrs), len(msgs), first)
		if permanentProduceError(first) {
			return stream.Permanent(err)
		}
		if p.ownTopics && errors.Is(first, sarama.ErrUnknownTopicOrPartition) {
			return p.checkMissing(ctx, perrs, err)
		}
		return err
	}
	if isNotAuthorized(err) {
		return stream.Permanent(fmt.Errorf("kafka: produce: %w", p.cfg.notAuthorized(err, access{topics: []string{p.topic}, write: true})))
	}
	return fmt.Errorf("kafka: produce: %w", err)
}

// checkMissing is send's answer to messages refused with UNKNOWN_TOPIC_OR_PARTITION (after
// sarama's retries): a permanent error wrapping ErrTopicNotFound if a look finds their topic
// missing and the write will not create it (the broker's auto.create.topics.enable=false,
// Amazon MSK's default, or the client's Metadata.AllowAutoTopicCreation=false), where the
// pipeline's retries would hold every batch for ever; else err, to be retried.
func (p *Producer[T]) checkMissing(ctx context.Context, perrs sarama.ProducerErrors, err error) error {
	var topics []string
	for _, pe := range perrs {
		if pe.Msg != nil && errors.Is(pe.Err, sarama.ErrUnknownTopicOrPartition) && !slices.Contains(topics, pe.Msg.Topic) {
			topics = append(topics, pe.Msg.Topic)
		}
	}
	p.mu.Lock()
	asks := p.asks
	p.mu.Unlock()
	return missingOrRetry(ctx, &p.cfg, topics, asks, err)
}

// missingOrRetry looks whether topics, which a client that asks (or not) for topics to be
// created was answered UNKNOWN_TOPIC_OR_PARTITION for, exist: it returns a permanent error
// wrapping ErrTopicNotFound and err if some do not and a write will not create them, else
// err (not known, there now, or created by a write: retried).
func missingOrRetry(ctx context.Context, cfg *Config, topics []string, asks bool, err error) error {
	r, cerr := describe(ctx, cfg, topics)
	if cerr != nil || r.broker == 0 || len(r.missing) == 0 || asks && r.creates {
		return err
	}
	return topicsMissing("topic", r.missing, asks, err)
}

// permanentProduceError reports whether the broker or the client will refuse a message
// however often it is sent: retrying it would only stall the caller.
func permanentProduceError(err error) bool {
	var ce sarama.ConfigurationError // e.g. a message over Producer.MaxMessageBytes
	if errors.As(err, &ce) {
		return true
	}
	for _, k := range []sarama.KError{
		sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge, sarama.ErrInvalidMessage, sarama.ErrInvalidRecord,
		sarama.ErrInvalidTimestamp, sarama.ErrPolicyViolation, sarama.ErrUnsupportedForMessageFormat,
		sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed, sarama.ErrInvalidTopic,
	} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// writeTxn hands the batch to the Source's transaction: it is produced when the pipeline
// commits the batch.
func (p *Producer[T]) writeTxn(ctx context.Context, batch []T) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return stream.Permanent(ErrClosed)
	}
	msgs := make([]Message, len(batch))
	for i, v := range batch {
		m, err := p.enc.Encode(v)
		if err != nil {
			return stream.Permanent(fmt.Errorf("kafka: encode: %w", err))
		}
		if m.Topic == "" {
			m.Topic = p.topic
		}
		if m.Topic != p.topic {
			return stream.Permanent(fmt.Errorf("kafka: exactly-once producer of %q: message for topic %q (an exactly-once Producer writes only to its own topic)", p.topic, m.Topic))
		}
		m.Partition, m.Offset = 0, 0
		msgs[i] = m
	}
	return p.txn.add(ctx, msgs, &p.sent)
}

// Close flushes and closes the client. Later Writes return ErrClosed. It waits for the
// messages in flight (those of Writes abandoned when their ctx ended too) until ctx ends, then
// gives them up with an error saying how many. An exactly-once Producer drops the messages
// that no commit covered yet (a restart makes them again); the last one bound to a Source
// closes its transactional producer.
func (p *Producer[T]) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	sp, client := p.sp, p.client
	p.mu.Unlock()
	if p.txn != nil {
		return p.txn.close()
	}
	if sp == nil {
		return nil // a connection under way closes its client when it ends
	}
	// sarama's Close waits for the messages in flight, through all their retries in a
	// broker outage: bounded by ctx (the pipeline's shutdown grace), then the client is
	// closed, which ends them.
	done := make(chan error, 1)
	go func() { done <- sp.Close() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		n, noun := p.inFlight.Load(), "messages"
		if n == 1 {
			noun = "message"
		}
		err = fmt.Errorf("%d %s in flight abandoned: %w", n, noun, ctx.Err())
	}
	if cerr := client.Close(); cerr != nil && !errors.Is(cerr, sarama.ErrClosedClient) {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("kafka: producer close: %w", err)
	}
	return nil
}
