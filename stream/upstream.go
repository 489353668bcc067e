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
	upstreamOf(part int32, off, t int64, timed bool) (Upstream, bool)
}

// Upstream returns, for a partition of a repartition (PartitionContext.Merged), where the
// record at offset in this batch's input of the partition was read upstream, from the
// numbers it carries through the exchange (Shuffled.From and Seq). ok is false outside a
// repartition, after RepartitionByTime (whose values are numbered by event time, and are
// window results, not records), and for an offset that is not one of the batch's records
// (a mark's, or that of an element an operator emits in a later batch than the one its
// record came in). After a repartition of another repartition's stream it names that
// repartition's partition and offset: the record before it was read in an earlier batch.
//
// A Kafka repartition packs a batch's records of a partition into one message, so several
// records share an offset (kafka.Exchange, format version 3): Upstream names one only if
// every record at the offset came from the same upstream record, and is false otherwise.
// UpstreamAt tells them apart by event time.
func (pc *PartitionContext) Upstream(offset int64) (Upstream, bool) {
	if pc.up == nil {
		return Upstream{}, false
	}
	return pc.up.upstreamOf(pc.Partition, offset, 0, false)
}

// UpstreamAt is Upstream for the element with offset and event time t (Elem.Time, as the
// repartition's output gave it: Map, Filter and the other elementwise operators keep it):
// among the records that share the offset (a packed message), the one read upstream at that
// event time. ok is false where Upstream's is, and where records of several upstream records
// share both the offset and the event time: a name that may be another record's is never
// given (a dead letter then names the repartition's record, see DeadLetter.SetOrigin).
// Package window's and join's late records use it.
func (pc *PartitionContext) UpstreamAt(offset, t int64) (Upstream, bool) {
	if pc.up == nil {
		return Upstream{}, false
	}
	return pc.up.upstreamOf(pc.Partition, offset, t, true)
}

// upstreamOf finds the record at off (with event time t, if timed) in the partition's bucket
// of the batch being processed (kept records only: copies and marks are out of it by then,
// see arrived). Records of one packed message share off: the answer is theirs only when every
// candidate names the same upstream record.
func (sh *shuffle[T]) upstreamOf(part int32, off, t int64, timed bool) (Upstream, bool) {
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
	var up Upstream
	found := false
	for j := sort.Search(len(b), func(j int) bool { return b[j].Offset >= off }); j < len(b) && b[j].Offset == off; j++ {
		r := &b[j].Value
		if r.Mark || timed && b[j].Time != t {
			continue
		}
		u := Upstream{Partition: r.From, Offset: r.Seq}
		if found && u != up {
			return Upstream{}, false // several records: which one is not known
		}
		up, found = u, true
	}
	if !found {
		return Upstream{}, false
	}
	if s, _ := PartitionSource(up.Partition); !slices.Contains(sh.ups, s) {
		return Upstream{}, false // sent by a source that no longer feeds the repartition
	}
	return up, true
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
