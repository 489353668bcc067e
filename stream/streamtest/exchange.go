// The in-memory exchange: a repartition's transport for offline tests, a log that outlives
// the pipelines that write and read it, as a Kafka topic outlives a crashed process.

package streamtest

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// ExchangeLog is the durable side of an in-memory exchange: per partition, every record sent
// (duplicates included, as a transport that retries or a replaying upstream writes them) and
// the last committed position. Share one log between the runs of a crash test.
type ExchangeLog[T any] struct {
	mu      sync.Mutex
	parts   [][]stream.Shuffled[T]
	commit  map[int32]stream.Position
	commits [][]stream.Position // every Commit, in order
	changed chan struct{}       // closed and replaced on every Send
	// packed logs number records as kafka.Exchange's messages: offs holds each record's
	// offset, next each partition's next one.
	packed bool
	offs   [][]int64
	next   []int64
}

// NewExchangeLog returns an empty log with the given number of partitions.
func NewExchangeLog[T any](partitions int) *ExchangeLog[T] {
	return &ExchangeLog[T]{parts: make([][]stream.Shuffled[T], partitions), commit: map[int32]stream.Position{},
		changed: make(chan struct{})}
}

// NewPackedExchangeLog is NewExchangeLog with records numbered as kafka.Exchange packs them
// into messages: the records one Send writes to a partition share an offset, marks among
// them (a message's marks count together from the next offset). The pipeline must then keep
// a message's records in one batch and count a mark from the next offset on.
func NewPackedExchangeLog[T any](partitions int) *ExchangeLog[T] {
	l := NewExchangeLog[T](partitions)
	l.packed, l.offs, l.next = true, make([][]int64, partitions), make([]int64, partitions)
	return l
}

// offset returns the offset of record i of partition p.
func (l *ExchangeLog[T]) offset(p, i int) int64 {
	if l.packed {
		return l.offs[p][i]
	}
	return int64(i)
}

// Offset returns the offset of record i of a partition (see Records): i, or in a packed log
// the offset of the message kafka.Exchange would have written it in.
func (l *ExchangeLog[T]) Offset(part int32, i int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offset(int(part), i)
}

// Len returns the number of records in a partition.
func (l *ExchangeLog[T]) Len(part int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.parts[part])
}

// Records returns a copy of a partition's records.
func (l *ExchangeLog[T]) Records(part int32) []stream.Shuffled[T] {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.parts[part])
}

// Committed returns the committed positions, with the pipeline's checkpoints, by partition.
func (l *ExchangeLog[T]) Committed() []stream.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pos []stream.Position
	for p := range int32(len(l.parts)) {
		if c, ok := l.commit[p]; ok {
			pos = append(pos, c)
		}
	}
	return pos
}

// Commits returns every commit made to the log, by any of the pipelines that read it, in
// order, as Queue.Commits does.
func (l *ExchangeLog[T]) Commits() [][]stream.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.commits)
}

// Exchange is a stream.Exchange over an ExchangeLog for one pipeline. In a Harness, each step
// moves what the log holds beyond the read positions into the pipeline (what fits in its
// buffer), as a Kafka consumer fetches; with Pipeline.Run, Run does the same as records
// arrive. On its first step it resumes every partition from the log's committed position, as
// a restarted Kafka consumer does.
type Exchange[T any] struct {
	log     *ExchangeLog[T]
	in      *stream.Input[stream.Shuffled[T]]
	read    []int64
	started bool
	recs    []stream.Record[stream.Shuffled[T]] // feed's, reused
	// SendErr, if set, makes Send fail (after writing the first SendPartial records).
	SendErr     error
	SendPartial int
}

var (
	_ stream.Exchange[int]      = (*Exchange[int])(nil)
	_ stream.PartitionRegistrar = (*Exchange[int])(nil)
)

// NewExchange returns an exchange over log; pass it to stream.Repartition and feed the
// harness with Harness.AddExchange (NewRepartition does both).
func NewExchange[T any](log *ExchangeLog[T]) *Exchange[T] {
	return &Exchange[T]{log: log, read: make([]int64, len(log.parts))}
}

