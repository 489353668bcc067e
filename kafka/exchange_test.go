package kafka_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
	"github.com/fleetstream/fleetstream/window"
)

// The Kafka exchange's invariants, against the real broker, with a real pipeline: an unkeyed
// topic (each key's records spread over every partition, as from an IoT hub) -> Map to pairs
// -> Repartition through kafka.Exchange -> tumbling window count and sum:
//   - one result per key and window, equal to a brute-force global computation
//     (TestExchangeGlobalWindows), in bounded mode the pipeline ends by itself once the
//     repartition drained;
//   - the same after crashes before, during and after the exchange's Send and before the
//     commit, with replays that the downstream deduplicates (TestExchangeCrashRestart);
//   - an existing topic with another partition count is refused with both counts
//     (TestExchangeOpenPartitionMismatch);
//   - a record of the topic the format refuses stops the pipeline with
//     ErrCorruptRepartition, before any result (TestExchangeCorruptRecordStops).

// varintCodec is a stream.Codec of int64s.
type varintCodec struct{}

func (varintCodec) Append(dst []byte, v int64) ([]byte, error) {
	return binary.AppendVarint(dst, v), nil
}

func (varintCodec) Decode(b []byte) (int64, error) {
	v, n := binary.Varint(b)
	if n <= 0 || n != len(b) {
		return 0, errors.New("varint codec: bad encoding")
	}
	return v, nil
}

var pairCodec = stream.PairCodec[string, int64](stream.StringCodec{}, varintCodec{})

// produceUnkeyed writes events from..to-1 round-robin over the partitions, without keys.
func produceUnkeyed(t testing.TB, brokers []string, topic string, parts int, from, to int) {
	t.Helper()
	msgs := make([]*sarama.ProducerMessage, 0, to-from)
	for i := from; i < to; i++ {
		b, err := json.Marshal(mkEvent(i))
		require.NoError(t, err)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % parts), Value: sarama.ByteEncoder(b)})
	}
	produce(t, brokers, msgs)
}

// globalResults is a store of window results keyed like documents (key, window start),
// where a rewrite overwrites; it counts the writes of each id.
type globalResults struct {
	mu     sync.Mutex
	m      map[winID]winResult
	writes map[winID]int
}

func newGlobalResults() *globalResults {
	return &globalResults{m: map[winID]winResult{}, writes: map[winID]int{}}
}

func (g *globalResults) write(rs []window.Result[string, window.Summary]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range rs {
		if !r.Final || r.Key == sentinelKey {
			continue
		}
		id := winID{r.Key, r.Start.UnixNano()}
		g.m[id] = winResult{winID: id, Count: int(r.Value.Count), Sum: int(r.Value.Sum)}
		g.writes[id]++
	}
}

func (g *globalResults) snapshot() (map[winID]winResult, map[winID]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := make(map[winID]winResult, len(g.m))
	for k, v := range g.m {
		m[k] = v
	}
	w := make(map[winID]int, len(g.writes))
	for k, v := range g.writes {
		w[k] = v
	}
	return m, w
}

// requireSameResults compares window results and names the first differences.
func requireSameResults(t testing.TB, want, got map[winID]winResult) {
	t.Helper()
	var diffs []string
	for id, w := range want {
		if g, ok := got[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s@%d missing (want %d/%d)", id.Key, id.Start, w.Count, w.Sum))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s@%d: got %d/%d, want %d/%d", id.Key, id.Start, g.Count, g.Sum, w.Count, w.Sum))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s@%d unexpected (%d/%d)", id.Key, id.Start, g.Count, g.Sum))
		}
	}
	slices.Sort(diffs)
	require.Empty(t, diffs, "%d of %d windows differ (count/sum)", len(diffs), len(want))
}

// crashPoint says where a run crashes: at which batch with input (from 1), and where in it.
type crashPoint struct {
	batch int64
	where string // "before-send", "mid-send", "after-send" (a later output fails, no commit)
}

// crashingExchange is the Kafka exchange of a process that may crash in Send.
type crashingExchange struct {
	*kafka.Exchange[stream.Pair[string, int64]]
	r *shuffleRun
}

