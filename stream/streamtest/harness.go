// The Harness that runs a pipeline batch by batch offline, the Queue source it feeds from,
// and the Collector of what outputs produced.

package streamtest

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// Epoch is the manual clock's start in every Harness: 2026-01-01T00:00:00Z.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Harness runs a pipeline batch by batch, offline and synchronously, with a manual clock:
// queue input batches, step, and read what every output collected per batch.
type Harness struct {
	tb    testing.TB
	P     *stream.Pipeline
	Clock *Clock
	// queues move their next batch into the input before each step.
	queues []interface{ feed() error }
	done   bool
	// fed: the first step fed the queues and checked that every repartition was fed.
	fed bool
}

// New returns a harness around a new pipeline with the given batch interval. The options are
// passed to stream.New after a WithClock of the harness's manual clock,
// WithMaxFutureEventTime(0) (offline data is rarely stamped near the manual clock, so the
// harness does not bound event times unless a test asks for it) and a WithLogger that writes
// warnings and errors to tb's log (shown under -v or when the test fails; nothing after the
// test's cleanup), or discards when tb is nil. Failures fail tb; tb may be nil (in Example
// functions), and failures then panic.
func New(tb testing.TB, interval time.Duration, opts ...stream.Option) *Harness {
	clk := NewClock(Epoch)
	p, err := stream.New(interval, append([]stream.Option{stream.WithClock(clk), stream.WithMaxFutureEventTime(0), stream.WithLogger(testLogger(tb))}, opts...)...)
	h := &Harness{tb: tb, P: p, Clock: clk}
	if err != nil {
		h.fatalf("streamtest: %v", err)
	}
	return h
}

func (h *Harness) fatalf(format string, args ...any) {
	if h.tb == nil {
		panic(fmt.Sprintf(format, args...))
	}
	h.helper()
	h.tb.Fatalf(format, args...)
}

func (h *Harness) helper() {
	if h.tb != nil {
		h.tb.Helper()
	}
}

// TryStep advances the clock by one batch interval, feeds every queue's next batch and runs one
// batch. It returns the pipeline's error, for tests of failing outputs; a failed batch is
// retried by the next TryStep (without a new batch being fed). The first TryStep fails the
// test before its batch when a repartition's exchange is not fed by h (AddExchange).
func (h *Harness) TryStep() (done bool, err error) {
	if err := h.P.Err(); err != nil {
		return false, err
	}
	if h.done {
		return true, nil
	}
	h.Clock.Advance(h.P.Interval())
	for _, q := range h.queues {
		if err := q.feed(); err != nil {
			h.fatalf("%v", err)
			return false, err
		}
	}
	if !h.fed {
		h.fed = true
		if err := h.unfed(); err != nil {
			h.fatalf("%v", err)
			return false, err
		}
	}
	done, err = h.P.Step(context.Background())
	h.done = done
	return done, err
}

// Step is TryStep that fails the test on an error.
func (h *Harness) Step() bool {
	h.helper()
	done, err := h.TryStep()
	if err != nil {
		h.fatalf("streamtest: step: %v", err)
	}
	return done
}

// Run runs n batches (fewer if the input ends).
func (h *Harness) Run(n int) {
	h.helper()
	for range n {
		if h.Step() {
			return
		}
	}
}

