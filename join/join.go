// The inputs and outputs of the joins: Side (the tagged union both inputs travel as), Tag and
// CoPartition, which route both inputs through one repartition, the rows (Joined), the late
// records (Late), the Output handle, and the constructors Interval and Window.

package join

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// Side is a record of either input of a join: a left record (Left, IsRight false) or a right
// one (Right, IsRight true). Both inputs travel through the one repartition of a join as
// stream.Pair[K, Side[A, B]], so the exchange's codec must carry the three fields. The event
// time travels as the element's own (stream.Elem.Time, stream.Shuffled.Time).
type Side[A, B any] struct {
	Left    A
	Right   B
	IsRight bool
}

// Joined is one row of a join: a left and a right record of the same key that match, or,
// in a LeftOuter join, a left record that found none (Matched false, Right the zero value,
// RightTime the zero time).
type Joined[K comparable, A, B any] struct {
	Key     K
	Left    A
	Right   B
	Matched bool
	// LeftTime and RightTime are the records' event times.
	LeftTime, RightTime time.Time
	// Time is the row's event time: the later of the two records' (max(LeftTime, RightTime)),
	// LeftTime for an unmatched row. It is also the element's event time in the stream.
	Time time.Time
	// Start and End bound the window of a Window join, [Start, End); zero for Interval.
	Start, End time.Time
	// Partition is the (repartition's) partition whose state made the row.
	Partition int32
}

// Late is a record that came too late to be joined: its event time was behind the join's
// watermark at its position, so partners it could have had may already have been dropped
// (Interval), or its window had closed (Window). The side stream of Late records is where
// nothing is lost: route it to a dead-letter output.
type Late[K comparable, A, B any] struct {
	Key       K
	Side      Side[A, B]
	EventTime time.Time
	// Watermark is the join's watermark at the record (see "Watermark" in the package
	// documentation).
	Watermark time.Time
	// Partition and Offset are the record's pipeline partition id and offset as the join
	// read it: the repartition's partition and offset, after one.
	Partition int32
	Offset    int64
	// Upstream is, for a record read through a repartition (Interval, Window, or a stream
	// repartitioned by stream.RepartitionBy), where the repartition read it: the input
	// record, whose topic outlives the repartition's (stream.PartitionContext.UpstreamAt).
	// nil elsewhere and when the join cannot tell (records of several input records with one
	// event time in one packed repartition message). DeadLetter names it.
	Upstream *stream.Upstream
	// Reason is stream.ReasonLate.
	Reason string
}

// Output is what Interval and Window return: the stream of rows and the side stream of late
// records.
type Output[K comparable, A, B any] struct {
	joined *stream.Stream[Joined[K, A, B]]
	late   *stream.Stream[Late[K, A, B]]
	lateN  *atomic.Int64
}

// Joined returns the stream of rows. A pair is emitted in the batch in which its second
// record arrives; an unmatched row of a LeftOuter join in the batch in which the watermark
// passes the last moment a partner could have.
func (o *Output[K, A, B]) Joined() *stream.Stream[Joined[K, A, B]] { return o.joined }

// Late returns the side stream of late records.
func (o *Output[K, A, B]) Late() *stream.Stream[Late[K, A, B]] { return o.late }

// LateCount returns the number of late records so far. Safe for concurrent use.
func (o *Output[K, A, B]) LateCount() int64 { return o.lateN.Load() }

// Tag turns the two inputs of a join into one stream of Sides: each element keeps its key,
// event time and source offset. The result is what a join's repartition sends; CoPartition
// repartitions it, and tests feed it to streamtest.NewRepartition.
func Tag[K comparable, A, B any](a *stream.Stream[stream.Pair[K, A]], b *stream.Stream[stream.Pair[K, B]]) *stream.Stream[stream.Pair[K, Side[A, B]]] {
	l := stream.Map(a, func(p stream.Pair[K, A]) stream.Pair[K, Side[A, B]] {
		return stream.Pair[K, Side[A, B]]{Key: p.Key, Value: Side[A, B]{Left: p.Value}}
	})
	r := stream.Map(b, func(p stream.Pair[K, B]) stream.Pair[K, Side[A, B]] {
		return stream.Pair[K, Side[A, B]]{Key: p.Key, Value: Side[A, B]{Right: p.Value, IsRight: true}}
	})
	return l.Union(r)
}

// CoPartition tags both inputs (Tag) and routes them through one repartition over ex
// (stream.Repartition: partition stream.HashKey(key) % n), so that every record of a key, from
// either input, whatever source and partition it came from, meets in one partition of the
// result, whose watermark is the minimum over the upstream partitions of both inputs.
func CoPartition[K comparable, A, B any](a *stream.Stream[stream.Pair[K, A]], b *stream.Stream[stream.Pair[K, B]], name string, ex stream.Exchange[stream.Pair[K, Side[A, B]]]) *stream.Stream[stream.Pair[K, Side[A, B]]] {
	return stream.Repartition(Tag(a, b), name, ex)
}