func (c *crashingExchange) Send(ctx context.Context, recs []stream.Shuffled[stream.Pair[string, int64]]) error {
	r := c.r
	if r.dead.Load() {
		return errCrashed
	}
	if b := r.batch.Load(); r.crash.batch > 0 && b >= r.crash.batch {
		switch r.crash.where {
		case "before-send":
			r.die()
			return errCrashed
		case "mid-send":
			// Half the records (for some partitions a prefix of theirs) reached the topic.
			if err := c.Exchange.Send(ctx, recs[:len(recs)/2]); err != nil {
				return err
			}
			r.die()
			return errCrashed
		}
	}
	return c.Exchange.Send(ctx, recs)
}

// shuffleRun is one process of the pipeline.
type shuffleRun struct {
	p      *stream.Pipeline
	src    *kafka.Source[event]
	ex     *kafka.Exchange[stream.Pair[string, int64]]
	win    *window.Windowed[string, window.Summary, stream.Pair[string, int64]]
	crash  crashPoint
	batch  atomic.Int64 // the batches with input so far, the one being processed included
	dead   atomic.Bool
	cancel context.CancelFunc
	done   chan error
}

func (r *shuffleRun) die() {
	r.dead.Store(true)
	r.cancel()
}

type shuffleSpec struct {
	cfg      kafka.Config
	pipeline string
	bounded  bool
	buffer   int
	crash    crashPoint
	results  *globalResults
	// joinDelay delays the exchange's consumer's first join (kafka.WithJoinDelay).
	joinDelay time.Duration
}

func startShuffle(t testing.TB, spec shuffleSpec) *shuffleRun {
	t.Helper()
	var opts []kafka.SourceOption
	if spec.bounded {
		opts = append(opts, kafka.WithBounded())
	}
	src, err := kafka.NewSource(spec.cfg, kafka.JSON[event](), opts...)
	require.NoError(t, err)
	exOpts := []kafka.ExchangeOption{kafka.WithReplication(1)}
	if spec.joinDelay > 0 {
		exOpts = append(exOpts, kafka.WithJoinDelay(spec.joinDelay))
	}
	ex, err := kafka.NewExchange(spec.cfg, spec.pipeline, "bykey", pairCodec, exOpts...)
	require.NoError(t, err)
	r := &shuffleRun{src: src, ex: ex, crash: spec.crash, done: make(chan error, 1)}
	popts := []stream.Option{stream.WithIdleTimeout(0), stream.WithName(spec.pipeline),
		stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond})}
	if spec.buffer > 0 {
		popts = append(popts, stream.WithBuffer(spec.buffer, 0))
	}
	r.p, err = stream.New(50*time.Millisecond, popts...)
	require.NoError(t, err)
	events := stream.From[event](r.p, src)
	stream.ForEachBatch(events, func(_ context.Context, _ stream.BatchInfo, es []event) error {
		if len(es) > 0 && !r.dead.Load() {
			r.batch.Add(1)
		}
		return nil
	})
	pairs := stream.Map(events, func(e event) stream.Pair[string, int64] { return stream.KV(e.Key, int64(e.V)) })
	shuffled := stream.Repartition(pairs, "bykey", stream.Exchange[stream.Pair[string, int64]](&crashingExchange{ex, r}))
	r.win, err = window.Aggregate(shuffled, func(p stream.Pair[string, int64]) string { return p.Key },
		func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(windowSize), window.Stats[int64]())
	require.NoError(t, err)
	stream.ForEachBatch(r.win.Results(), func(_ context.Context, _ stream.BatchInfo, rs []window.Result[string, window.Summary]) error {
		if r.dead.Load() {
			return errCrashed
		}
		if r.crash.where == "after-send" && r.batch.Load() >= r.crash.batch {
			// The exchange's Send of this batch went through: the process dies before the
			// batch is acknowledged and committed.
			r.die()
			return errCrashed
		}
		spec.results.write(rs)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitFor):
			t.Errorf("pipeline did not stop within %v", waitFor)
		}
	})
	return r
}

func (r *shuffleRun) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(waitFor):
		t.Fatalf("pipeline did not end within %v", waitFor)
		return nil
	}
}

