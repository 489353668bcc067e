package kafka

import (
	"time"

	"log/slog"

	"github.com/IBM/sarama"
)

// SourceOption configures a Source.
type SourceOption interface{ applySource(*sourceOptions) }

// ProducerOption configures a Producer.
type ProducerOption interface{ applyProducer(*producerOptions) }

// Option configures a Source or a Producer.
type Option interface {
	SourceOption
	ProducerOption
}

type common struct {
	logger *slog.Logger
	tune   func(*sarama.Config)
}

type sourceOptions struct {
	common
	bounded   bool
	caughtUp  time.Duration
	dlqTopic  string
	dlqWriter DeadLetterWriter
	errs      []error
}

type producerOptions struct {
	common
}

type commonOpt func(*common)

func (f commonOpt) applySource(o *sourceOptions)     { f(&o.common) }
func (f commonOpt) applyProducer(o *producerOptions) { f(&o.common) }

type sourceOpt func(*sourceOptions)

func (f sourceOpt) applySource(o *sourceOptions) { f(o) }

// WithLogger sets the logger. The default discards. Nothing secret is ever logged.
func WithLogger(l *slog.Logger) Option {
	return commonOpt(func(c *common) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithSaramaConfig lets f adjust the sarama configuration after the Config was applied, for
// settings Config does not cover. It must not turn on auto-commit or weaken the producer's
// idempotence; doing so voids the delivery guarantees.
func WithSaramaConfig(f func(*sarama.Config)) Option {
	return commonOpt(func(c *common) { c.tune = f })
}

// WithBounded makes the Source read up to the end offsets present when Run starts and then
// end its input, so the pipeline closes every window, commits and returns: a backfill.
func WithBounded() SourceOption {
	return sourceOpt(func(o *sourceOptions) { o.bounded = true })
}

// WithEndWhenCaughtUp ends the input once every partition the Source owns has been read to
// its high-water mark and no new record arrived for idle: the pipeline closes every window,
// commits and Run returns nil. It suits jobs that drain a topic and exit (the fleet demo).
func WithEndWhenCaughtUp(idle time.Duration) SourceOption {
	return sourceOpt(func(o *sourceOptions) {
		if idle <= 0 {
			o.errs = append(o.errs, invalid("WithEndWhenCaughtUp", "idle %v must be positive", idle))
			return
		}
		o.caughtUp = idle
	})
}

// WithDeadLetterTopic sends undecodable records to topic instead of "<source topic>.dlq".
func WithDeadLetterTopic(topic string) SourceOption {
	return sourceOpt(func(o *sourceOptions) {
		if topic == "" {
			o.errs = append(o.errs, invalid("WithDeadLetterTopic", "empty topic"))
		}
		o.dlqTopic = topic
	})
}

// WithDeadLetters sends undecodable records to w instead of a Kafka topic.
func WithDeadLetters(w DeadLetterWriter) SourceOption {
	return sourceOpt(func(o *sourceOptions) {
		if w == nil {
			o.errs = append(o.errs, invalid("WithDeadLetters", "nil writer"))
		}
		o.dlqWriter = w
	})
}
