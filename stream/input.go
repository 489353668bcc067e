// The Input: the bounded buffer between a source and the pipeline, with the
// partitions the source was assigned and lost, which the run loop takes once per batch.

package stream

import (
	"context"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Input is the bounded buffer between a source and the pipeline. The pipeline drains it once
// per batch. A source must respect its bounds: Push blocks while the buffer is full, TryPush
// refuses, and Full and Space let a source pause fetching (Kafka Pause/Resume) instead of
// blocking.
//
// All methods are safe for concurrent use.
type Input[T any] struct {
	maxRecords int
	maxBytes   int64
	clock      Clock
	maxFuture  time.Duration
	// futureOK is the clock's last reading plus maxFuture (Unix ns): CheckEventTime accepts a
	// time at or before it without reading the clock again (see there).
	futureOK atomic.Int64

	mu       sync.Mutex
	buf      *split[T] // filled by the source, swapped with the pipeline's at each batch
	scrub    bool      // T holds pointers: clear discarded elements
	closed   bool
	ended    []int32       // partitions whose input ended (End) since the last take
	space    chan struct{} // closed and replaced when space frees up
	full     chan struct{} // closed when the buffer reaches a bound or the input is closed; replaced at each take
	revoked  []revocation
	assigned []Position
	// taken counts the positions of assigned the pipeline took so far, accepted those it
	// accepted (see Accepted); acceptWait are the channels of Accepted waiting for more.
	taken, accepted int
	acceptWait      []acceptWaiter
	wake            chan struct{} // the pipeline's: a buffer of any source filled up
	// registered is closed by the source's first Assign or Resume, with partitions or none
	// (see PartitionRegistrar: Run waits for it before the first batch).
	registered chan struct{}
	// eager makes any buffered record count as a batch worth (filled): set on a repartition's
	// input while the values or end marks a batch sent are on their way back (see
	// shuffle.awaitReturn).
	eager bool
	// atEnd: the source pushed everything its partitions held when it last looked
	// (ReadToEnd); a push, Assign or Resume since withdraws it.
	atEnd bool
}

type revocation struct {
	parts []int32
	done  chan struct{}
	// at is how many of the positions assigned with it (Input.assigned, taken together) the
	// source sent before it: the pipeline applies them, then the revocation, in that order.
	at int
}

func newInput[T any](maxRecords int, maxBytes int64, clock Clock, maxFuture time.Duration) *Input[T] {
	in := &Input[T]{maxRecords: maxRecords, maxBytes: maxBytes, clock: clock, maxFuture: maxFuture, space: make(chan struct{}), full: make(chan struct{}),
		registered: make(chan struct{}), buf: newSplit[T](), scrub: hasPointers(reflect.TypeFor[T]())}
	in.futureOK.Store(math.MinInt64)
	return in
}

// fullLocked reports whether the buffer is at a bound. A single record larger than the byte
// bound is still accepted into an empty buffer, so a big record cannot wedge the pipeline.
func (in *Input[T]) fullLocked() bool {
	if in.buf.records == 0 {
		return false
	}
	return in.buf.records >= in.maxRecords || (in.maxBytes > 0 && in.buf.bytes >= in.maxBytes)
}

// CheckEventTime reports whether t can be a record's event time, with an error wrapping
// ErrEventTime when it cannot: t is outside the range that time.Time.UnixNano represents, or
// further ahead of the pipeline's clock than WithMaxFutureEventTime allows (default one hour,
// like Kafka's message.timestamp.after.max.ms). A source calls it before pushing a record
// and sends a record it refuses to its dead-letter output (ReasonEventTime): a bad device
// clock must never move a watermark, or every later record of the partition would be late.
// The zero time (processing time) is always valid. Safe for concurrent use.
//
// A source calls it for every record, so it reads the clock only for a time past the last
// reading plus the bound: the clock moves forward, so a time within the bound of an older
// reading is within the bound of the clock now (a wall clock stepped back by NTP widens the
// bound by the step until a record refreshes the reading). Reading the clock was 2 % of a
// drain's CPU.
func (in *Input[T]) CheckEventTime(t time.Time) error {
	if t.IsZero() || in.maxFuture <= 0 {
		return checkEventTime(t, time.Time{}, 0)
	}
	if !t.Before(minEventTime) && !t.After(maxEventTime) && t.UnixNano() <= in.futureOK.Load() {
		return nil
	}
	now := in.clock.Now()
	ok := now.Add(in.maxFuture)
	if ok.After(maxEventTime) {
		ok = maxEventTime
	}
	in.futureOK.Store(ok.UnixNano())
	return checkEventTime(t, now, in.maxFuture)
}

// Full reports whether the buffer holds its maximum of records or bytes.
func (in *Input[T]) Full() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fullLocked()
}

