// The encoding of a repartition's marks in the commit checkpoint (internal).

package stream

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMarksEncoding: marks survive encode and decode whatever their numbers, including 14
// ("e" in base 36, the tag of a source's partition count), which decoding used to skip,
// losing the checkpoint (and with it the dedup of the upstream's replay).
func TestMarksEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	num := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return 14
		case 1:
			return rng.Int64N(40)
		case 2:
			return -rng.Int64N(40)
		}
		return rng.Int64()
	}
	for range 500 {
		m := newMarks()
		for range 1 + rng.IntN(6) {
			m.up[int32(num())] = &upMark{seq: num(), sub: int32(rng.IntN(20)), markSeq: num(), wm: num(),
				has: rng.IntN(2) == 0, marked: rng.IntN(2) == 0, idle: rng.IntN(2) == 0, end: rng.IntN(2) == 0}
		}
		for range rng.IntN(3) {
			m.expect[int(rng.Int64N(20))] = int32(rng.Int64N(20))
		}
		enc := m.encode()
		back, err := decodeMarks(enc)
		require.NoError(t, err, enc)
		require.Equal(t, m.up, back.up, enc)
		require.Equal(t, m.expect, back.expect, enc)
	}
	// The entry of upstream partition 14 at offset 14: every field "e".
	m := newMarks()
	m.up[14] = &upMark{seq: 14, sub: 14, markSeq: 14, wm: 14, has: true, marked: true, idle: true}
	m.expect[14] = 14
	back, err := decodeMarks(m.encode())
	require.NoError(t, err, m.encode())
	require.Equal(t, m.up, back.up)
	require.Equal(t, m.expect, back.expect)
	_, err = decodeMarks("x1;e,1;")
	require.Error(t, err, "a partition count without its number")
}

// TestMarksEndIsOneRunsOwn: an upstream partition's end is that run's, so neither it nor
// its EndOfTime reaches the next run. A checkpoint written by an earlier release (end flags,
// EndOfTime watermarks, fire watermark EndOfTime) restores as not ended, with no watermark
// from the end; the newest mark decides whether an upstream partition ended, so an instance
// that takes over a partition after another one's end mark (same position) is not ended;
// and an end mark does not raise the watermark that a checkpoint keeps.
func TestMarksEndIsOneRunsOwn(t *testing.T) {
	const src = 0
	old := newMarks()
	old.up[globalPart(src, 0)] = &upMark{seq: 9, markSeq: 10, wm: EndOfTime, has: true, marked: true, end: true}
	old.up[globalPart(src, 1)] = &upMark{seq: 4, markSeq: 5, wm: 700, has: true, marked: true, end: true}
	old.expect[src] = 2
	enc := withFired(old.encode(), EndOfTime)
	marks, fired, err := cutFired(enc)
	require.NoError(t, err)
	require.Equal(t, NoWatermark, fired, "a fire watermark EndOfTime")
	sh := &shuffle[int]{parts: map[int32]*downPart{}, ups: []int{src}}
	require.NoError(t, sh.restore(globalPart(1, 0), 20, marks))
	d := sh.parts[globalPart(1, 0)]
	wm, _, end := d.cur.watermark(sh.ups)
	require.False(t, end, "restored as ended")
	require.Equal(t, NoWatermark, wm, "partition 0's EndOfTime is no watermark; partition 1 has 700")

	// This run's marks: partition 0 resumes at its end and its instance goes on (no end);
	// partition 1 ends again.
	require.False(t, d.cur.apply(&histRec{from: globalPart(src, 0), seq: 10, wm: 800, mark: true, upstreams: 2}))
	require.False(t, d.cur.apply(&histRec{from: globalPart(src, 1), seq: 5, wm: EndOfTime, mark: true, end: true, upstreams: 2}))
	wm, _, end = d.cur.watermark(sh.ups)
	require.False(t, end)
	require.EqualValues(t, 800, wm, "partition 1 ended: partition 0's watermark")
	require.EqualValues(t, 700, d.cur.up[globalPart(src, 1)].wm, "an end mark raised the watermark a checkpoint keeps")
	require.False(t, d.cur.apply(&histRec{from: globalPart(src, 0), seq: 12, wm: EndOfTime, mark: true, end: true, upstreams: 2}))
	_, _, end = d.cur.watermark(sh.ups)
	require.True(t, end, "both ended in this run")

	// The operators' checkpoint entries drop a fire watermark EndOfTime as well.
	_, firedOps, _, err := decodeCheckpoint("fs2/3/fp/1@4:9223372036854775807,2@5:70", 5, 3, "fp")
	require.NoError(t, err)
	require.Equal(t, map[int]int64{2: 70}, firedOps)
}

