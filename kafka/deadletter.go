// DeadLetterSink: dead letters written to a Kafka topic (their messages: deadletter_message.go).

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// DeadLetterSink is a stream.DeadLetterSink that writes dead letters to a Kafka topic with an
// idempotent producer (see DeadLetterMessage for the message and its headers).
//
// A dead letter must always be writable: before its first write the sink reads the topic's
// max.message.bytes (or, for a topic that does not exist yet, the broker's
// message.max.bytes) with DescribeConfigs and sizes its producer to it; if the limits cannot
// be read it assumes 1,000,000 bytes and logs a warning. A dead letter larger than the limit
// is written cut down to fit, marked with HeaderTruncated, HeaderOriginalSize and
// HeaderValueSHA256, its x-fleetstream-* headers intact (see fitDeadLetter's rules in
// HeaderTruncated). Errors follow the Producer's: encoding, size and authorization errors
// are permanent (stream.IsPermanent), others are retried by the caller. So is a topic that
// does not exist and will not be created (the broker's auto.create.topics.enable is false,
// or the sink's client does not ask, Metadata.AllowAutoTopicCreation): an error wrapping
// ErrTopicNotFound that names it, from Prepare, or from a write that the broker answered
// UNKNOWN_TOPIC_OR_PARTITION once a look confirms it, where a retry would wait for ever.
//
// Limit: in per-source mode (topic ""), the producer is sized to the smallest limit among the
// broker's and the topics it knew when it connected; a dead-letter topic created later with
// a max.message.bytes below the broker's still receives dead letters that fit its own limit
// one by one, but the producer may batch several into a request that the topic refuses (a
// permanent error).
type DeadLetterSink struct {
	topic string // "" means per source topic: "<topic>.dlq"
	cfg   Config
	log   *slog.Logger
	p     *Producer[Message]

	// asks is whether the sink's client asks the broker to create a topic it writes to
	// (sarama's Metadata.AllowAutoTopicCreation after the user's tune).
	asks bool

	mu       sync.Mutex
	limits   map[string]int // max.message.bytes by topic
	broker   int            // the broker's message.max.bytes; 0 until read
	creates  bool           // the broker's auto.create.topics.enable
	read     bool           // the broker's settings were read (else broker is the default)
	maxBytes int            // the producer's Producer.MaxMessageBytes, fixed at its first write
	written  int64
	cut      int64
}

var (
	_ stream.DeadLetterSink = (*DeadLetterSink)(nil)
	_ stream.Closer         = (*DeadLetterSink)(nil)
)

