// The split: a source's buffered records split by partition as they are pushed, the form in
// which the run loop takes a batch.

package stream

import (
	"math"
	"reflect"
	"slices"
)

// untimed marks an Elem whose record had no event time: it takes the batch time when the
// pipeline takes the batch.
const untimed = math.MinInt64

// maxDirectSlots bounds the partition numbers that split.slots indexes directly.
const maxDirectSlots = 4096

// split holds buffered records split by partition, in the form the pipeline processes them.
// The source side fills one split (under Input's lock) while the pipeline runs a batch from
// the other, so the per-record work of splitting is done by the source's goroutines, not by
// the run loop.
type split[T any] struct {
	parts   []partTaken   // partitions with records, in the order of their first record
	buckets [][]Elem[T]   // by partTaken.bucket, kept across batches for their capacity
	bucket  map[int32]int // partition -> index in buckets
	// slots[p] is 1 + the index in parts of partition p, 0 if p has no records yet, for
	// 0 <= p < maxDirectSlots (Kafka partition numbers are small): records of interleaved
	// partitions find their bucket without a search.
	slots   []int32
	last    int // index in parts of the last record's partition, -1 if none
	records int
	bytes   int64

	// scratch of scatter
	idx   []int32
	fills []fill[T]
}

// fill is one partition's share of a block that scatter copies.
type fill[T any] struct {
	dst                 []Elem[T] // the bucket's new tail
	n                   int
	maxEvent, maxOffset int64
	untimed             int
	bytes               int64
}

// scatterBlock is how many records of interleaved partitions scatter takes at a time.
const scatterBlock = 512

func newSplit[T any]() *split[T] {
	return &split[T]{bucket: make(map[int32]int), last: -1}
}

// add appends one record to its partition's bucket.
func (b *split[T]) add(r *Record[T]) {
	ts := int64(untimed)
	if !r.EventTime.IsZero() {
		ts = r.EventTime.UnixNano()
	}
	i := b.last
	if i < 0 || b.parts[i].part != r.Partition {
		i = b.slot(r.Partition)
		b.last = i
	}
	pt := &b.parts[i]
	if ts == untimed {
		pt.untimed++
	} else {
		pt.maxEvent = max(pt.maxEvent, ts)
	}
	pt.maxOffset = max(pt.maxOffset, r.Offset)
	pt.bytes += int64(r.Size)
	bk := &b.buckets[pt.bucket]
	*bk = append(*bk, Elem[T]{Value: r.Value, Time: ts, Offset: r.Offset})
	b.records++
	b.bytes += int64(r.Size)
}

// addAll appends recs to their partitions' buckets, a run of records of one partition at a
// time (a Kafka source pushes a fetch of one partition at once).
func (b *split[T]) addAll(recs []Record[T]) {
	for len(recs) > 0 {
		switch {
		case len(recs) >= 16 && recs[1].Partition != recs[0].Partition:
			n := min(len(recs), scatterBlock)
			b.scatter(recs[:n]) // interleaved partitions
			recs = recs[n:]
		case len(recs) == 1 || recs[1].Partition != recs[0].Partition:
			b.add(&recs[0])
			recs = recs[1:]
		default:
			recs = recs[b.addRun(recs):]
		}
	}
}

// scatter appends records of interleaved partitions: a first pass finds each record's
// partition and counts them, each bucket then grows once, and a second pass copies every
// record into place.
func (b *split[T]) scatter(recs []Record[T]) {
	idx := b.idx[:0]
	for k := range recs {
		p := recs[k].Partition
		var i int
		if p >= 0 && int(p) < len(b.slots) && b.slots[p] > 0 {
			i = int(b.slots[p]) - 1
		} else {
			i = b.slot(p)
		}
		idx = append(idx, int32(i))
	}
	fills := append(b.fills[:0], make([]fill[T], len(b.parts))...)
	for _, i := range idx {
		fills[i].n++
	}
	for i := range fills {
		f := &fills[i]
		if f.n == 0 {
			continue
		}
		pt := &b.parts[i]
		bk := b.buckets[pt.bucket]
		l := len(bk)
		bk = slices.Grow(bk, f.n)[:l+f.n]
		b.buckets[pt.bucket] = bk
		f.dst, f.n = bk[l:], 0
		f.maxEvent, f.maxOffset = pt.maxEvent, pt.maxOffset
	}
	for k := range recs {
		r, f := &recs[k], &fills[idx[k]]
		ts := int64(untimed)
		if !r.EventTime.IsZero() {
			ts = r.EventTime.UnixNano()
			f.maxEvent = max(f.maxEvent, ts)
		} else {
			f.untimed++
		}
		f.maxOffset = max(f.maxOffset, r.Offset)
		f.bytes += int64(r.Size)
		f.dst[f.n] = Elem[T]{Value: r.Value, Time: ts, Offset: r.Offset}
		f.n++
	}
	for i := range fills {
		f := &fills[i]
		if f.n == 0 {
			continue
		}
		pt := &b.parts[i]
		pt.maxEvent, pt.maxOffset = f.maxEvent, f.maxOffset
		pt.untimed += f.untimed
		pt.bytes += f.bytes
		b.bytes += f.bytes
	}
	b.records += len(recs)
	b.last = int(idx[len(idx)-1])
	clear(fills) // the tails must not outlive the call
	b.idx, b.fills = idx, fills[:0]
}

