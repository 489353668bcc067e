package kafka

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// splitBoundEarlier is splitBound as releases before b16d481 have it (da2ff9c), verbatim
// but for its name: what an instance of an earlier release runs during a rolling deploy, or
// after a rollback (helper-68's review).
func splitBoundEarlier(stored string) (meta string, b readBound) {
	b.pushed = -1
	i := strings.LastIndex(stored, eosMarker)
	if i < 0 {
		return stored, b
	}
	meta, rest := stored[:i], stored[i+len(eosMarker):]
	if n, list, ok := strings.Cut(rest, ";"); ok {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 0 {
			return stored, readBound{pushed: -1} // not ours
		}
		b.pushed, rest = v, list
	}
	b.out = outputs{}
	for _, f := range strings.Split(rest, ",") {
		tp, off, ok1 := strings.Cut(f, "=")
		topic, part, ok2 := cutLast(tp, "/")
		o, err1 := strconv.ParseInt(off, 10, 64)
		p, err2 := strconv.ParseInt(part, 10, 32)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			return stored, readBound{pushed: -1} // not ours
		}
		b.out[topicPart{topic, int32(p)}] = o
	}
	return meta, b
}

// TestBoundReadByEarlierRelease: an earlier release reads the bound this one writes, as
// long as it takes at most boundFlatMax bytes. b16d481 wrote every bound grouped by topic,
// which the earlier release's splitBound finds "not ours": it handed the whole metadata,
// "~eos~..." included, to the pipeline as its checkpoint, which then refused the operators'
// checkpoint (cold start) and, on a repartition's partition, its marks, losing the dedup of
// replayed upstream records (helper-68).
func TestBoundReadByEarlierRelease(t *testing.T) {
	ckpt := "fs3/7/0123456789abcdef//3@100|x1;13ydj7,21i3v9,2,21i3vb,cwyvqzb78bnk,3;e,1,4;"
	b := readBound{out: outputs{{"fleet-cab-alerts", 0}: 10323, {"fleet-cab-alerts", 1}: 10909}, pushed: 13973}
	meta, got := splitBoundEarlier(encodeBound(ckpt, b))
	require.Equal(t, ckpt, meta)
	require.Equal(t, b, got)

	// Past boundFlatMax (an output topic of about 50 partitions or more), grouped: this
	// release reads it, an earlier one does not.
	for p := range int32(80) {
		b.out[topicPart{"fleet-cab-alerts", p}] = 10_000 + int64(p)
	}
	enc := encodeBound(ckpt, b)
	meta, got = splitBound(enc)
	require.Equal(t, ckpt, meta)
	require.Equal(t, b, got)
	meta, _ = splitBoundEarlier(enc)
	require.NotEqual(t, ckpt, meta)
}