// deleteTopicAfter deletes the exchange's topic when the test ends.
func deleteTopicAfter(t testing.TB, brokers []string, topic string) {
	t.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin(brokers, saramaConfig()); err == nil {
			_ = a.DeleteTopic(topic)
			_ = a.Close()
		}
	})
}

func TestExchangeGlobalWindows(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const n, parts = 20_000, 4
	topic := newTopic(t, brokers, "xg", parts)
	produceUnkeyed(t, brokers, topic, parts, 0, n)
	pipeline := testenv.UniqueName(t, "xg")
	deleteTopicAfter(t, brokers, pipeline+"-bykey-repartition")

	res := newGlobalResults()
	r := startShuffle(t, shuffleSpec{cfg: consumerConfig(brokers, pipeline, topic), pipeline: pipeline, bounded: true, results: res})
	// Bounded: the pipeline ends by itself once the source reached its end offsets and the
	// repartition drained (every downstream partition got every upstream end mark).
	require.NoError(t, r.wait(t))

	got, writes := res.snapshot()
	want := expectedResults(n)
	requireSameResults(t, want, got)
	for id, w := range writes {
		require.Equal(t, 1, w, "window %v written %d times", id, w)
	}
	require.Zero(t, r.win.LateCount(), "no record is late through the repartition")
	require.Equal(t, parts, r.src.PartitionCount())
	sent, bytes := r.ex.Sent()
	require.GreaterOrEqual(t, sent, int64(n), "every value went through the topic")
	msgs := r.ex.SentMessages()
	t.Logf("%d records in %d messages through %s, %.1f bytes per record (value and header)", sent, msgs, r.ex.Topic(), float64(bytes)/float64(sent))
	// Records are packed: a message holds many records of one partition and batch.
	require.Less(t, 10*msgs, sent, "records packed into messages")
	hwm := int64(0)
	for _, end := range endOffsets(t, brokers, r.ex.Topic()) {
		hwm += end
	}
	require.Equal(t, msgs, hwm, "the topic holds the packed messages")
	// The repartition topic keeps its records until purged, and the purge at the end of the
	// run deleted records the group had committed past, none it had not.
	cfg, err := newAdmin(t, brokers).DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: r.ex.Topic(), ConfigNames: []string{"retention.ms"}}}, sarama.DescribeConfigsOptions{})
	require.NoError(t, err)
	require.Len(t, cfg, 1)
	require.Len(t, cfg[0].Configs, 1)
	require.Equal(t, "-1", cfg[0].Configs[0].Value)
	committed := committedOffsets(t, brokers, pipeline, r.ex.Topic(), parts)
	for p, start := range startOffsets(t, brokers, r.ex.Topic()) {
		require.Positive(t, start, "partition %d not purged", p)
		require.LessOrEqual(t, start, committed[p], "partition %d purged past its committed offset", p)
	}
	// Each key's windows came from every upstream partition: the test is not trivially
	// co-partitioned.
	require.Greater(t, want[winID{keyOf(0), base.UnixNano()}].Count, 0)
}

func TestExchangeCrashRestart(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const n, parts = 12_000, 3
	topic := newTopic(t, brokers, "xc", parts)
	produceUnkeyed(t, brokers, topic, parts, 0, n)
	pipeline := testenv.UniqueName(t, "xc")
	deleteTopicAfter(t, brokers, pipeline+"-bykey-repartition")
	cfg := consumerConfig(brokers, pipeline, topic)

	res := newGlobalResults()
	var dups int64
	for i, c := range []crashPoint{
		{3, "after-send"},
		{2, "before-send"},
		{4, "mid-send"},
		{2, "after-send"}, // early in the replay of the previous crashes
		{6, "after-send"},
	} {
		r := startShuffle(t, shuffleSpec{cfg: cfg, pipeline: pipeline, bounded: true, buffer: 500, crash: c, results: res})
		err := r.wait(t)
		require.True(t, r.dead.Load(), "run %d (%v) ended before its crash point: %v", i, c, err)
		require.Error(t, err)
		d := r.p.Stats().Duplicates
		dups += d
		t.Logf("run %d crashed %v at input batch %d; %d duplicates dropped", i, c, r.batch.Load(), d)
	}
	r := startShuffle(t, shuffleSpec{cfg: cfg, pipeline: pipeline, bounded: true, buffer: 500, results: res})
	require.NoError(t, r.wait(t))
	dups += r.p.Stats().Duplicates
	t.Logf("final run: %d duplicates dropped", r.p.Stats().Duplicates)

	got, _ := res.snapshot()
	requireSameResults(t, expectedResults(n), got)
	require.Positive(t, dups, "a replay re-sent records that the downstream dropped")
}

