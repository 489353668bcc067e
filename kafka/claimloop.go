// The claim loop: what one claimed partition's goroutine does with each fetched record
// (decode it, or set it aside as a dead letter), and how it pushes what it holds into the
// pipeline's input in offset order (see claim.go for the handler that runs it).

package kafka

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/fleetstream/fleetstream/internal/backoff"
	"github.com/fleetstream/fleetstream/stream"
)

// claimLoop is the per-claim state owned by its goroutine.
type claimLoop[T any] struct {
	h        *handler[T]
	p        *partition
	codec    Codec[T]       // the Source's, or its ForPartition's (PartitionCodec)
	into     DecoderInto[T] // codec, if it decodes in place
	sess     sarama.ConsumerGroupSession
	msg      Message
	queue    []stream.Record[T] // decoded, not yet in the input
	qarr     []stream.Record[T] // the array queue lies in, from its start (see flush)
	queued   int64              // bytes of queue and pending
	skips    []int64            // dead-lettered offsets among or after queue, ascending
	pending  []stream.DeadLetter
	retry    *time.Timer // set while a failed dead-letter write waits to be retried
	attempt  int         // failed attempts of the pending dead letters
	finished bool
	corrupt  bool // a repartition record could not be decoded: take nothing after it
	// accepted is closed once the pipeline accepted the partition with its checkpoint
	// (stream.Input.Accepted); open once it was. Dead letters wait for it (mayWrite).
	accepted <-chan struct{}
	open     bool
	// toldEnd is the offset read up to when the claim last found its partition read to its
	// high-water mark (noteReadToEnd), -1 before.
	toldEnd int64
	// probe is set while the claim, holding nothing, waits to ask the broker whether the
	// offsets before its target (gapTarget) hold anything the consumer delivers.
	probe *time.Timer
	// probeFrom is the read offset when probe was set: the claim asks only if it is still there.
	probeFrom int64
	// records and bytes received that take has not yet added to the Source's counters
	// (count); received is set once the claim received a record.
	records, bytes int64
	received       bool
}

func (c *claimLoop[T]) stopProbe() {
	if c.probe != nil {
		c.probe.Stop()
		c.probe = nil
	}
}

// gapTarget is the offset that the claim's reading must reach for its input to end: the
// bounded end, or, for WithEndWhenCaughtUp, the high-water mark; -1 when nothing waits for it.
func (c *claimLoop[T]) gapTarget() int64 {
	switch {
	case c.h.client == nil || c.finished || c.corrupt:
		return -1
	case c.p.end >= 0:
		return c.p.end
	case c.h.s.o.caughtUp != nil:
		return c.p.claim.HighWaterMarkOffset()
	}
	return -1
}

// skipUndelivered settles the offsets from the claim's read offset to its target when the
// log holds nothing there that the consumer delivers (transaction markers, aborted records
// under read_committed, batches that compaction emptied): sarama never hands those over, so
// without this a bounded partition whose log ends in a commit marker (any topic that a
// transactional producer writes) was never read to its end and the run never ended, nor did
// a caught-up one. They are settled as a run of dead-lettered offsets is: read past, and
// committed over once everything pushed before them is.
func (c *claimLoop[T]) skipUndelivered() {
	p, s := c.p, c.h.s
	target := c.gapTarget()
	next := p.read.Load()
	if next < 0 {
		starts, err := offsetsAt(c.h.client, p.topic, []int32{p.part}, sarama.OffsetOldest)
		if err != nil {
			return
		}
		next = starts[p.part]
	}
	if target <= next {
		return
	}
	ok, err := nothingLeftBefore(c.h.client, p.topic, p.part, next, target, c.h.client.Config().Consumer.IsolationLevel, false)
	if err != nil {
		s.log.Debug("kafka: probing the offsets left before the end", "topic", p.topic, "partition", p.part, "err", redact(&s.cfg, err))
		return
	}
	if !ok {
		return
	}
	if p.marks.pushedNext < 0 {
		p.mu.Lock()
		p.marks.begin(next)
		p.mu.Unlock()
	}
	c.skipped(target - 1)
}

// room reports whether the claim may take more fetched records.
func (c *claimLoop[T]) room() bool {
	return len(c.queue)+len(c.skips)+len(c.pending) < c.h.hold && c.queued < c.h.holdBytes
}

