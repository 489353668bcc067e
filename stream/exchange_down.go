// Repartition, the downstream side: a repartition's partition drops replayed duplicates,
// merges the upstream marks into its watermark, keeps its marks in the commit checkpoints, and
// ends when every upstream partition ended. The argument that this is exactly-once is in the
// package documentation ("Repartition"); the marks themselves are in exchange_marks.go.

package stream

import (
	"fmt"
	"slices"
)

// downPart is a downstream partition's view of its upstream partitions: the state as of
// the position it may next commit at (base), the records read since, and the state after them
// (cur). The checkpoint of a commit at any position is base moved forward through the records
// before it, so it is exact wherever the operators hold the commit.
type downPart struct {
	cur, base marks
	basePos   int64     // the position base is as of, -1 before the first record
	hist      []histRec // the records at or after basePos, in order
	started   bool      // the partition took part in a batch of this run
	dups      int64
	// the watermark before this batch's marks and where each of its marks moved it
	startMark int64
	points    []markPoint
}

func (sh *shuffle[T]) owns(part int32) bool {
	si, _ := PartitionSource(part)
	return si == sh.src.idx
}

func (sh *shuffle[T]) down(part int32) *downPart {
	d, ok := sh.parts[part]
	if !ok {
		d = &downPart{cur: newMarks(), base: newMarks(), basePos: -1}
		d.cur.ends = &sh.ends
		d.cur.inputs, d.base.inputs = sh.identities(), sh.identities()
		d.cur.unread, d.base.unread = sh.unread, sh.unread
		d.cur.count, d.base.count = sh.count, sh.count
		sh.parts[part] = d
	}
	return d
}

func (sh *shuffle[T]) arrived(p *Pipeline) {
	sh.ends.others = true
	for _, si := range sh.ups {
		sh.ends.others = sh.ends.others && p.srcs[si].ended()
	}
	// Every downstream partition of this instance is merged from its first batch on, with
	// NoWatermark until marks arrive.
	for _, part := range p.live {
		if sh.owns(part) {
			sh.down(part)
		}
	}
	// The watermark of each partition before this batch's marks (see WatermarkAt).
	for _, d := range sh.parts {
		d.points = d.points[:0]
		d.startMark, _, _ = d.cur.watermark(sh.ups)
		if d.cur.ended(sh.ups) {
			d.startMark = EndOfTime
		}
	}
	// A partition's first batch in this run fires on the marks as of where it starts (none on
	// a fresh start, the checkpoint's on a resume): a window operator takes that as its floor
	// (what was emitted before), so this batch's own marks only count from the next batch.
	for part, d := range sh.parts {
		if ps, ok := p.parts[part]; ok && !d.started {
			ps.marked = true
			ps.markWM, ps.markIdle, ps.markEnd = d.cur.watermark(sh.ups)
		}
	}
	cur := sh.src.cur
	for i := range cur.parts {
		pt := &cur.parts[i]
		part := globalPart(sh.src.idx, pt.part)
		d := sh.down(part)
		b := cur.buckets[pt.bucket]
		if d.basePos < 0 && len(b) > 0 {
			d.basePos = b[0].Offset
		}
		kept := b[:0]
		wm := d.startMark
		for j := range b {
			r := &b[j].Value
			h := histRec{pos: b[j].Offset, from: r.From, sub: r.Sub, seq: r.Seq, wm: r.Watermark, upstreams: r.Upstreams,
				mark: r.Mark, idle: r.Idle, end: r.End && (r.Mark || sh.revisions), run: r.Run}
			if r.Mark && r.End && h.pos < d.cur.staleEnd {
				continue // a past run's end (see marks.staleEnd)
			}
			if si, _ := PartitionSource(r.From); !slices.Contains(sh.ups, si) {
				// Sent by a source that does not feed the repartition in this graph: the
				// last run's, with another graph (see restore), read again after its
				// commit. Its marks never move again and would hold the watermark where
				// that run left it; its values are kept, as there is nothing to tell their
				// copies by.
				if !r.Mark {
					kept = append(kept, b[j])
				}
				continue
			}
			keep := d.cur.apply(&h)
			// hist holds what a checkpoint at a later position needs, for as long as the
			// operators hold the commit back (a window's length): not one entry per record.
			// A replayed copy changes nothing. Of the values of one message (one position)
			// from one upstream partition, a checkpoint takes all or none, and only the last
			// one's numbers remain.
			switch n := len(d.hist); {
			case !keep && !h.mark:
			case keep && n > 0 && d.hist[n-1].pos == h.pos && d.hist[n-1].from == h.from && !d.hist[n-1].mark:
				d.hist[n-1] = h
			default:
				d.hist = append(d.hist, h)
			}
			if keep {
				kept = append(kept, b[j])
			} else if !r.Mark {
				d.dups++
			} else if w, _, end := d.cur.watermark(sh.ups); w != wm && !(end && wm == EndOfTime) {
				if end {
					w = EndOfTime
				}
				wm = w
				// The marks of one message (one position) count together, from the next
				// one: one point, as WatermarkAt and Marks promise.
				if n := len(d.points); n > 0 && d.points[n-1].from == h.pos+1 {
					d.points[n-1].wm = w
				} else {
					d.points = append(d.points, markPoint{from: h.pos + 1, wm: w})
				}
			}
		}
		clear(b[len(kept):])
		cur.buckets[pt.bucket] = kept
	}
	for part, d := range sh.parts {
		ps, ok := p.parts[part]
		if !ok {
			continue
		}
		if !d.started {
			d.started = true
			continue
		}
		ps.marked = true
		ps.markWM, ps.markIdle, ps.markEnd = d.cur.watermark(sh.ups)
	}
}

