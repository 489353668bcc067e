package kafka_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
	"github.com/fleetstream/fleetstream/window"
)

// TestSourceReadsAddedPartitions: partitions added to a topic while a Source reads it are
// read, from their start, before WithEndWhenCaughtUp ends the input. Records flow into the
// two first partitions until the topic has two more partitions and records in all four (so
// the input cannot end meanwhile, however long adding them takes), then the producer stops.
// Until the group's leader saw the new partitions (Config.MetadataRefresh) and a rebalance
// assigned them, the caught-up check must not end the input, although the topic is idle:
// before, the input ended with the new partitions unread, and an exit-when-idle run exited 0
// without them.
func TestSourceReadsAddedPartitions(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	// Ids: the first records [0, per), the last ones, written to all four partitions,
	// [per, 5*per), and the records that flow meanwhile from 5*per on.
	const per = 40
	topic := newTopic(t, brokers, "grow", 2)
	produceEvents(t, brokers, topic, 2, 0, per)
	cfg := consumerConfig(brokers, testenv.UniqueName(t, "g-grow"), topic)
	cfg.MetadataRefresh = 2 * time.Second
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: cfg, ids: ids,
		opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond)}})

	prod, err := sarama.NewSyncProducer(brokers, saramaConfig())
	require.NoError(t, err)
	defer func() { require.NoError(t, prod.Close()) }()
	next := 5 * per // the flow's next id; the flow's goroutine owns it until flowed
	stop, flowed := make(chan struct{}), make(chan error, 1)
	go func() {
		// The producer's pace is the scenario under test (arrivals 200 ms apart), not a
		// synchronisation.
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				flowed <- nil
				return
			case <-tick.C:
			}
			msgs, err := eventMessages(topic, 2, next, next+per)
			if err == nil {
				err = prod.SendMessages(msgs)
			}
			if err != nil {
				flowed <- err
				return
			}
			next += per
		}
	}()
	stopFlow := sync.OnceValue(func() error { close(stop); return <-flowed })
	defer stopFlow() // before the producer closes, also when the test fails
	// The partitions are added once the Source reads, so that a rebalance must assign them.
	require.Eventually(t, func() bool { return ids.distinct() >= per }, waitFor, 20*time.Millisecond, "the Source read nothing")
	require.NoError(t, newAdmin(t, brokers).CreatePartitions(topic, 4, nil, false))
	waitPartitions(t, brokers, topic, 4)
	produceEvents(t, brokers, topic, 4, per, 5*per)
	require.NoError(t, stopFlow())
	require.NoError(t, r.wait(t))
	require.Empty(t, ids.missing(next), "records not read before the input ended")
	require.Equal(t, next, ids.distinct())
}

// produceTo writes events from..to-1 to one partition.
func produceTo(t testing.TB, brokers []string, topic string, part int32, from, to int) {
	t.Helper()
	msgs := make([]*sarama.ProducerMessage, 0, to-from)
	for i := from; i < to; i++ {
		b, err := json.Marshal(mkEvent(i))
		require.NoError(t, err)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Key: sarama.StringEncoder(keyOf(i)), Value: sarama.ByteEncoder(b)})
	}
	produce(t, brokers, msgs)
}

