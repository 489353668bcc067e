// The join operator: per partition, the join's watermark, the engine (Interval or Window)
// that holds the records, the records alive in order of position (for Retained), the holds
// that keep a left record's match replayable, and the late side stream.

package join

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fleetstream/fleetstream/stream"
)

type in[K comparable, A, B any] = stream.Elem[stream.Pair[K, Side[A, B]]]

type rows[K comparable, A, B any] = []stream.Elem[Joined[K, A, B]]

// engine is one partition's records of an Interval or Window join.
type engine[K comparable, A, B any] interface {
	// late reports whether a record at time t is too late at watermark wm.
	late(t, wm int64) bool
	// add matches a record that is not late against the records held and keeps it.
	add(p *part[K, A, B], key K, v *Side[A, B], t, pos int64)
	// expire drops what watermark wm leaves no partner for, emitting unmatched left
	// records in a LeftOuter join.
	expire(p *part[K, A, B], wm int64)
	// windows returns the windows open (0 for Interval) and an estimate of the bytes held.
	usage() (windows int, bytes int64)
}

// rec is a record held by an engine.
type rec[V any] struct {
	t, pos int64
	seq    uint64 // its place in part.alive
	// matched is set on a left record once it has a partner.
	matched bool
	v       V
}

// part is one partition's state.
type part[K comparable, A, B any] struct {
	op  *operator[K, A, B]
	id  int32
	eng engine[K, A, B]
	// wm is the join's watermark: the highest of the partition's watermarks at the records
	// and marks processed so far and at the ends of batches (see "Watermark" in the package
	// doc). at is the position it moved at: the offset unmatched rows carry.
	wm, at int64
	// next is the offset after the newest record seen.
	next int64
	// alive has one flag per record kept, in order of position (= of arrival): Retained is
	// the position of the first that is still alive.
	alive fifo[aliveRec]
	// holds are the left records that matched records before them (see Retained).
	holds fifo[hold]
	n     int // records held
	out   rows[K, A, B]
}

type aliveRec struct {
	pos   int64
	alive bool
}

// hold says that the left record at pos matched records before it, the earliest at lp.
type hold struct{ pos, lp int64 }

type operator[K comparable, A, B any] struct {
	kind Kind
	// params describes the join's bounds or window size and kind (stream.Parameterized).
	params    string
	newEngine func() engine[K, A, B]
	parts     map[int32]*part[K, A, B]
	lateN     atomic.Int64
	// marks of the partition being processed (scratch)
	marks []markAt
	// late records of the partition being processed, for lateDrain
	late      []stream.Elem[Late[K, A, B]]
	latePart  int32
	lateBatch int64
}

var (
	_ stream.Operator[stream.Pair[string, Side[int, int]], Joined[string, int, int]] = (*operator[string, int, int])(nil)
	_ stream.StateReporter                                                           = (*operator[string, int, int])(nil)
)

func cmpPos[K comparable, A, B any](a, b in[K, A, B]) int {
	switch {
	case a.Offset < b.Offset:
		return -1
	case a.Offset > b.Offset:
		return 1
	}
	return 0
}

// Process joins the partition's records in order of position, each judged on the watermark
// at its position, then expires state on the watermark after the batch's last mark.
func (op *operator[K, A, B]) Process(pc *stream.PartitionContext, recs []in[K, A, B], o rows[K, A, B]) rows[K, A, B] {
	clear(op.late)
	op.late, op.latePart, op.lateBatch = op.late[:0], pc.Partition, pc.Batch
	p, ok := op.parts[pc.Partition]
	if !ok {
		p = &part[K, A, B]{op: op, id: pc.Partition, eng: op.newEngine(), wm: stream.NoWatermark}
		op.parts[pc.Partition] = p
	}
	p.out = o
	if !slices.IsSortedFunc(recs, cmpPos[K, A, B]) {
		// A repartition's stream is in order; an operator between it and the join might not be.
		recs = slices.Clone(recs)
		slices.SortStableFunc(recs, cmpPos[K, A, B])
	}
	// In a repartition's partition the watermark moves at each mark, at the mark's position
	// (from-1: a mark applies to the records after it), between the records before and after
	// it: what it expires, and where (the offset an unmatched row carries), depends only on
	// the partition's record order, and a row made at a mark read in an acknowledged batch
	// carries an offset before the batch's end.
	marks := op.marks[:0]
	for from, wm := range pc.Marks() {
		marks = append(marks, markAt{from, wm})
	}
	op.marks = marks
	for i := range recs {
		e := &recs[i]
		p.next = max(p.next, e.Offset+1)
		if pc.Merged {
			for len(marks) > 0 && marks[0].from <= e.Offset {
				p.advance(marks[0].wm, marks[0].from-1)
				marks = marks[1:]
			}
			p.advance(pc.WatermarkAt(e.Offset), e.Offset)
		} else {
			// One producer's partition: its watermark runs with the records, as a window's.
			p.advance(addSat(pc.CapEventTime(e.Time), -int64(pc.MaxOutOfOrderness)), e.Offset)
		}
		if p.eng.late(e.Time, p.wm) {
			op.lateN.Add(1)
			op.late = append(op.late, stream.Elem[Late[K, A, B]]{Value: Late[K, A, B]{
				Key: e.Value.Key, Side: e.Value.Value, EventTime: unixTime(e.Time), Watermark: stream.WatermarkTime(p.wm),
				Partition: pc.Partition, Offset: e.Offset, Reason: stream.ReasonLate,
			}, Time: e.Time, Offset: e.Offset})
			continue
		}
		p.eng.add(p, e.Value.Key, &e.Value.Value, e.Time, e.Offset)
	}
	for _, m := range marks {
		p.advance(m.wm, m.from-1)
	}
	// Outside a repartition the watermark at the end of a batch (an idle partition's) is
	// taken at the batch's last record: a row it makes in an acknowledged batch carries an
	// offset before the batch's end.
	end, at := pc.WatermarkAt(math.MaxInt64), p.next-1
	if pc.EndOfInput {
		end, at = stream.EndOfTime, math.MaxInt64
	}
	p.advance(end, at)
	o, p.out = p.out, nil
	return o
}

