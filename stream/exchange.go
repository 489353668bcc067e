// Repartition: the Exchange contract a transport (a Kafka topic) implements, and the
// repartition's construction and state. The upstream output that sends a stream's records to
// the partition of their key with sequence numbers and watermark marks is in exchange_up.go;
// the downstream side, which drops replayed duplicates and merges the marks, in
// exchange_down.go; the checks made when a repartition is built, in
// exchange_graph.go. The argument that this is exactly-once is in the package
// documentation ("Repartition").

package stream

import (
	"context"
	"fmt"
	"reflect"
)

// Shuffled is one record on a repartition's transport: a value on its way to a downstream
// partition, or a watermark mark (Mark true) that an upstream partition sends to every
// downstream partition. Transports carry every field as they are and keep the order of the
// records sent to one partition.
type Shuffled[T any] struct {
	Value T
	// Partition is the downstream partition, in [0, partitions).
	Partition int32
	// From is the upstream partition (a pipeline partition id, see PartitionSource).
	From int32
	// Seq and Sub number the upstream records: the source offset the value was derived from
	// (its event time, after RepartitionByTime), and its rank among the values of the same
	// Seq. A mark carries the next offset of its upstream partition in Seq.
	Seq int64
	Sub int32
	// Time is the value's event time in Unix nanoseconds.
	Time int64
	// Mark is set on a watermark mark: Watermark is the upstream partition's own watermark
	// (NoWatermark before its first event), Idle and End its state, and Upstreams the number
	// of partitions of the upstream source (0 if the source does not say). On a value (Mark
	// not set) Idle is never set, and End only after RepartitionByTime with WithRevisions: a
	// window's result sent in the batch in which its upstream partition's input ended, which
	// may be an early one that the next run revises. An exchange refuses other combinations
	// as corrupt (kafka.ErrCorruptRepartition).
	Mark      bool
	Idle      bool
	End       bool
	Watermark int64
	Upstreams int32
	// Run is set on an end mark (Mark and End): the run that sent it, a random number of the
	// pipeline (one per Pipeline value: one attempt of a run, a restart is another), so that
	// a downstream partition tells its own run's end from a crashed attempt's or a past
	// run's (see "Runs one after another" in the package documentation). 0 on other records,
	// and on end marks of earlier releases.
	Run uint64
}

// Exchange is the transport of a repartition, such as a Kafka topic (kafka.NewExchange) or
// an in-memory log (streamtest.NewExchange). The pipeline sends records with Send and reads
// them back as a source: Run pushes the records of the partitions this instance owns, with
// their transport offsets, in order, like any Source, and Commit receives the downstream
// positions with their checkpoints (Meta must be stored and handed back with Resume).
// An exchange that registers its partitions before their records (Input.Assign, Resume)
// should say so (PartitionRegistrar): the pipeline then checks its checkpoints before the
// first batch.
type Exchange[T any] interface {
	Source[Shuffled[T]]
	// Open prepares the transport (creates or checks its topic) and returns its number of
	// partitions. The pipeline calls it once, before the first Send.
	Open(ctx context.Context) (partitions int, err error)
	// Send writes recs, each to its Partition, keeping their order within a partition, and
	// returns once they are durable. A failed Send is retried with the same records; records
	// written twice are dropped downstream.
	Send(ctx context.Context, recs []Shuffled[T]) error
}

// PartitionRegistrar is implemented by exchanges whose source tells the pipeline its
// partitions before it pushes records: in every session (a consumer group's generation) its Run
// calls Input.Assign or Input.Resume once it knows its partitions, with none when it got none
// (another instance of the pipeline owns them). kafka.Exchange does; so does
// streamtest.Exchange.
//
// Under Pipeline.Run, no batch runs before every repartition whose exchange says so
// (RegistersPartitions returns true) registered, however late its source does (a Kafka
// consumer that joins the group after the input's records came): the checks its
// checkpoints carry (ErrInputChanged, ErrOperatorChanged) then come before the pipeline
// writes or commits anything. An exchange that does not implement it is not waited for: its
// partitions register with their first record, and a restart may then find out that its
// committed state no longer applies only after the input's first batches were written.
type PartitionRegistrar interface {
	RegistersPartitions() bool
}

// PartitionCounter is implemented by sources that know how many partitions they read in all
// (Kafka: across their topics). A repartition sends the count with its marks so that the
// downstream watermark waits for every upstream partition, including those of other
// instances that have not sent anything yet.
type PartitionCounter interface {
	PartitionCount() int
}

