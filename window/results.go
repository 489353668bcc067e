// The operator's output as elements: results (appendResult, written in place per window by
// appendSpan), the late and refused records set aside for lateDrain, and whether a replay
// sends the results again in the same order (TimeOrder).

package window

import (
	"slices"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

func (op *operator[T, K, V, A, R]) appendRefused(o out[K, R], e *stream.Elem[T], part int32, start, end int64) out[K, R] {
	op.limitN.Add(1)
	o = op.appendLate(o, e, part, start, end)
	op.lateN.Add(-1)
	op.late[len(op.late)-1].Value.Reason = stream.ReasonKeyLimit
	return o
}

func (op *operator[T, K, V, A, R]) appendLate(o out[K, R], e *stream.Elem[T], part int32, start, end int64) out[K, R] {
	op.lateN.Add(1)
	op.late = append(op.late, stream.Elem[Late[T]]{
		Value: Late[T]{
			Value:     e.Value,
			EventTime: e.EventTime(),
			Partition: part,
			Offset:    e.Offset,
			Start:     utc(start),
			End:       utc(end),
			Reason:    stream.ReasonLate,
		},
		Time:   e.Time,
		Offset: e.Offset,
	})
	return o
}

func (op *operator[T, K, V, A, R]) appendResult(o out[K, R], part int32, k K, acc A, start, end int64, final bool, off int64) out[K, R] {
	sp := spanOf(start, end)
	return op.appendSpan(o, part, k, acc, &sp, final, off)
}

// span is what every result of one window carries of it, computed once per window rather
// than once per key.
type span struct {
	start, end time.Time
	last       int64 // the window's last instant: its results' event time
}

func spanOf(start, end int64) span { return span{utc(start), utc(end), end - 1} }

// appendSpan is appendResult for a window's span: the result is written in place, once,
// rather than built and then copied into o (a result of cab stats is about 300 bytes). It
// sets every field: the slot past len(o) may hold an earlier batch's result.
func (op *operator[T, K, V, A, R]) appendSpan(o out[K, R], part int32, k K, acc A, sp *span, final bool, off int64) out[K, R] {
	if len(o) == cap(o) {
		o = slices.Grow(o, 1)
	}
	o = o[:len(o)+1]
	e := &o[len(o)-1]
	r := &e.Value
	r.Key, r.Start, r.End = k, sp.start, sp.end
	r.Value = op.agg.Result(acc)
	r.Final, r.Partition = final, part
	e.Time, e.Offset = sp.last, off
	return o
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// TimeOrder implements stream.TimeOrderer: whether stream.RepartitionByTime may number the
// results by event time and rank (see "Delivery and replay" in the package documentation).
// A tumbling window with OnClose sends each window's results once, in one batch, in the
// order of their keys' first records in it, which a replay rebuilds. EveryBatch partial
// results repeat their window's time in later batches; a sliding window's come in the order
// the partition first saw their keys, and sessions of one end in the order of their keys in
// the partition's state, both of which depend on where a replay starts; and the key limit
// admits keys by the state of every partition, so a replay may admit a key the first run
// refused (TestRepartitionByTimeReplayOrder in package stream).
func (op *operator[T, K, V, A, R]) TimeOrder() string {
	var why []string
	if op.cfg.emit == EveryBatch {
		why = append(why, "emits EveryBatch partial results, which repeat a window's event time in later batches as it fills "+
			"(a Filter that keeps the final results does not change that for the graph: use OnClose, the default)")
	}
	switch op.asg.kind {
	case kindSliding:
		why = append(why, "is a sliding window, which sends a window's results in the order it first saw their keys, "+
			"which a replay from a commit may see in another order (use Tumbling)")
	case kindSession:
		why = append(why, "is a session window, whose results of one time come in the order of their keys in its state, "+
			"which a replay from a commit may rebuild in another order (use Tumbling)")
	}
	if op.cfg.maxKeys > 0 {
		why = append(why, "has a key limit (WithMaxKeys), which admits keys by the state of every partition, so a replay "+
			"may admit a key the first run refused and send a window's results in other ranks (bound the window after the repartition instead)")
	}
	return strings.Join(why, "; it ")
}

// FireDelay implements stream.FireDelayer: a window's results of an event time come in the
// batch in which the watermark it fires on (the lower of the partition's and that of the
// records it saw) passes the window's end plus the grace.
func (op *operator[T, K, V, A, R]) FireDelay() time.Duration { return op.cfg.grace }

var (
	_ stream.TimeOrderer = (*operator[int, int, int, int64, int64])(nil)
	_ stream.FireDelayer = (*operator[int, int, int, int64, int64])(nil)
)
