// The read-back of exactly once: what a replay may emit again is read back from committed
// output, from the bound each committed checkpoint stores, and recognised by its digest. See
// "Exactly once" in the package documentation.

package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// digestOf identifies an output message by content.
func digestOf(topic string, key, value []byte, headers []Header) digest {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(topic))
	field(key)
	field(value)
	for _, hd := range headers {
		field([]byte(hd.Key))
		field(hd.Value)
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

// readBound is what a committed checkpoint stores for exactly once: where a read-back of
// committed output must start (out) for the output that the replay from the committed
// offset makes again, and the offset after the last record that any owner of the partition
// had pushed when it committed (pushed; -1 unknown): output made from records before it may
// be in committed output already, from records after it not.
type readBound struct {
	out    outputs
	pushed int64
}

// encodeBound appends a read-back bound to the pipeline's checkpoint:
// meta~eos~PUSHED;topic/part=off,..., the format every release reads, while the list takes at
// most boundFlatMax bytes; a longer one (an output topic of many partitions) names each topic
// once: meta~eos~PUSHED;topic:part=off,part=off|topic:part=off (Kafka's topic names hold no
// ':' and no '|'), since the broker bounds a commit's metadata (offset.metadata.max.bytes,
// 4096 bytes by default). Releases before this one read that as no bound, and the whole
// metadata as the checkpoint, which they then refuse: during a rolling deploy or after a
// rollback, an instance of such a release that claims the partition starts its operators
// cold and without the read-back, so it may write output again. That can happen only to a
// Source bound to outputs of more than about 50 partitions, which the format before made
// about 16 bytes longer per partition.
func encodeBound(meta string, b readBound) string {
	if len(b.out) == 0 {
		return meta
	}
	keys := make([]topicPart, 0, len(b.out))
	for k := range b.out {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y topicPart) int {
		if c := strings.Compare(x.topic, y.topic); c != 0 {
			return c
		}
		return int(x.part - y.part)
	})
	var s strings.Builder
	s.WriteString(meta)
	s.WriteString(eosMarker)
	if b.pushed >= 0 {
		fmt.Fprintf(&s, "%d;", b.pushed)
	}
	start := s.Len()
	for i, k := range keys {
		if i > 0 {
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, "%s/%d=%d", k.topic, k.part, b.out[k])
	}
	if s.Len()-start <= boundFlatMax {
		return s.String()
	}
	flat := s.String()
	s.Reset()
	s.WriteString(flat[:start])
	for i, k := range keys {
		switch {
		case i == 0:
			s.WriteString(k.topic)
			s.WriteByte(':')
		case k.topic != keys[i-1].topic:
			s.WriteByte('|')
			s.WriteString(k.topic)
			s.WriteByte(':')
		default:
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, "%d=%d", k.part, b.out[k])
	}
	return s.String()
}

// boundFlatMax is the most bytes of a read-back bound's list written in the format every
// release reads (see encodeBound).
const boundFlatMax = 1024

