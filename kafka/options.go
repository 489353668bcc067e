// Options of Source, Producer, Exchange and DeadLetterSink.

package kafka

import (
	"time"

	"log/slog"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// SourceOption configures a Source.
type SourceOption interface{ applySource(*sourceOptions) }

// ProducerOption configures a Producer.
type ProducerOption interface{ applyProducer(*producerOptions) }

// Option configures a Source, a Producer, an Exchange or a Table.
type Option interface {
	SourceOption
	ProducerOption
	ExchangeOption
	TableOption
}

type common struct {
	logger *slog.Logger
	tune   func(*sarama.Config)
}

type sourceOptions struct {
	common
	bounded  bool
	caughtUp *CaughtUp
	dlqTopic string
	dlqSink  stream.DeadLetterSink
	errs     []error
	// readCommitted reads with isolation level read_committed; txnID names the exactly-once
	// producer of the Source's transaction.
	readCommitted bool
	txnID         string
	// exchange makes the Source read a repartition topic (Exchange): a record that cannot be
	// decoded stops it instead of going to a dead-letter output, event times are the
	// decoded ones as they are (zero for marks), and no dead-letter output is made.
	exchange bool
	// acceptLoss goes on from a partition's start when records not read yet were deleted
	// (WithAcceptDataLoss).
	acceptLoss bool
	// purge is how often an Exchange's Source deletes the records its group committed past
	// (WithPurgeInterval); 0 or negative: never.
	purge time.Duration
	// joinDelay delays an Exchange's consumer's first join of its group: a test hook
	// (joindelay.go), zero otherwise.
	joinDelay time.Duration
}

type producerOptions struct {
	common
	eos  Transactional
	errs []error
}

type commonOpt func(*common)

// applyOpts calls apply with each of opts and returns an error for each nil one, which
// would panic in apply.
func applyOpts[O any](opts []O, apply func(O)) []error {
	var errs []error
	for _, opt := range opts {
		if any(opt) == nil {
			errs = append(errs, invalid("option", "nil"))
			continue
		}
		apply(opt)
	}
	return errs
}

func (f commonOpt) applySource(o *sourceOptions)     { f(&o.common) }
func (f commonOpt) applyProducer(o *producerOptions) { f(&o.common) }

type sourceOpt func(*sourceOptions)

func (f sourceOpt) applySource(o *sourceOptions) { f(o) }

type producerOpt func(*producerOptions)

func (f producerOpt) applyProducer(o *producerOptions) { f(o) }

// WithReadCommitted makes the Source read with isolation level read_committed: only
// messages of committed transactions, never those of aborted or open ones. Use it for any
// topic written transactionally (a Producer with WithExactlyOnce); the default,
// read_uncommitted, also sees the messages of transactions that were aborted. A Source that a
// Producer binds to with WithExactlyOnce reads with read_committed without it.
func WithReadCommitted() SourceOption {
	return sourceOpt(func(o *sourceOptions) { o.readCommitted = true })
}

// TransactionOption configures a Source or an Exchange: both are Transactionals, which
// a Producer binds to with WithExactlyOnce.
type TransactionOption interface {
	SourceOption
	ExchangeOption
}

// WithTransactionalID names the transactional producer of the exactly-once transaction of
// a Source or an Exchange (WithExactlyOnce). Every instance of a pipeline needs its own id,
// and the same one across its restarts: a restart then fences its killed predecessor at
// once, and read_committed consumers do not wait for the broker to time its open
// transaction out (30 s). Two instances with the same id fence each other: each one's
// transactions fail with PRODUCER_FENCED. The default is
// "fleetstream-<group>-<hostname>-<client id>" for a Source, with "-<name>" after it for an
// Exchange, right for one instance per host (or per StatefulSet pod); set it when several
// instances share a host name. Within one process, give each Transactional that a Producer
// binds to an id of its own.
func WithTransactionalID(id string) TransactionOption { return txnIDOpt(id) }

type txnIDOpt string

func (id txnIDOpt) err() error {
	if id == "" {
		return invalid("WithTransactionalID", "empty id")
	}
	return nil
}

func (id txnIDOpt) applySource(o *sourceOptions) {
	if err := id.err(); err != nil {
		o.errs = append(o.errs, err)
	}
	o.txnID = string(id)
}

func (id txnIDOpt) applyExchange(o *exchangeOptions) {
	if err := id.err(); err != nil {
		o.errs = append(o.errs, err)
	}
	o.txnID = string(id)
}

// WithExactlyOnce binds the Producer to src, the Source of the same pipeline: the messages
// of a batch are produced, and the batch's offsets and checkpoint committed, in one Kafka
// transaction when the pipeline commits, and what a replay emits again is not written
// twice. Consumers of the topic must read with read_committed. See "Exactly once" in the
// package documentation. Bind before the pipeline runs; several Producers may bind to one
// Source, and their messages share its transaction. The transaction's producer is src's:
// its client takes src's Config and WithSaramaConfig, not the Producer's (a Producer given
// both WithExactlyOnce and WithSaramaConfig is refused).
func WithExactlyOnce(src Transactional) ProducerOption {
	return producerOpt(func(o *producerOptions) {
		if src == nil {
			o.errs = append(o.errs, invalid("WithExactlyOnce", "nil source"))
		}
		o.eos = src
	})
}

// WithLogger sets the logger. The default discards: give the application's (slog.Default()
// for the process's) to see the warnings (a broker outage and how long it has lasted, dead
// letters, a rebalance that failed). Nothing secret is ever logged.
func WithLogger(l *slog.Logger) Option {
	return commonOpt(func(c *common) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithSaramaConfig lets f adjust the sarama configuration after the Config was applied, for
// settings Config does not cover. It must not turn on auto-commit or weaken the producer's
// idempotence; doing so voids the delivery guarantees. A producer setting that would hold a
// write for ever (Producer.Flush.Frequency 0 beside a byte or message trigger: sarama then
// sends on the trigger only) is refused, for good, at the producer's first write. sarama's
// own go-metrics (its MetricRegistry) are not recorded unless f sets a registry: see Stats
// in the package documentation.
func WithSaramaConfig(f func(*sarama.Config)) Option {
	return commonOpt(func(c *common) { c.tune = f })
}

// WithBounded makes the Source read up to the end offsets present when Run starts and then
// end its input, so the pipeline closes every window, commits and returns: a backfill.
// A Source given it and WithEndWhenCaughtUp is refused (ErrInvalidOption): each ends the
// input its own way.
func WithBounded() SourceOption {
	return sourceOpt(func(o *sourceOptions) { o.bounded = true })
}

// WithEndWhenCaughtUp ends the input once every partition the Source owns has been read to
// its high-water mark and no new record arrived in any partition of its topics (owned by
// this instance or another of the group) for idle: the pipeline closes every window,
// commits and Run returns nil. It suits jobs that drain a topic and exit (the fleet demo).
// The high-water marks are fetched from the brokers after the last record was read, so a
// broker outage, when the marks the consumer last saw are stale, never counts as caught up.
//
// Give the one option it returns to every Source of a pipeline: their inputs then end
// together, once all of them are caught up and idle (see CaughtUp). Called once per Source,
// each input ends by itself, and a Source whose topics are quiet for idle while another's
// records still flow misses what reaches its topics afterwards.
func WithEndWhenCaughtUp(idle time.Duration) *CaughtUp {
	c := &CaughtUp{idle: idle}
	if idle <= 0 {
		c.err = invalid("WithEndWhenCaughtUp", "idle %v must be positive", idle)
	}
	return c
}

// WithDeadLetterTopic sends the records the Source rejects to topic instead of
// "<source topic>.dlq".
func WithDeadLetterTopic(topic string) SourceOption {
	return sourceOpt(func(o *sourceOptions) {
		if topic == "" {
			o.errs = append(o.errs, invalid("WithDeadLetterTopic", "empty topic"))
		} else if err := topicName("WithDeadLetterTopic", topic); err != nil {
			o.errs = append(o.errs, err)
		}
		o.dlqTopic = topic
	})
}

// WithDeadLetters sends the records the Source rejects to sink instead of a Kafka topic: a
// DeadLetterSink shared with other parts of the pipeline, a stream.DeadLetterFunc, a file.
// The Source writes one dead letter (or the few of one fetch) per call and moves past them
// only once Write returned nil; errors not marked stream.Permanent are retried with backoff,
// a permanent one stops the Source (Run returns it). The Source does not close sink.
func WithDeadLetters(sink stream.DeadLetterSink) SourceOption {
	return sourceOpt(func(o *sourceOptions) {
		if sink == nil {
			o.errs = append(o.errs, invalid("WithDeadLetters", "nil sink"))
		}
		o.dlqSink = sink
	})
}
