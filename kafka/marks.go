// The commit bookkeeping of a claimed partition: how far the claim pushed, what was marked
// for commit with which checkpoint, and the run of dead-lettered offsets that a commit may
// extend over. A plain type, so that it is tested without Kafka (marks_internal_test.go).

package kafka

// markOp is what a change of marks asks of the consumer group session.
type markOp int

const (
	// markNone: nothing to mark.
	markNone markOp = iota
	// markAdvance: MarkOffset(committed, meta), a higher offset.
	markAdvance
	// markReset: ResetOffset(committed, meta), the same offset with a new checkpoint
	// (sarama's MarkOffset ignores an offset it has).
	markReset
)

// marks is the commit bookkeeping of one claimed partition. It is not safe for concurrent
// use: partition.mu guards it, and the session calls its results ask for are made under the
// same lock, so that they reach sarama in the order they were decided.
type marks struct {
	// pushedNext is the offset after the last record pushed into the input; -1 until the
	// first record, for a partition without a committed offset.
	pushedNext int64
	// committed is the offset last marked for commit (or where the claim started), and meta
	// the pipeline checkpoint marked with it (stream.Position.Meta).
	committed int64
	meta      string
	// stored is whether sarama holds committed as the partition's offset: the group had one
	// when the claim started, or it was marked since. A claim that started without one
	// resolves committed from its first record (begin) while sarama still holds none.
	stored bool
	// A run of dead-lettered offsets right after pushedNext: the pipeline never sees them, so
	// a commit of runStart (everything pushed is done) may go on to runEnd.
	runActive        bool
	runStart, runEnd int64
}

// newMarks returns the marks of a claim that starts at offset start; -1 means unknown, to be
// resolved from the first record (begin).
func newMarks(start int64) marks {
	return marks{pushedNext: start, committed: start, stored: start >= 0}
}

// begin resolves an unknown start to off, the first record's offset.
func (m *marks) begin(off int64) {
	if m.pushedNext < 0 {
		m.pushedNext, m.committed = off, off
	}
}

// pushed records that the records before next are in the input; it ends a dead-letter run.
func (m *marks) pushed(next int64) {
	m.pushedNext = next
	m.runActive = false
}

// skipped records that off was dead-lettered: it joins the run after the last pushed record.
// If the pipeline already committed everything pushed, the run is committed right away:
// markAdvance, with the checkpoint committed last.
func (m *marks) skipped(off int64) markOp {
	if !m.runActive {
		m.runActive, m.runStart = true, m.pushedNext
	}
	m.runEnd = off + 1
	if m.committed >= m.runStart && m.runEnd > m.committed {
		m.committed, m.stored = m.runEnd, true
		return markAdvance
	}
	return markNone
}

// mark records off (the pipeline's next offset) and the pipeline's checkpoint for commit,
// the offset extended over a run of dead-lettered offsets that follows it. A new checkpoint
// at the same offset is marked too: it moves an operator's replay start. An offset below the
// committed one (an acknowledgement overtaken by a dead-letter run) marks nothing.
//
// Dropping that one loses no record and never moves the commit back (helper-124's review).
// The committed offset only ever grows, and it passes nothing but offsets the pipeline
// acknowledged and dead-lettered offsets (skipped, a run right after everything pushed and
// acknowledged, or this one's extension, which needs off to be the run's start). So an
// acknowledgement below it can only be one at the run's start that came after a push ended
// the run (the pipeline never sees the run's offsets, so its positions skip them), or
// one older than the claim's start. Either way the pair committed instead is the
// pipeline's own earlier acknowledged position and checkpoint, moved over dead letters
// only: a checkpoint is older, never newer, than the one dropped, so a replay from it starts
// each operator no later than the dropped one would. It replays more, as after a crash
// before the commit; the next acknowledgement past the run marks the new checkpoint.
//
// The claim's first offset, when the group had none, is marked with markAdvance: sarama holds
// -1 then, and its ResetOffset moves only down to an offset, so a reset to the first offset
// was dropped without a word. That commit is the whole of a bounded run's that holds every
// window open (its checkpoint, with the operators' parameters and the run's end), and a
// restart then found nothing to check against (helper-75).
func (m *marks) mark(off int64, meta string) markOp {
	if m.runActive && off == m.runStart {
		off = m.runEnd
	}
	var op markOp
	switch {
	case off > m.committed:
		op = markAdvance
	case off == m.committed && !m.stored:
		op = markAdvance
	case off == m.committed && meta != m.meta:
		op = markReset
	default:
		return markNone
	}
	m.committed, m.meta, m.stored = off, meta, true
	return op
}