// markAt is a mark of the partition (stream.PartitionContext.Marks).
type markAt struct{ from, wm int64 }

// advance moves the join's watermark to wm, at position at, if that is higher, and expires
// state behind it.
func (p *part[K, A, B]) advance(wm, at int64) {
	if wm > p.wm {
		p.wm, p.at = wm, at
		p.eng.expire(p, wm)
	}
}

// keep registers a new record at pos as alive and returns its place.
func (p *part[K, A, B]) keep(pos int64) uint64 {
	p.n++
	return p.alive.push(aliveRec{pos: pos, alive: true})
}

// dead marks a kept record as dropped.
func (p *part[K, A, B]) dead(seq uint64) {
	p.n--
	p.alive.at(seq).alive = false
	for p.alive.len() > 0 && !p.alive.front().alive {
		p.alive.pop()
	}
}

// holdLeft records that the left record at pos matched earlier records, the earliest at lp:
// a replay that reads the left record must read them too (see Retained).
func (p *part[K, A, B]) holdLeft(pos, lp int64) { p.holds.push(hold{pos: pos, lp: lp}) }

func (p *part[K, A, B]) pair(key K, a *rec[A], b *rec[B], start, end int64) {
	t := max(a.t, b.t)
	j := Joined[K, A, B]{Key: key, Left: a.v, Right: b.v, Matched: true,
		LeftTime: unixTime(a.t), RightTime: unixTime(b.t), Time: unixTime(t), Partition: p.id}
	if start != end {
		j.Start, j.End = unixTime(start), unixTime(end)
	}
	// The row is made when the second record comes: it carries that record's position.
	p.out = append(p.out, stream.Elem[Joined[K, A, B]]{Value: j, Time: t, Offset: max(a.pos, b.pos)})
}

// unmatched emits a left record without partner, in a LeftOuter join.
func (p *part[K, A, B]) unmatched(key K, a *rec[A], start, end int64) {
	if p.op.kind != LeftOuter || a.matched {
		return
	}
	j := Joined[K, A, B]{Key: key, Left: a.v, LeftTime: unixTime(a.t), Time: unixTime(a.t), Partition: p.id}
	if start != end {
		j.Start, j.End = unixTime(start), unixTime(end)
	}
	// The row is made when the watermark passes: it carries the position where it did.
	p.out = append(p.out, stream.Elem[Joined[K, A, B]]{Value: j, Time: a.t, Offset: p.at})
}

// Parameters implements stream.Parameterized: the bounds (Interval) or the window size
// (Window), and the kind. A restart under other ones stops with stream.ErrOperatorChanged
// (see "Replay" in the package documentation).
func (op *operator[K, A, B]) Parameters() string { return op.params }

// Retained returns the position of the oldest record the partition holds, moved back so that
// a replay from it also replays every partner before it of each left record it replays: the
// replay emits all the rows of such a left record again, in the same order, and a LeftOuter
// join does not take it for unmatched (see "Replay" in the package documentation).
func (op *operator[K, A, B]) Retained(id int32) (int64, bool) {
	p := op.parts[id]
	if p == nil || p.alive.len() == 0 {
		if p != nil {
			p.holds.reset()
		}
		return 0, false
	}
	r := p.alive.front().pos
	// holds are in order of position, each partner before its hold: take in those at or
	// after r, then, walking back, those at or after the partners they moved r back to
	first := p.holds.search(func(h *hold) bool { return h.pos >= r })
	for s := first; s < p.holds.end(); s++ {
		r = min(r, p.holds.at(s).lp)
	}
	for first > p.holds.base && p.holds.at(first-1).pos >= r {
		first--
		r = min(r, p.holds.at(first).lp)
	}
	p.holds.dropBefore(first)
	return r, true
}

