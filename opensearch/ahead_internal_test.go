package opensearch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNextDay: the next day's name of an index named as DailyIndex names it, across a month's
// and a year's end; names without that suffix have none.
func TestNextDay(t *testing.T) {
	for index, want := range map[string]string{
		"cab-stats-2026.11.25": "cab-stats-2026.11.26",
		"cab-stats-2026.11.30": "cab-stats-2026.12.01",
		"a-2026.12.31":         "a-2027.01.01",
		"x-2028.02.28":         "x-2028.02.29",
	} {
		next, from, ok := nextDay(index)
		require.True(t, ok, index)
		require.Equal(t, want, next, index)
		require.Equal(t, next[len(next)-10:], from.Format("2006.01.02"))
		require.Equal(t, time.UTC, from.Location())
		require.Zero(t, from.Hour()+from.Minute()+from.Second()+from.Nanosecond())
	}
	for _, index := range []string{"cab-stats", "2026.11.25", "-2026.11.25", "cab-stats-2026.11.5", "cab-stats-2026.13.01", "cab-stats_2026.11.25", ""} {
		_, _, ok := nextDay(index)
		require.False(t, ok, index)
	}
}

// TestAutoCreates: action.auto_create_index read as OpenSearch reads it (checked against
// the testenv node's bulk answers for "+a*, -b*,c*": cq created, bq forbidden by -b*, dq
// matching nothing forbidden).
func TestAutoCreates(t *testing.T) {
	for _, tc := range []struct {
		setting, index string
		want           bool
	}{
		{"true", "any", true},
		{" false ", "any", false},
		{"+a*, -b*,c*", "aq", true},
		{"+a*, -b*,c*", "bq", false},
		{"+a*, -b*,c*", "cq", true},
		{"+a*, -b*,c*", "dq", false},
		{"-nocreate-*,+*", "nocreate-x-2026.11.26", false},
		{"-nocreate-*,+*", "cab-stats-2026.11.26", true},
		{"+*-2026.*.26", "cab-stats-2026.11.26", true},
		{"+*-2026.*.26", "cab-stats-2026.11.25", false},
		{"cab-stats-2026.11.26", "cab-stats-2026.11.26", true},
		{"-cab-*,+cab-stats-*", "cab-stats-2026.11.26", false},
	} {
		require.Equal(t, tc.want, autoCreates(tc.setting, tc.index), "%q %q", tc.setting, tc.index)
	}
}
