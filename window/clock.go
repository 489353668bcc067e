// Each partition's event-time clock (partClock): its watermark, the watermark its windows
// fired on, its floor and replay position, and where in the batch a window closed.

package window

import (
	"cmp"
	"math"
	"slices"
	"unsafe"

	"github.com/fleetstream/fleetstream/stream"
)

// partClock is a partition's event-time bookkeeping, shared by the engines.
type partClock struct {
	part  int32
	ooo   int64
	grace int64
	// maxT is the newest event time seen in the partition, pwm = maxT - ooo its watermark
	// (at the start of int64 time, not wrapped, for a maxT within ooo of it).
	maxT, pwm int64
	// fwm is the watermark of the last firing (fireMark); windows behind it were emitted.
	fwm int64
	// floor is the start of the first pane seen: earlier windows are never emitted, so that a
	// replay from a committed offset (whose first record sets the floor) gives the same
	// results as the run that committed it.
	floor   int64
	started bool
	cut     int64
	hasCut  bool
	// merged is set while processing a repartition's partition (stream.PartitionContext.Merged):
	// its records interleave several upstream partitions, so lateness and firing follow the
	// watermark the pipeline derives from the upstream marks, not the records seen.
	merged bool
	// emitted is, in a merged partition resumed from a checkpoint, the watermark the windows
	// had fired on at the commit (stream.PartitionContext.ResumeFired): windows closed on it
	// were emitted, with their records that are not late; NoWatermark otherwise.
	emitted int64
	// keepsFired: the pipeline keeps the fire watermark in the commits of this merged
	// partition (stream.PartitionContext.KeepsFired).
	keepsFired bool
	// follows: in this batch the clock moves with every record of the partition (begin);
	// pwm0 is then the watermark before the batch.
	follows bool
	pwm0    int64
	ri      int // the rises up to the last record judged (pwmAt)
	// endCut is the replay position when the input ended (see holdAtEnd), if hasEndCut.
	endCut    int64
	hasEndCut bool
	// Where windows close (closeAt): the newest event time and the highest offset before
	// the batch, the highest offset since, and the batch's rises, built once a window closes.
	maxT0, hi0, hi int64
	rises          []rise
	risen          bool
}

// rise is a point of the batch where the partition's watermark rose: to wm, at position at.
type rise struct{ wm, at int64 }

// begin starts a batch of input in, and returns it to process. An operator that reads the
// source through stateless ones (follows) moves its clock with every record of the
// partition, those dropped before it included (stream.PartitionContext.SourceTimes): its
// clock, lateness and closing positions are then those of the same window over the
// unfiltered stream, so that a window behind a Filter closes when the partition's watermark
// passes it, not when a record that passes the Filter does, and still depends only on the
// partition's record order. For that, it takes its input in offset order (a copy, when it is
// not): paths from the source that meet again (a Union of two Filters) give one path's
// records, then the other's, and then the first record given set the floor and the replay
// position, a sliding window that fired early on a record far ahead made the older records
// after it late, and the order of a window's keys and late records followed where batches
// end.
func begin[T any](c *partClock, pc *stream.PartitionContext, in []stream.Elem[T]) []stream.Elem[T] {
	c.maxT0, c.hi0, c.risen = c.maxT, c.hi, false
	c.follows = false
	if !pc.Merged {
		if times, ok := pc.SourceTimes(); ok {
			c.follows, c.pwm0 = true, c.pwm
			rs, hi := c.reusedRises(), c.hi
			for off, t := range times {
				hi = max(hi, off)
				if t > c.maxT {
					c.maxT, c.pwm = t, subSat(t, c.ooo)
					rs = append(rs, rise{c.pwm, hi})
				}
			}
			c.rises, c.risen, c.hi, c.ri = rs, true, hi, 0
			if !slices.IsSortedFunc(in, byOffset[T]) {
				// Stable: a record both paths kept comes twice, in the Union's order.
				in = slices.Clone(in)
				slices.SortStableFunc(in, byOffset[T])
			}
		}
	}
	if n := len(in); n > 0 {
		c.hi = max(c.hi, in[n-1].Offset)
	}
	return in
}

func byOffset[T any](a, b stream.Elem[T]) int { return cmp.Compare(a.Offset, b.Offset) }

// rose records, once per batch, where the partition's watermark rose in it: in a
// repartition's partition at each mark that raised it, at the mark's own position (from-1);
// otherwise at each record that raised the newest event time, at the highest offset read so
// far (for an operator that follows the source, begin did). Both depend only on the
// partition's record order, never on where batches end.
func rose[T any](c *partClock, pc *stream.PartitionContext, in []stream.Elem[T]) {
	if c.risen {
		return
	}
	c.risen = true
	rs := c.reusedRises()
	if c.merged {
		last := pc.WatermarkAt(math.MinInt64)
		for from, wm := range pc.Marks() {
			if wm > last {
				rs, last = append(rs, rise{wm, from - 1}), wm
			}
		}
	} else {
		m, hi := c.maxT0, c.hi0
		for i := range in {
			e := &in[i]
			hi = max(hi, e.Offset)
			if t := pc.CapEventTime(e.Time); t > m {
				rs, m = append(rs, rise{subSat(t, c.ooo), hi}), t
			}
		}
		c.hi = max(c.hi, hi)
	}
	c.rises = rs
}

// bigRises is the capacity of rises from which it is given back once a batch used less than
// a quarter of it: an operator that follows its source keeps a rise for most records of a
// batch, and one catch-up batch of a million must not pin 16 MB per partition.
const bigRises = 1 << 16