// unfed returns an error naming the repartitions whose exchanges the harness did not feed on
// its first step (see Harness.AddExchange): no batch would ever read their records back, and
// their input would never end.
func (h *Harness) unfed() error {
	names := h.P.UnregisteredRepartitions()
	if len(names) == 0 {
		return nil
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return fmt.Errorf("streamtest: the harness does not feed the exchange of repartition %s: no batch would read its records back, "+
		"and its input would never end; pass the streamtest.NewExchange given to stream.Repartition to Harness.AddExchange, "+
		"or build the repartition with streamtest.NewRepartition, which does both", strings.Join(quoted, ", "))
}

// RunUntilDone runs batches until the input ended and the final batch ran; the queues must
// have been ended (Queue.End). It fails the test after 1,000,000 batches. The exchanges of
// the graph's repartitions must be fed by h (AddExchange, NewRepartition), or their input
// never ends: the first step of a harness fails the test, before any batch, when one is not.
func (h *Harness) RunUntilDone() {
	h.helper()
	for range 1_000_000 {
		if h.Step() {
			return
		}
	}
	h.fatalf("streamtest: input did not end after 1,000,000 batches: call Queue.End on every queue, and close the Input of any other source")
}

// Queue is a source fed from queued batches, like Spark's queueStream: each Add queues one
// batch, which the harness moves into the pipeline on a later step. It records every commit.
// Add numbers the records of a batch whose offsets are all 0 (records without offsets);
// AddWithOffsets keeps the offsets as given.
type Queue[T any] struct {
	mu      sync.Mutex
	in      *stream.Input[T]
	batches [][]stream.Record[T]
	ended   bool
	next    map[int32]int64
	commits [][]stream.Position
	commit  map[int32]stream.Position
	// CommitErr, if set, is returned by Commit (the commit is not recorded).
	CommitErr error
	parts     int      // SetPartitions
	inputs    []string // SetInputs
	assigned  bool     // the partitions were assigned
}

// SetPartitions says the queue has partitions 0..n-1, as a Kafka topic does: they are
// assigned to the pipeline on the first step (partitions without records yet hold the
// watermark back), and PartitionCount reports n to repartitions.
func (q *Queue[T]) SetPartitions(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.parts = n
}

// PartitionCount implements stream.PartitionCounter: the count given to SetPartitions, 0 if
// none.
func (q *Queue[T]) PartitionCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.parts
}

// SetInputs names the inputs the queue stands for, such as the topics of the Kafka Source it
// replaces in a test, as stream.InputIdentifier asks: a repartition's checkpoint records them
// and refuses to resume from another input's.
func (q *Queue[T]) SetInputs(names ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inputs = slices.Clone(names)
}

// InputIdentity implements stream.InputIdentifier: the names given to SetInputs, none if
// none.
func (q *Queue[T]) InputIdentity() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.inputs)
}

var (
	_ stream.Source[int]     = (*Queue[int])(nil)
	_ stream.InputIdentifier = (*Queue[int])(nil)
)

// NewQueue attaches a new queue to the harness's pipeline as its source.
func NewQueue[T any](h *Harness) (*Queue[T], *stream.Stream[T]) {
	q := &Queue[T]{next: make(map[int32]int64), commit: make(map[int32]stream.Position)}
	s := stream.From[T](h.P, q)
	h.queues = append(h.queues, q)
	return q, s
}

// Bind implements stream.Binder.
func (q *Queue[T]) Bind(in *stream.Input[T]) { q.in = in }

// Run implements stream.Source for pipelines run with Pipeline.Run instead of the harness: it
// pushes everything queued, then ends the input if End was called, else waits for ctx.
func (q *Queue[T]) Run(ctx context.Context, in *stream.Input[T]) error {
	for {
		q.mu.Lock()
		if len(q.batches) == 0 {
			ended := q.ended
			q.mu.Unlock()
			if ended {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		}
		b := q.batches[0]
		q.batches = q.batches[1:]
		q.mu.Unlock()
		for _, r := range b {
			if err := in.Push(ctx, r); err != nil {
				return err
			}
		}
	}
}

// Commit implements stream.Source and records the positions.
func (q *Queue[T]) Commit(_ context.Context, pos []stream.Position) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.CommitErr != nil {
		return q.CommitErr
	}
	q.commits = append(q.commits, slices.Clone(pos))
	for _, p := range pos {
		q.commit[p.Partition] = p
	}
	return nil
}

// Add queues one batch of records. When every record of the batch has offset 0, Add takes
// them for records without offsets and numbers them: consecutive offsets per partition,
// from the partition's highest offset queued so far + 1 (0 for a partition's first). A
// batch with any other offset is queued with its offsets as they are. So a batch meant to
// be at offset 0 (records replayed after Resume, a partition's first record beside others)
// is renumbered unless it is the partition's first: queue it with AddWithOffsets.
func (q *Queue[T]) Add(recs ...stream.Record[T]) {
	auto := !slices.ContainsFunc(recs, func(r stream.Record[T]) bool { return r.Offset != 0 })
	q.add(recs, auto)
}

// AddWithOffsets queues one batch of records with the offsets they carry, 0 included: it
// never numbers them, as Add does a batch whose offsets are all 0.
func (q *Queue[T]) AddWithOffsets(recs ...stream.Record[T]) { q.add(recs, false) }

func (q *Queue[T]) add(recs []stream.Record[T], auto bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := slices.Clone(recs)
	for i := range b {
		if auto {
			b[i].Offset = q.next[b[i].Partition]
		}
		q.next[b[i].Partition] = max(q.next[b[i].Partition], b[i].Offset+1)
	}
	q.batches = append(q.batches, b)
}

