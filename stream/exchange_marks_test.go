// The encoding of a repartition's marks in the commit checkpoint (internal).

package stream

import (
	"math/rand/v2"
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
