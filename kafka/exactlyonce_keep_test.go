package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestExactlyOnceUnmovedCheckpointsKept: a transaction with messages commits the offsets of
// every owned partition, the unmoved ones again (the group-generation fence); those must go
// with the checkpoint their partition was resumed with. A restarted run whose new records
// all land in partition 0 used to commit partitions 1 and 2 with no checkpoint, so the run
// after it started their operators cold (CI: cab-stats of a crashed run differed).
func TestExactlyOnceUnmovedCheckpointsKept(t *testing.T) {
	t.Parallel()
	const n, parts = 600, 3
	brokers, topic, alerts := eosTopics(t, "eos-keep", n, parts)
	group := topic + "-g"
	// A second stateful operator, which retains less than repeats, so that the checkpoint
	// has each operator's replay start.
	last := func(events *stream.Stream[event]) {
		stream.To(stream.Apply(events, "last", stream.Operator[event, event](&lastOffset{parts: map[int32]int64{}})),
			stream.SinkFunc[event](func(context.Context, []event) error { return nil }))
	}
	// pushedAll waits until every partition's commit says it pushed all of the topic.
	pushedAll := func() {
		ends := endOffsets(t, brokers, topic)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			for p, m := range committedMeta(t, brokers, group, topic, parts) {
				assert.Contains(c, m, "~eos~"+strconv.FormatInt(ends[p], 10)+";", "partition %d: not all pushed", p)
			}
		}, waitFor, 100*time.Millisecond, "commits never reached the end")
	}
	stop := func(r *eosRun) {
		r.cancel()
		err := <-r.done
		r.done <- err // for the cleanup
		require.ErrorIs(t, err, context.Canceled)
	}
	// The committed metadata is read once the run stopped: while it runs, a commit that
	// pushed everything may still precede the checkpoint of the batches after it.
	first := startEOSWith(t, brokers, group, topic, alerts, 0, last)
	pushedAll()
	stop(first)
	before := committedMeta(t, brokers, group, topic, parts)
	for p, m := range before {
		require.NotEmpty(t, checkpointOf(m), "partition %d: no checkpoint after the first run: %q", p, m)
	}

	second := startEOSWith(t, brokers, group, topic, alerts, 0, last)
	var msgs []*sarama.ProducerMessage
	for i := n; len(msgs) < 200; i++ {
		e := mkEvent(i)
		if partitionOf(e.Key, parts) != 0 {
			continue
		}
		b, err := json.Marshal(e)
		require.NoError(t, err)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Key: sarama.StringEncoder(e.Key), Value: sarama.ByteEncoder(b)})
	}
	produce(t, brokers, msgs)
	pushedAll()
	stop(second)
	after := committedMeta(t, brokers, group, topic, parts)
	// The second run committed alerts of the new records: transactions with messages, which
	// commit every owned partition's offset (the fence), so partitions 1 and 2 were sent again.
	newAlerts := 0
	for _, a := range readCommitted(t, brokers, alerts, parts) {
		var id int
		if _, err := fmt.Sscanf(a[strings.IndexByte(a, '/')+1:], "%d", &id); err == nil && id >= n {
			newAlerts++
		}
	}
	require.Positive(t, newAlerts, "the second run committed no alert: nothing tested")
	require.NotEqual(t, before[0], after[0], "partition 0 did not move")
	for p := int32(1); p < parts; p++ {
		require.Equal(t, checkpointOf(before[p]), checkpointOf(after[p]), "partition %d: its checkpoint after a run that did not move it (metadata %q)", p, after[p])
	}
}

// lastOffset retains each partition's last record (its replay starts there) and emits
// nothing.
type lastOffset struct{ parts map[int32]int64 }

func (l *lastOffset) Process(pc *stream.PartitionContext, in []stream.Elem[event], out []stream.Elem[event]) []stream.Elem[event] {
	if len(in) > 0 {
		l.parts[pc.Partition] = in[len(in)-1].Offset
	}
	return out
}

func (l *lastOffset) Retained(part int32) (int64, bool) {
	off, ok := l.parts[part]
	return off, ok
}

func (l *lastOffset) Drop(part int32) { delete(l.parts, part) }

func (l *lastOffset) StateSize() int { return len(l.parts) }

// committedMeta returns the group's committed offset metadata of every partition of topic.
func committedMeta(t *testing.T, brokers []string, group, topic string, parts int) map[int32]string {
	t.Helper()
	out := make(map[int32]string)
	for p, b := range committedBlocks(t, brokers, group, topic, parts) {
		out[p] = b.Metadata
	}
	return out
}

// checkpointOf is the pipeline checkpoint of committed metadata: what precedes the
// exactly-once read-back bound.
func checkpointOf(meta string) string {
	cp, _, _ := strings.Cut(meta, "~eos~")
	return cp
}