// shuffleNode is the pipeline's untyped view of a repartition.
type shuffleNode interface {
	open(ctx context.Context) error
	// arrived handles the downstream records of the batch just taken: duplicates and marks
	// are removed, marks set the partitions' watermarks.
	arrived(p *Pipeline)
	// owns reports whether a pipeline partition is one of the repartition's downstream ones.
	owns(part int32) bool
	// valuesSent returns the number of values (not marks) the batch sends.
	valuesSent() int
	// checkpoint returns where a downstream partition may commit at or before off, and the
	// marks as of that position, in format "x1;" if that takes at most x1Room bytes (see
	// marks.encodeWithin).
	checkpoint(part int32, off int64, x1Room int) (int64, string)
	// marks returns a downstream partition's watermark before this batch's marks and the
	// points where they moved it.
	marks(part int32) (int64, []markPoint)
	restore(part int32, offset int64, marks string) error
	// drop forgets a revoked partition, downstream or upstream.
	drop(part int32)
	// finish closes the downstream input once every upstream input ended and every
	// downstream partition received its last mark. It reports whether every upstream
	// input ended while the downstream input is still open: the end marks are on their way.
	finish(p *Pipeline) (ending bool)
	// awaitReturn says whether values or end marks the batch sent are on their way back, so
	// that the run loop starts the next batch as soon as any of them arrives instead of
	// after a tenth of the interval (see Pipeline.run).
	awaitReturn(on bool)
	duplicates() int64
}

// Repartition routes a keyed stream through an Exchange so that all records of a key meet in
// one downstream partition, whichever source partition they came from, like Kafka Streams'
// repartition topics and Flink's keyBy. The returned stream reads the exchange as a further
// source of the pipeline: its partitions are the exchange's, its watermark is the minimum of
// the watermarks of the upstream partitions (carried through the exchange as marks), and each
// upstream record reaches it exactly once after any crash or replay (see "Repartition" in the
// package documentation). Stateful operators after it give one result per key for the whole
// input.
//
// Records are numbered by their source offsets, so s must emit, per source partition, its
// elements in source-offset order across batches: streams derived from sources through
// stateless operators of the batch interval (Map, Filter, FlatMap, KeyBy, Union) and stateful
// operators that emit each record once with its own offset (a tracker) do. Window results do
// not: a stream derived from a DStream window or from an operator that implements
// WatermarkHolder (package window's event-time windows, whose results carry the position
// where their window closed, shared by the window's keys and by windows that close
// together, in an order a replay need not reproduce) is a construction error, as is one
// derived from an operator that emits records it emitted in an earlier batch again
// (UpdateStateByKey, MapWithState with a timeout, and MapWithState's snapshots); other
// operators that emit out of source order are a permanent error when it happens. Those go
// after the repartition, or, for final results of tumbling windows, through
// RepartitionByTime. name names the exchange (Kafka:
// <pipeline>-<name>-repartition). An exchange serves one repartition.
func Repartition[K comparable, V any](s *Stream[Pair[K, V]], name string, ex Exchange[Pair[K, V]]) *Stream[Pair[K, V]] {
	return RepartitionBy(s, name, ex, func(v Pair[K, V]) uint64 { return HashKey(v.Key) })
}

// RepartitionBy is Repartition for any element type, routing each element by hash (the
// element goes to partition hash % partitions). hash must be deterministic across processes.
func RepartitionBy[T any](s *Stream[T], name string, ex Exchange[T], hash func(T) uint64) *Stream[T] {
	out, _ := repartition(s, name, ex, hash, false)
	return out
}

