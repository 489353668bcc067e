// Where a claimed partition starts, and from what: logged at Info when the claim starts, so
// that an operator sees where a run began. An offset that another consumer of the group set
// (kafka-consumer-groups --reset-offsets) is committed without fleetstream's checkpoint; a
// job restarted on it skipped or replayed records silently (an operator's probe: a group
// reset to offset 20000, 120,000 records skipped, exit 0).

package kafka

import (
	"strings"

	"github.com/IBM/sarama"
	"github.com/fleetstream/fleetstream/stream"
)

// What a partition's committed offset carried (startNote.commit), as logged.
const (
	commitNone       = "none"       // no committed offset: the start is Config.InitialOffset's
	commitCheckpoint = "checkpoint" // fleetstream's: a pipeline checkpoint or its markers
	commitBare       = "bare"       // an offset without metadata (see startNote)
	commitForeign    = "foreign"    // metadata that fleetstream did not write
)

// startNote is what the group had committed for a partition when it was handed to the
// pipeline (handler.register), for the log line of its claim's start (Source.own).
type startNote struct {
	committed int64 // -1: none
	commit    string
}

// noteStart classifies a partition's committed position (ok: the group has one). A bare
// offset is what a pipeline without stateful operators commits, and what startAtEnds commits
// for a new group (InitialOffset newest), but also what an offset reset from outside leaves.
func noteStart(c stream.Position, ok bool) startNote {
	switch {
	case !ok || c.Offset < 0:
		return startNote{committed: -1, commit: commitNone}
	case c.Meta == "":
		return startNote{committed: c.Offset, commit: commitBare}
	case ours(c.Meta):
		return startNote{committed: c.Offset, commit: commitCheckpoint}
	}
	return startNote{committed: c.Offset, commit: commitForeign}
}

// ours reports whether stored offset metadata is fleetstream's: a pipeline checkpoint
// ("fs<version>/..."), a repartition's marks (after "|"), or the Source's own markers (a
// bounded run's end, exactly once's read-back bound).
func ours(stored string) bool {
	if end, _ := cutEnded(stored); end >= 0 {
		return true
	}
	if _, b := splitBound(stored); b.pushed >= 0 || b.out != nil {
		return true
	}
	if strings.Contains(stored, "|") {
		return true // a repartition's marks
	}
	return len(stored) > 3 && stored[0] == 'f' && stored[1] == 's' && stored[2] >= '0' && stored[2] <= '9'
}

// logStart logs, at Info, where the claim of p starts and what the group had committed for it.
func (s *Source[T]) logStart(p *partition, initial int64, note startNote, ok bool) {
	attrs := []any{"topic", p.topic, "partition", p.part}
	switch initial {
	case sarama.OffsetOldest:
		attrs = append(attrs, "offset", "oldest")
	case sarama.OffsetNewest:
		attrs = append(attrs, "offset", "newest")
	default:
		attrs = append(attrs, "offset", initial)
	}
	if !ok {
		s.log.Info("kafka: partition assigned", attrs...)
		return
	}
	attrs = append(attrs, "committed", note.committed, "commit", note.commit)
	switch note.commit {
	case commitBare:
		attrs = append(attrs, "note", "committed without fleetstream's checkpoint: a pipeline without state, a new group's start (InitialOffset newest), or an offset set from outside (kafka-consumer-groups --reset-offsets, another consumer of the group)")
	case commitForeign:
		attrs = append(attrs, "note", "committed with metadata that fleetstream did not write: another consumer of the group set it")
	}
	s.log.Info("kafka: partition assigned", attrs...)
}