func TestExchangeOpenPartitionMismatch(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "xm", 2)
	pipeline := testenv.UniqueName(t, "xm")
	createTopic(t, brokers, pipeline+"-bykey-repartition", 5)
	ex, err := kafka.NewExchange(consumerConfig(brokers, pipeline, topic), pipeline, "bykey", pairCodec)
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close(context.Background())) }()
	_, err = ex.Open(t.Context())
	require.ErrorIs(t, err, kafka.ErrPartitionMismatch)
	require.ErrorContains(t, err, "has 5 partitions, the exchange wants 2")

	ok, err := kafka.NewExchange(consumerConfig(brokers, pipeline, topic), pipeline, "bykey", pairCodec, kafka.WithPartitions(5))
	require.NoError(t, err)
	defer func() { require.NoError(t, ok.Close(context.Background())) }()
	got, err := ok.Open(t.Context())
	require.NoError(t, err)
	require.Equal(t, 5, got)
}

// TestExchangeOpenTopicOfAnotherGroup: a repartition topic another consumer group has
// committed offsets of (another pipeline with the same name) is refused at Open, naming the
// group and the fix; the group that owns it opens it.
func TestExchangeOpenTopicOfAnotherGroup(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, "xo", 2)
	pipeline := testenv.UniqueName(t, "xo")
	owner, other := testenv.UniqueName(t, "xo-owner"), testenv.UniqueName(t, "xo-other")
	repart := pipeline + "-bykey-repartition"
	createTopic(t, brokers, repart, 2)

	// The owner group commits an offset of the repartition topic, as its pipeline does.
	commitOffset(t, brokers, owner, repart, 1, 0)

	ex, err := kafka.NewExchange(consumerConfig(brokers, other, topic), pipeline, "bykey", pairCodec)
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close(context.Background())) }()
	_, err = ex.Open(t.Context())
	require.ErrorIs(t, err, kafka.ErrRepartitionInUse)
	require.ErrorContains(t, err, owner)
	require.ErrorContains(t, err, "own name")

	ok, err := kafka.NewExchange(consumerConfig(brokers, owner, topic), pipeline, "bykey", pairCodec)
	require.NoError(t, err)
	defer func() { require.NoError(t, ok.Close(context.Background())) }()
	got, err := ok.Open(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, got)
}

// TestExchangeOpenSourceTopicMissing: an exchange whose source topic does not exist fails to
// open with ErrTopicNotFound, naming the topic first (a job started on a mistyped -topic).
// TestExchangeInputChanged: the same pipeline (name and group) started on another topic in
// place of the one it read stops with stream.ErrInputChanged, writes no result and commits
// nothing: the repartition's committed state numbers records by upstream partition and
// offset, and the new topic's records at the offsets the old one's had reached were dropped
// downstream as their copies, without a word (found by a review: 0 documents written).
func TestExchangeInputChanged(t *testing.T) {
	t.Parallel()
	exchangeInputChanged(t, 0)
}

// TestExchangeInputChangedLateJoin is TestExchangeInputChanged with the exchange's consumer
// joining the group 400 ms after the input's (the join order of 16544dc, since reverted):
// the input's first batches then ran, and committed, before the repartition's checkpoints
// were registered and checked (partition 1 of the new topic committed at 1000). The pipeline
// now runs no batch before the exchange's consumer registered its partitions
// (stream.PartitionRegistrar).
func TestExchangeInputChangedLateJoin(t *testing.T) {
	t.Parallel()
	exchangeInputChanged(t, 400*time.Millisecond)
}

