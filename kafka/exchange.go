// Exchange, the Kafka transport of a repartition (stream.Repartition): a topic of the
// pipeline that the upstream side produces to with an idempotent producer, partition by
// partition, and that the downstream side consumes as a further member of the pipeline's
// consumer group, with the Source's claim loop. The topic's creation and the downstream side
// are here; the topic's ownership check is in exchange_owner.go, the options in
// exchange_options.go, Send and Close in exchange_send.go, the record format in
// exchange_format.go.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// ErrCorruptRepartition is wrapped by the error that stops an Exchange's consumer when a
// record of its topic cannot be decoded. A repartition topic holds only what an Exchange
// wrote; such a record is a bug, corruption, or a codec changed under a topic that still
// holds records of the old one. It cannot go to a dead-letter output: the downstream results
// would silently miss a record that the exactly-once count includes.
var ErrCorruptRepartition = errors.New("kafka: corrupt repartition record")

// ErrPartitionMismatch is wrapped by the error of Exchange.Open when the repartition topic
// exists with another partition count than the exchange wants.
var ErrPartitionMismatch = errors.New("kafka: repartition topic partition count mismatch")

// ErrRepartitionInUse is wrapped by the error of Exchange.Open when another consumer group
// has committed offsets of the repartition topic: another pipeline with the same name.
var ErrRepartitionInUse = errors.New("kafka: repartition topic used by another consumer group")

// Exchange is the Kafka transport of a repartition: a stream.Exchange over the topic
// "<pipeline>-<name>-repartition". Pass it to stream.Repartition (or RepartitionBy).
//
// Send produces each record to the partition the pipeline chose, with an idempotent
// producer (acks from all in-sync replicas, one request in flight per broker, retries that
// neither reorder nor drop), one message of a partition at a time so that none is written
// after one that failed, and returns once every record is acknowledged. The downstream
// side (Run, Commit) is a Source of the topic in the pipeline's consumer group: a further
// member of the same group as the pipeline's Source, with the same rebalancing,
// backpressure and commits, the pipeline's checkpoint (with the repartition's dedup and
// watermark state) stored as the offset metadata. It always starts a partition without a
// committed offset at its oldest record, whatever Config.InitialOffset says.
//
// The Exchange only carries records: numbering, deduplication and watermarks are the
// pipeline's (see "Repartition" in package stream). A record of the topic that cannot be
// decoded stops the pipeline with ErrCorruptRepartition (never a dead letter). Close
// releases the producer; the consumer's client is released when Run returns.
type Exchange[T any] struct {
	cfg   Config
	topic string
	codec stream.Codec[T]
	o     exchangeOptions
	src   *Source[stream.Shuffled[T]]
	log   *slog.Logger

	mu     sync.Mutex // guards the producer's lifecycle
	client sarama.Client
	ap     sarama.AsyncProducer
	parts  int
	closed bool
	maxMsg int

	// Send's state, reused across calls unless a call was abandoned (see Send); sendSem
	// (capacity 1, made under mu) is its lock, which a caller can stop waiting for.
	sendSem chan struct{}
	gen     uint64
	stale   int // results still due from abandoned calls
	// staleErr is the first failure of an abandoned call's message: the next Send returns
	// it, having handed over nothing (see Send).
	staleErr error
	buf      []byte // one record's encoding
	pk       packer
	msgs     []sarama.ProducerMessage
	vals     []byteRef
	refs     []sendRef
	ready    []int // of Send: the messages that may go to the producer
	last     []int // of Send: by partition, its last message so far

	sent, sentMsgs, sentBytes atomic.Int64
}

var (
	_ stream.Exchange[int]                    = (*Exchange[int])(nil)
	_ stream.Closer                           = (*Exchange[int])(nil)
	_ stream.PartitionCounter                 = (*Source[int])(nil)
	_ interface{ Stats() stream.SourceStats } = (*Exchange[int])(nil)
	_ stream.Originator                       = (*Exchange[int])(nil)
	_ stream.PartitionRegistrar               = (*Exchange[int])(nil)
	_ stream.Originator                       = (*Source[int])(nil)
)

