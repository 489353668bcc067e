// The formats of a repartition's marks in the commit checkpoint (internal): "x2;", written
// by encode, and "x1;", written by earlier releases, which decodeMarks still reads.

package stream

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireSameMarks: what a checkpoint keeps of the marks (not the run of an end, not the
// end rule).
func requireSameMarks(t *testing.T, want, got marks, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, want.up, got.up, msgAndArgs...)
	require.Equal(t, want.expect, got.expect, msgAndArgs...)
	require.Equal(t, want.staleEnd, got.staleEnd, msgAndArgs...)
	require.Equal(t, len(want.inputs), len(got.inputs), msgAndArgs...)
	for r, h := range want.inputs {
		require.Equal(t, h, got.inputs[r], msgAndArgs...)
	}
}

// randomMarks returns marks with numbers of every kind: the ends of int64 and int32, the
// special watermarks, small ones of either sign, 14 ("e" in base 36), large ones; upstream
// partitions of several sources (negative ones too: any int32 is a partition id), some
// consecutive; partition counts with and without upstream partitions, 0 and negative ones.
func randomMarks(rng *rand.Rand) marks {
	num := func() int64 {
		switch rng.IntN(8) {
		case 0:
			return []int64{math.MinInt64, math.MaxInt64, math.MinInt64 + 1, math.MaxInt64 - 1, 0, -1, 1, 14, 61, 62, -62}[rng.IntN(11)]
		case 1:
			return rng.Int64N(70)
		case 2:
			return -rng.Int64N(70)
		case 3:
			return 1_700_000_000_000_000_000 + rng.Int64N(200)*int64(time.Millisecond)
		}
		return int64(rng.Uint64())
	}
	from := func() int32 {
		switch rng.IntN(4) {
		case 0:
			return int32(rng.Uint32())
		case 1:
			return []int32{math.MinInt32, math.MaxInt32, -1, 0, 1<<sourceShift - 1, 1 << sourceShift}[rng.IntN(6)]
		}
		return globalPart(rng.IntN(3), int32(rng.IntN(10)))
	}
	m := newMarks()
	for range rng.IntN(12) {
		u := &upMark{seq: num(), sub: int32(num()), markSeq: num(), wm: num(),
			has: rng.IntN(4) > 0, marked: rng.IntN(4) > 0, idle: rng.IntN(4) == 0, end: rng.IntN(4) == 0}
		switch rng.IntN(4) {
		case 0:
			u.sub = 0
		case 1:
			u.markSeq = u.seq + rng.Int64N(9) - 2
		}
		m.up[from()] = u
	}
	for range rng.IntN(4) {
		m.expect[[]int{0, 1, 2, 31, -32, 40, math.MaxInt64}[rng.IntN(7)]] = int32(num())
	}
	if rng.IntN(3) == 0 {
		m.staleEnd = 1 + rng.Int64N(math.MaxInt64)
	}
	if rng.IntN(3) == 0 {
		m.inputs = map[inputRef]uint64{}
		for range 1 + rng.IntN(3) {
			m.inputs[inputRef{rng.IntN(3), rng.IntN(3)}] = rng.Uint64()
		}
	}
	return m
}

// TestMarksFormatRoundTrip: marks survive encode and decode whatever their numbers (see
// randomMarks), and the encoding holds none of the characters the checkpoint around it is
// cut at ("|" before the marks, Kafka's "~end:" and "~eos~" markers) and does not start as a
// fire watermark ("w"). So do marks written by earlier releases ("x1;") through decode,
// encode and decode.
func TestMarksFormatRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 5000 {
		m := randomMarks(rng)
		enc := m.encodeX2()
		require.True(t, strings.HasPrefix(enc, "x2;"), enc)
		require.NotContains(t, enc, markSep)
		require.NotContains(t, enc, "~")
		back, err := decodeMarks(enc)
		require.NoError(t, err, enc)
		requireSameMarks(t, m, back, enc)
		marks, fired, err := cutFired(withFired(enc, 1234))
		require.NoError(t, err)
		require.EqualValues(t, 1234, fired)
		require.Equal(t, enc, marks)

		// An earlier release's checkpoint of marks it could make (its decoder truncates
		// partition counts to int32, keeps the largest "l" position).
		old := m.encodeX1()
		back, err = decodeMarks(old)
		require.NoError(t, err, old)
		requireSameMarks(t, m, back, old)
		back, err = decodeMarks(back.encodeX2())
		require.NoError(t, err)
		requireSameMarks(t, m, back, old)
	}
}

