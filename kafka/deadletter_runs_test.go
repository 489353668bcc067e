package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// checkedDeadLetters is a dead-letter output that writes to a real DeadLetterSink and, before
// each write, reads the group's committed offsets: none may have passed the first dead letter
// of the write, which is not acknowledged yet. Its third write fails before writing and its
// fifth after writing (the dead letters are in the topic, but the caller hears of a failure):
// neither may let a commit pass them, and the retry writes them again (at least once).
type checkedDeadLetters struct {
	d     *kafka.DeadLetterSink
	admin sarama.ClusterAdmin
	group string
	topic string

	mu         sync.Mutex
	writes     int
	checked    int      // writes whose partition had a commit past its start when checked
	violations []string // commits found past an unacknowledged dead letter
	acked      map[string]int
}

var errInjected = errors.New("test: dead-letter output fails")

func (c *checkedDeadLetters) Write(ctx context.Context, batch []stream.DeadLetter) error {
	if len(batch) == 0 {
		return nil
	}
	c.mu.Lock()
	c.writes++
	n := c.writes
	c.mu.Unlock()
	part := batch[0].Partition
	first := batch[0].Offset
	resp, err := c.admin.ListConsumerGroupOffsets(c.group, map[string][]int32{c.topic: {part}})
	if err != nil {
		return err // retried: the check is never skipped
	}
	committed := int64(-1)
	if b := resp.GetBlock(c.topic, part); b != nil {
		committed = b.Offset
	}
	c.mu.Lock()
	if committed > first {
		c.violations = append(c.violations, fmt.Sprintf("partition %d committed at %d before the dead letter at %d was acknowledged", part, committed, first))
	}
	if committed > 0 {
		c.checked++
	}
	c.mu.Unlock()
	if n == 3 {
		return errInjected
	}
	if err := c.d.Write(ctx, batch); err != nil {
		return err
	}
	if n == 5 {
		return errInjected
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, dl := range batch {
		c.acked[fmt.Sprintf("%d/%d", dl.Partition, dl.Offset)]++
	}
	return nil
}

// TestSourceDeadLetterRuns: long runs of undecodable records (a producer that ships a bad
// schema) between good ones, in every partition, are all dead-lettered, at least once, each
// offset committed only after its dead letter was acknowledged, and the good records all
// reach the output exactly once. 45,000 bad records must take well under waitFor: at one
// commit per dead letter (about 3 ms each) the Source wrote about 330 a second, over two
// minutes for these.
func TestSourceDeadLetterRuns(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts = 3
	topic := newTopic(t, brokers, "dlqruns", parts)
	createTopic(t, brokers, topic+".dlq", 1)

	// Per partition: good, one bad, good, a long bad run, good, and a bad run at the end, whose
	// offsets are committed only through the dead letters.
	layout := []struct {
		good bool
		n    int
	}{{true, 100}, {false, 1}, {true, 100}, {false, 12_000}, {true, 100}, {false, 3_000}}
	var msgs []*sarama.ProducerMessage
	wantBad := map[string]string{} // "partition/offset" -> value
	id := 0
	for p := range int32(parts) {
		var off int64
		for _, l := range layout {
			for range l.n {
				if l.good {
					m := eventMsg(topic, mkEvent(id))
					m.Partition = p
					msgs = append(msgs, m)
					id++
				} else {
					v := "bad-" + strconv.Itoa(len(wantBad))
					wantBad[fmt.Sprintf("%d/%d", p, off)] = v
					msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder(v)})
				}
				off++
			}
		}
	}
	nGood := id
	produce(t, brokers, msgs)

	group := testenv.UniqueName(t, "g-dlqruns")
	cfg := consumerConfig(brokers, group, topic)
	d, err := kafka.NewDeadLetterSink(cfg, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	sink := &checkedDeadLetters{d: d, admin: newAdmin(t, brokers), group: group, topic: topic, acked: map[string]int{}}
	ids := newIDSet()
	start := time.Now()
	r := startPipeline(t, pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithBounded(), kafka.WithDeadLetters(sink)}, ids: ids})
	require.NoError(t, r.wait(t))
	t.Logf("%d dead letters in %v (%d writes)", len(wantBad), time.Since(start), sink.writes)

	require.Equal(t, nGood, ids.distinct(), "missing good records, e.g. %v", ids.missing(nGood))
	require.Equal(t, nGood, ids.total, "good records exactly once")
	require.Empty(t, sink.violations)
	require.Positive(t, sink.checked, "some write found a commit to check against")
	require.Empty(t, notIn(wantBad, sink.acked), "bad records whose dead letter was never acknowledged (first ten)")
	require.Equal(t, int64(len(wantBad)), r.src.DeadLettered())
	requireCommittedAtEnd(t, brokers, group, topic, parts)

	// The topic holds every dead letter, with its value and origin; the fifth write's are
	// there twice.
	written := d.Written()
	require.Greater(t, written, int64(len(wantBad)), "the write that failed after writing is written again")
	seen := map[string]int{}
	for _, m := range deadLetters(t, brokers, topic+".dlq", int(written)) {
		h := headers(m)
		where := h[kafka.HeaderSourcePartition] + "/" + h[kafka.HeaderSourceOffset]
		want, ok := wantBad[where]
		require.True(t, ok, "unexpected dead letter from %s", where)
		require.Equal(t, want, string(m.Value))
		require.Equal(t, topic, h[kafka.HeaderSourceTopic])
		seen[where]++
	}
	require.Empty(t, notIn(wantBad, seen), "bad records missing from the dead-letter topic (first ten)")
}

// notIn returns up to ten keys of want that got lacks.
func notIn(want map[string]string, got map[string]int) []string {
	var out []string
	for k := range want {
		if got[k] == 0 && len(out) < 10 {
			out = append(out, k)
		}
	}
	return out
}