// Space returns a channel that is closed once the pipeline drains the buffer. Take it before
// checking Full to avoid missing a wake-up.
func (in *Input[T]) Space() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.space
}

// TryPush adds r unless the buffer is full or closed, and reports whether it did.
func (in *Input[T]) TryPush(r Record[T]) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed || in.fullLocked() {
		return false
	}
	in.buf.add(&r)
	in.atEnd = false
	in.noteFullLocked()
	return true
}

// TryPushBatch adds records from the front of recs while the buffer has room and returns how
// many it added. It takes the lock once, so it is the fast path for sources that fetch in
// batches. Records of one partition and offset (a message decoded into several records) are
// added together, past the bounds if need be, so that one batch has all of them; a source
// must hand them to one call.
func (in *Input[T]) TryPushBatch(recs []Record[T]) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return 0
	}
	// The records that fit: the same test as fullLocked, record by record.
	n, records, bytes := 0, in.buf.records, in.buf.bytes
	if in.maxBytes <= 0 {
		n = min(len(recs), max(in.maxRecords-records, 0))
		if records == 0 {
			n = max(n, min(len(recs), 1))
		}
	}
	for n < len(recs) && (records+n == 0 || records+n < in.maxRecords && (in.maxBytes <= 0 || bytes < in.maxBytes)) {
		bytes += int64(recs[n].Size)
		n++
	}
	// Records of one partition and offset (a message the source decoded into several) go
	// into one batch: a commit after part of them would skip the rest in a replay.
	for n > 0 && n < len(recs) && recs[n].Offset == recs[n-1].Offset && recs[n].Partition == recs[n-1].Partition {
		n++
	}
	in.buf.addAll(recs[:n])
	if n > 0 {
		in.atEnd = false
	}
	in.noteFullLocked()
	return n
}

// Push adds r, waiting while the buffer is full. It returns ctx.Err() if ctx ends first and
// ErrInputEnded if the input was closed.
func (in *Input[T]) Push(ctx context.Context, r Record[T]) error {
	for {
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			return ErrInputEnded
		}
		if !in.fullLocked() {
			in.buf.add(&r)
			in.atEnd = false
			in.noteFullLocked()
			in.mu.Unlock()
			return nil
		}
		space := in.space
		in.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close ends the input: the pipeline processes what is buffered, advances the watermark to
// the end of time so that every window closes, commits, and Run returns nil. Returning nil
// from Source.Run closes the input too.
func (in *Input[T]) Close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	in.signalFullLocked()
}

// End ends the input of these partitions alone: the source pushed their last records (a
// bounded source read them to their end offsets) and pushes none of them again unless they
// are assigned anew. Once their records pushed before are processed, their watermark goes to
// the end of time, so that their windows close (PartitionContext.EndOfInput), and the
// positions committed after the batch that did so carry Position.Ended.
func (in *Input[T]) End(parts ...int32) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ended = append(in.ended, parts...)
	in.signalFullLocked()
}

func (in *Input[T]) buffered() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.buf.records
}

func (in *Input[T]) isClosed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.closed
}

// Assign tells the pipeline that the source now owns these partitions. It is optional:
// partitions are also registered by their first record. Assigned partitions without records
// take part in the watermark (until idle), so a slow partition holds windows open.
//
// A repartition's source whose exchange implements PartitionRegistrar must call Assign or
// Resume in every session once it knows its partitions, with none if it has none (another
// instance of the pipeline owns them): under Run, the pipeline runs no batch before, so that
// the checks its checkpoints carry (ErrInputChanged, ErrOperatorChanged) come before
// anything is written or committed.
func (in *Input[T]) Assign(parts ...int32) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.atEnd = false
	in.registerLocked()
	for _, p := range parts {
		in.assigned = append(in.assigned, Position{Partition: p, Offset: -1})
	}
}

// Resume is Assign for partitions that resume from a committed position: pos carries the
// committed offset and the Meta the pipeline committed with it. The pipeline then replays
// exactly: each stateful operator skips the replayed records it had already accounted for
// before the commit (records older than its own retained offset), so a window that was
// emitted is not emitted again from a part of its records when another operator held the
// commit further back.
func (in *Input[T]) Resume(pos ...Position) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.atEnd = false
	in.registerLocked()
	in.assigned = append(in.assigned, pos...)
}

// ReadToEnd tells the pipeline that the source has pushed every record its partitions held
// when it last looked (a Kafka source: each partition read to its high-water mark): nothing
// more is on its way for now. It is optional, and it only matters while the pipeline catches
// up a backlog: batches then start as soon as the buffer is full again, but the buffer that
// holds a backlog's last records does not fill, and its batch would wait a tenth of the
// interval (see Pipeline.Run). Once every source said so (repartitions, which have their own
// wake-up, and ended inputs aside) and they hold at least a tenth of a buffer, it starts at
// once. A record pushed since (or Assign, Resume) withdraws the notice; outside a catch-up,
// batches keep the interval whatever the sources say.
func (in *Input[T]) ReadToEnd() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.atEnd {
		return
	}
	in.atEnd = true
	// Wake the run loop even with this buffer empty: another source's records may be the
	// ones waiting for this notice.
	if in.wake != nil {
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
}