func (op *operator[K, A, B]) Drop(id int32) { delete(op.parts, id) }

// StateSize returns the number of records held.
func (op *operator[K, A, B]) StateSize() int {
	n := 0
	for _, p := range op.parts {
		n += p.n
	}
	return n
}

// ReportState reports the windows open (Window), an estimate of the bytes held and the late
// records so far. Bytes counts the records inline (key, value, times, positions), the
// per-key and per-window indexes, and the bookkeeping of positions; not what values point to.
func (op *operator[K, A, B]) ReportState(st *stream.OperatorState) {
	bytes := int64(unsafe.Sizeof(*op)) + int64(cap(op.late))*int64(unsafe.Sizeof(stream.Elem[Late[K, A, B]]{}))
	for _, p := range op.parts {
		w, b := p.eng.usage()
		st.OpenWindows += w
		bytes += b + int64(unsafe.Sizeof(*p)) + p.alive.bytes() + p.holds.bytes()
	}
	st.Bytes = bytes
	st.Late = op.lateN.Load()
}

// lateDrain emits the late records that the join set aside while processing the same
// partition: the pipeline runs a partition through every operator in creation order, so it
// runs right after the join (as package window's late stream).
type lateDrain[K comparable, A, B any] struct{ op *operator[K, A, B] }

func (d *lateDrain[K, A, B]) Process(pc *stream.PartitionContext, _ rows[K, A, B], o []stream.Elem[Late[K, A, B]]) []stream.Elem[Late[K, A, B]] {
	op := d.op
	if op.latePart == pc.Partition && op.lateBatch == pc.Batch {
		// A replay after a resume reports again only the records after what the run that
		// committed acknowledged: it reported those before (see "Replay").
		from, replay := pc.SkippedBefore()
		for _, l := range op.late {
			if !replay || l.Offset >= from {
				if u, ok := pc.UpstreamAt(l.Offset, l.Time); ok {
					l.Value.Upstream = &u
				}
				o = append(o, l)
			} else {
				op.lateN.Add(-1)
			}
		}
	}
	clear(op.late)
	op.late = op.late[:0]
	return o
}

func (d *lateDrain[K, A, B]) Retained(int32) (int64, bool) { return 0, false }
func (d *lateDrain[K, A, B]) Drop(int32)                   {}
func (d *lateDrain[K, A, B]) StateSize() int               { return 0 }

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// addSat returns t+d, saturated at the ends of int64.
func addSat(t, d int64) int64 {
	if s := t + d; (d > 0 && s < t) || (d < 0 && s > t) {
		if d > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return t + d
}

// fifo is a queue addressed by sequence numbers that never change: the element pushed as the
// n-th (from 0) is at sequence n until it is popped.
type fifo[T any] struct {
	buf  []T
	head int    // index in buf of the front
	base uint64 // sequence of buf[head]
}

func (q *fifo[T]) push(v T) uint64 {
	if q.head > 0 && q.head >= len(q.buf)/2 && len(q.buf) >= 64 {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, v)
	return q.end() - 1
}

func (q *fifo[T]) len() int    { return len(q.buf) - q.head }
func (q *fifo[T]) front() *T   { return &q.buf[q.head] }
func (q *fifo[T]) end() uint64 { return q.base + uint64(q.len()) }

func (q *fifo[T]) at(seq uint64) *T { return &q.buf[q.head+int(seq-q.base)] }

func (q *fifo[T]) pop() {
	var zero T
	q.buf[q.head] = zero
	q.head++
	q.base++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	}
}

// search returns the sequence of the first element for which f is true (f false then true).
func (q *fifo[T]) search(f func(*T) bool) uint64 {
	i, _ := slices.BinarySearchFunc(q.buf[q.head:], true, func(v T, _ bool) int {
		if f(&v) {
			return 1
		}
		return -1
	})
	return q.base + uint64(i)
}

func (q *fifo[T]) dropBefore(seq uint64) {
	for q.base < seq && q.len() > 0 {
		q.pop()
	}
}

func (q *fifo[T]) reset() {
	clear(q.buf)
	q.base += uint64(q.len())
	q.buf, q.head = q.buf[:0], 0
}

func (q *fifo[T]) bytes() int64 {
	var zero T
	return int64(cap(q.buf)) * int64(unsafe.Sizeof(zero))
}

var _ stream.Parameterized = (*operator[string, int, int])(nil)
