// The repartition's checkpoints never go back.

package stream_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// requireCommitsNeverGoBack checks commits, every commit of one source in order (of one run
// or of runs one after another on the same log), against the invariant the repartition's
// exactly-once argument rests on: a partition's committed position never goes back, and nor
// do the marks its checkpoint carries (per upstream partition, the highest number kept, the
// newest mark and its watermark), nor the fire watermark kept with them. A checkpoint whose
// marks went back would keep again, after a restart, copies of values already counted; one
// whose position went back behind its marks would drop as copies values never counted.
func requireCommitsNeverGoBack(t *testing.T, what string, commits [][]stream.Position) {
	t.Helper()
	type last struct {
		pos   stream.Position
		marks map[int32]stream.MarkState
		fired int64
	}
	prev := map[int32]last{}
	for i, c := range commits {
		for _, pos := range c {
			marks, fired, err := stream.RepartitionMarks(pos.Meta)
			require.NoError(t, err, "%s: commit %d: %+v", what, i, pos)
			cur := last{pos, marks, fired}
			p, ok := prev[pos.Partition]
			prev[pos.Partition] = cur
			if !ok {
				continue
			}
			at := func(format string, args ...any) []any {
				return append([]any{"%s: commit %d of partition %d (offset %d after %d): " + format, what, i, pos.Partition, pos.Offset, p.pos.Offset}, args...)
			}
			require.GreaterOrEqual(t, pos.Offset, p.pos.Offset, at("the position went back")...)
			if p.fired != stream.NoWatermark {
				require.GreaterOrEqual(t, fired, p.fired, at("the fire watermark went back")...)
			}
			if p.marks != nil {
				require.NotNil(t, marks, at("the marks were lost")...)
			}
			for from, pm := range p.marks {
				m, ok := marks[from]
				require.True(t, ok, at("upstream partition %d's marks were lost", from)...)
				if pm.Has {
					require.True(t, m.Has && (m.Seq > pm.Seq || m.Seq == pm.Seq && m.Sub >= pm.Sub),
						at("upstream partition %d: highest number kept %d.%d after %d.%d", from, m.Seq, m.Sub, pm.Seq, pm.Sub)...)
				}
				require.GreaterOrEqual(t, m.MarkSeq, pm.MarkSeq, at("upstream partition %d: newest mark", from)...)
				if pm.MarkSeq >= 0 {
					require.GreaterOrEqual(t, m.WM, pm.WM, at("upstream partition %d: watermark", from)...)
				}
			}
		}
	}
}
