package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// waitFor bounds every wait on the broker or a pipeline in these tests.
const waitFor = 90 * time.Second

// base is the event time of record 0; record i happens i ms later.
var base = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// event is the test payload. IDs are unique; event time grows with the ID, so it grows
// within every partition.
type event struct {
	ID  int       `json:"id"`
	Key string    `json:"key"`
	TS  time.Time `json:"ts"`
	V   int       `json:"v"`
}

func (e *event) EventTime() time.Time { return e.TS }

func (e *event) Validate() error {
	if e.Key == "" {
		return errors.New("event: empty key")
	}
	return nil
}

const (
	numKeys     = 24
	sentinelKey = "~sentinel"
)

func keyOf(i int) string { return fmt.Sprintf("cab-%02d", i%numKeys) }

// partitionOf co-partitions by key, like a keyed producer.
func partitionOf(key string, parts int) int32 {
	var k int
	_, _ = fmt.Sscanf(key, "cab-%d", &k)
	return int32(k % parts)
}

func mkEvent(i int) event {
	return event{ID: i, Key: keyOf(i), TS: base.Add(time.Duration(i) * time.Millisecond), V: i % 7}
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Retry.Max = 20
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Producer.Flush.Bytes = 1 << 20
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Metadata.Retry.Max = 20
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	return c
}

func newAdmin(t testing.TB, brokers []string) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}

// newTopic creates a topic with parts partitions and deletes it after the test.
func newTopic(t testing.TB, brokers []string, prefix string, parts int32) string {
	t.Helper()
	topic := testenv.UniqueName(t, prefix)
	createTopic(t, brokers, topic, parts)
	return topic
}

func createTopic(t testing.TB, brokers []string, topic string, parts int32) {
	t.Helper()
	admin := newAdmin(t, brokers)
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false))
	waitPartitions(t, brokers, topic, parts) // so that tests start on a ready topic
	t.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin(brokers, saramaConfig()); err == nil {
			_ = a.DeleteTopic(topic)
			_ = a.Close()
		}
	})
}

// produce writes messages (Partition set) and waits for every ack.
func produce(t testing.TB, brokers []string, msgs []*sarama.ProducerMessage) {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, saramaConfig())
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	for chunk := range sliceChunks(msgs, 20_000) {
		require.NoError(t, p.SendMessages(chunk))
	}
}

func sliceChunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// produceEvents writes events from..to-1, keyed and co-partitioned by key.
// waitPartitions waits until every one of the topic's parts partitions has a leader that
// answers.
func waitPartitions(t testing.TB, brokers []string, topic string, parts int32) {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	require.NoError(t, err)
	defer client.Close()
	require.Eventually(t, func() bool {
		if client.RefreshMetadata(topic) != nil {
			return false
		}
		for p := range parts {
			if _, err := client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
				return false
			}
		}
		return true
	}, waitFor, 50*time.Millisecond, "topic %s never became ready", topic)
}

// commitOffset commits offset for the group's partition, as a member of the group would.
func commitOffset(t testing.TB, brokers []string, group, topic string, part int32, offset int64) {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	require.NoError(t, err)
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	require.NoError(t, err)
	pom, err := om.ManagePartition(topic, part)
	require.NoError(t, err)
	pom.MarkOffset(offset, "")
	om.Commit()
	require.NoError(t, pom.Close())
	require.NoError(t, om.Close())
}

func produceEvents(t testing.TB, brokers []string, topic string, parts int, from, to int) {
	t.Helper()
	msgs, err := eventMessages(topic, parts, from, to)
	require.NoError(t, err)
	produce(t, brokers, msgs)
}

// eventMessages returns the messages of events from..to-1, each to its key's partition of
// parts.
func eventMessages(topic string, parts int, from, to int) ([]*sarama.ProducerMessage, error) {
	msgs := make([]*sarama.ProducerMessage, 0, to-from)
	for i := from; i < to; i++ {
		e := mkEvent(i)
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic: topic, Partition: partitionOf(e.Key, parts),
			Key: sarama.StringEncoder(e.Key), Value: sarama.ByteEncoder(b),
		})
	}
	return msgs, nil
}