// TestMarksFormatX1: checkpoints written by the previous release ("x1;", here as it wrote
// them) restore exactly the marks they did before: upstream partitions of two sources, with
// and without values and marks, idle and ended, special watermarks, partition counts, a past
// run's end, named inputs, and the numbers 14 ("e") and 21 ("l").
func TestMarksFormatX1(t *testing.T) {
	want := newMarks()
	want.up[globalPart(0, 0)] = &upMark{seq: 0, markSeq: -1, wm: NoWatermark}
	want.up[globalPart(0, 14)] = &upMark{seq: 14, sub: 14, markSeq: 21, wm: EndOfTime, has: true, marked: true, idle: true, end: true}
	want.up[globalPart(1, 3)] = &upMark{seq: 123456789, sub: 2, markSeq: 123456791, wm: 1_700_000_123_456_000_000, has: true, marked: true}
	want.up[globalPart(1, 4)] = &upMark{seq: 123456700, markSeq: 123456698, wm: -5, has: true, marked: true}
	want.expect[0] = 15
	want.expect[1] = 4
	want.staleEnd = 99
	want.inputs = map[inputRef]uint64{{0, 0}: 36, {1, 0}: math.MaxUint64}
	// Written by the previous release's encode.
	const x1 = "x1;0,0,0,-1,-1y2p0ij32e8e8,0;e,e,e,l,1y2p0ij32e8e7,f;13ydj7,21i3v9,2,21i3vb,cwyvqzb78bnk,3;13ydj8,21i3ss,0,21i3sq,-5,3;" +
		"e,0,f;e,1,4;l,2r;i,0,0,10;i,1,0,3w5e11264sgsf;"
	require.Equal(t, x1, want.encodeX1(), "the copy of the earlier encoder")
	got, err := decodeMarks(x1)
	require.NoError(t, err)
	requireSameMarks(t, want, got)

	// Restored by a repartition, then committed again: small marks stay in the format an
	// earlier release reads (an instance of it may claim the partition during a rolling
	// deploy), the same marks.
	sh := &shuffle[int]{parts: map[int32]*downPart{}, ups: []int{0, 1}}
	require.NoError(t, sh.restore(globalPart(2, 0), 20, x1))
	d := sh.parts[globalPart(2, 0)]
	_, enc := sh.checkpoint(globalPart(2, 0), 20, marksX1Max)
	require.True(t, strings.HasPrefix(enc, "x1;"), enc)
	back, err := decodeMarks(enc)
	require.NoError(t, err)
	require.Equal(t, d.base.up, back.up)
	require.Equal(t, want.expect, back.expect)
	back, err = decodeMarks(d.base.encodeX2())
	require.NoError(t, err)
	require.Equal(t, d.base.up, back.up, "and in the new format")
	require.Equal(t, want.expect, back.expect)
}

// TestMarksFormatBySize: encode writes "x1;", which earlier releases read, up to
// marksX1Max bytes, and "x2;" beyond, where "x1;" would soon pass the broker's 4,096 bytes;
// encodeWithin, what a commit uses, up to the room it is given (helper-68: a fixed 2,048
// bytes of marks next to a large operators' checkpoint and a read-back bound could still
// pass the limit where "x2;" fits).
func TestMarksFormatBySize(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	small, large := realisticMarks(rng, 1, 20, false), realisticMarks(rng, 2, 60, false)
	require.LessOrEqual(t, len(small.encodeX1()), marksX1Max)
	require.Equal(t, small.encodeX1(), small.encode(), "20 upstream partitions")
	require.Greater(t, len(large.encodeX1()), marksX1Max)
	require.Equal(t, large.encodeX2(), large.encode(), "120 upstream partitions")
	for _, m := range []marks{small, large} {
		back, err := decodeMarks(m.encode())
		require.NoError(t, err)
		requireSameMarks(t, m, back)
	}

	// A commit gives the room its operators' checkpoint leaves (checkpointX1Max): small
	// marks next to a large checkpoint go "x2;", large ones next to a small one "x1;".
	x1 := len(small.encodeX1())
	require.Equal(t, small.encodeX2(), small.encodeWithin(x1-1))
	require.Equal(t, small.encodeX1(), small.encodeWithin(x1))
	require.Equal(t, small.encodeX2(), small.encodeWithin(0))
	require.Equal(t, large.encodeX1(), large.encodeWithin(len(large.encodeX1())))
}

// realisticMarks returns the marks of a downstream partition of a repartition of srcs
// sources of parts partitions each, as they are between commits: per upstream partition an
// offset between 1e6 and 1e8 (RepartitionBy) or the last instant of a minute window
// (RepartitionByTime, the newest mark then such an offset), the newest mark 1 to 4 past it,
// the watermark of millisecond event times, around 1.7e12 ms and up to 3 minutes apart; the
// sources' partition counts and inputs.
func realisticMarks(rng *rand.Rand, srcs, parts int, byTime bool) marks {
	m := newMarks()
	m.inputs = map[inputRef]uint64{}
	now := 1_700_000_000_000 + rng.Int64N(1e11) // ms
	for s := range srcs {
		m.expect[s] = int32(parts)
		m.inputs[inputRef{s, 0}] = rng.Uint64()
		for p := range int32(parts) {
			u := &upMark{seq: 1e6 + rng.Int64N(99e6), wm: (now - rng.Int64N(180_000)) * int64(time.Millisecond), has: true, marked: true}
			u.markSeq = u.seq + 1 + rng.Int64N(4)
			if byTime {
				u.seq = (now/60_000-rng.Int64N(4))*int64(time.Minute) - 1
			}
			m.up[globalPart(s, p)] = u
		}
	}
	return m
}

