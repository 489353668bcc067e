// The marks of a repartition's downstream partition: what the upstream records read so far
// say (sequence numbers, watermark marks, upstream partition counts), how they give the
// partition's watermark (their encoding in the commit checkpoint is in exchange_marks_format.go). See "Repartition" in
// the package documentation.

package stream

import (
	"math"
	"math/rand/v2"
	"slices"
)

// marks is what the upstream records read so far say: per upstream partition its highest
// sequence number and its last mark, and per upstream source its partition count.
type marks struct {
	up     map[int32]*upMark
	expect map[int]int32
	// staleEnd: end marks at positions before it were read by a run that ended there (a
	// bounded run whose commit stayed before them); they are that run's own, not this one's.
	staleEnd int64
	// ends says which end marks are this run's (nil: all, as for marks without a run).
	ends *endRule
	// inputs are the hashes of the names of the upstream inputs (InputIdentifier) that the
	// marks were made from: decoded from a checkpoint, or this run's, which encode writes.
	inputs map[inputRef]uint64
	// unread reports whether an upstream partition is one its source no longer reads (nil:
	// none is; see upMark.unread); count, how many partitions an upstream source reads now
	// (PartitionCounter; 0 if it does not say).
	unread func(from int32) bool
	count  func(si int) int32
}

// endRule says which end marks are this run's, the run being one Pipeline value (an
// attempt: a restart after a crash is another run). An end mark counts as its upstream
// partition's end when it carries no run (an earlier release's), or this run's, or, once
// every upstream source of this instance ended, when its upstream partition is one this
// instance does not read: another instance's, which sends no newer marks of it in this
// run. An end mark of an upstream partition this instance reads, from another run (a
// crashed attempt's, or a past run's that no checkpoint calls past), is that run's end: the
// partition's watermark stays where that run's last marks before it left it, and this
// run's own end mark of the partition, at the same position or later, replaces it.
type endRule struct {
	run uint64 // this run's, on the end marks it sends
	// others: every upstream source of this instance ended
	others bool
	// here reports whether this instance reads an upstream partition (or sent from it)
	here func(from int32) bool
}

// newRun returns a run number for a pipeline: random, never 0 (which is no run).
func newRun() uint64 {
	for {
		if r := rand.Uint64(); r != 0 {
			return r
		}
	}
}

// own reports whether an end mark of run r is this run's.
func (e *endRule) own(r uint64) bool { return e != nil && r != 0 && r == e.run }

// ended reports whether u, an upstream partition's newest mark, is an end that counts.
func (e *endRule) ended(from int32, u *upMark) bool {
	switch {
	case !u.end:
		return false
	case e == nil || u.run == 0 || u.run == e.run:
		return true
	}
	return e.others && (e.here == nil || !e.here(from))
}

type upMark struct {
	seq       int64 // the highest Seq, Sub seen (duplicates are at or below it)
	sub       int32
	has       bool
	markSeq   int64 // Seq of the newest mark applied
	wm        int64
	idle, end bool
	marked    bool
	run       uint64 // of the newest mark, if an end (see endRule)
	// unread: the upstream partition's source says it no longer reads it (Originator: an
	// input left out at the end, see InputIdentifier). Its marks, from the last run that
	// read it, never move again: they no longer count for the watermark, nor does the
	// partition in its source's count, which that run's marks carry; its numbers still tell
	// copies of its values.
	unread bool
}

// histRec is a record's part in marks: its position and its Shuffled fields but the value.
type histRec struct {
	pos       int64
	from      int32
	sub       int32
	seq       int64
	wm        int64
	upstreams int32
	mark      bool
	idle, end bool
	run       uint64
}

func newMarks() marks { return marks{up: map[int32]*upMark{}, expect: map[int]int32{}} }

func (m marks) clone() marks {
	c := marks{up: make(map[int32]*upMark, len(m.up)), expect: make(map[int]int32, len(m.expect)), staleEnd: m.staleEnd, ends: m.ends, inputs: m.inputs, unread: m.unread, count: m.count}
	for k, v := range m.up {
		x := *v
		c.up[k] = &x
	}
	for k, v := range m.expect {
		c.expect[k] = v
	}
	return c
}

