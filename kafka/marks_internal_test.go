package kafka

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMarks drives the commit bookkeeping of a claim through sequences of pushes, dead
// letters and acknowledgements, and checks at every step what the session is asked to mark.
func TestMarks(t *testing.T) {
	type step struct {
		op        string // "begin", "push", "skip" or "mark"
		off       int64
		meta      string // "mark": the checkpoint
		want      markOp // "skip" and "mark"
		committed int64  // after the step, whatever the op
	}
	tests := []struct {
		name  string
		start int64
		steps []step
	}{
		{"acknowledgements advance", 100, []step{
			{op: "push", off: 110, committed: 100},
			{op: "mark", off: 105, meta: "a", want: markAdvance, committed: 105},
			{op: "mark", off: 110, meta: "b", want: markAdvance, committed: 110},
		}},
		{"same offset and checkpoint marks nothing", 0, []step{
			{op: "push", off: 10},
			{op: "mark", off: 10, meta: "a", want: markAdvance, committed: 10},
			{op: "mark", off: 10, meta: "a", want: markNone, committed: 10},
		}},
		{"same offset with a new checkpoint resets", 0, []step{
			{op: "push", off: 10},
			{op: "mark", off: 10, meta: "a", want: markAdvance, committed: 10},
			{op: "mark", off: 10, meta: "b", want: markReset, committed: 10},
		}},
		{"the start offset with a first checkpoint resets", 7, []step{
			{op: "mark", off: 7, meta: "a", want: markReset, committed: 7},
		}},
		{"an older offset marks nothing", 0, []step{
			{op: "push", off: 10},
			{op: "mark", off: 10, meta: "a", want: markAdvance, committed: 10},
			{op: "mark", off: 5, meta: "b", want: markNone, committed: 10},
		}},
		{"a commit of the pushed end extends over the dead-letter run", 0, []step{
			{op: "push", off: 10},
			{op: "skip", off: 10, want: markNone},
			{op: "skip", off: 11, want: markNone},
			{op: "mark", off: 8, meta: "a", want: markAdvance, committed: 8},
			{op: "mark", off: 10, meta: "b", want: markAdvance, committed: 12},
		}},
		{"dead letters after a committed end are committed at once", 0, []step{
			{op: "push", off: 10},
			{op: "mark", off: 10, meta: "a", want: markAdvance, committed: 10},
			{op: "skip", off: 10, want: markAdvance, committed: 11},
			{op: "skip", off: 11, want: markAdvance, committed: 12},
			// The acknowledgement of the pushed end, again, is extended over the run.
			{op: "mark", off: 10, meta: "a", want: markNone, committed: 12},
			{op: "mark", off: 10, meta: "b", want: markReset, committed: 12},
		}},
		// After a run committed at once and ended by a push, a new checkpoint at the offset
		// before the run is below the commit: dropped, the older one stays (a replay from it
		// replays more, see mark); the next acknowledgement past the run marks its own.
		{"a new checkpoint before a run that a push ended marks nothing", 0, []step{
			{op: "push", off: 10},
			{op: "mark", off: 10, meta: "a", want: markAdvance, committed: 10},
			{op: "skip", off: 10, want: markAdvance, committed: 11},
			{op: "push", off: 15, committed: 11},
			{op: "mark", off: 10, meta: "b", want: markNone, committed: 11},
			{op: "mark", off: 15, meta: "c", want: markAdvance, committed: 15},
		}},
		{"a push ends the run", 0, []step{
			{op: "push", off: 10},
			{op: "skip", off: 10, want: markNone},
			{op: "push", off: 15},
			{op: "mark", off: 10, meta: "a", want: markAdvance, committed: 10},
			{op: "skip", off: 15, want: markNone, committed: 10},
			{op: "mark", off: 15, meta: "b", want: markAdvance, committed: 16},
		}},
		{"a first record dead-lettered is committed at once", -1, []step{
			{op: "begin", off: 42, committed: 42},
			{op: "skip", off: 42, want: markAdvance, committed: 43},
			{op: "skip", off: 43, want: markAdvance, committed: 44},
			{op: "push", off: 50, committed: 44},
			{op: "mark", off: 50, meta: "a", want: markAdvance, committed: 50},
		}},
		// A claim without a committed offset: sarama holds -1, and a reset to the first
		// record's offset was dropped (a bounded run whose windows all stayed open committed
		// nothing: helper-75). The first mark there advances; a new checkpoint after it resets.
		{"the first record's offset with a first checkpoint advances", -1, []step{
			{op: "begin", off: 0, committed: 0},
			{op: "push", off: 10, committed: 0},
			{op: "mark", off: 0, meta: "a", want: markAdvance, committed: 0},
			{op: "mark", off: 0, meta: "a", want: markNone, committed: 0},
			{op: "mark", off: 0, meta: "b", want: markReset, committed: 0},
		}},
		{"the first record's offset with no checkpoint still advances", -1, []step{
			{op: "begin", off: 42, committed: 42},
			{op: "mark", off: 42, want: markAdvance, committed: 42},
		}},
		{"begin keeps a known start", 5, []step{
			{op: "begin", off: 9, committed: 5},
			{op: "skip", off: 5, want: markAdvance, committed: 6},
		}},
		{"a run with a gap goes on to its end", 0, []step{
			// Offsets 3 and 5 are dead letters, 4 is compacted away: the run covers all.
			{op: "push", off: 3},
			{op: "skip", off: 3, want: markNone},
			{op: "skip", off: 5, want: markNone},
			{op: "mark", off: 3, meta: "a", want: markAdvance, committed: 6},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMarks(tt.start)
			for i, s := range tt.steps {
				var got markOp
				switch s.op {
				case "begin":
					m.begin(s.off)
				case "push":
					m.pushed(s.off)
				case "skip":
					got = m.skipped(s.off)
				case "mark":
					got = m.mark(s.off, s.meta)
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				require.Equal(t, s.want, got, "step %d: %s %d", i, s.op, s.off)
				require.Equal(t, s.committed, m.committed, "step %d: committed after %s %d", i, s.op, s.off)
			}
		})
	}
}
