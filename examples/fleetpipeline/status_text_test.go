// The status line names what holds the job (a batch being retried, a source that cannot
// reach Kafka, a sink that fails or waits for an answer), with how long, and its lag is the
// read lag. Offline: fake stats, no services.

package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

func TestStatusText(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 30, 0, 0, time.UTC)
	batch := &stream.BatchStats{Source: stream.SourceStats{Records: 1200, DeadLetters: 3, Lag: map[string]int64{"rides/0": 900}}}
	// The open windows' records: a commit lag of 900, a read lag of 5.
	reading := stream.SourceStats{
		Lag:  map[string]int64{"rides/0": 500, "rides/1": 400},
		Read: map[string]int64{"rides/0": 1000, "rides/1": 2000},
		End:  map[string]int64{"rides/0": 1002, "rides/1": 2003},
	}
	src := func(name string, s stream.SourceStats) namedSource {
		return namedSource{name, func() stream.SourceStats { return s }}
	}
	sink := func(name string, s opensearch.Stats) namedSink {
		return namedSink{name, func() opensearch.Stats { return s }}
	}
	unreachable := reading
	unreachable.FailingSince, unreachable.LastError = now.Add(-45*time.Second), "kafka: dial tcp 10.0.0.7:9092: connect: connection refused"
	long := "opensearch: bulk: " + strings.Repeat("x", 300) + "\nsecond line"
	tests := []struct {
		name  string
		batch *stream.BatchStats
		h     holders
		want  []string // in the line
		not   []string // not in it
	}{
		{
			name:  "running",
			batch: batch,
			h:     holders{sources: []namedSource{src("telemetry", reading)}, sinks: []namedSink{sink("cab-stats", opensearch.Stats{})}},
			want:  []string{"fleetpipeline: 12 rec/s  total 1200  read lag 5  watermark -", "dead letters 3"},
			not:   []string{"held:", "commit lag"},
		},
		{
			name:  "commit lag of a source without read offsets",
			batch: batch,
			h:     holders{sources: []namedSource{src("telemetry", stream.SourceStats{Lag: reading.Lag})}},
			want:  []string{"  commit lag 900  "},
			not:   []string{"read lag"},
		},
		{
			name:  "read lag over the sources",
			batch: batch,
			h: holders{sources: []namedSource{src("telemetry", reading),
				src("ride requests", stream.SourceStats{Read: map[string]int64{"req/0": 10}, End: map[string]int64{"req/0": 17}})}},
			want: []string{"  read lag 12  "},
		},
		{
			name:  "batch retried",
			batch: batch,
			h: holders{
				retrying: func() (stream.RetryInfo, bool) {
					return stream.RetryInfo{Batch: 41, Attempt: 6, Since: now.Add(-90 * time.Second), Err: errors.New("opensearch: bulk: 503 Service Unavailable")}, true
				},
				sources: []namedSource{src("telemetry", reading)},
			},
			want: []string{"  held: batch 41 retried for 1m30s (attempt 6 failed: opensearch: bulk: 503 Service Unavailable)"},
		},
		{
			name:  "Kafka unreachable",
			batch: batch,
			h:     holders{sources: []namedSource{src("telemetry", unreachable), src("ride requests", reading)}},
			want:  []string{"  held: source telemetry: Kafka unreachable for 45s (kafka: dial tcp 10.0.0.7:9092: connect: connection refused)"},
			not:   []string{"ride requests"},
		},
		{
			name: "write block before the first batch",
			h: holders{sinks: []namedSink{sink("cab-stats", opensearch.Stats{
				FailingSince: now.Add(-2 * time.Minute), FailedAttempts: 14,
				LastError: "cluster_block_exception: index [cab-stats-2026.12.07] blocked by: [FORBIDDEN/8/index write (api)]",
			})}},
			want: []string{"fleetpipeline: waiting for the first batch  held: sink cab-stats: failing for 2m0s, 14 attempts (cluster_block_exception: index [cab-stats-2026.12.07] blocked by: [FORBIDDEN/8/index write (api)])"},
			not:  []string{"rec/s"},
		},
		{
			name:  "no answer",
			batch: batch,
			h: holders{sinks: []namedSink{sink("cab-stats", opensearch.Stats{}),
				sink("zone-demand", opensearch.Stats{SlowSince: now.Add(-23 * time.Second)})}},
			want: []string{"  held: sink zone-demand: no answer from OpenSearch for 23s"},
			not:  []string{"cab-stats"},
		},
		{
			name: "everything at once, long errors cut",
			h: holders{
				retrying: func() (stream.RetryInfo, bool) {
					return stream.RetryInfo{Batch: 2, Attempt: 1, Since: now.Add(-time.Second), Err: errors.New(long)}, true
				},
				sources: []namedSource{src("telemetry", unreachable)},
				sinks:   []namedSink{sink("cab-stats", opensearch.Stats{SlowSince: now.Add(-12 * time.Second)})},
			},
			want: []string{
				"held: batch 2 retried for 1s (attempt 1 failed: opensearch: bulk: xxx",
				"xx…); source telemetry: Kafka unreachable for 45s (",
				"; sink cab-stats: no answer from OpenSearch for 12s",
			},
			not: []string{"second line", strings.Repeat("x", maxReason)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cnt counters
			line := statusText(now, 12, tt.batch, &cnt, tt.h)
			for _, w := range tt.want {
				require.Contains(t, line, w)
			}
			for _, n := range tt.not {
				require.NotContains(t, line, n)
			}
			require.Regexp(t, statusLine, line, "the line stop_test.go's statusLine matches")
			require.NotContains(t, line, "\n")
		})
	}
}

func TestShortReason(t *testing.T) {
	require.Equal(t, "refused", short("refused\nat line 2"))
	r := []rune(short(strings.Repeat("é", 2*maxReason)))
	require.Len(t, r, maxReason)
	require.Equal(t, '…', r[len(r)-1])
	ok := strings.Repeat("a", maxReason)
	require.Equal(t, ok, short(ok))
}