// NewExchange returns the exchange of repartition name of pipeline, whose values codec
// encodes. cfg is the Config of the pipeline's Source: its brokers and security settings,
// its Group (the exchange's consumer joins it) and, for the default partition count, its
// Topics. Unless cfg sets Fetch.MaxWait, the exchange's consumer waits at most 50ms for a
// fetch to fill (exchangeFetchWait). Nothing connects before Open.
func NewExchange[T any](cfg Config, pipeline, name string, codec stream.Codec[T], opts ...ExchangeOption) (*Exchange[T], error) {
	o := exchangeOptions{common: common{logger: slog.New(slog.DiscardHandler)}}
	nils := applyOpts(opts, func(opt ExchangeOption) { opt.applyExchange(&o) })
	errs := append(o.errs, nils...)
	topic := pipeline + "-" + name + "-repartition"
	switch {
	case pipeline == "" || name == "":
		errs = append(errs, invalid("pipeline/name", "both are required (the topic is <pipeline>-<name>-repartition)"))
	default:
		if err := topicName("pipeline/name", topic); err != nil {
			errs = append(errs, err)
		}
	}
	if codec == nil {
		errs = append(errs, invalid("codec", "nil"))
	}
	if o.partitions == 0 && len(o.topics) == 0 && len(cfg.Topics) == 0 {
		errs = append(errs, invalid("WithPartitions", "no partition count: set WithPartitions, WithPartitionsOf or Config.Topics"))
	}
	if len(o.topics) == 0 {
		o.topics = slices.Clone(cfg.Topics)
	}
	scfg := cfg
	scfg.Brokers = slices.Clone(cfg.Brokers)
	scfg.Topics = []string{topic}
	if scfg.Rebalance.InstanceID != "" {
		// Another member of the group, in the same process: an id of its own.
		scfg.Rebalance.InstanceID += "." + name
	}
	scfg.InitialOffset = OffsetOldest // records sent before the first commit must be read
	if scfg.Fetch.MaxWait == 0 {
		scfg.Fetch.MaxWait = exchangeFetchWait
	}
	txnID := o.txnID
	if txnID == "" {
		// Not the Source's default: Producers bound to the Source and to the Exchange of
		// one process would fence each other.
		txnID = defaultTransactionalID(&cfg) + "-" + name
	}
	src, err := NewSource(scfg, shuffleCodec[T]{codec}, sourceOpt(func(so *sourceOptions) {
		so.common = o.common
		so.exchange = true
		so.txnID = txnID
		so.purge = o.purge
		so.joinDelay = o.joinDelay
		if so.purge == 0 {
			so.purge = defaultPurgeInterval
		}
	}))
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Exchange[T]{cfg: scfg, topic: topic, codec: codec, o: o, src: src,
		log: o.logger.With("component", "kafka.Exchange", "topic", topic)}, nil
}

// exchangeFetchWait is the exchange's consumer's default Fetch.MaxWait, shorter than a
// Source's 250ms. A repartition topic is read right after each batch's transaction commits,
// and the broker answers the requests of a connection one at a time: the group's offset
// commit (and heartbeat) waits behind a fetch that waits for records. With 250ms, a drain's
// every batch waited 85-230ms on its downstream commit; with 50ms, 30-50ms.
const exchangeFetchWait = 50 * time.Millisecond

// Topic returns the repartition topic.
func (e *Exchange[T]) Topic() string { return e.topic }

// Sent returns how many records the broker acknowledged, and their bytes (values, as
// stored before compression).
func (e *Exchange[T]) Sent() (records, bytes int64) { return e.sent.Load(), e.sentBytes.Load() }

// SentMessages returns how many Kafka messages carried the records that Sent counts: a
// message packs the records of one partition and Send (see the record format).
func (e *Exchange[T]) SentMessages() int64 { return e.sentMsgs.Load() }

// Stats reports the consumer side's records, bytes and lag (stream.SourceStats).
func (e *Exchange[T]) Stats() stream.SourceStats { return e.src.Stats() }

var _ Transactional = (*Exchange[int])(nil)

// transaction makes the Exchange a Transactional: a Producer whose output is made from the
// repartition's records (downstream of stream.Repartition) binds to it with
// WithExactlyOnce(exchange), so that its messages are committed with the repartition
// topic's offsets, and its replay is what the read-back covers. Binding such a Producer to
// the pipeline's input Source instead would commit the output with offsets it does not
// depend on: a crash between the two commits loses or repeats messages.
func (e *Exchange[T]) transaction() *txn { return e.src.transaction() }