// reusedRises returns the rises emptied for the batch.
func (c *partClock) reusedRises() []rise {
	if cap(c.rises) > bigRises && len(c.rises) < cap(c.rises)/4 {
		return nil
	}
	return c.rises[:0]
}

// riseBytes is the memory of the rises, for the engines' usage.
func (c *partClock) riseBytes() int64 { return int64(cap(c.rises)) * int64(unsafe.Sizeof(rise{})) }

// closeAt returns the position a window's final result carries when the window closes on
// watermark wm (its end plus the grace) in this batch: that of the record or mark after
// which the watermark reached wm (rose). A stateful operator reading the results in the same
// partition then gets, in a replay, exactly the windows it had not accounted for: one that
// closed in an acknowledged batch carries a position before the replay start the
// operator's checkpoint records, one that closed in a later batch (its output failed, or it
// was never committed) one at or after it. The watermark's other moves have no such
// position: an idle partition's windows close on the pipeline watermark, at the highest
// offset read (as package join's rows do), and the end of input closes the rest at
// math.MaxInt64.
func (c *partClock) closeAt(wm int64) int64 {
	rs := c.rises
	if i, _ := slices.BinarySearchFunc(rs, wm, func(r rise, wm int64) int { return cmp.Compare(r.wm, wm) }); i < len(rs) {
		return rs[i].at
	}
	if c.fwm == stream.EndOfTime {
		return math.MaxInt64
	}
	return c.hi
}

// observe records event time t and returns the watermark that decides lateness: the
// partition's own, or the watermark of the last firing if that is ahead (an idle partition).
// Callers cap t with stream.PartitionContext.CapEventTime, so that a record with a bad clock
// cannot make the partition's later records late.
func (c *partClock) observe(t int64) int64 {
	if c.merged {
		// A record is late only behind the watermark the windows last fired on, which came
		// from marks that preceded it: a record on time in its upstream partition never is.
		return c.fwm
	}
	if t > c.maxT {
		c.maxT = t
		c.pwm = subSat(t, c.ooo)
	}
	return max(c.pwm, c.fwm)
}

// observeAt is observe for the record at offset off: in a repartition's partition the
// watermark as of the record's position (stream.PartitionContext.WatermarkAt), so that
// whether a record is late depends only on the partition's record order, never on batch
// boundaries: a replay judges it the same way.
func (c *partClock) observeAt(pc *stream.PartitionContext, t, off int64) int64 {
	if c.merged {
		return max(c.fwm, pc.WatermarkAt(off))
	}
	if c.follows {
		return max(c.fwm, c.pwmAt(off))
	}
	return c.observe(t)
}

// pwmAt returns the partition's own watermark as of the record at offset off of this batch:
// for an operator that follows the source (begin), from the rises up to that record; else
// the watermark of the records observed so far.
func (c *partClock) pwmAt(off int64) int64 {
	if !c.follows {
		return c.pwm
	}
	// The records come in offset order: move a cursor over the rises (a search per record
	// cost a window over all of a busy partition's records half its time again).
	rs, i := c.rises, c.ri
	if i > 0 && rs[i-1].at > off {
		i, _ = slices.BinarySearchFunc(rs, off, func(r rise, off int64) int {
			if r.at <= off {
				return -1
			}
			return 1
		})
	}
	for i < len(rs) && rs[i].at <= off {
		i++
	}
	c.ri = i
	if i == 0 {
		return c.pwm0
	}
	return rs[i-1].wm
}

// fireMark is the watermark the partition's windows fire on: the partition's own, as the
// pipeline sees it and as this operator sees it (the lower: an operator that follows the
// source sees every record from its replay cut on, the pipeline those from the partition's
// replay start; an operator behind a stateful one only the records it is given), so that a
// window never fires before the partition has closed it and a replay fires as the original
// run did; or, once the partition is idle, the pipeline's
// (stream.PartitionContext.PartitionWatermark).
func (c *partClock) fireMark(pc *stream.PartitionContext) int64 {
	if pc.Merged || pc.Idle || pc.PartitionWatermark == stream.EndOfTime {
		return pc.PartitionWatermark
	}
	return min(pc.PartitionWatermark, c.pwm)
}

func (c *partClock) fired() int64 { return c.fwm }

// holdAtEnd, called before a batch's fire mark is taken, keeps the replay position (retained)
// the partition had before the end of the input fires every window: the windows still open
// on the partition's own watermark then, which a later run on the next records of the
// partition (fleetpipeline -exit-when-idle, a daily backfill) may still reach, are rebuilt by
// that run from their first records and completed as one run would, not only the newest
// window. The end's EndOfTime is one run's own and says nothing about the records to come.
// (In a repartition's partition, the checkpoint's fire watermark decides instead.)
func (c *partClock) holdAtEnd(pc *stream.PartitionContext, retained func() (int64, bool)) {
	if c.merged || c.fwm == stream.EndOfTime || c.fireMark(pc) != stream.EndOfTime {
		return
	}
	c.endCut, c.hasEndCut = retained()
}

// commit returns the replay position: a newly valid candidate if ok, else the previous one.
func (c *partClock) commit(off int64, ok bool, fallback int64) (int64, bool) {
	if ok {
		if !c.hasCut || off > c.cut {
			c.cut, c.hasCut = off, true
		}
		return c.cut, true
	}
	if c.hasCut {
		return c.cut, true
	}
	return fallback, true
}