// apply moves m past one record and reports whether the record is a value to keep (not a
// mark, not a duplicate).
func (m marks) apply(r *histRec) bool {
	u := m.up[r.from]
	if u == nil {
		u = &upMark{wm: NoWatermark, markSeq: -1, unread: m.unread != nil && m.unread(r.from)}
		m.up[r.from] = u
	}
	if r.mark && u.unread {
		return false
	}
	if r.mark {
		// This run's end mark is the last word of this run on the upstream partition, also
		// below another run's end (a pipeline reading another's log); a copy of another
		// run's end mark (a crashed attempt still sending) does not undo it at the same
		// position.
		own := r.end && m.ends.own(r.run)
		keepOwn := r.seq == u.markSeq && u.end && r.end && m.ends.own(u.run) && !own
		if (r.seq >= u.markSeq || own) && !keepOwn {
			// The newest mark says whether the upstream partition's input ended: an end is
			// the end of one run's input, and a later run (or the instance that took the
			// partition over) sends marks of its own. An end mark's watermark, EndOfTime,
			// is that run's alone: the upstream keeps the watermark of its last records, so
			// that a checkpoint never carries an EndOfTime into the next run.
			u.markSeq, u.idle, u.marked, u.end, u.run = max(u.markSeq, r.seq), r.idle, true, r.end, r.run
			if !r.end {
				u.wm = max(u.wm, r.wm)
			}
		}
		if r.upstreams > 0 {
			si, _ := PartitionSource(r.from)
			m.expect[si] = max(m.expect[si], r.upstreams)
		}
		return false
	}
	if u.has && (r.seq < u.seq || r.seq == u.seq && r.sub <= u.sub) {
		return false
	}
	if r.end {
		// Sent as its upstream partition's input ended: possibly an early result that the
		// next run sends again, complete, with the same number. It leaves the highest number
		// where it was, so that the revision is kept too (and replaces it downstream).
		return true
	}
	u.seq, u.sub, u.has = r.seq, r.sub, true
	return true
}

// watermark returns a downstream partition's watermark from its upstream marks: the minimum
// over the upstream partitions that are not idle and have not ended (if all are idle, the
// slowest of those that had an event), NoWatermark while an upstream source has not been
// heard from in full, EndOfTime once every upstream partition ended (in this run: see
// endRule).
func (d marks) watermark(ups []int) (wm int64, idle, end bool) {
	// Called after every mark and for every partition each batch: count without a map (a
	// repartition has one or a few upstream sources).
	for _, si := range ups {
		var seen, unread int32
		for from, m := range d.up {
			if s, _ := PartitionSource(from); s != si {
				continue
			}
			switch {
			case m.unread:
				unread++
			case m.marked:
				seen++
			}
		}
		need := d.expect[si]
		if unread > 0 {
			// The last run's counts take in the partitions no longer read; this run's
			// source counts the partitions it reads, new ones too.
			need -= unread
			if d.count != nil {
				need = max(need, d.count(si))
			}
		}
		if seen == 0 || seen < need {
			return NoWatermark, false, false
		}
	}
	active, idleMin, any := int64(math.MaxInt64), int64(math.MaxInt64), false
	end = true
	for from, m := range d.up {
		if !m.marked || m.unread || d.ends.ended(from, m) {
			continue
		}
		end = false
		if m.idle {
			// As for the pipeline's watermark: an idle partition that never had an event holds
			// nothing back (it may never get one).
			if m.wm != NoWatermark {
				idleMin = min(idleMin, m.wm)
			}
			continue
		}
		any = true
		active = min(active, m.wm)
	}
	switch {
	case end:
		return EndOfTime, false, true
	case any:
		return active, false, false
	case idleMin == math.MaxInt64:
		return NoWatermark, true, false
	default:
		return idleMin, true, false
	}
}

// dropSourcesBut forgets the marks of upstream sources not in ups, and returns how many
// upstream partitions they had.
func (d marks) dropSourcesBut(ups []int) int {
	n := 0
	for from := range d.up {
		if s, _ := PartitionSource(from); !slices.Contains(ups, s) {
			delete(d.up, from)
			n++
		}
	}
	for s := range d.expect {
		if !slices.Contains(ups, s) {
			delete(d.expect, s)
		}
	}
	return n
}

// ended reports whether every upstream partition ended.
func (d marks) ended(ups []int) bool {
	_, _, end := d.watermark(ups)
	return end
}