// AddValues queues one batch of values on partition 0, with processing-time event times.
func (q *Queue[T]) AddValues(vals ...T) {
	recs := make([]stream.Record[T], len(vals))
	for i, v := range vals {
		recs[i] = stream.Record[T]{Value: v}
	}
	q.Add(recs...)
}

// AddEmpty queues n empty batches.
func (q *Queue[T]) AddEmpty(n int) {
	for range n {
		q.Add()
	}
}

// End ends the input once the queued batches are consumed.
func (q *Queue[T]) End() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ended = true
}

// Commits returns every commit the pipeline made, in order.
func (q *Queue[T]) Commits() [][]stream.Position {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.commits)
}

// Committed returns the last committed offset of a partition, and -1 if none.
func (q *Queue[T]) Committed(part int32) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p, ok := q.commit[part]; ok {
		return p.Offset
	}
	return -1
}

// CommittedPosition returns the last committed position of a partition, with the pipeline's
// checkpoint (Meta), and false if none.
func (q *Queue[T]) CommittedPosition(part int32) (stream.Position, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p, ok := q.commit[part]
	return p, ok
}

// Resume tells the pipeline that partitions resume from committed positions (with their
// checkpoints), as a Kafka source does after a restart. Queue the replayed records with
// their original offsets after calling it, with AddWithOffsets (Add renumbers a batch whose
// offsets are all 0).
func (q *Queue[T]) Resume(pos ...stream.Position) { q.in.Resume(pos...) }

// Revoke takes partitions away from the pipeline, as a consumer group rebalance does
// (stream.Input.Revoke): the returned channel is closed once the pipeline dropped them, after
// a step.
func (q *Queue[T]) Revoke(parts ...int32) <-chan struct{} { return q.in.Revoke(parts...) }

func (q *Queue[T]) feed() error {
	if q.in == nil {
		return nil
	}
	q.mu.Lock()
	var b []stream.Record[T]
	if len(q.batches) > 0 {
		b = q.batches[0]
		q.batches = q.batches[1:]
	}
	ended := q.ended && len(q.batches) == 0
	assign := 0
	if !q.assigned {
		q.assigned, assign = true, q.parts
	}
	q.mu.Unlock()
	for p := range int32(assign) {
		q.in.Assign(p)
	}
	// The harness runs the pipeline on this goroutine, so a batch that does not fit in the
	// source buffer would block for ever: it is an error instead.
	if n := q.in.TryPushBatch(b); n < len(b) {
		return fmt.Errorf("streamtest: a queued batch of %d records does not fit in the pipeline's source buffer (%d fitted); queue smaller batches or raise stream.WithBuffer", len(b), n)
	}
	if ended {
		q.in.Close()
	}
	return nil
}

// Collector gathers what a stream produced, batch by batch.
type Collector[T any] struct {
	mu      sync.Mutex
	batches [][]T
	infos   []stream.BatchInfo
	// Fail, if set, is called before each batch is collected; a non-nil error fails the
	// output (the batch is then not acknowledged and is retried).
	Fail func(info stream.BatchInfo) error
}

// Collect adds an output to s that records every batch it outputs.
func Collect[T any](s *stream.Stream[T]) *Collector[T] {
	c := &Collector[T]{}
	stream.ForEachBatch(s, func(_ context.Context, info stream.BatchInfo, batch []T) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.Fail != nil {
			if err := c.Fail(info); err != nil {
				return err
			}
		}
		c.batches = append(c.batches, append(make([]T, 0, len(batch)), batch...))
		c.infos = append(c.infos, info)
		return nil
	})
	return c
}

// Batches returns the values of every batch the output was called for, in order.
func (c *Collector[T]) Batches() [][]T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

// Infos returns the BatchInfo of every collected batch.
func (c *Collector[T]) Infos() []stream.BatchInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.infos)
}

// All returns an iterator over every value collected so far, in order, as the standard
// library's All methods do.
func (c *Collector[T]) All() iter.Seq[T] {
	return slices.Values(c.Slice())
}

// Slice returns every value collected, in order, in a new slice.
func (c *Collector[T]) Slice() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []T
	for _, b := range c.batches {
		all = append(all, b...)
	}
	return all
}

// Last returns the values of the last collected batch.
func (c *Collector[T]) Last() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.batches) == 0 {
		return nil
	}
	return slices.Clone(c.batches[len(c.batches)-1])
}
