package kafka_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// assignedLines returns the Source's "partition assigned" lines of a JSON log, by partition.
func assignedLines(log string) map[int]map[string]any {
	out := make(map[int]map[string]any)
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) != nil || l["msg"] != "kafka: partition assigned" || l["level"] != "INFO" {
			continue
		}
		if p, ok := l["partition"].(float64); ok {
			out[int(p)] = l
		}
	}
	return out
}

// TestSourceLogsWhereEachPartitionStarts: each claimed partition's start is logged at Info
// with what the group had committed: nothing, an offset set from outside without a
// checkpoint (as kafka-consumer-groups --reset-offsets leaves it), or fleetstream's checkpoint.
func TestSourceLogsWhereEachPartitionStarts(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const parts, n = 2, 200
	topic := newTopic(t, brokers, "starts", parts)
	produceEvents(t, brokers, topic, parts, 0, n)
	group := testenv.UniqueName(t, "g-starts")
	ends := endOffsets(t, brokers, topic)
	reset := ends[0] / 2
	commitOffset(t, brokers, group, topic, 0, reset) // no metadata: an offset reset from outside

	run := func() (*running, *syncbuf.Buffer) {
		var logbuf syncbuf.Buffer
		lg := slog.New(slog.NewJSONHandler(&logbuf, nil))
		r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: newIDSet(), results: newResults(), params: "tumbling(test)",
			opts: []kafka.SourceOption{kafka.WithLogger(lg)}, popts: []stream.Option{stream.WithLogger(lg)}})
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the Source's log:\n%s", logbuf.String())
			}
		})
		require.Eventually(t, func() bool { return len(assignedLines(logbuf.String())) == parts }, waitFor, 20*time.Millisecond,
			"not every partition's start logged")
		return r, &logbuf
	}

	r, logbuf := run()
	lines := assignedLines(logbuf.String())
	require.Equal(t, "bare", lines[0]["commit"], "partition 0: %v", lines[0])
	require.EqualValues(t, reset, lines[0]["committed"], "partition 0: %v", lines[0])
	require.EqualValues(t, reset, lines[0]["offset"], "partition 0: %v", lines[0])
	require.Contains(t, lines[0]["note"], "reset-offsets")
	require.Equal(t, "none", lines[1]["commit"], "partition 1: %v", lines[1])
	require.Equal(t, "oldest", lines[1]["offset"], "partition 1: %v", lines[1])

	// Once the pipeline (a window with parameters) committed a checkpoint for both partitions, a
	// restart logs where it resumes, from the checkpoint.
	require.Eventually(t, func() bool {
		for _, b := range committedBlocks(t, brokers, group, topic, parts) {
			if b.Offset < 0 || !strings.HasPrefix(b.Metadata, "fs") {
				return false
			}
		}
		return true
	}, waitFor, 50*time.Millisecond, "no checkpoint committed")
	require.ErrorIs(t, r.stop(t), context.Canceled)
	committed := committedOffsets(t, brokers, group, topic, parts)

	_, logbuf = run()
	lines = assignedLines(logbuf.String())
	for p := range parts {
		require.Equal(t, "checkpoint", lines[p]["commit"], "partition %d: %v", p, lines[p])
		require.EqualValues(t, committed[int32(p)], lines[p]["committed"], "partition %d: %v", p, lines[p])
		require.EqualValues(t, committed[int32(p)], lines[p]["offset"], "partition %d: %v", p, lines[p])
		require.NotContains(t, lines[p], "note")
	}
}
