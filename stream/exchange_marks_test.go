// The encoding of a repartition's marks in the commit checkpoint (internal).

package stream

import (
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
	_, firedOps, err := decodeCheckpoint("fs2/3/fp/1@4:9223372036854775807,2@5:70", 5, 3, "fp")
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