func exchangeInputChanged(t *testing.T, joinDelay time.Duration) {
	brokers := testenv.KafkaBrokers(t)
	const n, parts = 3_000, 3
	first := newTopic(t, brokers, "xi", parts)
	produceUnkeyed(t, brokers, first, parts, 0, n)
	second := newTopic(t, brokers, "xi2", parts)
	produceUnkeyed(t, brokers, second, parts, n, 2*n)
	pipeline := testenv.UniqueName(t, "xi")
	deleteTopicAfter(t, brokers, pipeline+"-bykey-repartition")

	res := newGlobalResults()
	r := startShuffle(t, shuffleSpec{cfg: consumerConfig(brokers, pipeline, first), pipeline: pipeline, bounded: true, results: res, joinDelay: joinDelay})
	require.NoError(t, r.wait(t))
	before, _ := res.snapshot()
	requireSameResults(t, expectedResults(n), before)

	r = startShuffle(t, shuffleSpec{cfg: consumerConfig(brokers, pipeline, second), pipeline: pipeline, bounded: true, results: res, joinDelay: joinDelay})
	err := r.wait(t)
	require.ErrorIs(t, err, stream.ErrInputChanged)
	require.ErrorContains(t, err, fmt.Sprintf("%q", second))
	after, _ := res.snapshot()
	require.Equal(t, before, after, "results written from a run on another input")
	for p, off := range committedOffsets(t, brokers, pipeline, second, parts) {
		require.EqualValues(t, -1, off, "partition %d of the new topic committed", p)
	}
}

func TestExchangeOpenSourceTopicMissing(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	missing := testenv.UniqueName(t, "no-such-topic")
	pipeline := testenv.UniqueName(t, "xn")
	ex, err := kafka.NewExchange(consumerConfig(brokers, pipeline, missing), pipeline, "bykey", pairCodec)
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close(context.Background())) }()
	_, err = ex.Open(t.Context())
	require.ErrorIs(t, err, kafka.ErrTopicNotFound)
	require.ErrorContains(t, err, fmt.Sprintf("source topic %q does not exist", missing))
}

// TestExchangeCorruptRecordStops: a record of the repartition topic whose flags do not go
// together (here an idle value, which an Exchange never writes) stops the pipeline with
// ErrCorruptRepartition, naming the topic, partition, offset and what is wrong, and no
// result is written from it. It was read as a value.
func TestExchangeCorruptRecordStops(t *testing.T) {
	t.Parallel()
	brokers, topic, pipeline, repart := exchangeNames(t, "xc", "bykey")
	produceUnkeyed(t, brokers, topic, 1, 0, 100)
	createTopic(t, brokers, repart, 1)
	// Version 1 and flag idle; From 0, Seq 0, Sub 0, Time 0; a pair.
	idleValue, err := pairCodec.Append([]byte{0x10 | 2, 0, 0, 0, 0}, stream.KV("cab-00", int64(1)))
	require.NoError(t, err)
	produce(t, brokers, []*sarama.ProducerMessage{{Topic: repart, Partition: 0, Value: sarama.ByteEncoder(idleValue)}})

	res := newGlobalResults()
	r := startShuffle(t, shuffleSpec{cfg: consumerConfig(brokers, pipeline, topic), pipeline: pipeline, bounded: true, results: res})
	err = r.wait(t)
	require.ErrorIs(t, err, kafka.ErrCorruptRepartition)
	require.ErrorContains(t, err, repart+"/0 offset 0: flags 0x12: flag idle on a value")
	got, _ := res.snapshot()
	require.Empty(t, got, "results written past a corrupt record")
}