// TestMarksEndValueIsProvisional: with WithRevisions, a value sent in the batch where its
// upstream partition's input ended (end) is kept when its number is above the highest kept,
// but leaves that number where it was, so that the next run's revision of it (the same
// number, complete) is kept as well; a complete value still raises it, and its copies are
// dropped as before.
func TestMarksEndValueIsProvisional(t *testing.T) {
	from := globalPart(0, 1)
	v := func(seq int64, sub int32, end bool) *histRec {
		return &histRec{from: from, seq: seq, sub: sub, end: end}
	}
	m := newMarks()
	require.True(t, m.apply(v(10, 0, false)))
	require.False(t, m.apply(v(10, 0, false)), "a copy of a complete value")
	require.True(t, m.apply(v(20, 0, true)), "an end value above the highest")
	require.EqualValues(t, 10, m.up[from].seq, "an end value raised the highest number")
	require.True(t, m.apply(v(20, 0, true)), "the next run's revision of an end value, sent at its end too")
	require.True(t, m.apply(v(20, 0, false)), "the next run's complete revision of an end value")
	require.False(t, m.apply(v(20, 0, false)), "a copy of the complete revision")
	require.False(t, m.apply(v(20, 0, true)), "an end value at the highest complete number")
	require.False(t, m.apply(v(15, 0, true)), "an end value below the highest complete number")
	require.True(t, m.apply(v(20, 1, false)))
	require.EqualValues(t, 20, m.up[from].seq)
	require.EqualValues(t, 1, m.up[from].sub)
}

// TestMarksStaleEnd: the checkpoint entry "l,<position>;" (end marks before the position are
// a past run's) survives encode and decode, is left out when there is none (a checkpoint
// reads as before), is added to a checkpoint with or without marks, and of two the later
// position counts; a bad one is refused.
func TestMarksStaleEnd(t *testing.T) {
	m := newMarks()
	m.up[globalPart(0, 2)] = &upMark{seq: 7, sub: 1, markSeq: 8, wm: 700, has: true, marked: true}
	m.expect[0] = 3
	old := m.encode()
	require.NotContains(t, old, "l,", "marks without a past run's end")
	back, err := decodeMarks(old)
	require.NoError(t, err)
	require.Zero(t, back.staleEnd, "marks of a checkpoint without the entry")
	m.staleEnd = 1234
	enc := m.encode()
	require.Equal(t, old+"l,ya;", enc)
	back, err = decodeMarks(enc)
	require.NoError(t, err, enc)
	require.EqualValues(t, 1234, back.staleEnd)
	require.Equal(t, m.up, back.up)
	require.Equal(t, m.expect, back.expect)
	require.EqualValues(t, 1234, m.clone().staleEnd)

	for _, meta := range []string{"fs2/3/fp/1@4", "fs2/3/fp/1@4" + markSep + enc, ""} {
		got := withStaleEnd(meta, 2000)
		_, marks, ok := strings.Cut(got, markSep)
		require.True(t, ok, got)
		marks, _, err := cutFired(marks)
		require.NoError(t, err, got)
		back, err := decodeMarks(marks)
		require.NoError(t, err, got)
		require.EqualValues(t, 2000, back.staleEnd, "the later of two positions: %s", got)
	}
	for _, bad := range []string{"x1;l,;", "x1;l,-5;", "x1;l,0;", "x1;l,zz!;"} {
		_, err := decodeMarks(bad)
		require.Error(t, err, bad)
	}
}

// TestMarksEndIsThisRuns: an end mark counts as its upstream partition's end only when it is
// this run's (or carries no run: an earlier release's), or, once this instance's upstream
// sources ended, when the upstream partition is another instance's. Another run's end of a
// partition this instance reads (a crashed attempt's, left after the held commit) leaves the
// watermark where that run's marks before it left it; this run's replayed marks, below it,
// do not move it back; this run's own end counts, at the same position or below, and a
// later copy of the other run's end does not undo it.
func TestMarksEndIsThisRuns(t *testing.T) {
	const src, this, crashed = 0, 7, 5
	p0, p1, p2 := globalPart(src, 0), globalPart(src, 1), globalPart(src, 2)
	rule := &endRule{run: this, here: func(from int32) bool { return from != p2 }}
	m := newMarks()
	m.ends = rule
	mark := func(from int32, seq, wm int64, end bool, run uint64) {
		t.Helper()
		if end {
			wm = EndOfTime
		}
		require.False(t, m.apply(&histRec{from: from, seq: seq, wm: wm, mark: true, end: end, run: run, upstreams: 3}))
	}
	ups := []int{src}
	// The crashed attempt's last marks, then its end marks.
	mark(p0, 10, 500, false, 0)
	mark(p1, 8, 600, false, 0)
	mark(p2, 9, 550, false, 0)
	for _, from := range []int32{p0, p1, p2} {
		mark(from, 12, 0, true, crashed)
	}
	wm, _, end := m.watermark(ups)
	require.False(t, end, "another run's end marks taken for this run's end")
	require.EqualValues(t, 500, wm, "the crashed attempt's marks before its end")
	// This run replays: its marks below the end do not move the watermark.
	mark(p0, 3, 100, false, 0)
	wm, _, _ = m.watermark(ups)
	require.EqualValues(t, 500, wm)
	// This run's own ends: p0 at the same position, p1 below the other run's (a pipeline
	// reading another one's log). p2 is another instance's: its end counts once this
	// instance's upstream sources ended.
	mark(p0, 12, 0, true, this)
	mark(p1, 4, 0, true, this)
	wm, _, end = m.watermark(ups)
	require.False(t, end, "p2's end, another instance's, before this instance's sources ended")
	require.EqualValues(t, 550, wm, "p2's watermark")
	rule.others = true
	_, _, end = m.watermark(ups)
	require.True(t, end, "every upstream partition ended in this run")
	// A copy of the crashed attempt's end at the same position does not undo this run's.
	mark(p0, 12, 0, true, crashed)
	require.True(t, m.ended(ups), "a copy of another run's end undid this run's")
	require.EqualValues(t, this, m.up[p0].run)
	// An end mark without a run (an earlier release's) counts as before; a later mark of the
	// partition (another run going on) makes it not ended.
	mark(p1, 20, 0, true, 0)
	require.True(t, m.ended(ups))
	mark(p1, 21, 900, false, 0)
	require.False(t, m.ended(ups))
	// The run is not in the checkpoint, which reads back as before: not ended.
	back, err := decodeMarks(m.encode())
	require.NoError(t, err)
	require.Zero(t, back.up[p0].run)
	require.NotEqual(t, newRun(), newRun(), "two runs of one number")
}

