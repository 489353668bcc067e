// Format "x2;" of a repartition's marks in the commit checkpoint, and its base-62 numbers.

package stream

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// The marks in a commit checkpoint: format "x2;" when "x1;" would be large (encode,
// marksX1Max; decodeMarks reads both). Per upstream source, by source, a header and then
// its upstream partitions' entries, by partition; then the past run's end and the named inputs, as in "x1;":
//
//	s,<source>,<count>,<n>,<seq base>,<seq unit>,<wm base>,<wm unit>,<mark base>,<mark unit>;
//	<seq>,<wm>,<mark>,<sub>,<gap>,<flags>;  (n entries)
//	l,<position>;                           (base 36, as in "x1;": see withStaleEnd)
//	i,<source>,<k>,<hash>;                  (base 36, as in "x1;")
//
// Numbers are in base 62 (0-9, a-z, A-Z), negative ones after "-"; 0 is written as nothing,
// and the empty fields at the end of an item are left out with their commas. <count> is the
// source's partition count (marks.expect), empty if the marks have none. An entry is the
// upstream partition the previous entry's plus 1 plus <gap> (the first: <gap>), so a
// source's consecutive partitions need no number. <flags> is has 1, marked 2, idle 4, end 8,
// a watermark NoWatermark 16 or EndOfTime 32 (<wm> then empty), written exclusive-or 3, so
// that the usual has and marked is nothing. The highest sequence number is <seq base> +
// <seq> * <seq unit> (<seq> itself without the has flag); the watermark <wm base> - <wm> *
// <wm unit>; the newest mark's sequence number <mark base> + <mark> * <mark unit>, or the
// highest sequence number plus <mark> when the header has no mark unit (<mark> itself
// without the marked flag). An empty unit is 1. The encoder takes as the base the lowest
// number, the highest watermark (an idle upstream partition far behind then costs its own
// entry a few bytes, not every entry), and as the unit the greatest common divisor of the
// distances to it: the watermarks of millisecond event times are whole milliseconds apart,
// the offsets of one topic's partitions alike, RepartitionByTime's numbers (window ends)
// whole windows apart. The newest mark, the next offset of its upstream partition, is a few
// above the highest number read from it, except after RepartitionByTime, whose numbers are
// event times: the encoder writes it against whichever of the two (the highest number, a
// base) takes fewer bytes. So an upstream partition costs about 12 bytes (TestMarksSize;
// "x1;", about 35), and a repartition of two sources of 150 partitions each commits about
// 3.6 KB.

// encodeX2 writes the marks in format "x2;", in a stable order.
func (d marks) encodeX2() string {
	froms := make([]int32, 0, len(d.up))
	for f := range d.up {
		froms = append(froms, f)
	}
	slices.Sort(froms) // faster than sorting pairs by the number
	ups := make([]fromMark, len(froms))
	for i, f := range froms {
		ups[i] = fromMark{f, d.up[f]}
	}
	srcs := make([]int, 0, len(d.expect)+1)
	for s := range d.expect {
		srcs = append(srcs, s)
	}
	for _, u := range ups {
		if s, _ := PartitionSource(u.from); !slices.Contains(srcs, s) {
			srcs = append(srcs, s)
		}
	}
	slices.Sort(srcs)
	b := make([]byte, 0, 64+16*len(ups))
	b = append(b, marksX2...)
	for _, s := range srcs {
		n := 0
		for n < len(ups) {
			if us, _ := PartitionSource(ups[n].from); us != s {
				break
			}
			n++
		}
		b = d.appendSource(b, s, ups[:n])
		ups = ups[n:]
	}
	return string(d.appendOther(b))
}

type fromMark struct {
	from int32
	*upMark
}

