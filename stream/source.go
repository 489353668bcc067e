// Sources: the Source contract, From, and the adapter the run loop takes batches from. The
// bounded Input between a source and the pipeline is in input.go.

package stream

import (
	"context"
	"iter"
	"math"
	"slices"
	"time"
)

// Source feeds a pipeline. The pipeline calls Run once, in a goroutine of its own, when the
// pipeline runs; Run pushes records into in and returns nil when the input has ended (a
// bounded source), or ctx.Err() when ctx ends. Any other error stops the pipeline. A Run
// that does not return within the shutdown grace (WithShutdownGrace) of its ctx ending is
// not waited for: Pipeline.Run returns an error wrapping ErrStopTimeout that names the
// source, and closes its Input, so that it refuses what the source pushes later.
//
// Commit is called from the pipeline's run loop after a batch was acknowledged, with, for each
// partition that moved, the next offset that may be committed: every record before it was
// processed and written by every output, and no open state still needs it. Commit is never
// called concurrently with itself; a pipeline's sources commit a batch at the same time.
type Source[T any] interface {
	Run(ctx context.Context, in *Input[T]) error
	Commit(ctx context.Context, offsets []Position) error
}

// Binder is implemented by sources that push records from outside Source.Run, such as the
// queues of package streamtest. From calls Bind once with the source's input.
type Binder[T any] interface {
	Bind(in *Input[T])
}

// SourceStats is what a source may report about itself; sources that implement
// interface{ Stats() SourceStats } have it copied into every BatchStats.
type SourceStats struct {
	// Records and Bytes count what the source consumed since it started.
	Records, Bytes int64
	// DeadLetters counts the records the source sent to its dead-letter output, and
	// DeadLettersByReason splits them by DeadLetter.Reason (ReasonDecode, ReasonInvalid,
	// ReasonEventTime, ...); nil from a source that does not split them.
	DeadLetters         int64
	DeadLettersByReason map[string]int64
	// Lag is the number of records behind the end of each partition (high-water mark minus
	// committed offset), by a source-defined partition name such as "topic/3".
	Lag map[string]int64
	// Read is, by the names of Lag, the offset after the last record the source read from
	// each partition: pushed into the Input, or sent to the dead-letter output. It can be
	// ahead of PartitionStats.Next, which only counts what reached the pipeline, by the
	// records in the Input and the dead letters after the last record pushed. End is each
	// partition's end (high-water mark) as the source last saw it, so that End - Read is the
	// read lag even where the source committed past the pipeline (dead letters). A source
	// may report neither.
	Read, End map[string]int64
	// FailingSince is when the source last lost its system (a Kafka cluster it cannot reach:
	// metadata or a consumer group session refused or timed out), the zero time while it
	// reaches it; LastError says why. Merged over the pipeline's sources, it is the earliest
	// such time and its error. A source that rides out an outage reports it here, so that
	// health checks and status pages can say so while its partitions simply go quiet.
	FailingSince time.Time
	LastError    string
}

// sourceNode is the untyped face of a typed source stream.
type sourceNode interface {
	// index is the source's position in the pipeline (see globalPart).
	index() int
	run(ctx context.Context) error
	close()
	// take returns the buffered batch with pipeline partition ids (globalPart).
	take(batchTime int64) taken
	control() ([]Position, []revocation)
	// accept tells the source's Input that the pipeline accepted what it took (Accepted).
	accept()
	release()
	// minOffset returns the lowest offset in a bucket of the batch being processed.
	minOffset(bucket int) int64
	// headNode returns the node index of the source's stream.
	headNode() int
	// times yields the offset and event time of each record of the batch's partition (the
	// source's own id) from offset from on (all if !cut), the times capped at ceiling (none
	// if 0), in order (see SourceTimes).
	times(part int32, from int64, cut bool, ceiling int64) iter.Seq2[int64, int64]
	// commit hands positions with pipeline partition ids to the source, with its own ids.
	commit(ctx context.Context, pos []Position) error
	stats() (SourceStats, bool)
	// filled is closed once the source's buffer holds a batch worth of records.
	filled() <-chan struct{}
	// buffered returns how many records the source's buffer holds.
	buffered() int
	// readToEnd reports whether the source said it pushed all its partitions held
	// (Input.ReadToEnd), and how many records its buffer holds.
	readToEnd() (bool, int)
	// ended reports whether the source's input ended and everything it held was taken.
	ended() bool
	// endWaiting reports whether the source's input was closed and no batch has ended it
	// yet: the next batch can start at once.
	endWaiting() bool
	// internal reports whether the source is a repartition's (see BatchStats.ShuffledRecords).
	internal() bool
	// awaitsRegistration reports whether Run waits for the source's first Assign or Resume
	// before the first batch (PartitionRegistrar), and the repartition's name; registered is
	// closed by it, and registeredOrClosed reports it, or that the source's input was closed.
	awaitsRegistration() (repartition string, ok bool)
	registered() <-chan struct{}
	registeredOrClosed() bool
	// identity names the source's inputs, if the source can (InputIdentifier).
	identity() []string
	// origin returns the source as an Originator, if it is one.
	origin() (Originator, bool)
	// describe names the source in errors and logs.
	describe() string
}