// isNilExchange reports whether ex is nil or a nil pointer: a *kafka.Exchange left nil beside
// NewExchange's error is not a nil interface, and it panicked in Bind.
func isNilExchange[T any](ex Exchange[T]) bool {
	if ex == nil {
		return true
	}
	v := reflect.ValueOf(ex)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// repartition is RepartitionBy (RepartitionByTime if byTime); it also returns the shuffle,
// nil if the graph refused it.
func repartition[T any](s *Stream[T], name string, ex Exchange[T], hash func(T) uint64, byTime bool) (*Stream[T], *shuffle[T]) {
	p := s.p
	stub := func() *Stream[T] {
		return register(p, &Stream[T]{p: p, name: "repartition:" + name, every: 1, slide: 1,
			fn: func(*PartitionContext, []Elem[T]) []Elem[T] { return nil }})
	}
	if isNilExchange(ex) || hash == nil || name == "" {
		p.fail(invalid("Repartition %q: needs a name, an exchange and a hash", name))
		return stub(), nil
	}
	for _, sh := range p.shuffles {
		if sh.(interface{ exchange() any }).exchange() == any(ex) {
			p.fail(graphError("Repartition %q: the exchange already serves another repartition (a cycle or a shared topic)", name))
			return stub(), nil
		}
	}
	ups, err := upstreamSources(p, s.idx, !byTime)
	if err != nil {
		p.fail(graphError("Repartition %q: %v", name, err))
		return stub(), nil
	}
	if byTime {
		if err := windowResults(p, s.idx); err != nil {
			p.fail(graphError("RepartitionByTime %q: its stream %q %v", name, s.name, err))
			return stub(), nil
		}
	}
	raw := register(p, &Stream[Shuffled[T]]{p: p, name: "repartition-in:" + name, every: 1, slide: 1})
	out := elementwise(raw, "repartition:"+name, func(in []Elem[Shuffled[T]], out []Elem[T]) []Elem[T] {
		for i := range in {
			out = append(out, Elem[T]{Value: in[i].Value.Value, Time: in[i].Time, Offset: in[i].Offset})
		}
		return out
	})
	sh := &shuffle[T]{name: name, ex: ex, hash: hash, ups: ups, in: s, parts: map[int32]*downPart{}, sent: map[int32]sentMark{}, last: map[int32]int64{}}
	sh.src = newSource[Shuffled[T]](p, ex, raw)
	sh.src.inner, sh.src.repartition = true, name
	if r, ok := ex.(PartitionRegistrar); ok && r.RegistersPartitions() {
		sh.src.registers = true
	}
	if b, ok := ex.(Binder[Shuffled[T]]); ok {
		b.Bind(sh.src.in)
	}
	p.shuffles = append(p.shuffles, sh)
	p.outputs = append(p.outputs, sh)
	return out, sh
}

// RepartitionByTime is RepartitionBy for a stream whose elements come in event-time order
// rather than in source-offset order: the final results of a tumbling window (window.OnClose,
// no key limit), whose element time is their window's last instant. It is the way to
// aggregate in two phases, as Flink's local-global aggregation and Spark's partial
// aggregation do: a window per source partition combines its records into one partial result
// per key and window, the repartition moves only those, and a window after it merges them
// (see "Repartition" in the package documentation for why that is exactly once and never
// late).
//
// The elements are numbered by their event time instead of their source offset, and those
// of one time by their order. So s must emit, per source partition, every element of an
// event time in one batch, in an order that a replay reproduces, and later batches only later
// times; and a replay from any committed offset must emit again, with the same values, the
// elements of every time it emits that the first run emitted too, in the same order. A
// tumbling window's final results do: one window fires in one batch, its keys in the order of
// their first records, windows in the order of their ends, and a replay rebuilds every window
// that was open at the commit. A stream that is not made, on every path to the sources, from
// the results of event-time windows that say they come so (operators that implement
// WatermarkHolder and TimeOrderer) through stateless operators only is a construction error
// (ErrGraph) naming what it is made from: records, a window's Late stream, another stateful
// operator's output, or an operator's side output (which its TimeOrderer does not speak
// for) repeat event times across batches or send them out of order,
// as do EveryBatch partial results (even behind a Filter that keeps the final ones, which
// the graph cannot see). Nor do a sliding window (it emits keys in the order it first saw
// them, which depends on where a replay starts), sessions (those that close together come
// in the order of their keys in the window's state, which a replay need not rebuild) or a
// window with a key limit (window.WithMaxKeys admits keys by the state of every partition,
// so a replay may admit one the first run refused): a changed order shifts the ranks, and
// downstream, after a crash whose send wrote part of a time's elements, one is kept twice
// and another dropped as a copy; package window's TimeOrder says so, and the graph is
// refused. So is a stream made from windows that read one source but fire after other delays
// (a Union of windows with other graces: FireDelayer), or that read different records of it
// (a Filter before one of them: each fires on the watermark of the records it saw), whose
// ends that coincide fire in different batches. Elements of a time at or before one already sent are still a permanent
// error when it happens, from operators the graph cannot see so (a TimeOrderer that is no
// FireDelayer).
//
// A bounded run's end fires every window upstream, so a partial sent then may be early, and
// the next run on the next records sends it again complete with the same number, which the
// downstream drops as a copy: the merged window stays smaller than one run's. With
// WithRevisions, the merge after the repartition declares that it keeps, per key, window and
// upstream partition, the latest partial only, and the downstream keeps such revisions (see
// "Runs one after another" in the package documentation).
func RepartitionByTime[T any](s *Stream[T], name string, ex Exchange[T], hash func(T) uint64, opts ...RepartitionOption) *Stream[T] {
	out, sh := repartition(s, name, ex, hash, true)
	if sh != nil {
		sh.byTime = true
		sh.holders = watermarkHolders(s.p, s.idx)
		var c repartitionConfig
		for _, o := range opts {
			o.applyRepartition(&c)
		}
		sh.revisions = c.revisions
	}
	return out
}

// RepartitionOption configures RepartitionByTime.
type RepartitionOption interface{ applyRepartition(*repartitionConfig) }

type repartitionConfig struct{ revisions bool }

type revisionsOption struct{}

func (revisionsOption) applyRepartition(c *repartitionConfig) { c.revisions = true }

// WithRevisions tells RepartitionByTime that the merge after it keeps, per key and window,
// the latest value of each upstream partition, replacing an earlier one (as
// telemetry.ZoneMergeAgg does with the partition each partial carries), rather than adding
// them. Then a value sent in the batch where its upstream partition's input ended, possibly
// a bounded run's early result, is kept downstream without raising the highest number kept
// from its upstream partition, so that its revision by the next run (same number, complete)
// is kept too and replaces it. Such a value may be kept more than once (its copy from a
// replay or a rerun over the same records is indistinguishable from a revision): a merge
// that adds its values would count it twice. Without the option, copies are dropped and a
// window open at a bounded run's end is written by the next run from its early partials.
func WithRevisions() RepartitionOption { return revisionsOption{} }

// sentMark is what an upstream partition's last mark said: a mark goes again when any of
// it changed, the upstream source's partition count too (a topic that grew), so that the
// downstream waits for the new partitions without waiting for the watermark to move.
type sentMark struct {
	wm        int64
	idle, end bool
	count     int32
}

// shuffle is a repartition: the output that sends upstream records and marks, and the
// bookkeeping of its downstream partitions.
type shuffle[T any] struct {
	name   string
	ex     Exchange[T]
	hash   func(T) uint64
	ups    []int // the upstream sources
	in     *Stream[T]
	src    *source[Shuffled[T]]
	n      int // downstream partitions, once open
	opened bool

	// upstream side, per batch
	run    func(pc *PartitionContext)
	part   []Elem[T] // the partition's elements, while collecting
	out    []Shuffled[T]
	values int                // of out, values (not marks)
	sent   map[int32]sentMark // the last mark sent per upstream partition
	last   map[int32]int64    // the newest number sent per upstream partition
	fail   error              // records out of source order (see collect)
	// byTime numbers the records by event time rather than source offset (RepartitionByTime).
	byTime bool
	// revisions: values sent at their upstream partition's end are provisional (WithRevisions).
	revisions bool
	// holders are the WatermarkHolders upstream, whose watermarks cap the marks (byTime).
	holders []holder
	// ends says which end marks are this run's; ends.run is on the end marks it sends.
	ends endRule
	// inputs are the hashes of the upstream sources' inputs' names (InputIdentifier), once
	// computed (see identities).
	inputs map[inputRef]uint64

	// downstream side
	parts map[int32]*downPart
	// dropped counts the duplicates of the downstream partitions no longer held (revoked),
	// so that duplicates stays cumulative since the pipeline started.
	dropped int64
}

func (sh *shuffle[T]) exchange() any { return sh.ex }

func (sh *shuffle[T]) open(ctx context.Context) error {
	if sh.opened {
		return nil
	}
	n, err := sh.ex.Open(ctx)
	if err != nil {
		return fmt.Errorf("stream: repartition %q: %w", sh.name, err)
	}
	if n <= 0 || n >= 1<<sourceShift {
		return fmt.Errorf("stream: repartition %q: the exchange has %d partitions", sh.name, n)
	}
	sh.n, sh.opened = n, true
	sh.src.parts = n
	sh.ends.run = newRun()
	sh.ends.here = sh.readsHere
	return nil
}

// openShuffles opens every repartition's exchange.
func (p *Pipeline) openShuffles(ctx context.Context) error {
	for _, sh := range p.shuffles {
		if err := sh.open(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *source[T]) partitionCount() int {
	if s.parts > 0 {
		return s.parts // a repartition's source: the exchange's partitions
	}
	if c, ok := s.src.(PartitionCounter); ok {
		return c.PartitionCount()
	}
	return 0
}