// TransactionalID returns the transactional id of the exactly-once producer of the
// Producers bound to the Exchange, or "" when none is bound.
func (e *Exchange[T]) TransactionalID() string { return e.src.TransactionalID() }

// producerConfig is the sarama configuration of the Exchange's producer: the Config's,
// WithSaramaConfig's, then what the repartition's order needs, whatever those set.
func (e *Exchange[T]) producerConfig() (*sarama.Config, error) {
	sc, err := e.cfg.sarama(roleProducer)
	if err != nil {
		return nil, err
	}
	if e.o.tune != nil {
		e.o.tune(sc)
	}
	// The downstream dedup relies on each partition's order: an idempotent producer, every
	// replica's acknowledgement, one request in flight, whatever WithSaramaConfig set (as the
	// transactional producer does). Without idempotence a retried request could land after
	// the next one, and the downstream would drop records as copies without a word.
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	// A message that failed for good stops the pipeline's batch (Send hands nothing later of
	// its partition over, see "Repartition" in the package documentation): retry transient
	// errors for more than an hour (sarama sizes a table per partition by the maximum), and
	// refuse oversized records before anything is sent (see Send).
	sc.Producer.Retry.Max = exchangeRetries
	sc.Producer.Retry.Backoff = 0
	sc.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(100*time.Millisecond<<min(retries, 6), 5*time.Second)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	// Send hands over a whole batch and waits for it: waiting for more messages before a
	// flush (the Producer's 5 ms) only adds latency to every batch.
	sc.Producer.Flush.Frequency = time.Millisecond
	sc.Metadata.AllowAutoTopicCreation = false
	return sc, nil
}

// Open implements stream.Exchange: it connects the producer, creates the topic if it does
// not exist (with the configured partition count and replication factor) and returns its
// partition count. An existing topic with another partition count is an error wrapping
// ErrPartitionMismatch: the pipeline's keys would move to other partitions, away from the
// state and dedup marks of their old ones.
func (e *Exchange[T]) Open(ctx context.Context) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, ErrClosed
	}
	if e.parts > 0 {
		return e.parts, nil
	}
	sc, err := e.producerConfig()
	if err != nil {
		return 0, err
	}
	warnInsecure(e.log, sc)

	type result struct {
		client    sarama.Client
		n, maxMsg int
		err       error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(e.cfg.Brokers, sc)
		if err != nil {
			done <- result{err: connectError(&e.cfg, err)}
			return
		}
		n, err := e.ensure(ctx, c, sc)
		var maxMsg int
		if err == nil {
			maxMsg = e.messageLimit(c, sc.Producer.MaxMessageBytes)
		}
		done <- result{c, n, maxMsg, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		go func() {
			if r := <-done; r.client != nil {
				_ = r.client.Close()
			}
		}()
		return 0, ctx.Err()
	case r = <-done:
	}
	client := r.client
	if r.err != nil {
		if client != nil {
			_ = client.Close()
		}
		return 0, r.err
	}
	// The producer takes its configuration from the client's, sc: its batches must fit the
	// topic too.
	sc.Producer.MaxMessageBytes = r.maxMsg
	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return 0, fmt.Errorf("kafka: exchange producer: %w", err)
	}
	e.client, e.ap, e.parts, e.maxMsg = client, ap, r.n, r.maxMsg
	e.log.Debug("kafka: exchange open", "partitions", r.n)
	return r.n, nil
}

