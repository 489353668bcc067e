package stream

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDuplicatesSurviveRevocation: BatchStats.Duplicates counts the replayed records the
// repartitions dropped since the pipeline started, a cumulative count (metrics/prom exports
// its increase as fleetstream_repartition_duplicates_total). It was the sum over the
// downstream partitions held now, so a revocation took its partition's drops out of it: the
// count went down, which prom reads as a restart from zero and counts the rest again.
func TestDuplicatesSurviveRevocation(t *testing.T) {
	sh := &shuffle[int]{parts: map[int32]*downPart{}, sent: map[int32]sentMark{}, last: map[int32]int64{}}
	sh.parts[1] = &downPart{dups: 3}
	sh.parts[2] = &downPart{dups: 4}
	require.EqualValues(t, 7, sh.duplicates())
	sh.drop(1)
	require.EqualValues(t, 7, sh.duplicates(), "a revoked partition's drops still count")
	sh.down(1).dups++ // assigned back: its replay dropped once more
	require.EqualValues(t, 8, sh.duplicates())
	sh.drop(1)
	sh.drop(1) // revoked twice: counted once
	sh.drop(2)
	require.EqualValues(t, 8, sh.duplicates())
}