// TestSourceNewestReadsAddedPartitions: with InitialOffset OffsetNewest, the partitions a
// group finds when it first reads a topic start at their ends, and every partition added
// later starts at its start, whether it was added while the job ran or while it was stopped.
// A partition that got no records before a restart resumes where the first start put it.
// Before, sarama's newest applied to every partition without a commit: the records written
// to a partition added while the job ran, before the rebalance that assigned it, were
// skipped; so were those of a partition added while the job was stopped, and those written
// to a partition that had had nothing to commit before the restart.
func TestSourceNewestReadsAddedPartitions(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const per = 40
	topic := newTopic(t, brokers, "newest", 2)
	produceTo(t, brokers, topic, 0, 0, per)     // before the first start: skipped
	produceTo(t, brokers, topic, 1, per, 2*per) // likewise
	group := testenv.UniqueName(t, "g-newest")
	cfg := consumerConfig(brokers, group, topic)
	cfg.InitialOffset = kafka.OffsetNewest
	cfg.MetadataRefresh = 2 * time.Second
	// A run ends once caught up and idle for a second (an option per run: it is the state
	// its pipeline's inputs share).
	idle := func() []kafka.SourceOption { return []kafka.SourceOption{kafka.WithEndWhenCaughtUp(time.Second)} }

	// Run 1: the ends are committed before the group is joined, so the records written once
	// the partitions are claimed count, in partition 0 and in two partitions added while the
	// job runs.
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: cfg, ids: ids, opts: idle()})
	require.Eventually(t, func() bool { return r.owned() == 2 }, waitFor, 20*time.Millisecond, "the partitions were never claimed")
	produceTo(t, brokers, topic, 0, 2*per, 3*per)
	require.NoError(t, newAdmin(t, brokers).CreatePartitions(topic, 4, nil, false))
	waitPartitions(t, brokers, topic, 4)
	produceTo(t, brokers, topic, 2, 3*per, 4*per)
	produceTo(t, brokers, topic, 3, 4*per, 5*per)
	require.NoError(t, r.wait(t))
	require.Empty(t, ids.missingFrom(2*per, 5*per), "records written after the start, or to added partitions, not read")
	require.Equal(t, 3*per, ids.distinct(), "records from before the first start read")
	require.Equal(t, map[int32]int64{0: 2 * per, 1: per, 2: per, 3: per}, committedOffsets(t, brokers, group, topic, 4),
		"partition 1, with no records read, keeps the end committed at the first start")

	// While the job is stopped: a fifth partition, and records in it and in partition 1,
	// which had none to commit in run 1.
	require.NoError(t, newAdmin(t, brokers).CreatePartitions(topic, 5, nil, false))
	waitPartitions(t, brokers, topic, 5)
	produceTo(t, brokers, topic, 4, 5*per, 6*per)
	produceTo(t, brokers, topic, 1, 6*per, 7*per)
	ids2 := newIDSet()
	r2 := startPipeline(t, pipelineSpec{cfg: cfg, ids: ids2, opts: idle()})
	require.NoError(t, r2.wait(t))
	require.Empty(t, ids2.missingFrom(5*per, 7*per), "records of a partition added while stopped, or of one idle in run 1, not read")
	require.Equal(t, 2*per, ids2.distinct(), "records read again or from before the first start")
}

// TestSourceNewestJoinsAnActiveGroup: InitialOffset newest in a group that already has a
// member but no committed offset (a member that had nothing to commit yet, or one of a release
// that did not commit the ends). The broker refuses the commit of the ends while the group has
// members, and the Source must leave the positions to them and join: it runs without an error,
// says so in its log, and the two members read every record written after both claimed their
// partition.
func TestSourceNewestJoinsAnActiveGroup(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const per = 40
	topic := newTopic(t, brokers, "newest-active", 2)
	group := testenv.UniqueName(t, "g-newest-active")
	cfg := consumerConfig(brokers, group, topic)
	// Member a reads from the start (the default); the topic is empty, so it commits nothing.
	idsA := newIDSet()
	a := startPipeline(t, pipelineSpec{cfg: cfg, ids: idsA})
	require.Eventually(t, func() bool { return a.owned() == 2 }, waitFor, 20*time.Millisecond, "member a never claimed the partitions")

	var log syncbuf.Buffer
	cfgB := cfg
	cfgB.InitialOffset = kafka.OffsetNewest
	idsB := newIDSet()
	b := startPipeline(t, pipelineSpec{cfg: cfgB, ids: idsB, opts: []kafka.SourceOption{kafka.WithLogger(slogText(&log))}})
	require.Eventually(t, func() bool { return a.owned() == 1 && b.owned() == 1 }, waitFor, 20*time.Millisecond,
		"the members never shared the partitions")
	produceTo(t, brokers, topic, 0, 0, per)
	produceTo(t, brokers, topic, 1, per, 2*per)
	unread := func() []int { // by neither member
		var out []int
		for i := range 2 * per {
			if !idsA.has(i) && !idsB.has(i) {
				out = append(out, i)
			}
		}
		return out
	}
	assert.Eventually(t, func() bool { return len(unread()) == 0 }, waitFor, 20*time.Millisecond, "records never read")
	require.Empty(t, unread(), "records read by neither member")
	require.Equal(t, per, idsB.distinct(), "b reads its partition: exactly its %d records", per)
	require.Equal(t, per, idsA.distinct(), "a reads the other one")
	require.ErrorIs(t, b.stop(t), context.Canceled)
	require.Contains(t, log.String(), "the group is active", "the refused commit of the ends is not what b met")
}

