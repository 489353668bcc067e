// The summary's record counts are reads, and say so: after a Kafka outage the job read
// 309,492 records of a 247,304-record topic, and the line read as the topic's size.
// Offline: fake source stats.

package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// fakeSource is a source's stats, as the summary reads them.
type fakeSource stream.SourceStats

func (f fakeSource) Stats() stream.SourceStats { return stream.SourceStats(f) }

func TestSummarySaysRecordsAreReads(t *testing.T) {
	var cnt counters
	cnt.late.Add(7)
	var out bytes.Buffer
	printSummary(&out, 2*time.Minute, &cnt, fakeSource{Records: 309492, DeadLetters: 4}, nil)
	line := out.String()
	require.Contains(t, line, "fleetpipeline: consumed 309492 records (2579 rec/s over 2m0s; "+readsAgain+"), 4 dead letters")
	require.Contains(t, readsAgain, "read again")
	// What bench/e2e.sh and the tests read of it.
	records, dead, late := summary(t, line)
	require.Equal(t, [3]int64{309492, 4, 7}, [3]int64{records, dead, late})

	out.Reset()
	printRequestsSummary(&out, fakeSource{Records: 5120, DeadLetters: 2})
	require.Contains(t, out.String(), "ride requests: consumed 5120 records, 2 dead letters ("+readsAgain+")")
	records, dead = requestsSummary(t, out.String())
	require.Equal(t, [2]int64{5120, 2}, [2]int64{records, dead})
}
