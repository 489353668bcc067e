package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestOutputTimes: -v's per-output times sum outputs of one name, keep their first order,
// and leave out those that wrote nothing in under a millisecond.
func TestOutputTimes(t *testing.T) {
	got := outputTimes([]stream.OutputStats{
		{Output: "dead letters (t.dlq)", Values: 2, Time: 3 * time.Millisecond},
		{Output: "cab-stats", Values: 850, Time: 31240 * time.Microsecond},
		{Output: "dead letters (t.dlq)", Values: 0, Time: 200 * time.Microsecond},
		{Output: "alerts count", Values: 0, Time: 10 * time.Microsecond},
		{Output: "zone-demand", Values: 0, Time: 2 * time.Millisecond},
	})
	require.Equal(t, "dead letters (t.dlq)=3.2ms/2 cab-stats=31.2ms/850 zone-demand=2ms/0", got)
	require.Empty(t, outputTimes(nil))
}
