// The encoding of a repartition's marks in the commit checkpoint: format "x1;", the choice
// between it and "x2;" (exchange_marks_x2.go), and the past run's end. The marks themselves
// are in exchange_marks.go.

package stream

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The marks in a commit checkpoint: "x1;" writes per upstream partition
// "from,seq,sub,markSeq,wm,flags;" and per upstream source "e,source,count;", in base 36. An earlier release refuses "x2;" (decodeMarks: an
// unknown format, which restore's caller logs before it ignores the marks), so it is
// written only for marks that "x1;" makes too large.

const (
	marksX1 = "x1;"
	marksX2 = "x2;"
)

// The flags of an upstream partition's entry.
const (
	flagHas = 1 << iota
	flagMarked
	flagIdle
	flagEnd
	flagNoWatermark // upMark.wm is NoWatermark
	flagEndOfTime   // upMark.wm is EndOfTime
	flagsAll        = 1<<iota - 1
	flagsWritten    = flagHas | flagMarked // the flags written as nothing (exclusive-or)
)

// marksX1Max is the most bytes of marks that encode writes in format "x1;", which earlier
// releases read: during a rolling deploy (or after a rollback) an instance of an earlier
// release that claims the partition resumes from them, where "x2;" would make it ignore them
// and count the upstream's replayed records twice. Larger marks (about 60 upstream
// partitions) are written "x2;", a third of the size: in "x1;" they would soon be refused by
// the broker. A pipeline's commit uses encodeWithin with the room its checkpoint leaves
// (checkpointX1Max).
const marksX1Max = 2048

// checkpointX1Max is the most bytes of a repartition partition's checkpoint (the operators'
// part, the marks and the fire watermark) with its marks in format "x1;": a kafka Source
// adds up to about 1 KB (an end marker, an exactly-once read-back bound) to the 4,096 bytes
// Kafka allows a commit's metadata by default. Beyond, the marks are written "x2;".
const checkpointX1Max = 3072

// fireRoom is the most bytes withFired adds to the marks.
const fireRoom = 16

// encode writes the marks in a stable order, in format "x1;" if that takes at most
// marksX1Max bytes, otherwise in format "x2;".
func (d marks) encode() string { return d.encodeWithin(marksX1Max) }

// encodeWithin writes the marks in a stable order, in format "x1;" if that takes at most
// room bytes, otherwise in format "x2;".
func (d marks) encodeWithin(room int) string {
	// An entry of "x1;" takes at least 12 bytes: many entries are too many at once.
	if room > 0 && 12*len(d.up) <= room {
		if x1, ok := d.appendX1(nil, room); ok {
			return string(x1)
		}
	}
	return d.encodeX2()
}

// encodeX1 writes the marks in format "x1;", which earlier releases write and read too.
func (d marks) encodeX1() string {
	b, _ := d.appendX1(nil, math.MaxInt)
	return string(b)
}

// appendX1 appends the marks in format "x1;" to b; it stops and reports false once they
// take more than limit bytes.
func (d marks) appendX1(b []byte, limit int) ([]byte, bool) {
	froms := make([]int32, 0, len(d.up))
	for f := range d.up {
		froms = append(froms, f)
	}
	slices.Sort(froms)
	start := len(b)
	b = slices.Grow(b, 8+40*len(froms))
	b = append(b, marksX1...)
	for _, f := range froms {
		if len(b)-start > limit {
			return b, false
		}
		m := d.up[f]
		flags := 0
		for i, on := range []bool{m.has, m.marked, m.idle, m.end} {
			if on {
				flags |= 1 << i
			}
		}
		b = strconv.AppendInt(b, int64(f), 36)
		b = append(b, ',')
		b = strconv.AppendInt(b, m.seq, 36)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(m.sub), 36)
		b = append(b, ',')
		b = strconv.AppendInt(b, m.markSeq, 36)
		b = append(b, ',')
		b = strconv.AppendInt(b, m.wm, 36)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(flags), 36)
		b = append(b, ';')
	}
	srcs := make([]int, 0, len(d.expect))
	for s := range d.expect {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	for _, s := range srcs {
		b = append(b, 'e', ',')
		b = strconv.AppendInt(b, int64(s), 36)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(d.expect[s]), 36)
		b = append(b, ';')
	}
	b = d.appendOther(b)
	return b, len(b)-start <= limit
}