func TestNewExchangeInvalid(t *testing.T) {
	t.Parallel()
	cfg := kafka.Config{Brokers: []string{"localhost:9092"}, Group: "g", Topics: []string{"in"}}
	for name, tc := range map[string]struct {
		cfg            kafka.Config
		pipeline, name string
		opts           []kafka.ExchangeOption
	}{
		"no name":            {cfg, "p", "", nil},
		"bad topic":          {cfg, "p q", "x", nil},
		"no group":           {kafka.Config{Brokers: cfg.Brokers, Topics: cfg.Topics}, "p", "x", nil},
		"no partition count": {kafka.Config{Brokers: cfg.Brokers, Group: "g"}, "p", "x", nil},
		"zero partitions":    {cfg, "p", "x", []kafka.ExchangeOption{kafka.WithPartitions(0)}},
		"zero replication":   {cfg, "p", "x", []kafka.ExchangeOption{kafka.WithReplication(0)}},
		"purge every 1ns":    {cfg, "p", "x", []kafka.ExchangeOption{kafka.WithPurgeInterval(time.Nanosecond)}},
		"purge every 999ms":  {cfg, "p", "x", []kafka.ExchangeOption{kafka.WithPurgeInterval(999 * time.Millisecond)}},
		"purge interval 0":   {cfg, "p", "x", []kafka.ExchangeOption{kafka.WithPurgeInterval(0)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kafka.NewExchange(tc.cfg, tc.pipeline, tc.name, pairCodec, tc.opts...)
			require.ErrorIs(t, err, kafka.ErrInvalidOption)
		})
	}
	for _, d := range []time.Duration{time.Second, time.Minute, -1} {
		_, err := kafka.NewExchange(cfg, "p", "x", pairCodec, kafka.WithPurgeInterval(d))
		require.NoError(t, err, "WithPurgeInterval(%v)", d)
	}
	ex, err := kafka.NewExchange(cfg, "fleet", "zones", pairCodec, kafka.WithLogger(nil))
	require.NoError(t, err)
	require.Equal(t, "fleet-zones-repartition", ex.Topic())
}

// BenchmarkExchange measures the shuffle's cost per record through the real broker: Send
// (header and codec encoding, idempotent produce with acks from all replicas) of batches of
// 1,000 pairs over 4 partitions, then the exchange's consumer side reading them back into a
// pipeline input (fetch, decode). It reports ns/record for the round trip and bytes/record
// of the values on the topic.
func BenchmarkExchange(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	const batch, parts = 1000, 4
	pipeline := testenv.UniqueName(b, "xb")
	deleteTopicAfter(b, brokers, pipeline+"-bench-repartition")
	cfg := consumerConfig(brokers, pipeline, "unused")
	ex, err := kafka.NewExchange(cfg, pipeline, "bench", pairCodec, kafka.WithPartitions(parts), kafka.WithReplication(1))
	require.NoError(b, err)
	defer func() { require.NoError(b, ex.Close(context.Background())) }()
	_, err = ex.Open(b.Context())
	require.NoError(b, err)

	recs := make([]stream.Shuffled[stream.Pair[string, int64]], batch)
	for i := range recs {
		key := fmt.Sprintf("zone-%03d", i%300)
		recs[i] = stream.Shuffled[stream.Pair[string, int64]]{Value: stream.KV(key, int64(i%97)), Partition: int32(stream.HashKey(key) % parts),
			From: int32(i % 6), Sub: 0, Time: base.Add(time.Duration(i) * time.Millisecond).UnixNano()}
	}

	// The consumer side reads into a pipeline whose only output counts what arrived.
	var got atomic.Int64
	arrived := make(chan struct{}, 1)
	p, err := stream.New(20*time.Millisecond, stream.WithIdleTimeout(0), stream.WithBuffer(20_000, 0))
	require.NoError(b, err)
	in := stream.From[stream.Shuffled[stream.Pair[string, int64]]](p, ex)
	stream.ForEachBatch(in, func(_ context.Context, _ stream.BatchInfo, rs []stream.Shuffled[stream.Pair[string, int64]]) error {
		got.Add(int64(len(rs)))
		select {
		case arrived <- struct{}{}:
		default:
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	var seq int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range recs {
			recs[i].Seq = seq
			seq++
		}
		if err := ex.Send(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
	want := seq
	timeout := time.After(waitFor)
	for got.Load() < want {
		select {
		case <-arrived:
		case <-timeout:
			b.Fatalf("consumed %d of %d records", got.Load(), want)
		}
	}
	b.StopTimer()
	_, bytes := ex.Sent()
	sent, _ := ex.Sent()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/record")
	b.ReportMetric(float64(bytes)/float64(sent), "bytes/record")
}