// checkpoint returns off and the marks as of off: base moved through the records before it,
// which are then forgotten.
func (sh *shuffle[T]) checkpoint(part int32, off int64, x1Room int) (int64, string) {
	d := sh.parts[part]
	if d == nil || d.basePos < 0 {
		return off, ""
	}
	i := 0
	for i < len(d.hist) && d.hist[i].pos < off {
		d.base.apply(&d.hist[i])
		i++
	}
	d.hist = slices.Delete(d.hist, 0, i)
	d.basePos = max(d.basePos, off)
	if d.base.staleEnd <= off {
		d.base.staleEnd = 0
	}
	return off, d.base.encodeWithin(x1Room)
}

func (sh *shuffle[T]) restore(part int32, offset int64, enc string) error {
	m, err := decodeMarks(enc)
	if err != nil {
		return err
	}
	now := sh.identities()
	_, local := PartitionSource(part)
	for r, h := range m.inputs {
		if cur, ok := now[r]; ok && cur != h {
			name := sh.in.p.srcs[r.src].identity()[r.k]
			return fmt.Errorf("%w: repartition %q: the committed state of its partition %d was made from another input than "+
				"%q, which the upstream source reads now in its place: each record is numbered by its upstream partition "+
				"and offset, so the new input's records would be dropped as copies of the old one's wherever their offsets match. "+
				"A new input needs a new pipeline name (consumer group), or the repartition topics deleted with the "+
				"group's offsets on them (their state starts afresh; records still in them are lost)",
				ErrInputChanged, sh.name, local, name)
		}
	}
	// Checkpoints of earlier releases name no inputs: from now on the marks name this run's.
	m.inputs = now
	// Marks of an upstream source that is not upstream of the repartition in this graph (a
	// rekey added or removed before it changes which source feeds it) never move again:
	// they would hold the watermark where the last run left it, for ever, and no records
	// come from them to drop as copies.
	if gone := m.dropSourcesBut(sh.ups); gone > 0 && sh.in != nil {
		sh.in.p.cfg.logger.Warn("stream: repartition: its checkpoint holds marks of upstream partitions that do not feed it in this graph; dropped",
			"repartition", sh.name, "partition", local, "upstream_partitions", gone)
	}
	// Marks of upstream partitions that their source no longer reads (an input left out at
	// the end) never move again either, nor do the partition counts that the last run's
	// marks carry, which count them: they would hold the watermark, and the end, for ever.
	m.unread, m.count = sh.unread, sh.count
	unread := 0
	for from, u := range m.up {
		if u.unread = sh.unread(from); u.unread {
			unread++
		}
	}
	if unread > 0 {
		sh.in.p.cfg.logger.Warn("stream: repartition: its checkpoint holds marks of upstream partitions that their source no longer reads; they no longer count for the watermark",
			"repartition", sh.name, "partition", local, "upstream_partitions", unread)
	}
	for _, u := range m.up {
		// Whether an upstream partition ended is for this run's marks to say (see apply).
		// Checkpoints of earlier releases kept an end's EndOfTime as the watermark.
		u.end = false
		if u.wm == EndOfTime {
			u.wm = NoWatermark
		}
	}
	m.ends = &sh.ends
	if d := sh.parts[part]; d != nil {
		sh.dropped += d.dups
	}
	sh.parts[part] = &downPart{cur: m, base: m.clone(), basePos: offset}
	return nil
}

