// How a Table knows that a partition is loaded when the records before its end offset are
// transaction markers or aborted records, which the consumer never delivers.

package kafka

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// probeEvery is how long a partition that is not loaded yet may stay without a record before
// the Table probes what is left before its end offset.
const probeEvery = 250 * time.Millisecond

// nothingLeft reports whether the consumer of p has nothing more to deliver before p.end:
// from p.next on, the log holds only transaction markers, records of aborted transactions,
// batches that compaction emptied and records deleted since the Table read its offsets.
// Called from p's follow goroutine, so p.next is stable.
func (t *Table[K, V]) nothingLeft(p *tablePart) (bool, error) {
	return nothingLeftBefore(t.client, t.topic, p.id, p.next.Load(), p.end, sarama.ReadCommitted, true)
}

// nothingLeftBefore reports whether a consumer of topic/part at next with isolation iso has
// nothing more to deliver before end: from next on, the log holds only transaction markers,
// records of aborted transactions (read_committed), batches that compaction emptied and
// records deleted since end was read (only with skipDeleted: a Source stops on those,
// ErrDataLoss, when its own fetch falls out of range).
func nothingLeftBefore(client sarama.Client, topic string, part int32, next, end int64, iso sarama.IsolationLevel, skipDeleted bool) (bool, error) {
	broker, err := client.Leader(topic, part)
	if err != nil {
		return false, err
	}
	aborted := map[int64]bool{}
	for range 16 { // a bounded number of fetches; the next tick tries again
		if next >= end {
			return true, nil
		}
		req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 0, MinBytes: 1, MaxBytes: 4 << 20, Isolation: iso}
		req.AddBlock(topic, part, next, 4<<20, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return false, err
		}
		b := resp.GetBlock(topic, part)
		if b == nil {
			return false, fmt.Errorf("fetch %s/%d: no block", topic, part)
		}
		if skipDeleted && errors.Is(b.Err, sarama.ErrOffsetOutOfRange) {
			// Records deleted (retention, delete-records) since the start offset was read: the
			// consumer, which starts at the log's start, will never deliver them.
			start, ok, err := deletedBefore(client, topic, part, next)
			if err != nil {
				return false, err
			}
			if ok {
				next = start
				continue
			}
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			return false, fmt.Errorf("fetch %s/%d at %d: %w", topic, part, next, b.Err)
		}
		if iso == sarama.ReadCommitted && b.LastStableOffset >= 0 && b.LastStableOffset < end {
			return false, nil // an open transaction: the consumer waits for its outcome
		}
		txns := slices.Clone(b.AbortedTransactions)
		slices.SortFunc(txns, func(x, y *sarama.AbortedTransaction) int { return int(x.FirstOffset - y.FirstOffset) })
		moved := false
		for _, rs := range b.RecordsSet {
			rb := rs.RecordBatch
			if rb == nil {
				return false, nil // a legacy message set: not a marker
			}
			if rb.PartialTrailingRecord {
				continue
			}
			last := rb.FirstOffset + int64(rb.LastOffsetDelta)
			if last < next {
				continue
			}
			for len(txns) > 0 && txns[0].FirstOffset <= last {
				aborted[txns[0].ProducerID] = true
				txns = txns[1:]
			}
			switch {
			case rb.Control:
				delete(aborted, rb.ProducerID) // its transaction ends here
			case rb.IsTransactional && aborted[rb.ProducerID]:
			default:
				for _, r := range rb.Records {
					if off := rb.FirstOffset + r.OffsetDelta; off >= next && off < end {
						return false, nil // a record the consumer will deliver
					}
				}
			}
			next, moved = last+1, true
		}
		if !moved {
			return false, nil
		}
	}
	return false, nil
}
