// The exchange's upstream side: Send packs a batch's records into messages per partition and
// produces them with the exchange's idempotent producer, and Close waits for what is in
// flight before it closes the producer.

package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
	"github.com/fleetstream/fleetstream/stream"
)

// exchangeRetries is how often the exchange's producer retries a record: with backoffs
// growing to 5s, for over an hour.
const exchangeRetries = 1000

// byteRef is a message value; pointers into a slice of them make the values of a Send
// without an allocation per record.
type byteRef struct{ b []byte }

func (r *byteRef) Encode() ([]byte, error) { return r.b, nil }
func (r *byteRef) Length() int             { return len(r.b) }

// sendRef is a message's Metadata: which Send call it is of, and the call's next message of
// its partition.
type sendRef struct {
	gen  uint64
	next int // -1: the last of its partition
}

// Send implements stream.Exchange: it produces every record to its partition, packed with
// the call's other records of that partition into messages of up to 64 KiB (a record: its
// header and, for a value, the codec's bytes; see the record format), and returns once the
// broker acknowledged all of them. Records of one partition are written in the order of
// recs, one message of a partition at a time: a message goes to the producer once the one
// before it in its partition was acknowledged, so none is written after an earlier one
// failed (see "Repartition" in the package documentation). A value the codec cannot encode,
// a record the downstream would refuse (flags that do not go together, such as an idle
// value; a negative upstream partition, rank or upstream count), or a record larger than
// the producer's MaxMessageBytes or the topic's max.message.bytes (read when the exchange
// opens) allows, is a permanent error, reported before anything is sent. If ctx ends first, Send returns ctx.Err() and the records handed to the producer may
// still be written; the pipeline sends them again and the copies are dropped downstream. The next call waits for their results before it hands
// over anything, and returns the error of one that failed.
func (e *Exchange[T]) Send(ctx context.Context, recs []stream.Shuffled[T]) error {
	if len(recs) == 0 {
		return nil
	}
	if e.isClosed() {
		return ErrClosed
	}
	// Close closes the producer holding the lock: look again once it is held.
	if err := e.lockSend(ctx); err != nil {
		return err
	}
	defer e.unlockSend()
	e.mu.Lock()
	ap, closed, n, maxMsg := e.ap, e.closed, e.parts, e.maxMsg
	e.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if ap == nil {
		return fmt.Errorf("kafka: exchange %q: Send before Open", e.topic)
	}

	// Encode everything first: a bad value fails the call before a record is sent, so no
	// partition gets a later record without an earlier one. Records go into packed messages
	// per partition (see the record format).
	limit := min(packTarget, maxMsg-batchOverhead-recordOverhead-sizeSlack)
	e.pk.reset(n, limit)
	rec := e.buf[:0]
	for i := range recs {
		r := &recs[i]
		if r.Partition < 0 || int(r.Partition) >= n {
			return stream.Permanent(fmt.Errorf("kafka: exchange %q: record for partition %d of %d", e.topic, r.Partition, n))
		}
		if err := checkShuffled(r); err != nil {
			e.buf = rec[:0]
			return stream.Permanent(fmt.Errorf("kafka: exchange %q: record %d of %d (upstream partition %d, seq %d): %w",
				e.topic, i+1, len(recs), r.From, r.Seq, err))
		}
		rec = appendShuffled(rec[:0], r)
		if !r.Mark {
			var err error
			rec, err = e.codec.Append(rec, r.Value)
			if err != nil {
				e.buf = rec[:0]
				return stream.Permanent(fmt.Errorf("kafka: exchange %q: encode: %w", e.topic, err))
			}
		}
		if size := 1 + binary.MaxVarintLen64 + len(rec) + batchOverhead + recordOverhead + sizeSlack; size > maxMsg {
			e.buf = rec[:0]
			return stream.Permanent(fmt.Errorf("kafka: exchange %q: a record of %d bytes exceeds the producer's MaxMessageBytes "+
				"or what the topic's max.message.bytes allows (%d)", e.topic, size, maxMsg))
		}
		e.pk.add(r.Partition, rec)
	}
	e.buf = rec[:0]
	packs := e.pk.finish()

	input, successes, errs := ap.Input(), ap.Successes(), ap.Errors()
	// The results of abandoned calls come first: one of their messages that failed must not
	// be followed by a later one of its partition (this call's), and nothing of an abandoned
	// call after it in its partition was handed over.
	for e.stale > 0 {
		select {
		case <-successes:
			e.stale--
		case pe := <-errs:
			e.stale--
			if e.staleErr == nil {
				e.staleErr = pe.Err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := e.staleErr; err != nil {
		e.staleErr = nil
		err = fmt.Errorf("kafka: exchange %q: produce: a message of a Send abandoned earlier (its context ended) failed: %w", e.topic, redact(&e.cfg, err))
		if permanentProduceError(err) {
			return stream.Permanent(err)
		}
		return err
	}

	e.gen++
	gen := e.gen
	msgs := slices.Grow(e.msgs[:0], len(packs))[:len(packs)]
	vals := slices.Grow(e.vals[:0], len(packs))[:len(packs)]
	ends := slices.Grow(e.refs[:0], len(packs))[:len(packs)]
	// ready holds the messages that may go to the producer: at first each partition's first,
	// then the next of a partition as the one before it is acknowledged.
	ready := e.ready[:0]
	last := e.lastOf(n)
	for i := range packs {
		vals[i] = byteRef{packs[i].value}
		ends[i] = sendRef{gen: gen, next: -1}
		msgs[i] = sarama.ProducerMessage{Topic: e.topic, Partition: packs[i].partition, Value: &vals[i], Metadata: &ends[i]}
		if j := last[packs[i].partition]; j >= 0 {
			ends[j].next = i
		} else {
			ready = append(ready, i)
		}
		last[packs[i].partition] = i
	}
	e.refs, e.msgs, e.vals = ends, msgs, vals

	handed, acked, failed := 0, 0, 0 // ready[:handed] went to the producer
	var first error
	result := func(m *sarama.ProducerMessage, err error) {
		ref, _ := m.Metadata.(*sendRef)
		if ref == nil || ref.gen != gen {
			return // not one of this call's: every earlier call's result came before it
		}
		if err != nil {
			// The partition's later messages are never handed over: the pipeline sends them
			// again, after this one.
			failed++
			if first == nil {
				first = err
			}
			return
		}
		acked++
		if ref.next >= 0 {
			ready = append(ready, ref.next)
		}
	}
	for handed < len(ready) || handed > acked+failed {
		var in chan<- *sarama.ProducerMessage
		var m *sarama.ProducerMessage
		if handed < len(ready) {
			in, m = input, &msgs[ready[handed]]
		}
		select {
		case in <- m:
			handed++
		case s := <-successes:
			result(s, nil)
		case pe := <-errs:
			result(pe.Msg, pe.Err)
		case <-ctx.Done():
			// The messages handed over may still be written: their results arrive during later
			// calls, which must not take them for their own, nor reuse their memory.
			e.stale += handed - acked - failed
			e.buf, e.refs, e.msgs, e.vals, e.pk, e.ready = nil, nil, nil, nil, packer{}, nil
			return ctx.Err()
		}
	}
	e.ready = ready[:0]
	var bytes int64
	for i := range vals {
		bytes += int64(len(vals[i].b))
	}
	clear(msgs) // drop sarama's references into the records
	if first == nil {
		e.sent.Add(int64(len(recs)))
		e.sentMsgs.Add(int64(len(msgs)))
		e.sentBytes.Add(bytes)
		return nil
	}
	err := fmt.Errorf("kafka: exchange %q: produce: %d of %d messages (%d records) failed, %d not sent after them, first: %w",
		e.topic, failed, len(msgs), len(recs), len(msgs)-acked-failed, redact(&e.cfg, first))
	if permanentProduceError(first) {
		return stream.Permanent(err)
	}
	return err
}

// lastOf returns a slice of n entries of -1, reused across calls.
func (e *Exchange[T]) lastOf(n int) []int {
	e.last = slices.Grow(e.last[:0], n)[:n]
	for i := range e.last {
		e.last[i] = -1
	}
	return e.last
}

// lockSend takes Send's lock, or returns ctx's error when ctx ends first.
func (e *Exchange[T]) lockSend(ctx context.Context) error {
	e.mu.Lock()
	if e.sendSem == nil {
		e.sendSem = make(chan struct{}, 1)
	}
	sem := e.sendSem
	e.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Exchange[T]) unlockSend() { <-e.sendSem }

func (e *Exchange[T]) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Close implements stream.Closer: it waits for records in flight (of a Send still running,
// or abandoned), then closes the producer and its client. Later Sends return ErrClosed. If
// ctx ends first, Close returns ctx.Err(), and the producer is closed, without waiting for
// its records, once a Send still running returns.
func (e *Exchange[T]) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ap, client := e.ap, e.client
	e.mu.Unlock()
	if ap == nil {
		return nil
	}
	if err := e.lockSend(ctx); err != nil {
		go func() {
			_ = e.lockSend(context.Background())
			defer e.unlockSend()
			_ = e.closeProducer(ctx, ap, client)
		}()
		return err
	}
	defer e.unlockSend()
	return e.closeProducer(ctx, ap, client)
}

// closeProducer closes ap, waiting for its records in flight until ctx ends, then client.
func (e *Exchange[T]) closeProducer(ctx context.Context, ap sarama.AsyncProducer, client sarama.Client) error {
	ap.AsyncClose()
	gen := e.gen
	done := make(chan []error, 1)
	go func() {
		var errs []error
		s, f := ap.Successes(), ap.Errors()
		for s != nil || f != nil {
			select {
			case _, ok := <-s:
				if !ok {
					s = nil
				}
			case pe, ok := <-f:
				if !ok {
					f = nil
				} else if pe.Msg != nil {
					if ref, _ := pe.Msg.Metadata.(*sendRef); ref == nil || ref.gen == gen {
						errs = append(errs, pe.Err)
					}
				}
			}
		}
		done <- errs
	}()
	var errs []error
	select {
	case errs = <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	if err := client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("kafka: exchange close: %w", errors.Join(errs...))
	}
	return nil
}