// TestSourceBoundedRepartitionEndsWhenPartitionsAdded (helper-93's probe): a bounded run
// through a repartition, whose topic grows while its first batch is held, ends once the
// partitions present at its start are done, with all their records counted in the windows
// after the repartition, and reads none of the new partitions' records. The Source used to
// count the new partitions in PartitionCount, which every end mark carries: the downstream
// partitions waited for the end of partitions that no instance read, and with
// Config.MetadataRefresh < 0 (no rebalance ever assigns them) the run never ended.
func TestSourceBoundedRepartitionEndsWhenPartitionsAdded(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const n, added = 400, 100
	topic := newTopic(t, brokers, "bounded-grow", 2)
	produceUnkeyed(t, brokers, topic, 2, 0, n)
	group := testenv.UniqueName(t, "g-bounded-grow")
	cfg := consumerConfig(brokers, group, topic)
	cfg.MetadataRefresh = -1 // no rebalance assigns the new partitions during the run
	var logbuf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logbuf, nil))
	src, err := kafka.NewSource(cfg, kafka.JSON[event](), kafka.WithBounded(), kafka.WithLogger(log))
	require.NoError(t, err)
	p, err := stream.New(50*time.Millisecond, stream.WithIdleTimeout(0), stream.WithName(group), stream.WithLogger(log))
	require.NoError(t, err)
	events := stream.From[event](p, src)

	// The first batch with records waits until the topic grew and the Source saw it.
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	read := map[int]bool{}
	stream.ForEachBatch(events, func(ctx context.Context, _ stream.BatchInfo, es []event) error {
		if len(es) > 0 {
			once.Do(func() { close(entered) })
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range es {
			read[e.ID] = true
		}
		return nil
	})
	ex, err := kafka.NewExchange(cfg, group, "bykey", pairCodec, kafka.WithReplication(1))
	require.NoError(t, err)
	deleteTopicAfter(t, brokers, group+"-bykey-repartition")
	pairs := stream.Map(events, func(e event) stream.Pair[string, int64] { return stream.KV(e.Key, int64(e.V)) })
	shuffled := stream.Repartition(pairs, "bykey", stream.Exchange[stream.Pair[string, int64]](ex))
	win, err := window.Aggregate(shuffled, func(p stream.Pair[string, int64]) string { return p.Key },
		func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(windowSize), window.Stats[int64]())
	require.NoError(t, err)
	var counted atomic.Int64
	stream.ForEachBatch(win.Results(), func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, window.Summary]) error {
		for _, r := range rs {
			if r.Final {
				counted.Add(r.Value.Count)
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitFor)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("the run ended before its first batch: %v", err)
	}

	require.NoError(t, newAdmin(t, brokers).CreatePartitions(topic, 4, nil, false))
	waitPartitions(t, brokers, topic, 4)
	msgs := make([]*sarama.ProducerMessage, 0, added)
	for i := n; i < n+added; i++ {
		m, err := eventMessages(topic, 1, i, i+1)
		require.NoError(t, err)
		m[0].Partition = int32(2 + i%2)
		msgs = append(msgs, m[0])
	}
	produce(t, brokers, msgs)
	require.Eventually(t, func() bool { return strings.Contains(logbuf.String(), "partitions were added to a source topic") },
		waitFor, 50*time.Millisecond, "the Source did not see the new partitions")
	require.Equal(t, 2, src.PartitionCount(), "the partitions the run reads")
	close(gate)

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("the bounded run did not end: its repartition waits for partitions it does not read")
	}
	require.EqualValues(t, n, counted.Load(), "every record of the partitions present at the start, once, in the windows")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, read, n)
	for id := range read {
		require.Less(t, id, n, "a record of a partition added during the run")
	}
}