// TestMarksSize: for realistic marks (realisticMarks; also with a tenth of the upstream
// partitions idle, their watermarks a day behind) an upstream partition costs at most half of
// what it did in format "x1;", and the marks of a repartition of two sources of 150
// partitions each fit in Kafka's default offset.metadata.max.bytes (4096) with 200 bytes to
// spare for the operators' checkpoint.
func TestMarksSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		srcs         int
		byTime, idle bool
	}{{1, false, false}, {2, false, false}, {1, true, false}, {2, true, false}, {2, false, true}} {
		for i := range 20 {
			m := realisticMarks(rng, c.srcs, 150, c.byTime)
			if c.idle {
				for from, u := range m.up {
					if _, p := PartitionSource(from); p%10 == 0 {
						u.idle, u.wm = true, u.wm-int64(24*time.Hour)
					}
				}
			}
			enc, old := m.encodeX2(), m.encodeX1()
			back, err := decodeMarks(enc)
			require.NoError(t, err)
			requireSameMarks(t, m, back)
			n := float64(len(m.up))
			perOld, perNew := float64(len(old))/n, float64(len(enc))/n
			require.LessOrEqual(t, perNew, perOld/2, "%+v: %d bytes, were %d", c, len(enc), len(old))
			if c.srcs == 2 {
				require.LessOrEqual(t, len(enc)+200, 4096, "%+v", c)
			}
			if i == 0 {
				t.Logf("%d x 150 upstream partitions, %+v: %d bytes (%.1f per upstream partition), were %d (%.1f)",
					c.srcs, c, len(enc), perNew, len(old), perOld)
			}
		}
	}
}

// FuzzDecodeMarks: the marks decoder reads what Kafka hands back as commit metadata, which
// anyone with access to the group can write. It must never panic, and marks it accepts must
// encode and decode to the same marks.
func FuzzDecodeMarks(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		m := randomMarks(rng)
		f.Add(m.encodeX2())
		f.Add(m.encodeX1())
	}
	f.Add(realisticMarks(rng, 2, 5, false).encodeX2())
	f.Add(realisticMarks(rng, 1, 5, true).encodeX2())
	for _, s := range []string{"x2;", "x2;s;", "x2;s,,,2;;;", "x2;s,,,2;;", "x2;s,,,1,,0;", "x2;s,,,1,,,,,1;,,,,,W;",
		"x2;s,,,1;,,,,,10;", "x2;s,,,1;,,,,,Z;", "x2;s,,,1;,,,,-1;", "x2;s,,,1;,,,,4oIxi;", "x2;s,-Z,,1;;", "x2;s,,,1;;s,,,1;;",
		"x2;s,,,1;-;", "x2;s,,,1;-0;", "x2;s,,,1;00;", "x2;s,,,1;LygHa16AHYG;", "x2;s,,,1;LygHa16AHYF;", "x2;l,1;i,0,0,1;",
		"x2;e,1,2;", "x2;l,0;", "x2;s,1,0;", "x2;s,1,,1;,,,,,,;", "x1;", "x1;e,1,2;", "x1;e,1;", "x1;1,2,3,4,5,6;l,5;i,1,2,3;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := decodeMarks(s)
		if err != nil {
			return
		}
		enc := m.encodeX2()
		back, err := decodeMarks(enc)
		if err != nil {
			t.Fatalf("%q decoded, encoded %q, which does not decode: %v", s, enc, err)
		}
		requireSameMarks(t, m, back, "%q encoded %q", s, enc)
	})
}

// BenchmarkMarksEncode: the marks are encoded at every commit of a repartition's partition;
// here those of two sources of 150 partitions each, in both formats.
func BenchmarkMarksEncode(b *testing.B) {
	for _, size := range []struct {
		name        string
		srcs, parts int
	}{{"2x150", 2, 150}, {"1x6", 1, 6}} {
		m := realisticMarks(rand.New(rand.NewPCG(5, 6)), size.srcs, size.parts, false)
		for _, c := range []struct {
			format string
			encode func(marks) string
		}{{"x1", marks.encodeX1}, {"x2", marks.encodeX2}, {"chosen", marks.encode}} {
			b.Run("marks="+size.name+"/format="+c.format, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = c.encode(m)
				}
			})
		}
	}
}