// produceSentinels writes one far-future record per partition, which moves the watermark of
// an unbounded pipeline past every test window.
func produceSentinels(t testing.TB, brokers []string, topic string, parts int) {
	t.Helper()
	var msgs []*sarama.ProducerMessage
	for p := range parts {
		b, err := json.Marshal(event{ID: -1, Key: sentinelKey, TS: base.Add(24 * time.Hour)})
		require.NoError(t, err)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(p), Key: sarama.StringEncoder(sentinelKey), Value: sarama.ByteEncoder(b)})
	}
	produce(t, brokers, msgs)
}

// endOffsets returns the high-water mark of every partition.
func endOffsets(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	return offsetsAt(t, brokers, topic, sarama.OffsetNewest)
}

// startOffsets returns the log start offset of every partition of topic.
func startOffsets(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	return offsetsAt(t, brokers, topic, sarama.OffsetOldest)
}

func offsetsAt(t testing.TB, brokers []string, topic string, at int64) map[int32]int64 {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	require.NoError(t, err)
	defer client.Close()
	parts, err := client.Partitions(topic)
	require.NoError(t, err)
	out := make(map[int32]int64)
	for _, p := range parts {
		off, err := client.GetOffset(topic, p, at)
		require.NoError(t, err)
		out[p] = off
	}
	return out
}

// committedOffsets returns the group's committed offsets (-1: none).
func committedOffsets(t testing.TB, brokers []string, group, topic string, parts int) map[int32]int64 {
	t.Helper()
	out := make(map[int32]int64)
	for p, b := range committedBlocks(t, brokers, group, topic, parts) {
		out[p] = b.Offset
	}
	return out
}

// committedBlocks returns the group's committed offset and metadata of every partition.
func committedBlocks(t testing.TB, brokers []string, group, topic string, parts int) map[int32]*sarama.OffsetFetchResponseBlock {
	t.Helper()
	admin := newAdmin(t, brokers)
	ps := make([]int32, parts)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	require.NoError(t, err)
	out := make(map[int32]*sarama.OffsetFetchResponseBlock)
	for _, p := range ps {
		b := resp.GetBlock(topic, p)
		require.NotNil(t, b)
		out[p] = b
	}
	return out
}

// requireCommittedAtEnd waits until the group committed the end of every partition.
func requireCommittedAtEnd(t testing.TB, brokers []string, group, topic string, parts int) {
	t.Helper()
	requireCommitted(t, brokers, group, topic, parts, 0)
}

// requireCommitted waits until the group committed the end of every partition minus behind.
func requireCommitted(t testing.TB, brokers []string, group, topic string, parts int, behind int64) {
	t.Helper()
	want := endOffsets(t, brokers, topic)
	for p := range want {
		want[p] -= behind
	}
	var got map[int32]int64
	require.Eventually(t, func() bool {
		got = committedOffsets(t, brokers, group, topic, parts)
		return maps.Equal(want, got)
	}, waitFor, 100*time.Millisecond, "committed offsets never reached the end offsets %v", want)
}

// idSet records which event ids reached a sink, and how often.
type idSet struct {
	mu    sync.Mutex
	seen  map[int]int
	total int
}

func newIDSet() *idSet { return &idSet{seen: make(map[int]int)} }

func (s *idSet) add(es []event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		if e.ID >= 0 {
			s.seen[e.ID]++
			s.total++
		}
	}
}

func (s *idSet) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *idSet) missing(n int) []int { return s.missingFrom(0, n) }

// has reports whether id was seen.
func (s *idSet) has(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id] > 0
}

// missingFrom returns the first ten ids in [from, to) that were not seen.
func (s *idSet) missingFrom(from, to int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i := from; i < to; i++ {
		if s.seen[i] == 0 {
			out = append(out, i)
			if len(out) == 10 {
				break
			}
		}
	}
	return out
}

// winID identifies a window result, like a document id: keys are co-partitioned, so the
// key and the window start identify it.
type winID struct {
	Key   string
	Start int64
}

type winResult struct {
	winID
	Count, Sum int
}

// results is a store of window results where a rewrite overwrites, as in OpenSearch.
type results struct {
	mu sync.Mutex
	m  map[winID]winResult
}