// unread reports whether upstream partition from is one that its source says it does not
// read (Originator: kafka.Source's partitions of a topic it does not read), see upMark.unread.
func (sh *shuffle[T]) unread(from int32) bool {
	if sh.in == nil {
		return false // a bare shuffle of a unit test
	}
	si, local := PartitionSource(from)
	if !slices.Contains(sh.ups, si) {
		return false // dropped (dropSourcesBut), or left alone by arrived
	}
	o, ok := sh.in.p.srcs[si].origin()
	if !ok {
		return false
	}
	_, _, reads := o.Origin(local)
	return !reads
}

// count returns how many partitions upstream source si reads now (PartitionCounter), 0 if
// it does not say.
func (sh *shuffle[T]) count(si int) int32 {
	if sh.in == nil || si < 0 || si >= len(sh.in.p.srcs) {
		return 0
	}
	if c, ok := sh.in.p.srcs[si].(interface{ partitionCount() int }); ok {
		return int32(c.partitionCount())
	}
	return 0
}

// readsHere reports whether this instance reads upstream partition from, or sent marks from
// it in this run (see endRule).
func (sh *shuffle[T]) readsHere(from int32) bool {
	if _, ok := sh.sent[from]; ok {
		return true
	}
	_, ok := sh.in.p.parts[from]
	return ok
}

// drop forgets a revoked partition: as a downstream partition its marks, as an upstream one
// what was sent from it. A partition that comes back resumes from its committed checkpoint,
// whose replay sends earlier offsets again (the downstream drops them as duplicates), which
// must not count as records out of source order.
func (sh *shuffle[T]) drop(part int32) {
	if d := sh.parts[part]; d != nil {
		sh.dropped += d.dups // BatchStats.Duplicates is cumulative: a revocation keeps them
	}
	delete(sh.parts, part)
	delete(sh.last, part)
	delete(sh.sent, part)
}

func (sh *shuffle[T]) marks(part int32) (int64, []markPoint) {
	d := sh.parts[part]
	if d == nil {
		return NoWatermark, nil
	}
	return d.startMark, d.points
}

func (sh *shuffle[T]) finish(p *Pipeline) bool {
	if sh.src.in.isClosed() {
		return false
	}
	for _, si := range sh.ups {
		if !p.srcs[si].ended() {
			return false
		}
	}
	// The downstream partitions this instance owns; other instances of the pipeline in the
	// consumer group own the rest and end them. A partition's end mark needs the end of
	// every upstream partition, whichever instance read it, so it is a statement about the
	// whole pipeline. Before the exchange's consumer was assigned a partition there is
	// nothing to judge by.
	owned := 0
	for _, part := range p.live {
		if !sh.owns(part) {
			continue
		}
		owned++
		if ps := p.parts[part]; !ps.marked || !ps.markEnd {
			return true
		}
	}
	if owned == 0 {
		return true
	}
	sh.src.in.Close()
	return false
}

func (sh *shuffle[T]) awaitReturn(on bool) { sh.src.in.setEager(on) }

// duplicates returns how many replayed records the downstream partitions dropped since the
// pipeline started, those of partitions revoked since included.
func (sh *shuffle[T]) duplicates() int64 {
	n := sh.dropped
	for _, d := range sh.parts {
		n += d.dups
	}
	return n
}
