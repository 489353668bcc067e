// Where a repartition read its records upstream: Upstream, PartitionContext.Upstream, and
// DeadLetter.SetOrigin, which names it.

package stream

import (
	"slices"
	"sort"
)

// Upstream names where a record that came through a repartition was read before it: its
// upstream pipeline partition id (Pipeline.Origin maps it to the topic and partition) and
// its offset there. A dead letter that names it points at the input record, which outlives
// the repartition's own record (a Kafka repartition topic is purged as soon as it is
// committed).
type Upstream struct {
	Partition int32
	Offset    int64
}

// upstreamer is a repartition that names where its records were read upstream.
type upstreamer interface {
	upstreamOf(part int32, off int64) (Upstream, bool)
}

// Upstream returns, for a partition of a repartition (PartitionContext.Merged), where the
// record at offset in this batch's input of the partition was read upstream, from the
// numbers it carries through the exchange (Shuffled.From and Seq). ok is false outside a
// repartition, after RepartitionByTime (whose values are numbered by event time, and are
// window results, not records), and for an offset that is not one of the batch's records
// (a mark's, or that of an element an operator emits in a later batch than the one its
// record came in). After a repartition of another repartition's stream it names that
// repartition's partition and offset: the record before it was read in an earlier batch.
func (pc *PartitionContext) Upstream(offset int64) (Upstream, bool) {
	if pc.up == nil {
		return Upstream{}, false
	}
	return pc.up.upstreamOf(pc.Partition, offset)
}

// upstreamOf finds the record at off in the partition's bucket of the batch being processed
// (kept records only: copies and marks are out of it by then, see arrived).
func (sh *shuffle[T]) upstreamOf(part int32, off int64) (Upstream, bool) {
	if sh.byTime {
		return Upstream{}, false
	}
	si, local := PartitionSource(part)
	if si != sh.src.idx {
		return Upstream{}, false
	}
	i, ok := sh.src.cur.bucket[local]
	if !ok {
		return Upstream{}, false
	}
	b := sh.src.cur.buckets[i]
	j := sort.Search(len(b), func(j int) bool { return b[j].Offset >= off })
	if j == len(b) || b[j].Offset != off || b[j].Value.Mark {
		return Upstream{}, false
	}
	r := &b[j].Value
	if s, _ := PartitionSource(r.From); !slices.Contains(sh.ups, s) {
		return Upstream{}, false // sent by a source that no longer feeds the repartition
	}
	return Upstream{Partition: r.From, Offset: r.Seq}, true
}

// SetOrigin sets the dead letter's Topic, Partition and Offset to name the record read at
// offset of pipeline partition part, or, when up is not nil (a record read through a
// repartition), the input record: where the repartition read it. origin (Pipeline.Origin)
// maps a pipeline partition id to the topic and partition it was read from. With a nil
// origin, Topic is empty and Partition is the pipeline partition id (up's, if set). The input
// is named only when origin knows up's partition and names another topic for it than for
// part: a function that ignores the source a partition id belongs to (one that names every
// id by a repartition's topic) would give the repartition's topic with the input's offset,
// so such an origin gets part and offset, as one that does not know up's partition does.
// With an origin that knows neither, Topic is empty and Partition is part. Package window's
// and join's late records use it (their DeadLetter methods).
func (dl *DeadLetter) SetOrigin(origin func(part int32) (topic string, partition int32, ok bool), part int32, offset int64, up *Upstream) {
	dl.Topic, dl.Partition, dl.Offset = "", part, offset
	if origin == nil {
		if up != nil {
			dl.Partition, dl.Offset = up.Partition, up.Offset
		}
		return
	}
	topic, p, ok := origin(part)
	if up != nil {
		if in, inPart, inOK := origin(up.Partition); inOK && (!ok || in != topic) {
			dl.Topic, dl.Partition, dl.Offset = in, inPart, up.Offset
			return
		}
	}
	if ok {
		dl.Topic, dl.Partition = topic, p
	}
}