// AddExchange makes h feed e on every step, as NewRepartition does for its exchange: for a
// graph that calls stream.Repartition (or RepartitionBy) itself, or a library that does (such
// as join.Interval), with e as the exchange. A repartition whose exchange h does not feed
// fails the test at h's first step, naming the repartition: one that registers its
// partitions (stream.PartitionRegistrar, as Exchange does) and has not by then. An
// exchange whose partitions the test assigns itself, later, says it does not register them.
func (h *Harness) AddExchange(e Fed) { h.queues = append(h.queues, e) }

// Fed is what a Harness feeds on each step: an Exchange (see Harness.AddExchange).
type Fed interface{ feed() error }

// NewRepartition repartitions s through an in-memory exchange over log, fed by h.
func NewRepartition[K comparable, V any](h *Harness, s *stream.Stream[stream.Pair[K, V]], name string, log *ExchangeLog[stream.Pair[K, V]]) (*Exchange[stream.Pair[K, V]], *stream.Stream[stream.Pair[K, V]]) {
	ex := NewExchange(log)
	out := stream.Repartition(s, name, ex)
	h.queues = append(h.queues, ex)
	return ex, out
}

// Bind implements stream.Binder.
func (e *Exchange[T]) Bind(in *stream.Input[stream.Shuffled[T]]) { e.in = in }

// RegistersPartitions implements stream.PartitionRegistrar: Run assigns or resumes every
// partition of the log before it pushes a record.
func (e *Exchange[T]) RegistersPartitions() bool { return true }

// Open implements stream.Exchange.
func (e *Exchange[T]) Open(context.Context) (int, error) { return len(e.log.parts), nil }

// Send implements stream.Exchange: it appends recs to their partitions.
func (e *Exchange[T]) Send(_ context.Context, recs []stream.Shuffled[T]) error {
	l := e.log
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(recs)
	if e.SendErr != nil {
		n = min(n, e.SendPartial)
	}
	open := make(map[int32]bool) // partitions with a message open in this Send
	for _, r := range recs[:n] {
		p := r.Partition
		l.parts[p] = append(l.parts[p], r)
		if l.packed {
			if !open[p] {
				open[p] = true
				l.next[p]++
			}
			l.offs[p] = append(l.offs[p], l.next[p]-1)
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return e.SendErr
}

// Commit implements stream.Source.
func (e *Exchange[T]) Commit(_ context.Context, pos []stream.Position) error {
	l := e.log
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pos {
		l.commit[p.Partition] = p
	}
	l.commits = append(l.commits, slices.Clone(pos))
	return nil
}

// Run implements stream.Source for pipelines run with Pipeline.Run.
func (e *Exchange[T]) Run(ctx context.Context, in *stream.Input[stream.Shuffled[T]]) error {
	e.in = in
	for {
		e.log.mu.Lock()
		changed := e.log.changed
		e.log.mu.Unlock()
		space := in.Space()
		if err := e.feed(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-space:
		}
	}
}

// feedChunk is how many records feed offers the input at a time (more when a message's
// records share an offset).
const feedChunk = 1024

func (e *Exchange[T]) feed() error {
	if e.in == nil {
		return nil
	}
	l := e.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if !e.started {
		e.started = true
		for p := range int32(len(l.parts)) {
			if c, ok := l.commit[p]; ok {
				e.read[p] = c.Offset
				e.in.Resume(c)
			} else {
				e.in.Assign(p)
			}
		}
	}
	// The records go over in chunks, each cut between offsets (a message's records stay
	// together), until the input refuses some: building every unread record for an input
	// that takes a few (a small WithBuffer behind a backlog) made each batch cost the whole
	// backlog, a run quadratic in its records.
	recs := e.recs[:0]
	push := func() bool {
		n := e.in.TryPushBatch(recs)
		for _, r := range recs[:n] {
			e.read[r.Partition] = r.Offset + 1
		}
		all := n == len(recs)
		clear(recs)
		recs = recs[:0]
		return all
	}
	defer func() { e.recs = recs[:0] }()
	for p, log := range l.parts {
		for i := sort.Search(len(log), func(i int) bool { return l.offset(p, i) >= e.read[p] }); i < len(log); i++ {
			off := l.offset(p, i)
			if len(recs) >= feedChunk && recs[len(recs)-1].Offset != off && !push() {
				return nil
			}
			r := log[i]
			rec := stream.Record[stream.Shuffled[T]]{Value: r, Partition: int32(p), Offset: off, Size: 16}
			if !r.Mark {
				rec.EventTime = time.Unix(0, r.Time)
			}
			recs = append(recs, rec)
		}
	}
	push()
	return nil
}
