package kafka

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

func TestNoteStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		pos  stream.Position
		ok   bool
		want startNote
	}{
		{"no commit", stream.Position{}, false, startNote{-1, commitNone}},
		{"offset -1", stream.Position{Offset: -1}, true, startNote{-1, commitNone}},
		{"reset from outside", stream.Position{Offset: 20000}, true, startNote{20000, commitBare}},
		{"checkpoint", stream.Position{Offset: 7, Meta: "fs4/3/1abc/2=1k9x/30xz81q/"}, true, startNote{7, commitCheckpoint}},
		{"bounded end", stream.Position{Offset: 9, Meta: withEnded("", 9)}, true, startNote{9, commitCheckpoint}},
		{"repartition marks", stream.Position{Offset: 3, Meta: "|w1;0=5"}, true, startNote{3, commitCheckpoint}},
		{"another consumer's", stream.Position{Offset: 5, Meta: "consumer-42 at 2026-12-07"}, true, startNote{5, commitForeign}},
		{"fs without version", stream.Position{Offset: 5, Meta: "fsx/"}, true, startNote{5, commitForeign}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, noteStart(tc.pos, tc.ok))
		})
	}
}