// TestMarksInputs: the checkpoint entries "i,<source>,<k>,<hash>;" (the hashes of the names of
// the upstream inputs, InputIdentifier) survive encode, decode and clone, come after the
// other entries, are left out when no source names its inputs (a checkpoint reads as
// before), and a bad one is refused.
func TestMarksInputs(t *testing.T) {
	m := newMarks()
	m.up[globalPart(0, 2)] = &upMark{seq: 7, sub: 1, markSeq: 8, wm: 700, has: true, marked: true}
	m.expect[0] = 3
	old := m.encode()
	require.NotContains(t, old, "i,", "marks of sources that name no input")
	back, err := decodeMarks(old)
	require.NoError(t, err)
	require.Empty(t, back.inputs)

	m.inputs = map[inputRef]uint64{{0, 0}: 36, {0, 1}: math.MaxUint64, {2, 0}: 1}
	enc := m.encode()
	require.Equal(t, old+"i,0,0,10;i,0,1,3w5e11264sgsf;i,2,0,1;", enc)
	back, err = decodeMarks(enc)
	require.NoError(t, err, enc)
	require.Equal(t, m.inputs, back.inputs)
	require.Equal(t, m.up, back.up)
	require.Equal(t, m.expect, back.expect)
	require.Equal(t, m.inputs, m.clone().inputs)
	for _, bad := range []string{"x1;i,0,0,;", "x1;i,-1,0,5;", "x1;i,0,-1,5;", "x1;i,0,0,-5;", "x1;i,0,0,zz!;"} {
		_, err := decodeMarks(bad)
		require.Error(t, err, bad)
	}
}

// TestMarksOfAnotherGraphDropped: a checkpoint made while another source fed the repartition
// (the fleet job run with -rekey-by-cab, whose zones repartition reads the cab rekey's
// output, restarted without it, or the other way round) holds that source's marks. They
// never move in this run, so they held the watermark where the last run left it: zone demand
// stalled for good (41,507 empty batches in 15 minutes, nothing indexed). Restored, they are
// dropped, and this graph's upstream source alone makes the watermark.
func TestMarksOfAnotherGraphDropped(t *testing.T) {
	const was, now = 2, 0
	old := newMarks()
	old.up[globalPart(was, 0)] = &upMark{seq: 9, markSeq: 9, wm: 700, has: true, marked: true}
	old.up[globalPart(was, 1)] = &upMark{seq: 4, markSeq: 4, wm: 650, has: true, marked: true}
	old.expect[was] = 2
	sh := &shuffle[int]{parts: map[int32]*downPart{}, ups: []int{now}}
	require.NoError(t, sh.restore(globalPart(3, 0), 20, old.encode()))
	d := sh.parts[globalPart(3, 0)]
	require.Len(t, d.cur.up, 0, "the marks of a source that does not feed the repartition")
	require.Len(t, d.base.up, 0, "nor in the checkpoint it writes next")
	for p := range int32(2) {
		require.False(t, d.cur.apply(&histRec{from: globalPart(now, p), seq: 1, wm: 5000 + int64(p), mark: true, upstreams: 2}))
	}
	wm, _, _ := d.cur.watermark(sh.ups)
	require.EqualValues(t, 5000, wm, "the watermark of this graph's upstream partitions, not the old ones' 650")
	require.NotContains(t, d.base.encode(), "e,2,", "the old source's partition count")

	// The marks of a source that still feeds it stay, with their copies' numbers.
	sh = &shuffle[int]{parts: map[int32]*downPart{}, ups: []int{was}}
	require.NoError(t, sh.restore(globalPart(3, 0), 20, old.encode()))
	require.Equal(t, old.up, sh.parts[globalPart(3, 0)].cur.up)
}