// appendSource appends the header of upstream source src and the entries of ups, its
// upstream partitions, in order.
func (d marks) appendSource(b []byte, src int, ups []fromMark) []byte {
	seq, wm, mark := frame{}, frame{down: true}, frame{}
	for pass := range 2 {
		for _, u := range ups {
			if u.has {
				seq.add(pass, u.seq)
			}
			if u.wm != NoWatermark && u.wm != EndOfTime {
				wm.add(pass, u.wm)
			}
			if u.marked {
				mark.add(pass, u.markSeq)
			}
		}
	}
	// The newest marks against the highest numbers, or against a base of their own.
	rel, own := 0, lenInt62(mark.base)+lenUint62(mark.step())
	for _, u := range ups {
		if u.marked {
			rel += lenInt62(u.markSeq - u.seq)
			own += lenUint62(mark.of(u.markSeq))
		}
	}
	relative := rel <= own

	start := len(b)
	b = append(b, 's', ',')
	b = appendInt62(b, int64(src))
	b = append(b, ',')
	if c, ok := d.expect[src]; ok {
		if c == 0 {
			b = append(b, '0') // a count, not none
		}
		b = appendInt62(b, int64(c))
	}
	b = append(b, ',')
	b = appendUint62(b, uint64(len(ups)))
	b = seq.append(b)
	b = wm.append(b)
	if !relative {
		b = append(b, ',')
		b = appendInt62(b, mark.base)
		b = append(b, ',')
		b = appendUint62(b, mark.step()) // never empty: an empty one says relative
	}
	b = endItem(b, start)

	prev := int32(-1)
	for _, u := range ups {
		_, local := PartitionSource(u.from)
		flags := u.flags()
		start := len(b)
		if u.has {
			b = appendUint62(b, seq.of(u.seq))
		} else {
			b = appendInt62(b, u.seq)
		}
		b = append(b, ',')
		if flags&(flagNoWatermark|flagEndOfTime) == 0 {
			b = appendUint62(b, wm.of(u.wm))
		}
		b = append(b, ',')
		switch {
		case !u.marked:
			b = appendInt62(b, u.markSeq)
		case relative:
			b = appendInt62(b, u.markSeq-u.seq)
		default:
			b = appendUint62(b, mark.of(u.markSeq))
		}
		b = append(b, ',')
		b = appendInt62(b, int64(u.sub))
		b = append(b, ',')
		b = appendUint62(b, uint64(local-prev-1))
		b = append(b, ',')
		b = appendUint62(b, uint64(flags^flagsWritten))
		b = endItem(b, start)
		prev = local
	}
	return b
}

func (u *upMark) flags() int {
	f := 0
	for i, on := range []bool{u.has, u.marked, u.idle, u.end, u.wm == NoWatermark, u.wm == EndOfTime} {
		if on {
			f |= 1 << i
		}
	}
	return f
}

// endItem ends the item that starts at start: without the empty fields at its end, then ";".
func endItem(b []byte, start int) []byte {
	n := len(b)
	for n > start && b[n-1] == ',' {
		n--
	}
	return append(b[:n], ';')
}

// frame writes numbers as multiples of a unit away from a base: their minimum (or, down,
// their maximum, the numbers then written below it), and the greatest common divisor of
// their distances to it (1 if they are all equal).
type frame struct {
	base int64
	unit uint64
	any  bool
	down bool
}

// add takes v into the frame: its base in pass 0, then its unit in pass 1.
func (f *frame) add(pass int, v int64) {
	switch {
	case pass == 0 && (!f.any || f.down && v > f.base || !f.down && v < f.base):
		f.base, f.any = v, true
	case pass == 1:
		a, b := f.unit, f.dist(v)
		for b != 0 {
			a, b = b, a%b
		}
		f.unit = a
	}
}

func (f frame) dist(v int64) uint64 {
	if f.down {
		return uint64(f.base) - uint64(v)
	}
	return uint64(v) - uint64(f.base)
}

func (f frame) step() uint64 { return max(f.unit, 1) }

// of returns v's multiple of the unit, v being one of the numbers added.
func (f frame) of(v int64) uint64 { return f.dist(v) / f.step() }

// at returns the number of multiple q.
func (f frame) at(q uint64) int64 {
	if f.down {
		return int64(uint64(f.base) - q*f.step())
	}
	return int64(uint64(f.base) + q*f.step())
}

// append appends ",<base>,<unit>" (a unit of 1 as nothing).
func (f frame) append(b []byte) []byte {
	b = append(b, ',')
	b = appendInt62(b, f.base)
	b = append(b, ',')
	if f.step() != 1 {
		b = appendUint62(b, f.step())
	}
	return b
}

func decodeMarksX2(rest string) (marks, error) {
	d := newMarks()
	var srcs []int
	for rest != "" {
		item, r, ok := strings.Cut(rest, ";")
		if !ok {
			return marks{}, badMarks(rest)
		}
		rest = r
		f := strings.Split(item, ",")
		if f[0] != "s" {
			if ok, err := d.decodeOther(item, f); !ok || err != nil {
				return marks{}, cmp.Or(err, badMarks(item))
			}
			continue
		}
		src, err := d.decodeSourceX2(item, f, &rest)
		if err != nil {
			return marks{}, err
		}
		if slices.Contains(srcs, src) {
			return marks{}, badMarks(item)
		}
		srcs = append(srcs, src)
	}
	return d, nil
}