// ensure works out the partition count and replication factor and makes sure the topic
// exists with that count.
func (e *Exchange[T]) ensure(ctx context.Context, client sarama.Client, sc *sarama.Config) (int, error) {
	want := e.o.partitions
	if want == 0 {
		for _, t := range e.o.topics {
			if err := client.RefreshMetadata(t); errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				return 0, fmt.Errorf("%w: source topic %q does not exist (the exchange %q takes its partition count from it): %w",
					ErrTopicNotFound, t, e.topic, redact(&e.cfg, err))
			} else if err != nil {
				return 0, fmt.Errorf("kafka: exchange %q: partitions of source topic %q: %w", e.topic, t, redact(&e.cfg, err))
			}
			ps, err := client.Partitions(t)
			if err != nil {
				return 0, fmt.Errorf("kafka: exchange %q: partitions of source topic %q: %w", e.topic, t, redact(&e.cfg, err))
			}
			want = max(want, int32(len(ps)))
		}
	}
	if want <= 0 {
		return 0, fmt.Errorf("kafka: exchange %q: the source topics have no partitions", e.topic)
	}
	repl := e.o.replication
	if repl == 0 {
		repl = int16(min(3, len(client.Brokers())))
		repl = max(repl, 1)
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	got, created, err := ensureTopic(&e.cfg, sc, e.topic, want, repl, repartitionTopicConfig(sc.Producer.MaxMessageBytes))
	if err != nil {
		return 0, err
	}
	if got != want {
		how := "WithPartitions"
		if e.o.partitions == 0 {
			how = "the source topics' partition count (the default)"
		}
		return 0, fmt.Errorf("%w: topic %q has %d partitions, the exchange wants %d (from %s): keep %d with kafka.WithPartitions(%d), "+
			"or stop every instance and let the pipeline drain before deleting the topic, since a record still in it is lost with it",
			ErrPartitionMismatch, e.topic, got, want, how, got, got)
	}
	if err := client.RefreshMetadata(e.topic); err != nil {
		return 0, fmt.Errorf("kafka: exchange %q: metadata: %w", e.topic, redact(&e.cfg, err))
	}
	if err := e.checkOwner(client, got, created); err != nil {
		return 0, err
	}
	return int(got), nil
}

// messageLimit returns the largest message the producer may send to the topic: its
// MaxMessageBytes (producerMax), or less when the topic's max.message.bytes allows less (a
// topic made by an earlier release, or changed by an administrator). A limit that cannot be
// read is not an error: producerMax is used, with a warning.
func (e *Exchange[T]) messageLimit(client sarama.Client, producerMax int) int {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err == nil {
		// admin shares client: closing it would close the client too.
		var rs []*sarama.ConfigResourceResult
		rs, err = admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: e.topic, ConfigNames: []string{"max.message.bytes"}}},
			sarama.DescribeConfigsOptions{})
		var entries []sarama.ConfigEntry
		if err == nil && len(rs) == 1 && rs[0].ErrorCode != sarama.ErrNoError {
			err = &sarama.DescribeConfigError{Err: rs[0].ErrorCode, ErrMsg: rs[0].ErrorMsg}
		} else if err == nil && len(rs) == 1 {
			entries = rs[0].Configs
		}
		if n := configInt(entries, "max.message.bytes"); err == nil && n > 0 {
			// The topic's limit is on a record batch: the inverse of repartitionTopicConfig.
			return min(producerMax, n-batchOverhead-sizeSlack)
		} else if err == nil {
			err = errors.New("no max.message.bytes in the topic's configuration")
		}
	}
	e.log.Warn("kafka: exchange: could not read the topic's max.message.bytes; messages are sized to the producer's MaxMessageBytes",
		"max_message_bytes", producerMax, "err", redact(&e.cfg, err))
	return producerMax
}

// Run implements stream.Source: it consumes the topic as a member of the pipeline's consumer
// group until ctx ends (see Source.Run). When the pipeline closes the input (every upstream
// partition ended), Run goes on until the pipeline stops it.
func (e *Exchange[T]) Run(ctx context.Context, in *stream.Input[stream.Shuffled[T]]) error {
	return e.src.Run(ctx, in)
}

// RegistersPartitions implements stream.PartitionRegistrar: every session of the exchange's
// consumer registers its claims with the pipeline in Setup (stream.Input.Resume and Assign),
// with none when the member got no partition of the topic (other instances own them), before
// it pushes a record. So a pipeline that runs it waits for its consumer to join the group
// before its first batch.
func (e *Exchange[T]) RegistersPartitions() bool { return true }

// Origin maps a partition id of the exchange's downstream side to the repartition topic and
// its partition (stream.Originator). It takes the exchange's own id, not the pipeline's: the
// exchange is a later source of its pipeline than the input, so map a pipeline partition id
// (a late record's Partition) with stream.Pipeline.Origin instead.
func (e *Exchange[T]) Origin(part int32) (topic string, partition int32, ok bool) {
	return e.src.Origin(part)
}

// Commit implements stream.Source: the positions and their checkpoints (which hold the
// repartition's dedup and watermark state) are committed as the group's offsets and offset
// metadata (see Source.Commit).
func (e *Exchange[T]) Commit(ctx context.Context, pos []stream.Position) error {
	return e.src.Commit(ctx, pos)
}