// splitBound splits stored offset metadata into the pipeline's checkpoint and the read-back
// bound. Metadata without a bound is all checkpoint; a bound without the pushed end (as
// stored before it was added) has pushed -1.
func splitBound(stored string) (meta string, b readBound) {
	b.pushed = -1
	i := strings.LastIndex(stored, eosMarker)
	if i < 0 {
		return stored, b
	}
	meta, rest := stored[:i], stored[i+len(eosMarker):]
	if n, list, ok := strings.Cut(rest, ";"); ok {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 0 {
			return stored, readBound{pushed: -1} // not ours
		}
		b.pushed, rest = v, list
	}
	b.out = outputs{}
	add := func(topic, f string) bool {
		part, off, ok := strings.Cut(f, "=")
		o, err1 := strconv.ParseInt(off, 10, 64)
		p, err2 := strconv.ParseInt(part, 10, 32)
		if !ok || topic == "" || err1 != nil || err2 != nil {
			return false
		}
		b.out[topicPart{topic, int32(p)}] = o
		return true
	}
	if strings.Contains(rest, ":") {
		for group := range strings.SplitSeq(rest, "|") {
			topic, list, ok := strings.Cut(group, ":")
			if !ok || CheckTopic(topic) != nil {
				return stored, readBound{pushed: -1}
			}
			for f := range strings.SplitSeq(list, ",") {
				if !add(topic, f) {
					return stored, readBound{pushed: -1}
				}
			}
		}
		return meta, b
	}
	// As written before: topic/part=off in each entry.
	for f := range strings.SplitSeq(rest, ",") {
		tp, off, _ := strings.Cut(f, "=")
		topic, part, ok := cutLast(tp, "/")
		if !ok || !add(topic, part+"="+off) {
			return stored, readBound{pushed: -1} // not ours
		}
	}
	return meta, b
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// stableWait bounds how long a read-back waits for the transactions open on an output
// partition to end (readPartition): the broker aborts one of a killed fleetstream producer
// after txnTimeout and writes its markers within seconds; another producer's may be longer.
// stablePoll is how often it looks.
const (
	stableWait = txnTimeout + 15*time.Second
	stablePoll = 100 * time.Millisecond
)

// testHookStableWait, when set by a test, runs when a read-back starts waiting for an output
// partition's open transactions.
var testHookStableWait func()

// readBack reads the committed output from each bound to the partition's last stable
// offset and remembers every message's digest. It returns how many messages it read.
func (t *txn) readBack(ctx context.Context, bounds outputs) (int, error) {
	n := 0
	for tp, from := range bounds {
		if !slices.Contains(t.topics, tp.topic) {
			continue
		}
		read, err := t.readPartition(ctx, tp, from)
		if err != nil {
			return n, err
		}
		n += read
	}
	return n, nil
}

// readPartition fetches tp from from to its last stable offset with isolation
// read_committed, skipping control batches and aborted transactions as a consumer does.
//
// It first waits, at most stableWait, until every transaction open on tp when it starts has
// ended: the last stable offset reaches the high-water mark it read first. The output
// partitions are shared: every instance of a job writes to every partition of its output
// topics, and a transaction that another producer left open (a process killed in its commit;
// the broker aborts it after txnTimeout) pins the last stable offset below the output that
// the partition's previous owner committed after it. Read to there, the read-back missed that
// output, and the replay wrote it again (helper-79: the scale-out test's alerts read twice).
func (t *txn) readPartition(ctx context.Context, tp topicPart, from int64) (int, error) {
	broker, err := t.client.Leader(tp.topic, tp.part)
	if err != nil {
		return 0, err
	}
	offset := func(iso sarama.IsolationLevel) (int64, error) {
		lreq := sarama.NewOffsetRequest(t.client.Config().Version)
		lreq.IsolationLevel = iso
		lreq.AddBlock(tp.topic, tp.part, sarama.OffsetNewest, 1)
		lresp, err := broker.GetAvailableOffsets(lreq)
		if err != nil {
			return 0, err
		}
		lb := lresp.GetBlock(tp.topic, tp.part)
		if lb == nil || !errors.Is(lb.Err, sarama.ErrNoError) || len(lb.Offsets) != 1 {
			return 0, fmt.Errorf("end offset of %s/%d (isolation %d): %v", tp.topic, tp.part, iso, lb)
		}
		return lb.Offsets[0], nil
	}
	hwm, err := offset(sarama.ReadUncommitted)
	if err != nil {
		return 0, err
	}
	end, err := offset(sarama.ReadCommitted)
	if err != nil {
		return 0, err
	}
	if end < hwm {
		if testHookStableWait != nil {
			testHookStableWait()
		}
		waited := time.Now()
		deadline := waited.Add(stableWait)
		for end < hwm && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(stablePoll):
			}
			if end, err = offset(sarama.ReadCommitted); err != nil {
				return 0, err
			}
		}
		if end < hwm {
			t.log.Warn("kafka: an output partition's last stable offset stayed behind its high-water mark (another producer's transaction is open); reading back to it, output committed after it may be written again",
				"topic", tp.topic, "partition", tp.part, "last_stable", end, "high_water_mark", hwm, "waited", time.Since(waited).Round(time.Millisecond))
		} else {
			t.log.Info("kafka: exactly-once read-back waited for another producer's open transaction on an output partition",
				"topic", tp.topic, "partition", tp.part, "waited", time.Since(waited).Round(time.Millisecond))
		}
	}
	n := 0
	next := from
	aborted := map[int64]bool{}
	for next < end {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 100, MinBytes: 1, MaxBytes: 8 << 20, Isolation: sarama.ReadCommitted}
		req.AddBlock(tp.topic, tp.part, next, 4<<20, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return n, err
		}
		b := resp.GetBlock(tp.topic, tp.part)
		if b == nil {
			return n, fmt.Errorf("fetch %s/%d: no block", tp.topic, tp.part)
		}
		if errors.Is(b.Err, sarama.ErrOffsetOutOfRange) {
			// Retention removed the start: nothing older can be replayed either, and a replay
			// writes again what it emits of the deleted output (its copies were deleted).
			start, ok, err := deletedBefore(t.client, tp.topic, tp.part, next)
			if err != nil {
				return n, err
			}
			if ok {
				t.log.Warn("kafka: output to read back was deleted (retention); a replay writes it again",
					"topic", tp.topic, "partition", tp.part, "from", next, "to", start)
				next = start
				continue
			}
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			return n, fmt.Errorf("fetch %s/%d at %d: %w", tp.topic, tp.part, next, b.Err)
		}
		abortedTxns := slices.Clone(b.AbortedTransactions)
		slices.SortFunc(abortedTxns, func(x, y *sarama.AbortedTransaction) int { return int(x.FirstOffset - y.FirstOffset) })
		moved := false
		for _, rs := range b.RecordsSet {
			rb := rs.RecordBatch
			if rb == nil || rb.PartialTrailingRecord {
				continue
			}
			last := rb.FirstOffset + int64(rb.LastOffsetDelta)
			if last < next {
				continue
			}
			for len(abortedTxns) > 0 && abortedTxns[0].FirstOffset <= last {
				aborted[abortedTxns[0].ProducerID] = true
				abortedTxns = abortedTxns[1:]
			}
			moved = true
			switch {
			case rb.Control:
				// A transaction marker: key is version (int16) and type (int16), 0 = abort.
				if len(rb.Records) > 0 && len(rb.Records[0].Key) >= 4 && binary.BigEndian.Uint16(rb.Records[0].Key[2:4]) == 0 {
					delete(aborted, rb.ProducerID)
				}
			case rb.IsTransactional && aborted[rb.ProducerID]:
			default:
				for _, r := range rb.Records {
					off := rb.FirstOffset + r.OffsetDelta
					if off < next || off >= end {
						continue
					}
					hs := make([]Header, len(r.Headers))
					for i, h := range r.Headers {
						hs[i] = Header{Key: string(h.Key), Value: h.Value}
					}
					t.seen[digestOf(tp.topic, r.Key, r.Value, hs)]++
					n++
				}
			}
			next = last + 1
		}
		if !moved {
			return n, fmt.Errorf("fetch %s/%d at %d: no progress before the last stable offset %d", tp.topic, tp.part, next, end)
		}
	}
	return n, nil
}