// addRun appends the leading run of records of one partition to its bucket and returns how
// many records it took.
func (b *split[T]) addRun(recs []Record[T]) int {
	part := recs[0].Partition
	i := b.last
	if i < 0 || b.parts[i].part != part {
		i = b.slot(part)
		b.last = i
	}
	pt := &b.parts[i]
	bk := b.buckets[pt.bucket]
	maxEvent, maxOffset, notTimed, bytes := pt.maxEvent, pt.maxOffset, 0, int64(0)
	k := 0
	for ; k < len(recs) && recs[k].Partition == part; k++ {
		r := &recs[k]
		ts := int64(untimed)
		if !r.EventTime.IsZero() {
			ts = r.EventTime.UnixNano()
			maxEvent = max(maxEvent, ts)
		} else {
			notTimed++
		}
		maxOffset = max(maxOffset, r.Offset)
		bytes += int64(r.Size)
		bk = append(bk, Elem[T]{Value: r.Value, Time: ts, Offset: r.Offset})
	}
	b.buckets[pt.bucket] = bk
	pt.maxEvent, pt.maxOffset, pt.untimed = maxEvent, maxOffset, pt.untimed+notTimed
	pt.bytes += bytes
	b.records += k
	b.bytes += bytes
	return k
}

// slot returns the index in parts of the partition's entry, adding it (and its bucket, the
// first time the partition is seen) if needed.
func (b *split[T]) slot(part int32) int {
	direct := part >= 0 && part < maxDirectSlots
	if direct {
		if int(part) >= len(b.slots) {
			b.slots = append(b.slots, make([]int32, int(part)+1-len(b.slots))...)
		}
		if j := b.slots[part]; j > 0 {
			return int(j - 1)
		}
		b.slots[part] = int32(len(b.parts) + 1)
	} else {
		for i := range b.parts {
			if b.parts[i].part == part {
				return i
			}
		}
	}
	bk, ok := b.bucket[part]
	if !ok {
		bk = len(b.buckets)
		b.bucket[part] = bk
		b.buckets = append(b.buckets, nil)
	}
	b.parts = append(b.parts, partTaken{part: part, maxEvent: NoWatermark, maxOffset: -1, bucket: bk})
	return len(b.parts) - 1
}

// stamp gives untimed elements the batch time.
func (b *split[T]) stamp(batchTime int64) {
	for i := range b.parts {
		pt := &b.parts[i]
		if pt.untimed == 0 {
			continue
		}
		pt.maxEvent = max(pt.maxEvent, batchTime)
		for j, e := range b.buckets[pt.bucket] {
			if e.Time == untimed {
				b.buckets[pt.bucket][j].Time = batchTime
			}
		}
	}
}

// drop discards the records of parts.
func (b *split[T]) drop(parts []int32, scrub bool) {
	kept := b.parts[:0]
	for _, pt := range b.parts {
		if slices.Contains(parts, pt.part) {
			b.records -= len(b.buckets[pt.bucket])
			b.bytes -= pt.bytes
			b.empty(pt.bucket, scrub)
		} else {
			kept = append(kept, pt)
		}
	}
	b.parts = kept
	clear(b.slots)
	for i, pt := range b.parts {
		if pt.part >= 0 && int(pt.part) < len(b.slots) {
			b.slots[pt.part] = int32(i + 1)
		}
	}
	b.last = -1
}

// reset empties the split, keeping its memory. scrub clears the elements too, for types that
// hold pointers, so that they do not keep the values' referents alive.
func (b *split[T]) reset(scrub bool) {
	for _, pt := range b.parts {
		if pt.part >= 0 && int(pt.part) < len(b.slots) {
			b.slots[pt.part] = 0
		}
		b.empty(pt.bucket, scrub)
	}
	b.parts = b.parts[:0]
	b.last = -1
	b.records, b.bytes = 0, 0
}

func (b *split[T]) empty(bucket int, scrub bool) {
	if scrub {
		clear(b.buckets[bucket])
	}
	b.buckets[bucket] = b.buckets[bucket][:0]
}

// hasPointers reports whether values of t can refer to other memory, so that a split holding
// them must be cleared to let those referents go.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Pointer, reflect.UnsafePointer, reflect.Slice, reflect.Map, reflect.Chan,
		reflect.Func, reflect.Interface, reflect.String:
		return true
	default:
		return false
	}
}
