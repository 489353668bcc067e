// Repartition, the upstream side: the output of the pipeline that sends a stream's records
// to the partition of their key, with sequence numbers and watermark marks, and resets for the
// next batch once they were acknowledged. The Exchange contract and the repartition's
// construction are in exchange.go; the downstream side in exchange_down.go.

package stream

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

func (sh *shuffle[T]) input() int { return sh.in.idx }

func (sh *shuffle[T]) plan(fused bool) {
	sh.run = nil
	if fused {
		sh.run = sh.in.through(sh.add)
	}
}

func (sh *shuffle[T]) add(es []Elem[T]) { sh.part = append(sh.part, es...) }

func (sh *shuffle[T]) collect(pc *PartitionContext) {
	si, _ := sh.in.p.sourceOf(pc.Partition)
	if !slices.Contains(sh.ups, si) {
		return
	}
	sh.part = sh.part[:0]
	if sh.run != nil {
		sh.run(pc)
	} else {
		sh.add(sh.in.cur)
	}
	// Number the values by source offset: in offset order (a Union may interleave them), the
	// values of one offset by rank. A replay produces the same numbers. RepartitionByTime
	// numbers them by event time the same way.
	es := sh.part
	order, num := cmpOffset[T], func(e *Elem[T]) int64 { return e.Offset }
	if sh.byTime {
		order, num = cmpTime[T], func(e *Elem[T]) int64 { return e.Time }
	}
	if !slices.IsSortedFunc(es, order) {
		slices.SortStableFunc(es, order)
	}
	if len(es) > 0 {
		last, ok := sh.last[pc.Partition]
		switch {
		case sh.byTime && ok && num(&es[0]) <= last:
			// Equal times in two batches would be numbered from 0 again, and dropped as copies.
			sh.fail = fmt.Errorf("stream: repartition %q: the stream sent event time %s of partition %d after %s: RepartitionByTime needs each time's elements in one batch and later batches later (final results of tumbling windows; over a Union, windows whose ends coincide must fire in the same batch)",
				sh.name, WatermarkTime(num(&es[0])).Format(time.RFC3339Nano), pc.Partition, WatermarkTime(last).Format(time.RFC3339Nano))
		case !sh.byTime && ok && es[0].Offset <= last:
			// An offset sent in an earlier batch (UpdateStateByKey's states, MapWithState's
			// timeouts carry their key's first offset) would be numbered from 0 again, and
			// dropped as a copy.
			sh.fail = fmt.Errorf("stream: repartition %q: the stream sent offset %d of partition %d after offset %d: its operators emit records out of source order (window results?); repartition before them, or use RepartitionByTime for final window results",
				sh.name, es[0].Offset, pc.Partition, last)
		}
		sh.last[pc.Partition] = num(&es[len(es)-1])
	}
	var sub int32
	for i := range es {
		if i > 0 && num(&es[i]) == num(&es[i-1]) {
			sub++
		} else {
			sub = 0
		}
		sh.out = append(sh.out, Shuffled[T]{
			Value:     es[i].Value,
			Partition: int32(sh.hash(es[i].Value) % uint64(sh.n)),
			From:      pc.Partition,
			Seq:       num(&es[i]),
			Sub:       sub,
			Time:      es[i].Time,
			// A window's result in the batch where its partition's input ended may be an
			// early one, which the next run revises (see WithRevisions).
			End: sh.revisions && pc.EndOfInput,
		})
	}
	sh.values += len(es)
	clear(sh.part)
	// A mark to every downstream partition when the upstream partition's watermark or state
	// changed: after the values, so a downstream partition sees them before the mark that
	// may close their windows.
	p := sh.in.p
	ps := p.parts[pc.Partition]
	m := sentMark{wm: p.own(ps), idle: pc.Idle, end: pc.EndOfInput, count: sh.count(si)}
	for _, h := range sh.holders {
		if w, ok := h.heldWatermark(pc.Partition); ok {
			m.wm = min(m.wm, w)
		}
	}
	if m.end {
		m.wm = EndOfTime
	}
	if old, ok := sh.sent[pc.Partition]; ok && old == m {
		return
	}
	sh.sent[pc.Partition] = m
	next := ps.next
	if next < 0 {
		// No record of the partition in this run (it resumed at its end): the position it
		// resumed from, so that the mark is not taken for a replayed one.
		next = max(ps.base, ps.committed)
	}
	var run uint64
	if m.end {
		run = sh.ends.run // an end is this run's (see endRule)
	}
	for d := range int32(sh.n) {
		sh.out = append(sh.out, Shuffled[T]{Partition: d, From: pc.Partition, Seq: next, Mark: true,
			Idle: m.idle, End: m.end, Watermark: m.wm, Upstreams: m.count, Run: run})
	}
}

func cmpOffset[T any](a, b Elem[T]) int { return cmp.Compare(a.Offset, b.Offset) }
func cmpTime[T any](a, b Elem[T]) int   { return cmp.Compare(a.Time, b.Time) }

func (sh *shuffle[T]) flush(ctx context.Context, _ BatchInfo) error {
	if sh.fail != nil {
		return Permanent(sh.fail)
	}
	if len(sh.out) == 0 {
		return nil
	}
	return sh.ex.Send(ctx, sh.out)
}

func (sh *shuffle[T]) reset() {
	clear(sh.out)
	sh.out, sh.values = reuse(sh.out), 0
}

func (sh *shuffle[T]) valuesSent() int { return sh.values }

func (sh *shuffle[T]) outputName() string { return "repartition " + sh.name }

func (sh *shuffle[T]) outValues() int { return len(sh.out) }

func (sh *shuffle[T]) close(ctx context.Context) error {
	if c, ok := sh.ex.(Closer); ok {
		return c.Close(ctx)
	}
	return nil
}
