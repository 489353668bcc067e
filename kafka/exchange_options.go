// The Exchange's options: the repartition topic's partition count and replication.

package kafka

import (
	"math"
	"slices"
	"time"
)

// ExchangeOption configures an Exchange. WithLogger, WithSaramaConfig and
// WithTransactionalID are ExchangeOptions too.
type ExchangeOption interface{ applyExchange(*exchangeOptions) }

type exchangeOptions struct {
	common
	partitions  int32
	replication int16
	topics      []string // of WithPartitionsOf
	txnID       string   // of WithTransactionalID
	purge       time.Duration
	joinDelay   time.Duration // a test hook (joindelay.go)
	errs        []error
}

type exchangeOpt func(*exchangeOptions)

func (f exchangeOpt) applyExchange(o *exchangeOptions) { f(o) }
func (f commonOpt) applyExchange(o *exchangeOptions)   { f(&o.common) }

// WithPartitions sets the number of partitions of the repartition topic. Default: the
// largest partition count among the topics of WithPartitionsOf, or else of Config.Topics
// (as Kafka Streams sizes its repartition topics).
func WithPartitions(n int) ExchangeOption {
	return exchangeOpt(func(o *exchangeOptions) {
		if n <= 0 || n > 1<<partitionBits {
			o.errs = append(o.errs, invalid("WithPartitions", "%d: want 1 to %d", n, 1<<partitionBits))
		}
		o.partitions = int32(n)
	})
}

// WithPartitionsOf sizes the repartition topic like the topics src reads: the largest
// partition count among them, looked up when the exchange opens.
func WithPartitionsOf[V any](src *Source[V]) ExchangeOption {
	return exchangeOpt(func(o *exchangeOptions) {
		if src == nil {
			o.errs = append(o.errs, invalid("WithPartitionsOf", "nil source"))
			return
		}
		o.topics = slices.Clone(src.cfg.Topics)
	})
}

// WithReplication sets the replication factor the repartition topic is created with.
// Default: 3, or the number of brokers if fewer.
func WithReplication(n int) ExchangeOption {
	return exchangeOpt(func(o *exchangeOptions) {
		if n <= 0 || n > math.MaxInt16 {
			o.errs = append(o.errs, invalid("WithReplication", "%d: must be positive", n))
		}
		o.replication = int16(n)
	})
}