// Interval joins a and b on their keys in event time, like Flink's interval join: a left
// record at time ta and a right record at time tb of the same key match when
// ta-lower <= tb <= ta+upper. Both inputs go through one repartition over ex, named by
// WithName (see CoPartition). A negative bound, a nil stream or exchange, or a bad option
// returns an error wrapping ErrInvalidOption; nothing is added to the pipeline then.
func Interval[K comparable, A, B any](a *stream.Stream[stream.Pair[K, A]], b *stream.Stream[stream.Pair[K, B]], ex stream.Exchange[stream.Pair[K, Side[A, B]]], lower, upper time.Duration, opts ...Option) (*Output[K, A, B], error) {
	cfg := newConfig(opts)
	errs := append(cfg.errs, checkInputs(a, b, ex), checkInterval(lower, upper))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return IntervalOn(CoPartition(a, b, cfg.name, ex), lower, upper, opts...)
}

// IntervalOn is Interval over a stream that is already co-partitioned: the output of
// CoPartition, or of Tag and a repartition of the caller's (streamtest.NewRepartition). It
// may also be a Tag of two streams of the same source partitions, keyed alike (two event
// types of one topic keyed by the join key), with the weaker guarantees said in the package
// documentation ("Outside a repartition").
func IntervalOn[K comparable, A, B any](s *stream.Stream[stream.Pair[K, Side[A, B]]], lower, upper time.Duration, opts ...Option) (*Output[K, A, B], error) {
	cfg := newConfig(opts)
	errs := cfg.errs
	if s == nil {
		errs = append(errs, invalid("nil stream"))
	}
	errs = append(errs, checkInterval(lower, upper))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	lo, up := int64(lower), int64(upper)
	params := fmt.Sprintf("interval lower=%v upper=%v kind=%v", lower, upper, cfg.kind)
	return build(s, cfg, params, func() engine[K, A, B] { return newIntervalEngine[K, A, B](lo, up) }), nil
}

// Window joins a and b on their keys within event-time tumbling windows of the given size,
// like Kafka Streams' windowed KStream-KStream join over a tumbling window: a left and a
// right record of the same key match when they fall in the same window [k*size, (k+1)*size).
// Pairs are emitted as soon as both records are there; a window's state is dropped when the
// watermark reaches its end (and a LeftOuter join then emits its unmatched left records).
// Both inputs go through one repartition over ex, named by WithName. A size that is not
// positive, a nil stream or exchange, or a bad option returns an error wrapping
// ErrInvalidOption.
func Window[K comparable, A, B any](a *stream.Stream[stream.Pair[K, A]], b *stream.Stream[stream.Pair[K, B]], ex stream.Exchange[stream.Pair[K, Side[A, B]]], size time.Duration, opts ...Option) (*Output[K, A, B], error) {
	cfg := newConfig(opts)
	errs := append(cfg.errs, checkInputs(a, b, ex), checkSize(size))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return WindowOn(CoPartition(a, b, cfg.name, ex), size, opts...)
}

// WindowOn is Window over a stream that is already co-partitioned (see IntervalOn).
func WindowOn[K comparable, A, B any](s *stream.Stream[stream.Pair[K, Side[A, B]]], size time.Duration, opts ...Option) (*Output[K, A, B], error) {
	cfg := newConfig(opts)
	errs := cfg.errs
	if s == nil {
		errs = append(errs, invalid("nil stream"))
	}
	errs = append(errs, checkSize(size))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sz := int64(size)
	params := fmt.Sprintf("window size=%v kind=%v", size, cfg.kind)
	return build(s, cfg, params, func() engine[K, A, B] { return newWindowEngine[K, A, B](sz) }), nil
}

func checkInputs[K comparable, A, B any](a *stream.Stream[stream.Pair[K, A]], b *stream.Stream[stream.Pair[K, B]], ex stream.Exchange[stream.Pair[K, Side[A, B]]]) error {
	switch {
	case a == nil || b == nil:
		return invalid("nil input stream")
	case isNil(ex):
		// also a nil *kafka.Exchange in the interface (NewExchange's result next to an
		// error), which would panic in the repartition
		return invalid("nil exchange")
	case a.Pipeline() != b.Pipeline():
		return invalid("the inputs belong to different pipelines")
	}
	return nil
}

func checkInterval(lower, upper time.Duration) error {
	if lower < 0 || upper < 0 {
		return invalid("interval bounds lower %v, upper %v: must not be negative", lower, upper)
	}
	return nil
}

func checkSize(size time.Duration) error {
	if size <= 0 {
		return invalid("window size %v: must be positive", size)
	}
	return nil
}

func build[K comparable, A, B any](s *stream.Stream[stream.Pair[K, Side[A, B]]], cfg config, params string, mk func() engine[K, A, B]) *Output[K, A, B] {
	op := &operator[K, A, B]{kind: cfg.kind, params: params, newEngine: mk, parts: map[int32]*part[K, A, B]{}}
	rows := stream.Apply(s, cfg.name, stream.Operator[stream.Pair[K, Side[A, B]], Joined[K, A, B]](op))
	late := stream.Apply(rows, cfg.name+".late", stream.Operator[Joined[K, A, B], Late[K, A, B]](&lateDrain[K, A, B]{op: op}))
	return &Output[K, A, B]{joined: rows, late: late, lateN: &op.lateN}
}