// appendOther appends the entries that are the same in both formats: "l,<position>;" if
// there is a past run's end, and "i,<source>,<k>,<hash>;" per named upstream input
// (InputIdentifier), by source and k.
func (d marks) appendOther(b []byte) []byte {
	if d.staleEnd > 0 {
		b = appendStaleEnd(b, d.staleEnd)
	}
	refs := make([]inputRef, 0, len(d.inputs))
	for r := range d.inputs {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b inputRef) int { return cmp.Or(cmp.Compare(a.src, b.src), cmp.Compare(a.k, b.k)) })
	for _, r := range refs {
		b = append(b, 'i', ',')
		b = strconv.AppendInt(b, int64(r.src), 36)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.k), 36)
		b = append(b, ',')
		b = strconv.AppendUint(b, d.inputs[r], 36)
		b = append(b, ';')
	}
	return b
}

// decodeMarks reads the marks of a checkpoint of either format.
func decodeMarks(s string) (marks, error) {
	if rest, ok := strings.CutPrefix(s, marksX2); ok {
		return decodeMarksX2(rest)
	}
	if rest, ok := strings.CutPrefix(s, marksX1); ok {
		return decodeMarksX1(rest)
	}
	return marks{}, fmt.Errorf("stream: repartition marks %q: unknown format", s)
}

func badMarks(item string) error {
	return fmt.Errorf("stream: repartition marks: bad entry %q", item)
}

// decodeOther decodes the entries "l" and "i", which are the same in both formats, and
// reports whether item is one.
func (d *marks) decodeOther(item string, f []string) (bool, error) {
	switch {
	case f[0] == "l" && len(f) == 2:
		v, err := strconv.ParseInt(f[1], 36, 64)
		if err != nil || v <= 0 {
			return true, badMarks(item)
		}
		d.staleEnd = max(d.staleEnd, v)
		return true, nil
	case f[0] == "i" && len(f) == 4:
		src, err1 := strconv.ParseInt(f[1], 36, 32)
		k, err2 := strconv.ParseInt(f[2], 36, 32)
		h, err3 := strconv.ParseUint(f[3], 36, 64)
		if err1 != nil || err2 != nil || err3 != nil || src < 0 || k < 0 {
			return true, badMarks(item)
		}
		if d.inputs == nil {
			d.inputs = make(map[inputRef]uint64)
		}
		d.inputs[inputRef{int(src), int(k)}] = h
		return true, nil
	}
	return false, nil
}

// decodeMarksX1 reads format "x1;" (see encode), written by earlier releases.
func decodeMarksX1(rest string) (marks, error) {
	d := newMarks()
	for item := range strings.SplitSeq(rest, ";") {
		if item == "" {
			continue
		}
		f := strings.Split(item, ",")
		if ok, err := d.decodeOther(item, f); err != nil {
			return marks{}, err
		} else if ok {
			continue
		}
		// "e,source,count" is a source's partition count; an upstream partition's entry has
		// six numbers, any of which may be "e" (14 in base 36), the first one too.
		expect := f[0] == "e" && len(f) == 3
		if expect {
			f = f[1:]
		}
		nums := make([]int64, 0, len(f))
		for _, x := range f {
			v, err := strconv.ParseInt(x, 36, 64)
			if err != nil {
				return marks{}, badMarks(item)
			}
			nums = append(nums, v)
		}
		switch {
		case expect && len(nums) == 2:
			d.expect[int(nums[0])] = int32(nums[1])
		case !expect && len(nums) == 6:
			flags := nums[5]
			d.up[int32(nums[0])] = &upMark{seq: nums[1], sub: int32(nums[2]), markSeq: nums[3], wm: nums[4],
				has: flags&1 != 0, marked: flags&2 != 0, idle: flags&4 != 0, end: flags&8 != 0}
		default:
			return marks{}, badMarks(item)
		}
	}
	return d, nil
}

// appendStaleEnd appends the marks entry "l,<position>;": end marks before the position are
// a past run's.
func appendStaleEnd(b []byte, pos int64) []byte {
	b = append(b, 'l', ',')
	b = strconv.AppendInt(b, pos, 36)
	return append(b, ';')
}

// withStaleEnd adds to a repartition partition's checkpoint that the end marks before
// position pos are a past run's (marks.staleEnd). The entry is the same in both formats, and
// marks with no other entries are written "x1;", which an earlier release reads too.
func withStaleEnd(meta string, pos int64) string {
	if !strings.Contains(meta, markSep) {
		meta += markSep + marksX1
	}
	return string(appendStaleEnd([]byte(meta), pos))
}