func newResults() *results { return &results{m: make(map[winID]winResult)} }

func (r *results) write(rs []winResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range rs {
		r.m[x.winID] = x
	}
}

// snapshot returns the results without the sentinel's windows.
func (r *results) snapshot() map[winID]winResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[winID]winResult, len(r.m))
	for k, v := range r.m {
		if k.Key != sentinelKey {
			out[k] = v
		}
	}
	return out
}

// expectedResults computes the windows of events 0..n-1 directly.
func expectedResults(n int) map[winID]winResult {
	out := make(map[winID]winResult)
	for i := range n {
		e := mkEvent(i)
		start := e.TS.Truncate(windowSize).UnixNano()
		r := out[winID{e.Key, start}]
		r.winID = winID{e.Key, start}
		r.Count++
		r.Sum += e.V
		out[r.winID] = r
	}
	return out
}

const windowSize = time.Second

// tumbling is a minimal event-time tumbling-window count per key, kept per partition, that
// emits a window once the watermark passes its end and holds commits back to the oldest
// record of its open windows. (Package window will replace it in these tests.)
type tumbling struct {
	size  int64
	parts map[int32]*partWindows
	late  int
}

// partWindows is one partition's open windows and the watermark they last fired on.
type partWindows struct {
	open  map[winID]*acc
	fired int64
}

type acc struct {
	count, sum int
	minOff     int64
}

func newTumbling() *tumbling {
	return &tumbling{size: int64(windowSize), parts: make(map[int32]*partWindows)}
}

// Process fires a partition's windows on its own watermark (pc.PartitionWatermark), as
// package window does, and judges lateness against the watermark they last fired on. The
// pipeline watermark would not do: a partition claimed from another instance replays its
// open windows from behind the watermark of the partitions the pipeline read already, and
// its records would be dropped as late (whole windows never emitted by either instance).
func (w *tumbling) Process(pc *stream.PartitionContext, in []stream.Elem[event], out []stream.Elem[winResult]) []stream.Elem[winResult] {
	st := w.parts[pc.Partition]
	if st == nil {
		st = &partWindows{open: make(map[winID]*acc), fired: stream.NoWatermark}
		w.parts[pc.Partition] = st
	}
	for _, e := range in {
		start := e.Time - e.Time%w.size
		if start+w.size <= st.fired {
			w.late++ // a replay of a window already emitted
			continue
		}
		id := winID{e.Value.Key, start}
		a := st.open[id]
		if a == nil {
			a = &acc{minOff: e.Offset}
			st.open[id] = a
		}
		a.count++
		a.sum += e.Value.V
		a.minOff = min(a.minOff, e.Offset)
	}
	st.fired = max(st.fired, pc.PartitionWatermark)
	for id, a := range st.open {
		if id.Start+w.size <= st.fired {
			out = append(out, stream.Elem[winResult]{Value: winResult{id, a.count, a.sum}, Time: id.Start + w.size - 1, Offset: a.minOff})
			delete(st.open, id)
		}
	}
	return out
}

func (w *tumbling) Retained(part int32) (int64, bool) {
	off, ok := int64(0), false
	st := w.parts[part]
	if st == nil {
		return 0, false
	}
	for _, a := range st.open {
		if !ok || a.minOff < off {
			off, ok = a.minOff, true
		}
	}
	return off, ok
}

func (w *tumbling) Drop(part int32) { delete(w.parts, part) }

func (w *tumbling) StateSize() int {
	n := 0
	for _, st := range w.parts {
		n += len(st.open)
	}
	return n
}

// source is what a test pipeline reads: the Kafka source, or a wrapper of it.
type source interface {
	stream.Source[event]
	Stats() stream.SourceStats
}

// running is a pipeline of events → (ids, tumbling window results) in the background.
type running struct {
	p      *stream.Pipeline
	src    *kafka.Source[event]
	cancel context.CancelFunc
	done   chan error
}

