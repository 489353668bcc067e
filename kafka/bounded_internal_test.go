package kafka

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestEndedMarker: the ended marker goes before the pipeline's checkpoint and the
// exactly-once bound, and comes off whole; metadata that only looks like it is left alone.
func TestEndedMarker(t *testing.T) {
	p := &partition{end: 2000}
	ck := "fs3/2/abc/1=xyz/1@1750"
	stored := endedMeta(p, stream.Position{Offset: 1750, Meta: ck, Ended: true})
	require.Equal(t, "~end:2000~"+ck, stored)
	end, meta := cutEnded(encodeBound(stored, readBound{out: outputs{{"alerts", 0}: 7}, pushed: 2000}))
	require.EqualValues(t, 2000, end)
	meta, b := splitBound(meta)
	require.Equal(t, ck, meta)
	require.EqualValues(t, 2000, b.pushed)

	require.Equal(t, ck, endedMeta(p, stream.Position{Offset: 1750, Meta: ck}), "not ended")
	require.Equal(t, ck, endedMeta(&partition{end: -1}, stream.Position{Meta: ck, Ended: true}), "not bounded")
	for _, s := range []string{"", ck, "~end:", "~end:12", "~end:x~" + ck, "~end:-3~" + ck} {
		end, meta := cutEnded(s)
		require.EqualValues(t, -1, end, "%q", s)
		require.Equal(t, s, meta)
	}
}