// readToEnd reports whether the source said it pushed all it had (ReadToEnd) and has pushed
// nothing since, and how many records the buffer holds.
func (in *Input[T]) readToEnd() (bool, int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.atEnd, in.buf.records
}

// Revoke tells the pipeline that the source lost these partitions (a rebalance). Buffered
// records of theirs are discarded and, before the next batch, their state is dropped: the
// new owner rebuilds it by replaying from the committed offset. The returned channel is
// closed once that happened; the batch in flight, if any, finishes first, so its commit
// reaches the source before the channel closes.
//
// Limit: the batch in flight is retried until its outputs succeed (RetryPolicy), so during
// an output outage the channel stays open for as long as the outage lasts, beyond a consumer
// group's rebalance timeout if need be. The pipeline does not give up the revoked
// partitions' part of that batch: what its outputs did (records sent to a repartition, an
// exactly-once transaction's messages) cannot be taken back once the next owner replays
// them. A source that must let go within a bound bounds its own wait, as package kafka's
// Source does (4/5 of its rebalance timeout; under exactly once it then stops, and a restart
// replays from the committed checkpoints). The pipeline still writes that batch once the
// outage ends, the revoked partitions' records included, and sends its commit, which such a
// source ignores for a partition it no longer owns. Results with deterministic ids are
// rewritten by the next owner's replay, but a write that lands after the next owner's may
// put an older result in place of a newer one (a window's partial result, with
// window.EveryBatch, in place of its final one) until that id is written again.
//
// The pipeline applies Assign, Resume and Revoke in the order they were called, even when
// several come between two batches: a partition assigned and then revoked is not kept, and
// one revoked and then assigned again (Resume) starts anew from the position it was assigned
// with, its records pushed since then kept.
func (in *Input[T]) Revoke(parts ...int32) <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.buf.drop(parts, in.scrub)
	in.ended = slices.DeleteFunc(in.ended, func(x int32) bool { return slices.Contains(parts, x) })
	done := make(chan struct{})
	in.revoked = append(in.revoked, revocation{parts: slices.Clone(parts), done: done, at: len(in.assigned)})
	in.signalLocked()
	return done
}

// registerLocked notes the source's first Assign or Resume (see Assign).
func (in *Input[T]) registerLocked() {
	select {
	case <-in.registered:
	default:
		close(in.registered)
	}
}

// registeredOrClosed reports whether the source called Assign or Resume, or its input was
// closed.
func (in *Input[T]) registeredOrClosed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	select {
	case <-in.registered:
		return true
	default:
		return in.closed
	}
}

func (in *Input[T]) signalLocked() {
	close(in.space)
	in.space = make(chan struct{})
}

// noteFullLocked tells the run loop, once per batch, that the buffer holds a batch worth of
// records: it starts the next batch at once instead of waiting for the tick.
func (in *Input[T]) noteFullLocked() {
	if in.fullLocked() || in.eager && in.buf.records > 0 {
		in.signalFullLocked()
	}
}

// setEager sets eager (see there), signalling at once if records are already waiting.
func (in *Input[T]) setEager(on bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.eager = on
	in.noteFullLocked()
}

func (in *Input[T]) signalFullLocked() {
	select {
	case <-in.full:
	default:
		close(in.full)
		if in.wake != nil {
			select {
			case in.wake <- struct{}{}:
			default:
			}
		}
	}
}

// filled returns a channel that is closed once the buffer holds a batch worth of records
// (a bound reached, or any record while eager) or the input was closed.
func (in *Input[T]) filled() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.full
}

// controlLocked hands over the assignments and revocations sent since the last call, and
// counts the positions taken (Accepted).
func (in *Input[T]) controlLocked() (assigned []Position, revoked []revocation) {
	assigned, in.assigned = in.assigned, nil
	revoked, in.revoked = in.revoked, nil
	in.taken += len(assigned)
	return assigned, revoked
}

// take swaps the buffered records with dst, an empty split, and returns them with the control
// messages that arrived since the last call and whether the input is closed.
func (in *Input[T]) take(dst *split[T]) (recs *split[T], assigned []Position, revoked []revocation, ended []int32, closed bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	// Swap buffers: the source fills the old batch's memory while the pipeline runs.
	recs, in.buf = in.buf, dst
	assigned, revoked = in.controlLocked()
	ended, in.ended = in.ended, nil
	closed = in.closed
	in.signalLocked()
	if !closed {
		in.full = make(chan struct{})
	}
	return recs, assigned, revoked, ended, closed
}