// take receives m and the records already fetched after it, while the claim has room,
// without going round the claim's loop for each record. It returns false if msgs closed.
// It counts them in the Source's Stats before it returns, so before any of them is pushed.
func (c *claimLoop[T]) take(m *sarama.ConsumerMessage, msgs <-chan *sarama.ConsumerMessage) bool {
	defer c.count()
	c.receive(m)
	for c.room() {
		select {
		case m, ok := <-msgs:
			if !ok {
				return false
			}
			c.receive(m)
		default:
			return true
		}
	}
	return true
}

// receive decodes one fetched record into the queue, or, if it cannot be decoded or its event
// time is unusable (stream.Input.CheckEventTime), into the pending dead letters.
func (c *claimLoop[T]) receive(m *sarama.ConsumerMessage) {
	p, s := c.p, c.h.s
	if p.end >= 0 && m.Offset >= p.end || c.corrupt {
		return // past the backfill's end, or after a corrupt repartition record
	}
	if p.marks.pushedNext < 0 {
		// No committed offset: start counting from the first record.
		p.mu.Lock()
		p.marks.begin(m.Offset)
		p.mu.Unlock()
	}
	size := len(m.Key) + len(m.Value)
	if !c.received {
		c.received = true
		if s.readAny.CompareAndSwap(false, true) {
			// The run's first record, for a drain measured as the benchmarks define it (from
			// the first record read to the last document acknowledged: bench/e2e.sh).
			s.log.Debug("kafka: first record", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
		}
	}
	c.records++
	c.bytes += int64(size)
	c.queued += int64(size)
	c.msg.fromSarama(m)
	if s.o.exchange {
		// A repartition topic holds only what an Exchange wrote: a record it cannot decode is
		// corruption or a codec that changed under a running topic. Dead-lettering it would
		// silently lose a record the exactly-once count includes, so the Source stops. A
		// packed message's records all take its offset (the pipeline keeps them in one
		// batch) and share its size.
		c.makeRoom()
		n0 := len(c.queue)
		q, err := s.codec.(multiDecoder[T]).decodeAppend(c.queue, &c.msg)
		if err != nil {
			c.corrupt = true
			s.fail(fmt.Errorf("%w: %s/%d offset %d: %w", ErrCorruptRepartition, m.Topic, m.Partition, m.Offset, err))
			return
		}
		if cap(q) != cap(c.queue) { // a new array
			c.qarr = q[:0]
		}
		for i := n0; i < len(q); i++ {
			q[i].Partition, q[i].Offset = p.id, m.Offset
		}
		q[n0].Size = size
		c.queue = q
		return
	}
	r, ts, err := c.decode()
	if err != nil {
		c.unqueue()
		reason := stream.ReasonDecode
		if isInvalid(err) {
			reason = stream.ReasonInvalid
		}
		c.pending = append(c.pending, DeadLetterOf(&c.msg, reason, err))
		return
	}
	if ts.IsZero() {
		ts = m.Timestamp
	}
	if err := c.h.in.CheckEventTime(ts); err != nil {
		// A bad clock must never reach a watermark.
		c.unqueue()
		c.pending = append(c.pending, DeadLetterOf(&c.msg, stream.ReasonEventTime, err))
		return
	}
	r.Partition, r.Offset, r.EventTime, r.Size = p.id, m.Offset, ts, size
}

// count adds the records and bytes received since it last ran to the Source's counters. Once
// a run of fetched records (take), not once a record: the claims' goroutines, adding to the
// same two counters for every record, contended for their cache line.
func (c *claimLoop[T]) count() {
	if c.records > 0 {
		c.h.s.records.Add(c.records)
		c.h.s.bytes.Add(c.bytes)
		c.records, c.bytes = 0, 0
	}
}

// decode decodes c.msg into a new record at the queue's end, which receive completes, or
// takes away with unqueue if the message is to be dead-lettered.
func (c *claimLoop[T]) decode() (*stream.Record[T], time.Time, error) {
	if len(c.queue) == cap(c.queue) { // seldom: not a call a record
		c.makeRoom()
	}
	c.queue = c.queue[:len(c.queue)+1]
	r := &c.queue[len(c.queue)-1] // receive sets its other fields
	if c.into != nil {
		var zero T
		r.Value = zero
		ts, err := c.into.DecodeInto(&c.msg, &r.Value)
		return r, ts, err
	}
	v, ts, err := c.codec.Decode(&c.msg)
	r.Value = v
	return r, ts, err
}

// unqueue takes away the record decode added, clearing it so that the array keeps nothing of it.
func (c *claimLoop[T]) unqueue() {
	n := len(c.queue) - 1
	c.queue[n] = stream.Record[T]{}
	c.queue = c.queue[:n]
}

// makeRoom makes room for a record at the queue's end when the queue reaches its array's end:
// it moves the queue to the array's front if the records pushed from the front left at least
// half of the array free, or else moves it into an array at least twice as large. While
// records stream in the queue is seldom empty (flush starts again at the front only then),
// and growing it into a new array at each turn was the claim's largest allocation; moving at
// most half an array to free at least as much costs O(1) a record.
func (c *claimLoop[T]) makeRoom() {
	n := len(c.queue)
	if n < cap(c.queue) {
		return
	}
	if gap := cap(c.qarr) - cap(c.queue); gap > 0 && n <= gap { // gap: pushed from the front
		copy(c.qarr[:n], c.queue)
		clear(c.qarr[n : gap+n]) // the old places: let their values go
		c.queue = c.qarr[:n]
		return
	}
	q := slices.Grow(c.queue[:n:n], max(n, cap(c.qarr), 16))
	c.qarr, c.queue = q[:0], q
}

// writeDeadLetters pushes the records before the pending dead letters, then writes the
// dead letters. On success their offsets join skips; a failure that is not permanent is
// retried after a backoff (c.retry), while the records before them are still pushed. It returns false if the claim must end: the session ended,
// or the dead-letter output failed for good, which stops the Source.
func (c *claimLoop[T]) writeDeadLetters() bool {
	if len(c.pending) == 0 || !c.mayWrite() {
		return true // the claim's loop pushes the records before them meanwhile (flush)
	}
	// Push what precedes the first dead letter before the write, which may take long (a
	// slow dead-letter broker): records fetched with the bad one would otherwise wait for
	// it. If the input is full, they wait.
	c.flush()
	s := c.h.s
	ctx := c.sess.Context()
	err := c.h.dlq.Write(ctx, c.pending)
	if err == nil {
		for i := range c.pending {
			dl := &c.pending[i]
			c.skips = append(c.skips, dl.Offset)
			c.queued -= int64(len(dl.Key) + len(dl.Value))
			n := s.deadLettered.Add(1)
			s.countDeadLetter(dl.Reason)
			if ok, left := s.dlqLog.Allow(time.Now()); ok {
				s.log.Warn("kafka: record dead-lettered", "topic", dl.Topic, "partition", dl.Partition, "offset", dl.Offset,
					"reason", dl.Reason, "err", dl.Err, "not_logged_since_last", left, "dead_letters", n)
			}
		}
		clear(c.pending)
		c.pending = c.pending[:0]
		c.attempt = 0
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	first := &c.pending[0]
	if stream.IsPermanent(err) {
		s.fail(fmt.Errorf("kafka: dead-letter output cannot store the record at %s/%d offset %d (%s): %w",
			first.Topic, first.Partition, first.Offset, first.Reason, err))
		return false
	}
	c.attempt++
	wait := backoff.Delay(100*time.Millisecond, 5*time.Second, c.attempt)
	s.log.Error("kafka: dead-letter write failed, retrying", "topic", first.Topic, "partition", first.Partition, "offset", first.Offset,
		"dead_letters", len(c.pending), "attempt", c.attempt, "backoff", wait, "err", redact(&s.cfg, err))
	c.retry = time.NewTimer(wait)
	return true
}

// mayWrite reports whether the pipeline accepted the partition, so that its dead letters may
// be written. A restart that the pipeline refuses at its first batch (a checkpoint written
// under other operator parameters, stream.ErrOperatorChanged; a repartition's committed
// state of another input, stream.ErrInputChanged) must write none: it commits nothing, so a job restarted
// again and again after the refusal would write the same dead letters from the committed
// offset each time. Until then the dead letters stay pending: nothing after them is pushed
// or committed, and a claim that ends first leaves them to the next one, which reads them
// again.
func (c *claimLoop[T]) mayWrite() bool {
	if !c.open && c.accepted != nil {
		select {
		case <-c.accepted:
		default:
			return false
		}
	}
	c.open = true
	return true
}

func (c *claimLoop[T]) stopRetry() {
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
}

// flush moves queued records into the input and settles dead-lettered offsets, in offset
// order, up to the first pending (not yet written) dead letter. It returns false if the
// input is full.
func (c *claimLoop[T]) flush() bool {
	stop := int64(math.MaxInt64)
	if len(c.pending) > 0 {
		stop = c.pending[0].Offset
	}
	for len(c.queue) > 0 && c.queue[0].Offset < stop || len(c.skips) > 0 && c.skips[0] < stop {
		bound := stop
		if len(c.skips) > 0 {
			bound = min(bound, c.skips[0])
		}
		lim, _ := slices.BinarySearchFunc(c.queue, bound, func(r stream.Record[T], off int64) int {
			return cmp.Compare(r.Offset, off)
		})
		if lim > 0 {
			// Push in small chunks and let the other partitions' goroutines in between, so
			// that one partition cannot fill the input alone and stall the watermark.
			lim = min(lim, pushChunk)
			// A packed repartition message's records share an offset: never split them
			// between two pushes (TryPushBatch keeps them in one batch).
			for lim < len(c.queue) && c.queue[lim].Offset == c.queue[lim-1].Offset {
				lim++
			}
			// Exactly once: where committed output ends before the push. Loaded after,
			// it could already include output made from these records.
			var snap *outputs
			if c.p.eos != nil {
				snap = c.p.eos.snap.Load()
			}
			n := c.h.in.TryPushBatch(c.queue[:lim])
			if testHookPushed != nil {
				testHookPushed(n)
			}
			if n > 0 {
				c.pushed(c.queue[0].Offset, c.queue[n-1].Offset+1, snap)
				for i := range n {
					c.queued -= int64(c.queue[i].Size)
				}
				clear(c.queue[:n])
				c.queue = c.queue[n:]
				if len(c.queue) == 0 {
					// Start again at the front of the array: fetched records arrive all the
					// time, and a new array per refill was the claim's largest allocation.
					c.queue = c.qarr[:0]
				}
			}
			if n < lim {
				return false
			}
		}
		if len(c.skips) > 0 && c.skips[0] < stop && (len(c.queue) == 0 || c.queue[0].Offset > c.skips[0]) {
			c.skipped(c.skips[0])
			c.skips = c.skips[1:]
		}
		if lim >= pushChunk {
			runtime.Gosched()
		}
	}
	return true
}

// noteReadToEnd is called when the claim holds nothing more: if its partition was read to its
// high-water mark (as of the last fetch) and the Source's other partitions too, the Source
// tells the pipeline (stream.Input.ReadToEnd), so that a catch-up's last batch starts at
// once. Once for each offset reached: the loop comes here after every fetch.
func (c *claimLoop[T]) noteReadToEnd() {
	read := c.p.read.Load()
	if read < 0 || read == c.toldEnd || read < c.p.claim.HighWaterMarkOffset() {
		return
	}
	c.toldEnd = read
	if c.h.s.readToEnd() {
		c.h.in.ReadToEnd()
	}
}

// testHookPushed, when set by a test, runs right after n records were pushed: where the
// pipeline may already have processed them and committed their output.
var testHookPushed func(n int)

// pushChunk is the most records a partition moves into the input at once.
const pushChunk = 128

// pushed notes that the records from..next-1 were pushed when committed output ended at
// snap (nil without exactly once).
func (c *claimLoop[T]) pushed(from, next int64, snap *outputs) {
	p := c.p
	c.h.s.noteRead()
	p.read.Store(next)
	p.mu.Lock()
	if snap != nil {
		p.notePush(snap, from)
	}
	p.marks.pushed(next)
	p.pushedAny = true
	p.mu.Unlock()
	c.checkEnd(next)
}

// skipped settles a dead-lettered offset: it joins the run after the last pushed record, and
// if the pipeline already committed everything pushed, the run is marked and committed in
// the background (Source.commitSession), as the pipeline's commits are: a commit per offset,
// waited for here, cost a round trip to the group's coordinator per dead letter (about 3 ms),
// and a commit waits while the member rejoins the group. Background commits of a session run
// one at a time and take every offset marked by then, so a run of dead letters costs a few
// commits, not one each.
func (c *claimLoop[T]) skipped(off int64) {
	p := c.p
	c.h.s.noteRead()
	p.read.Store(off + 1)
	p.mu.Lock()
	direct := p.apply(p.marks.skipped(off))
	p.mu.Unlock()
	if direct {
		c.h.s.commitSession(p.sess)
	}
	c.checkEnd(off + 1)
}

func (c *claimLoop[T]) checkEnd(next int64) {
	if p := c.p; p.end >= 0 && !c.finished && next >= p.end {
		c.finished = true
		c.h.s.finish(p.id)
		c.h.in.End(p.id) // its windows close now: the input of other partitions may go on
	}
}
