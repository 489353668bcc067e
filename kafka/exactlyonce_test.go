package kafka_test

import (
	"context"
	"errors"
	"fmt"
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

// repeats raises an alert "key/id" for every event with V == 0 whose key had an event
// before: like the cab tracker, its output for a record depends on the records before it, so
// it retains each key's last keep events and a replay from its start emits again the alerts
// of the records between that start and the committed batch end.
type repeats struct {
	parts map[int32]map[string][]int64
}

const keep = 20

func (r *repeats) Process(pc *stream.PartitionContext, in []stream.Elem[event], out []stream.Elem[string]) []stream.Elem[string] {
	st := r.parts[pc.Partition]
	if st == nil {
		if len(in) == 0 {
			return out
		}
		st = map[string][]int64{}
		r.parts[pc.Partition] = st
	}
	for _, el := range in {
		e := el.Value
		if e.Key == sentinelKey {
			continue
		}
		prev := st[e.Key]
		if len(prev) > 0 && e.V == 0 {
			out = append(out, stream.Elem[string]{Value: fmt.Sprintf("%s/%d", e.Key, e.ID), Time: el.Time, Offset: el.Offset})
		}
		if len(prev) == keep {
			prev = prev[1:]
		}
		st[e.Key] = append(prev, el.Offset)
	}
	if pc.EndOfInput {
		delete(r.parts, pc.Partition) // nothing more to compare with: the commit may reach the end
	}
	return out
}

func (r *repeats) Retained(part int32) (int64, bool) {
	st := r.parts[part]
	if len(st) == 0 {
		return 0, false
	}
	m := int64(1<<63 - 1)
	for _, offs := range st {
		m = min(m, offs[0])
	}
	return m, true
}

func (r *repeats) Drop(part int32) { delete(r.parts, part) }

func (r *repeats) StateSize() int { return len(r.parts) }

// expectedAlerts is what repeats raises over events 0..n-1 without a crash.
func expectedAlerts(n int) map[string]bool {
	seen := map[string]bool{}
	want := map[string]bool{}
	for i := range n {
		e := mkEvent(i)
		if seen[e.Key] && e.V == 0 {
			want[fmt.Sprintf("%s/%d", e.Key, e.ID)] = true
		}
		seen[e.Key] = true
	}
	return want
}

type eosRun struct {
	src     *kafka.Source[event]
	batches atomic.Int64
	cancel  context.CancelFunc
	done    chan error
}

// startEOS runs events -> repeats -> an exactly-once Producer to alerts. Once crashAfter
// batches with alerts ran (0: never), the process "dies": no output is written and no
// commit reaches Kafka from then on, as if it had been killed between the outputs of a batch
// and its commit.
func startEOS(t *testing.T, brokers []string, group, topic, alerts string, crashAfter int64, opts ...kafka.SourceOption) *eosRun {
	t.Helper()
	return startEOSWith(t, brokers, group, topic, alerts, crashAfter, nil, opts...)
}

// startEOSWith is startEOS with more of the pipeline: branch, if not nil, adds operators
// and sinks of its own on the events.
func startEOSWith(t *testing.T, brokers []string, group, topic, alerts string, crashAfter int64, branch func(*stream.Stream[event]), opts ...kafka.SourceOption) *eosRun {
	t.Helper()
	src, err := kafka.NewSource(consumerConfig(brokers, group, topic), kafka.JSON[event](), opts...)
	require.NoError(t, err)
	prod, err := kafka.NewProducer(kafka.Config{Brokers: brokers}, alerts, kafka.KeyValue(
		func(s string) []byte { return []byte(s[:6]) },
		func(s string) ([]byte, error) { return []byte(s), nil }), kafka.WithExactlyOnce(src))
	require.NoError(t, err)
	r := &eosRun{src: src, done: make(chan error, 1)}
	var dead atomic.Bool
	p, err := stream.New(50*time.Millisecond, stream.WithIdleTimeout(0), stream.WithName("kafka-eos-test"), stream.WithBuffer(1000, 0),
		stream.WithRetry(stream.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}))
	require.NoError(t, err)
	events := stream.From[event](p, crashSource{src, &dead})
	if branch != nil {
		branch(events)
	}
	out := stream.Apply(events, "repeats", stream.Operator[event, string](&repeats{parts: map[int32]map[string][]int64{}}))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	stream.To(out, stream.SinkFunc[string](func(ctx context.Context, batch []string) error {
		if dead.Load() {
			return errCrashed
		}
		if err := prod.Write(ctx, batch); err != nil {
			return err
		}
		if len(batch) > 0 && r.batches.Add(1) >= crashAfter && crashAfter > 0 {
			dead.Store(true) // the batch's messages are in the transaction; its commit never comes
			cancel()
		}
		return nil
	}))
	go func() {
		err := p.Run(ctx)
		r.done <- errors.Join(err, prod.Close(context.Background()))
	}()
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

// crashSource drops commits once the process is dead.
type crashSource struct {
	*kafka.Source[event]
	dead *atomic.Bool
}

func (c crashSource) Commit(ctx context.Context, pos []stream.Position) error {
	if c.dead.Load() {
		return nil
	}
	return c.Source.Commit(ctx, pos)
}

// eosTopics creates an input topic holding events 0..n-1 and an alerts topic, both of
// parts partitions, on the test's brokers.
func eosTopics(t *testing.T, prefix string, n, parts int) (brokers []string, topic, alerts string) {
	t.Helper()
	brokers = testenv.KafkaBrokers(t)
	topic = newTopic(t, brokers, prefix+"-in", int32(parts))
	alerts = newTopic(t, brokers, prefix+"-alerts", int32(parts))
	produceEvents(t, brokers, topic, parts, 0, n)
	return brokers, topic, alerts
}

// readCommitted reads topic with isolation level read_committed up to a plain sentinel
// message that it first writes to every partition, and returns the values of the others.
func readCommitted(t *testing.T, brokers []string, topic string, parts int) []string {
	t.Helper()
	var sent []*sarama.ProducerMessage
	for p := range parts {
		sent = append(sent, &sarama.ProducerMessage{Topic: topic, Partition: int32(p), Value: sarama.StringEncoder("~end")})
	}
	produce(t, brokers, sent)
	c := saramaConfig()
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	cons, err := sarama.NewConsumer(brokers, c)
	require.NoError(t, err)
	defer func() { require.NoError(t, cons.Close()) }()
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for p := range parts {
		pc, err := cons.ConsumePartition(topic, int32(p), sarama.OffsetOldest)
		require.NoError(t, err)
		wg.Go(func() {
			defer func() { _ = pc.Close() }()
			timeout := time.After(waitFor)
			for {
				select {
				case m := <-pc.Messages():
					if string(m.Value) == "~end" {
						return
					}
					mu.Lock()
					got = append(got, string(m.Value))
					mu.Unlock()
				case <-timeout:
					t.Errorf("partition %d: no sentinel within %v", p, waitFor)
					return
				}
			}
		})
	}
	wg.Wait()
	return got
}

// TestExactlyOnceProducerAfterCrashes crashes an exactly-once pipeline three times, each
// between a batch's outputs and its commit, at different points of the stream, and finishes
// with a backfill run. Read with read_committed, the alerts topic then holds every alert of
// an uninterrupted run exactly once: the aborted (never committed) batches are made again,
// and what a replay from the committed checkpoints emits a second time is not written.
func TestExactlyOnceProducerAfterCrashes(t *testing.T) {
	t.Parallel()
	const n, parts = 30_000, 6
	brokers, topic, alerts := eosTopics(t, "eos", n, parts)
	group := testenv.UniqueName(t, "g-eos")
	rc := kafka.WithReadCommitted()

	var dups int64
	for i, crashAfter := range []int64{3, 8, 5} {
		r := startEOS(t, brokers, group, topic, alerts, crashAfter, rc)
		select {
		case err := <-r.done:
			r.done <- err
			require.ErrorIs(t, err, context.Canceled, "crash %d", i+1)
		case <-time.After(waitFor):
			t.Fatalf("crash %d did not come", i+1)
		}
		dups += r.src.Duplicates()
		t.Logf("crash %d after %d batches with alerts; committed %v; %d replayed alerts not written again", i+1, crashAfter,
			committedOffsets(t, brokers, group, topic, parts), r.src.Duplicates())
	}
	last := startEOS(t, brokers, group, topic, alerts, 0, rc, kafka.WithBounded())
	select {
	case err := <-last.done:
		last.done <- err
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("the last run did not end")
	}
	dups += last.src.Duplicates()
	requireCommittedAtEnd(t, brokers, group, topic, parts)

	want := expectedAlerts(n)
	got := readCommitted(t, brokers, alerts, parts)
	count := map[string]int{}
	for _, a := range got {
		count[a]++
	}
	var extra, twice, missing []string
	for a, c := range count {
		if !want[a] {
			extra = append(extra, a)
		}
		if c > 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", a, c))
		}
	}
	for a := range want {
		if count[a] == 0 {
			missing = append(missing, a)
		}
	}
	t.Logf("%d alerts read with read_committed, %d expected; %d replayed alerts dropped", len(got), len(want), dups)
	require.Empty(t, twice, "alerts written more than once")
	require.Empty(t, missing, "alerts missing")
	require.Empty(t, extra, "alerts that an uninterrupted run does not raise")
	require.Len(t, got, len(want))
	// The replays did emit alerts again (else this test proves nothing about them).
	require.Positive(t, dups, "replayed alerts that the read-back dropped")
}
