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

// sendRef is a message's Metadata: which Send call and which record it is, and whether the
// broker acknowledged it.
type sendRef struct {
	gen   uint64
	idx   int
	acked bool
}

// Send implements stream.Exchange: it produces every record to its partition, packed with
// the call's other records of that partition into messages of up to 64 KiB (a record: its
// header and, for a value, the codec's bytes; a mark ends its message), and returns once the
// broker acknowledged all of them. Records of one partition are written in the order of recs.
// A value the codec cannot encode, or a record larger than the producer's
// MaxMessageBytes, is a permanent error, reported before anything is sent. If ctx ends
// first, Send returns ctx.Err() and the records may still be written; the pipeline sends
// them again and the copies are dropped downstream. The next call waits for their results
// too, and fails for good if one of them failed (a later record of its partition may have
// been written: the order is not known to hold).
func (e *Exchange[T]) Send(ctx context.Context, recs []stream.Shuffled[T]) error {
	if len(recs) == 0 {
		return nil
	}
	e.mu.Lock()
	ap, closed, n, maxMsg := e.ap, e.closed, e.parts, e.maxMsg
	e.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if ap == nil {
		return fmt.Errorf("kafka: exchange %q: Send before Open", e.topic)
	}
	e.sendMu.Lock()
	defer e.sendMu.Unlock()

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
			return stream.Permanent(fmt.Errorf("kafka: exchange %q: a record of %d bytes exceeds the producer's MaxMessageBytes (%d)", e.topic, size, maxMsg))
		}
		e.pk.add(r.Partition, rec, r.Mark)
	}
	e.buf = rec[:0]
	packs := e.pk.finish()
	e.gen++
	gen := e.gen
	msgs := slices.Grow(e.msgs[:0], len(packs))[:len(packs)]
	vals := slices.Grow(e.vals[:0], len(packs))[:len(packs)]
	ends := slices.Grow(e.refs[:0], len(packs))[:len(packs)]
	for i := range packs {
		vals[i] = byteRef{packs[i].value}
		ends[i] = sendRef{gen: gen, idx: i}
		msgs[i] = sarama.ProducerMessage{Topic: e.topic, Partition: packs[i].partition, Value: &vals[i], Metadata: &ends[i]}
	}
	e.refs, e.msgs, e.vals = ends, msgs, vals

	input, successes, errs := ap.Input(), ap.Successes(), ap.Errors()
	next, acked, failed := 0, 0, 0
	var first error
	var firstFail map[int32]int // by partition, the first failed record
	result := func(m *sarama.ProducerMessage, err error) {
		ref, _ := m.Metadata.(*sendRef)
		if ref == nil || ref.gen != gen {
			e.stale--
			if err != nil && e.staleErr == nil {
				e.staleErr = err
			}
			return
		}
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
			if firstFail == nil {
				firstFail = make(map[int32]int)
			}
			if f, ok := firstFail[m.Partition]; !ok || ref.idx < f {
				firstFail[m.Partition] = ref.idx
			}
			return
		}
		acked++
		ref.acked = true
	}
	// The results of abandoned calls are waited for too: one of their records that failed
	// while a later one of its partition was written (by that call or this one) breaks the
	// order as a failure of this call's own would (helper-90's review: the retry of an
	// abandoned call returned nil, and downstream dropped the retried record as a copy of
	// the later one's).
	for acked+failed < len(msgs) || e.stale > 0 {
		var in chan<- *sarama.ProducerMessage
		var m *sarama.ProducerMessage
		if next < len(msgs) {
			in, m = input, &msgs[next]
		}
		select {
		case in <- m:
			next++
		case s := <-successes:
			result(s, nil)
		case pe := <-errs:
			result(pe.Msg, pe.Err)
		case <-ctx.Done():
			// The records handed over may still be written: their results arrive during later
			// calls, which must not take them for their own, nor reuse their memory.
			e.stale += next - acked - failed
			e.buf, e.refs, e.msgs, e.vals, e.pk = nil, nil, nil, nil, packer{}
			return ctx.Err()
		}
	}
	// Whether a partition's order is broken is decided once every result is in: sarama
	// reports successes and errors on separate channels, so a later record's success may be
	// read before an earlier one's error.
	var broken error
	for i := 0; failed > 0 && i < len(msgs); i++ {
		if f, ok := firstFail[msgs[i].Partition]; ok && ends[i].acked && i > f {
			broken = fmt.Errorf("kafka: exchange %q: partition %d: record %d was written after record %d failed", e.topic, msgs[i].Partition, i, f)
			break
		}
	}
	var bytes int64
	for i := range vals {
		bytes += int64(len(vals[i].b))
	}
	clear(msgs) // drop sarama's references into the records
	if e.staleErr != nil {
		// Whether a later record of the failed one's partition was written is not known
		// (the abandoned call's own bookkeeping is gone): it may have been.
		err := fmt.Errorf("kafka: exchange %q: a record of a Send abandoned earlier (its context ended) failed, and records "+
			"after it may have been written: the order the pipeline's dedup relies on may be broken, and a retry could lose records: %w",
			e.topic, redact(&e.cfg, e.staleErr))
		e.log.Error("kafka: exchange: a partition's order may be broken", "err", err)
		return stream.Permanent(err)
	}
	if first == nil {
		e.sent.Add(int64(len(recs)))
		e.sentMsgs.Add(int64(len(msgs)))
		e.sentBytes.Add(bytes)
		return nil
	}
	err := fmt.Errorf("kafka: exchange %q: produce: %d of %d messages (%d records) failed, first: %w", e.topic, failed, len(msgs), len(recs), redact(&e.cfg, first))
	if broken != nil {
		// The order the pipeline's dedup relies on is broken; a retry could lose records.
		e.log.Error("kafka: exchange: a partition's order is broken", "err", broken)
		return stream.Permanent(errors.Join(broken, err))
	}
	if permanentProduceError(first) {
		return stream.Permanent(err)
	}
	return err
}

// Close implements stream.Closer: it waits for records in flight (abandoned Sends), then
// closes the producer and its client. Later Sends return ErrClosed.
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
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
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