// Partition ids of a pipeline with several sources: a source's own partition id (Kafka packs
// the topic into it) in the low sourceShift bits, the source's position in the pipeline
// (the order of From calls) above. The first source's ids are its own, unchanged.
const sourceShift = 26

func globalPart(src int, local int32) int32 { return int32(src)<<sourceShift | local }

// PartitionSource splits a pipeline partition id (PartitionContext.Partition, a window
// result's Partition) into the position of its source among the pipeline's From calls, from
// 0, and the partition id the source itself uses (for a Kafka source, the id its
// TopicPartition and Origin take). A source's own ids must be below 1<<26 when the pipeline
// has several sources.
func PartitionSource(part int32) (source int, partition int32) {
	return int(part >> sourceShift), part & (1<<sourceShift - 1)
}

type partTaken struct {
	part      int32
	maxEvent  int64
	maxOffset int64
	bucket    int
	untimed   int   // records without an event time
	bytes     int64 // their sizes, for Input's byte bound
}

type taken struct {
	parts    []partTaken
	records  int
	bytes    int64
	assigned []Position
	revoked  []revocation
	ended    []int32 // partitions whose own input ended, none of whose records is in the batch
	closed   bool
}

type source[T any] struct {
	idx  int // position among the pipeline's sources
	done bool
	// endsDue are partitions whose input ended (Input.End) with records in the batch taken
	// last: they end with the next batch.
	endsDue []int32
	parts   int  // for a repartition's source, the exchange's partition count
	inner   bool // a repartition's source: its records are not the pipeline's input
	src     Source[T]
	in      *Input[T]
	head    *Stream[T]
	cur     *split[T] // the batch being processed; between batches, the empty spare
	// registers: a repartition's source whose exchange registers its partitions before their
	// records (PartitionRegistrar); Run waits for it before the first batch. repartition
	// names the repartition, for the log.
	registers   bool
	repartition string
}

// From attaches a source to the pipeline and returns its stream. A pipeline may have several
// sources (topics of different types, a repartition): each has its own buffer, partitions,
// offsets and checkpoints, and its partitions are told apart by their pipeline partition ids
// (PartitionSource). A source may read many partitions (and topics).
func From[T any](p *Pipeline, src Source[T]) *Stream[T] {
	s := &Stream[T]{p: p, name: "source", every: 1, slide: 1}
	sn := newSource(p, src, s)
	if b, ok := src.(Binder[T]); ok {
		b.Bind(sn.in)
	}
	return register(p, s)
}

// newSource adds a source node to p whose records head's operator reads.
func newSource[T any](p *Pipeline, src Source[T], head *Stream[T]) *source[T] {
	sn := &source[T]{
		idx:  len(p.srcs),
		src:  src,
		in:   newInput[T](p.cfg.maxRecords, p.cfg.maxBytes, p.cfg.clock, p.cfg.maxFuture),
		head: head,
		cur:  newSplit[T](),
	}
	sn.in.wake = p.wake
	if len(p.srcs) == 1<<(31-sourceShift) {
		p.fail(graphError("From: at most %d sources per pipeline", 1<<(31-sourceShift)))
	}
	// The source stream's batch is the partition's bucket itself, not a copy; out is never
	// appended to, so the aliasing is safe.
	head.fn = func(pc *PartitionContext, _ []Elem[T]) []Elem[T] {
		if si, local := p.sourceOf(pc.Partition); si == sn.idx {
			if i, ok := sn.cur.bucket[local]; ok {
				return sn.cur.buckets[i]
			}
		}
		return nil
	}
	p.srcs = append(p.srcs, sn)
	return sn
}

func (s *source[T]) index() int { return s.idx }

// sourceOf is PartitionSource for the pipeline: with one source, every id is its own (any
// int32, negative ones included).
func (p *Pipeline) sourceOf(part int32) (int, int32) {
	if len(p.srcs) <= 1 {
		return 0, part
	}
	return PartitionSource(part)
}

func (s *source[T]) ended() bool { return s.done }

func (s *source[T]) endWaiting() bool { return !s.done && s.in.isClosed() }

func (s *source[T]) internal() bool { return s.inner }

func (s *source[T]) awaitsRegistration() (string, bool) {
	return s.repartition, s.inner && s.registers
}

func (s *source[T]) registered() <-chan struct{} { return s.in.registered }

func (s *source[T]) registeredOrClosed() bool { return s.in.registeredOrClosed() }