// decodeSourceX2 decodes the header f (item) of a source and its entries, which it cuts
// from the start of rest; it returns the source.
func (d *marks) decodeSourceX2(item string, f []string, rest *string) (int, error) {
	if len(f) > 10 {
		return 0, badMarks(item)
	}
	src, ok1 := parseInt62(field(f, 1))
	n, ok2 := parseUint62(field(f, 3))
	seq, ok3 := parseFrame(field(f, 4), field(f, 5), false)
	wm, ok4 := parseFrame(field(f, 6), field(f, 7), false)
	wm.down = true
	relative := field(f, 8) == "" && field(f, 9) == ""
	mark, ok5 := parseFrame(field(f, 8), field(f, 9), !relative)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return 0, badMarks(item)
	}
	if c := field(f, 2); c != "" {
		v, ok := parseInt62(c)
		if !ok || v != int64(int32(v)) {
			return 0, badMarks(item)
		}
		d.expect[int(src)] = int32(v)
	}
	prev := int64(-1)
	for range n {
		item, r, ok := strings.Cut(*rest, ";")
		if !ok {
			return 0, badMarks(*rest)
		}
		*rest = r
		e := strings.Split(item, ",")
		if len(e) > 6 {
			return 0, badMarks(item)
		}
		fl, ok1 := parseUint62(field(e, 5))
		flags := int(fl) ^ flagsWritten
		wmWord := field(e, 1)
		special := flags & (flagNoWatermark | flagEndOfTime)
		gap, ok2 := parseUint62(field(e, 4))
		sub, ok3 := parseInt62(field(e, 3))
		if !ok1 || !ok2 || !ok3 || fl > flagsAll || special == flagNoWatermark|flagEndOfTime ||
			special != 0 && wmWord != "" || gap >= 1<<sourceShift || sub != int64(int32(sub)) {
			return 0, badMarks(item)
		}
		u := &upMark{sub: int32(sub), has: flags&flagHas != 0, marked: flags&flagMarked != 0,
			idle: flags&flagIdle != 0, end: flags&flagEnd != 0}
		var ok4, ok5, ok6 bool
		if u.has {
			var q uint64
			q, ok4 = parseUint62(field(e, 0))
			u.seq = seq.at(q)
		} else {
			u.seq, ok4 = parseInt62(field(e, 0))
		}
		switch special {
		case flagNoWatermark:
			u.wm, ok5 = NoWatermark, true
		case flagEndOfTime:
			u.wm, ok5 = EndOfTime, true
		default:
			var q uint64
			q, ok5 = parseUint62(wmWord)
			u.wm = wm.at(q)
		}
		if u.marked && !relative {
			var q uint64
			q, ok6 = parseUint62(field(e, 2))
			u.markSeq = mark.at(q)
		} else {
			u.markSeq, ok6 = parseInt62(field(e, 2))
			if u.marked {
				u.markSeq += u.seq
			}
		}
		local := prev + 1 + int64(gap)
		from := globalPart(int(src), int32(local))
		if s, l := PartitionSource(from); !ok4 || !ok5 || !ok6 || local >= 1<<sourceShift || int64(s) != src || int64(l) != local {
			return 0, badMarks(item)
		}
		d.up[from] = u
		prev = local
	}
	return int(src), nil
}

// field returns f[k], "" if f has no such field (left out at the end of an item).
func field(f []string, k int) string {
	if k < len(f) {
		return f[k]
	}
	return ""
}

// parseFrame parses a frame's base and unit; an empty unit is 1, or, unless need, no frame.
func parseFrame(base, unit string, need bool) (frame, bool) {
	b, ok1 := parseInt62(base)
	u, ok2 := parseUint62(unit)
	if unit == "" && !need {
		u = 1
	}
	return frame{base: b, unit: u}, ok1 && ok2 && u != 0
}

const digits62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// appendUint62 appends v in base 62, 0 as nothing.
func appendUint62(b []byte, v uint64) []byte {
	var buf [11]byte
	i := len(buf)
	for ; v > 0; v /= 62 {
		i--
		buf[i] = digits62[v%62]
	}
	return append(b, buf[i:]...)
}

// appendInt62 appends v in base 62, a negative one after "-", 0 as nothing.
func appendInt62(b []byte, v int64) []byte {
	if v < 0 {
		return appendUint62(append(b, '-'), -uint64(v))
	}
	return appendUint62(b, uint64(v))
}

func lenUint62(v uint64) int {
	n := 0
	for ; v > 0; v /= 62 {
		n++
	}
	return n
}

func lenInt62(v int64) int {
	if v < 0 {
		return 1 + lenUint62(-uint64(v))
	}
	return lenUint62(uint64(v))
}

// parseUint62 parses what appendUint62 wrote ("0" too).
func parseUint62(s string) (uint64, bool) {
	if len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var v uint64
	for i := range len(s) {
		d := strings.IndexByte(digits62, s[i])
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(v, 62)
		lo, carry := bits.Add64(lo, uint64(d), 0)
		if hi != 0 || carry != 0 {
			return 0, false
		}
		v = lo
	}
	return v, true
}

// parseInt62 parses what appendInt62 wrote ("0" too).
func parseInt62(s string) (int64, bool) {
	digits, neg := strings.CutPrefix(s, "-")
	u, ok := parseUint62(digits)
	switch {
	case !ok || neg && (u == 0 || u > 1<<63) || !neg && u > math.MaxInt64:
		return 0, false
	case neg:
		return int64(-u), true
	}
	return int64(u), true
}