// NewDeadLetterSink returns a DeadLetterSink writing to topic, or, when topic is "", to
// "<source topic>.dlq" of each dead letter (then a dead letter without a Topic is a
// permanent error). Only Config's connection settings are used; nothing connects before the
// first Write. Close it when done (stream.To does). Its producer sends each write at once,
// without the other producers' linger: a Source's claim waits for its dead letters' write.
// WithExactlyOnce is refused: dead letters are written outside transactions.
func NewDeadLetterSink(cfg Config, topic string, opts ...ProducerOption) (*DeadLetterSink, error) {
	o := producerOptions{common: common{logger: slog.New(slog.DiscardHandler)}}
	nils := applyOpts(opts, func(opt ProducerOption) { opt.applyProducer(&o) })
	errs := append(o.errs, nils...)
	if topic != "" {
		if err := topicName("topic", topic); err != nil {
			errs = append(errs, err)
		}
	}
	if o.eos != nil {
		errs = append(errs, invalid("WithExactlyOnce", "a DeadLetterSink writes each dead letter before the offsets past it are committed, outside any transaction"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d := &DeadLetterSink{topic: topic, cfg: cfg, log: o.logger.With("component", "kafka.DeadLetterSink"), limits: make(map[string]int), asks: true}
	user := o.tune
	if sc, err := cfg.sarama(roleProducer); err == nil { // else NewProducer reports it
		if user != nil {
			user(sc)
		}
		d.asks = sc.Metadata.AllowAutoTopicCreation
	}
	tune := func(sc *sarama.Config) {
		// The claim that writes dead letters waits for their acknowledgement before it pushes
		// the records after them: the producers' linger (Flush.Frequency, 5 ms) only made
		// every write 5 ms longer (254 writes of one record each in a drain of the demo
		// topic, about 6 ms apiece). With all three at zero sarama sends at once; a zero
		// frequency with a byte or message trigger would wait for the trigger for ever.
		sc.Producer.Flush.Frequency, sc.Producer.Flush.Bytes, sc.Producer.Flush.Messages = 0, 0, 0
		if user != nil {
			user(sc)
			if holdsLoneWrite(sc) {
				// The user set a trigger but no frequency: give the lone dead letter its
				// way out (the other producers' linger).
				sc.Producer.Flush.Frequency = producerLinger
			}
		}
		d.mu.Lock()
		d.maxBytes = d.producerLimitLocked()
		sc.Producer.MaxMessageBytes = d.maxBytes
		d.mu.Unlock()
		sc.Producer.Flush.Bytes = min(sc.Producer.Flush.Bytes, sc.Producer.MaxMessageBytes)
	}
	def := topic
	if def == "" {
		def = "dead-letters" // never used: every message names its topic
	}
	p, err := NewProducer(cfg, def, EncoderFunc[Message](identity), WithLogger(o.logger), WithSaramaConfig(tune))
	if err != nil {
		return nil, err
	}
	p.ownTopics = false // Write looks at missing topics itself (checkMissing)
	d.p = p
	return d, nil
}

func identity(m Message) (Message, error) { return m, nil }

// Topic returns the fixed dead-letter topic, or "" in per-source mode.
func (d *DeadLetterSink) Topic() string { return d.topic }

// Written returns how many dead letters the broker acknowledged; Truncated how many of them
// were cut down to fit.
func (d *DeadLetterSink) Written() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.written
}

// Truncated returns how many acknowledged dead letters were cut down to fit their topic.
func (d *DeadLetterSink) Truncated() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cut
}

// producerLimitLocked is the smallest limit known, for the producer's MaxMessageBytes.
func (d *DeadLetterSink) producerLimitLocked() int {
	n := d.broker
	for _, l := range d.limits {
		if n == 0 || l < n {
			n = l
		}
	}
	if n <= 0 {
		n = defaultMaxMessageBytes
	}
	// sarama refuses a MaxMessageBytes of MaxRequestSize or more.
	return min(n, int(sarama.MaxRequestSize)-(64<<10))
}

// destination returns the topic of dl.
func (d *DeadLetterSink) destination(dl *stream.DeadLetter) (string, error) {
	if d.topic != "" {
		return d.topic, nil
	}
	if dl.Topic == "" {
		return "", stream.Permanent(fmt.Errorf("kafka: dead letter (%s: %s) has no source topic and the sink has no fixed topic", dl.Reason, dl.Err))
	}
	return dl.Topic + ".dlq", nil
}

// Prepare reads the max.message.bytes of the given topics (the sink's fixed topic, or, in
// per-source mode, the dead-letter topics it will write to) and of the broker, so that the
// producer is sized to them. Write calls it for topics it has not seen; calling it before
// the first Write with every topic makes the producer's size account for all of them. A
// limit that cannot be read is not an error: the default is used, with a warning.
func (d *DeadLetterSink) Prepare(ctx context.Context, topics ...string) error {
	if d.topic != "" {
		topics = []string{d.topic}
	}
	d.mu.Lock()
	var todo []string
	for _, t := range topics {
		if _, ok := d.limits[t]; !ok && !slices.Contains(todo, t) {
			todo = append(todo, t)
		}
	}
	needBroker := d.broker == 0
	d.mu.Unlock()
	if len(todo) == 0 && !needBroker {
		return nil
	}
	r, err := describe(ctx, &d.cfg, todo)
	if err != nil {
		return err
	}
	if r.err != nil {
		d.log.Warn("kafka: could not read max.message.bytes; dead letters are sized to the default",
			"topics", todo, "default", defaultMaxMessageBytes, "err", redact(&d.cfg, r.err))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.broker > 0 {
		d.broker, d.creates, d.read = r.broker, r.creates, true
	} else if d.broker == 0 {
		d.broker = defaultMaxMessageBytes
	}
	var missing []string
	for _, t := range todo {
		l, ok := r.topics[t]
		if !ok && slices.Contains(r.missing, t) && !d.createsLocked() {
			missing = append(missing, t) // asked again at the next Prepare
			continue
		}
		if !ok {
			l = d.broker // not created yet: it will get the broker's default
		}
		d.limits[t] = l
	}
	if len(missing) > 0 {
		return d.missingErr(missing, nil)
	}
	return nil
}

// limitsResult is what describeLimits read.
type limitsResult struct {
	broker  int  // message.max.bytes; 0 if not read
	creates bool // auto.create.topics.enable, read with broker
	topics  map[string]int
	missing []string // topics the broker does not have
	err     error
}

// describe runs describeLimits for topics, or returns ctx's error first.
func describe(ctx context.Context, cfg *Config, topics []string) (limitsResult, error) {
	done := make(chan limitsResult, 1)
	go func() { done <- describeLimits(cfg, topics) }()
	select {
	case <-ctx.Done():
		return limitsResult{}, ctx.Err()
	case r := <-done:
		return r, nil
	}
}

// createsLocked reports whether a write to a topic that does not exist creates it: the
// sink's client asks for it and the broker does it. Unknown limits count as yes (the write
// will tell). d.mu is held.
func (d *DeadLetterSink) createsLocked() bool {
	return d.asks && (d.creates || !d.read)
}

// missingErr is the permanent error for dead-letter topics that do not exist and will not be
// created: a write would be retried for ever, the partition stalled at its bad record.
func (d *DeadLetterSink) missingErr(topics []string, cause error) error {
	return topicsMissing("dead-letter topic", topics, d.asks, cause)
}

// topicsMissing is the permanent error for topics (what they are, e.g. "dead-letter
// topic") that do not exist and will not be created: asks is whether the writing client asks
// for a topic to be created; if it does, the broker does not create topics.
func topicsMissing(what string, topics []string, asks bool, cause error) error {
	why := "the broker does not create topics (auto.create.topics.enable=false)"
	if !asks {
		why = "the sink's client does not ask for topics to be created (Metadata.AllowAutoTopicCreation=false)"
	}
	err := fmt.Errorf("%w: %s %s does not exist and %s: create it", ErrTopicNotFound, what, strings.Join(quoteAll(topics), ", "), why)
	if cause != nil {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return stream.Permanent(err)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// describeLimits reads the broker's message.max.bytes and auto.create.topics.enable, the
// max.message.bytes of the topics that exist, and which do not.
func describeLimits(cfg *Config, topics []string) limitsResult {
	sc, err := cfg.sarama(roleProducer)
	if err != nil {
		return limitsResult{err: err}
	}
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Metadata.Retry.Max = 2
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
	if err != nil {
		return limitsResult{err: connectError(cfg, err)}
	}
	defer admin.Close()
	brokers, controller, err := admin.DescribeCluster()
	if err != nil {
		return limitsResult{err: err}
	}
	id := controller
	if id < 0 && len(brokers) > 0 {
		id = brokers[0].ID()
	}
	res := make([]*sarama.ConfigResource, 0, len(topics)+1)
	if id >= 0 {
		res = append(res, &sarama.ConfigResource{Type: sarama.BrokerResource, Name: strconv.Itoa(int(id)), ConfigNames: []string{"message.max.bytes", "auto.create.topics.enable"}})
	}
	for _, t := range topics {
		res = append(res, &sarama.ConfigResource{Type: sarama.TopicResource, Name: t, ConfigNames: []string{"max.message.bytes"}})
	}
	results, err := admin.DescribeConfigs(res, sarama.DescribeConfigsOptions{})
	if err != nil {
		return limitsResult{err: err}
	}
	var errs []error
	out := limitsResult{topics: make(map[string]int, len(topics))}
	for _, r := range results {
		switch {
		case r.ErrorCode == sarama.ErrUnknownTopicOrPartition:
			out.missing = append(out.missing, r.Name) // not created yet
		case r.ErrorCode != sarama.ErrNoError:
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, &sarama.DescribeConfigError{Err: r.ErrorCode, ErrMsg: r.ErrorMsg}))
		case r.Type == sarama.BrokerResource:
			out.broker = configInt(r.Configs, "message.max.bytes")
			out.creates = configValue(r.Configs, "auto.create.topics.enable") != "false"
		case r.Type == sarama.TopicResource:
			if n := configInt(r.Configs, "max.message.bytes"); n > 0 {
				out.topics[r.Name] = n
			}
		}
	}
	out.err = errors.Join(errs...)
	return out
}

func configValue(entries []sarama.ConfigEntry, name string) string {
	for _, e := range entries {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func configInt(entries []sarama.ConfigEntry, name string) int {
	for _, e := range entries {
		if e.Name == name {
			if n, err := strconv.Atoi(e.Value); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// Write writes batch and returns once the broker acknowledged every dead letter. Dead
// letters larger than their topic's limit are written truncated (see DeadLetterSink).
func (d *DeadLetterSink) Write(ctx context.Context, batch []stream.DeadLetter) error {
	if len(batch) == 0 {
		return nil
	}
	msgs := make([]Message, len(batch))
	topics := make([]string, len(batch))
	for i := range batch {
		t, err := d.destination(&batch[i])
		if err != nil {
			return err
		}
		topics[i] = t
	}
	if err := d.Prepare(ctx, topics...); err != nil {
		return err
	}
	var cut int64
	d.mu.Lock()
	for i := range batch {
		limit := d.limits[topics[i]]
		if d.maxBytes > 0 {
			limit = min(limit, d.maxBytes)
		} else {
			limit = min(limit, d.producerLimitLocked())
		}
		msgs[i] = fitDeadLetter(topics[i], &batch[i], limit-sizeSlack)
		if _, ok := msgs[i].Header(HeaderTruncated); ok {
			cut++
		}
	}
	d.mu.Unlock()
	if err := d.p.Write(ctx, msgs); err != nil {
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) && !stream.IsPermanent(err) {
			// Deleted since Prepare (or the broker's setting changed): retried for ever,
			// the write would stall its partition at the bad record.
			return d.checkMissing(ctx, topics, err)
		}
		return err
	}
	d.mu.Lock()
	d.written += int64(len(msgs))
	d.cut += cut
	d.mu.Unlock()
	return nil
}

// checkMissing returns a permanent error if any of topics does not exist and will not be
// created, else err (to be retried).
func (d *DeadLetterSink) checkMissing(ctx context.Context, topics []string, err error) error {
	var uniq []string
	for _, t := range topics {
		if !slices.Contains(uniq, t) {
			uniq = append(uniq, t)
		}
	}
	r, cerr := describe(ctx, &d.cfg, uniq)
	if cerr != nil || r.broker == 0 {
		return err // not known: retried
	}
	d.mu.Lock()
	d.creates, d.read = r.creates, true
	creates := d.createsLocked()
	if len(r.missing) > 0 && !creates {
		for _, t := range r.missing {
			delete(d.limits, t) // Prepare asks again
		}
	}
	d.mu.Unlock()
	if len(r.missing) > 0 && !creates {
		return d.missingErr(r.missing, err)
	}
	return err
}

// Close flushes and closes the producer.
func (d *DeadLetterSink) Close(ctx context.Context) error { return d.p.Close(ctx) }