func (s *source[T]) origin() (Originator, bool) {
	o, ok := s.src.(Originator)
	return o, ok
}

func (s *source[T]) identity() []string {
	if id, ok := s.src.(InputIdentifier); ok {
		return id.InputIdentity()
	}
	return nil
}

func (s *source[T]) run(ctx context.Context) error { return s.src.Run(ctx, s.in) }

func (s *source[T]) close() { s.in.Close() }

func (s *source[T]) commit(ctx context.Context, pos []Position) error {
	if s.idx == 0 {
		return s.src.Commit(ctx, pos) // the first source's ids are its own
	}
	local := make([]Position, len(pos))
	for i, x := range pos {
		local[i] = x
		_, local[i].Partition = PartitionSource(x.Partition)
	}
	return s.src.Commit(ctx, local)
}

// globalControl turns the partition ids of control messages into pipeline ids.
func (s *source[T]) globalControl(assigned []Position, revoked []revocation) ([]Position, []revocation) {
	if s.idx == 0 {
		return assigned, revoked
	}
	for i := range assigned {
		assigned[i].Partition = globalPart(s.idx, assigned[i].Partition)
	}
	for i, r := range revoked {
		parts := make([]int32, len(r.parts))
		for j, x := range r.parts {
			parts[j] = globalPart(s.idx, x)
		}
		revoked[i] = revocation{parts: parts, done: r.done, at: r.at}
	}
	return assigned, revoked
}

func (s *source[T]) stats() (SourceStats, bool) {
	if st, ok := s.src.(interface{ Stats() SourceStats }); ok {
		return st.Stats(), true
	}
	return SourceStats{}, false
}

func (s *source[T]) control() ([]Position, []revocation) {
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	a, r := s.in.controlLocked()
	s.dropEnds(r)
	return s.globalControl(a, r)
}

// dropEnds forgets the ends due (endsDue) of revoked partitions: a revoked partition's end
// is its claim's, and a claim of it again ends it anew.
func (s *source[T]) dropEnds(revoked []revocation) {
	for _, r := range revoked {
		s.endsDue = slices.DeleteFunc(s.endsDue, func(x int32) bool { return slices.Contains(r.parts, x) })
	}
}

func (s *source[T]) take(batchTime int64) taken {
	var t taken
	var ended []int32
	s.cur, t.assigned, t.revoked, ended, t.closed = s.in.take(s.cur)
	// A partition's end, like the input's, counts once its records pushed before are
	// processed: one whose records are in this batch ends with the next one.
	// The ends taken now came after their partitions' last revocation (Input.Revoke drops
	// those sent before it): those of a claim again, kept.
	s.dropEnds(t.revoked)
	ended = append(s.endsDue, ended...)
	s.endsDue = nil
	for _, part := range ended {
		if slices.ContainsFunc(s.cur.parts, func(pt partTaken) bool { return pt.part == part }) {
			s.endsDue = append(s.endsDue, part)
		} else {
			t.ended = append(t.ended, globalPart(s.idx, part))
		}
	}
	// closed is only final once the buffer was empty when taken, so records pushed
	// before Close are all processed first.
	if t.closed && s.cur.records > 0 {
		t.closed = false
	}
	s.cur.stamp(batchTime)
	t.records, t.bytes, t.parts = s.cur.records, s.cur.bytes, s.cur.parts
	t.assigned, t.revoked = s.globalControl(t.assigned, t.revoked)
	if s.idx != 0 {
		t.parts = slices.Clone(t.parts)
		for i := range t.parts {
			t.parts[i].part = globalPart(s.idx, t.parts[i].part)
		}
	}
	if t.closed {
		s.done = true
	}
	return t
}

func (s *source[T]) headNode() int { return s.head.idx }

func (s *source[T]) times(part int32, from int64, cut bool, ceiling int64) iter.Seq2[int64, int64] {
	var b []Elem[T]
	if i, ok := s.cur.bucket[part]; ok {
		b = s.cur.buckets[i]
	}
	if ceiling == 0 {
		ceiling = math.MaxInt64
	}
	return func(yield func(off, t int64) bool) {
		for k := range b {
			if e := &b[k]; (!cut || e.Offset >= from) && !yield(e.Offset, min(e.Time, ceiling)) {
				return
			}
		}
	}
}

func (s *source[T]) minOffset(bucket int) int64 {
	m := int64(math.MaxInt64)
	for i := range s.cur.buckets[bucket] {
		m = min(m, s.cur.buckets[bucket][i].Offset)
	}
	return m
}

// release empties the batch's split after it ran, keeping its memory for the batch after
// next.
func (s *source[T]) release() { s.cur.reset(s.in.scrub) }

func (s *source[T]) filled() <-chan struct{} { return s.in.filled() }

func (s *source[T]) buffered() int { return s.in.buffered() }

func (s *source[T]) readToEnd() (bool, int) { return s.in.readToEnd() }