type pipelineSpec struct {
	cfg  kafka.Config
	opts []kafka.SourceOption
	// also, if it names topics, is a second Source with the same options whose records join
	// the first one's (unwrapped, uncounted by running.src).
	also    kafka.Config
	wrap    func(*kafka.Source[event]) source
	ids     *idSet
	results *results
	// onBatch runs in the id output before the batch is recorded; an error fails the batch.
	onBatch func(ctx context.Context, batch []event) error
	// buffer bounds the pipeline input (records); 0 keeps the default.
	buffer int
	// dead, once set, makes every output fail without recording: a crashed process.
	dead *atomic.Bool
	// popts are more options of the pipeline.
	popts []stream.Option
	// params, if set, are the window operator's parameters (stream.Parameterized): its
	// pipeline then commits a checkpoint with every position.
	params string
}

// paramTumbling is a tumbling window with parameters.
type paramTumbling struct {
	*tumbling
	params string
}

func (w paramTumbling) Parameters() string { return w.params }

var errCrashed = errors.New("test: process crashed")

func startPipeline(t testing.TB, spec pipelineSpec) *running {
	t.Helper()
	src, err := kafka.NewSource(spec.cfg, kafka.JSON[event](), spec.opts...)
	require.NoError(t, err)
	var s source = src
	if spec.wrap != nil {
		s = spec.wrap(src)
	}
	popts := []stream.Option{stream.WithIdleTimeout(0), stream.WithName("kafka-test"),
		stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond})}
	if spec.buffer > 0 {
		popts = append(popts, stream.WithBuffer(spec.buffer, 0))
	}
	popts = append(popts, spec.popts...)
	p, err := stream.New(50*time.Millisecond, popts...)
	require.NoError(t, err)
	events := stream.From[event](p, s)
	if len(spec.also.Topics) > 0 {
		also, err := kafka.NewSource(spec.also, kafka.JSON[event](), spec.opts...)
		require.NoError(t, err)
		events = events.Union(stream.From[event](p, also))
	}
	stream.To(events, stream.SinkFunc[event](func(ctx context.Context, batch []event) error {
		if spec.onBatch != nil {
			if err := spec.onBatch(ctx, batch); err != nil {
				return err
			}
		}
		if spec.dead != nil && spec.dead.Load() {
			return errCrashed
		}
		if spec.ids != nil {
			spec.ids.add(batch)
		}
		return nil
	}))
	if spec.results != nil {
		var op stream.Operator[event, winResult] = newTumbling()
		if spec.params != "" {
			op = paramTumbling{newTumbling(), spec.params}
		}
		wins := stream.Apply(events, "tumbling", op)
		stream.To(wins, stream.SinkFunc[winResult](func(ctx context.Context, batch []winResult) error {
			if spec.dead != nil && spec.dead.Load() {
				return errCrashed
			}
			spec.results.write(batch)
			return nil
		}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
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

// stop cancels the pipeline and waits for Run to return.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(waitFor):
		t.Fatalf("pipeline did not stop within %v", waitFor)
		return nil
	}
}

// wait waits for Run to return by itself.
func (r *running) wait(t testing.TB) error {
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

func (r *running) owned() int { return len(r.src.Stats().Lag) }

// ended reports whether Run has returned, without waiting.
func (r *running) ended() bool {
	select {
	case err := <-r.done:
		r.done <- err
		return true
	default:
		return false
	}
}

func consumerConfig(brokers []string, group string, topics ...string) kafka.Config {
	return kafka.Config{
		Brokers: brokers, Group: group, Topics: topics, ClientID: "fleetstream-kafka-test",
		Rebalance: kafka.Rebalance{SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second, Timeout: 20 * time.Second},
	}
}

// idProducer returns a Producer bound to src (exactly once) that writes each event's id, keyed
// by its key, to topic out.
func idProducer(t testing.TB, brokers []string, out string, src *kafka.Source[event]) *kafka.Producer[event] {
	t.Helper()
	prod, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, out, kafka.KeyValue(
		func(e event) []byte { return []byte(e.Key) },
		func(e event) ([]byte, error) { return []byte(strconv.Itoa(e.ID)), nil }), kafka.WithExactlyOnce(src))
	require.NoError(t, err)
	t.Cleanup(func() { _ = prod.Close(context.Background()) })
	return prod
}
