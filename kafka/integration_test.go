package kafka_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/testenv"
)

func TestSourceDeliversEverythingAndCommitsEnd(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const n, parts = 100_000, 6
	topic := newTopic(t, brokers, "all", parts)
	produceEvents(t, brokers, topic, parts, 0, n)
	group := testenv.UniqueName(t, "g-all")

	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: ids})
	require.Eventually(t, func() bool { return ids.distinct() == n }, waitFor, 20*time.Millisecond,
		"missing ids, e.g. %v", ids.missing(n))
	requireCommittedAtEnd(t, brokers, group, topic, parts)

	st := r.p.Stats().Source
	require.GreaterOrEqual(t, st.Records, int64(n))
	require.Positive(t, st.Bytes)
	require.Eventually(t, func() bool {
		lag := r.src.Stats().Lag
		var sum int64
		for _, l := range lag {
			sum += l
		}
		return len(lag) == parts && sum == 0
	}, waitFor, 20*time.Millisecond)
	require.ErrorIs(t, r.stop(t), context.Canceled)
}

func TestSourceBoundedEndsAtStartOffsets(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts = 3
	topic := newTopic(t, brokers, "bounded", parts)
	produceEvents(t, brokers, topic, parts, 0, 5000)
	group := testenv.UniqueName(t, "g-bounded")
	cfg := consumerConfig(brokers, group, topic)

	ids, res := newIDSet(), newResults()
	r := startPipeline(t, pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithBounded()}, ids: ids, results: res})
	require.NoError(t, r.wait(t), "a bounded run ends by itself with nil")
	require.Equal(t, 5000, ids.distinct())
	require.Equal(t, expectedResults(5000), res.snapshot(), "end of input closes every window")
	requireCommittedAtEnd(t, brokers, group, topic, parts)

	// A second backfill in the same group reads only what came since.
	produceEvents(t, brokers, topic, parts, 5000, 6000)
	ids2 := newIDSet()
	r2 := startPipeline(t, pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithBounded()}, ids: ids2})
	require.NoError(t, r2.wait(t))
	require.Equal(t, 1000, ids2.distinct())
	require.Equal(t, 1000, ids2.total, "nothing read twice after a clean end")
	requireCommittedAtEnd(t, brokers, group, topic, parts)
}

func TestSourceEndWhenCaughtUp(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts = 3
	topic := newTopic(t, brokers, "caughtup", parts)
	produceEvents(t, brokers, topic, parts, 0, 4000)
	group := testenv.UniqueName(t, "g-caughtup")
	ids, res := newIDSet(), newResults()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic),
		opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond)}, ids: ids, results: res})
	require.NoError(t, r.wait(t), "the run ends by itself once caught up")
	require.Equal(t, 4000, ids.distinct())
	require.Equal(t, expectedResults(4000), res.snapshot(), "ending the input closes every window")
	requireCommittedAtEnd(t, brokers, group, topic, parts)
}

// TestSourceEndWhenCaughtUpWaitsForTrickle keeps producing small batches more often than the
// idle time while the pipeline keeps up with them: the input must not end until they stop.
func TestSourceEndWhenCaughtUpWaitsForTrickle(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts, batches, per = 3, 12, 50
	topic := newTopic(t, brokers, "trickle", parts)
	group := testenv.UniqueName(t, "g-trickle")
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic),
		opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(time.Second)}, ids: ids})
	// The producer's pace is the scenario under test (arrivals 250 ms apart, for 3 s), not a
	// synchronisation. One producer for the whole trickle: a new one per batch connects and
	// fetches metadata first, which on loaded cores took long enough to leave a gap over the
	// idle time (a make test run with other steps beside the main run: 550 of 600 read).
	prod, err := sarama.NewSyncProducer(brokers, saramaConfig())
	require.NoError(t, err)
	defer func() { require.NoError(t, prod.Close()) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for b := range batches {
		<-tick.C
		msgs, err := eventMessages(topic, parts, b*per, (b+1)*per)
		require.NoError(t, err)
		require.NoError(t, prod.SendMessages(msgs))
	}
	require.NoError(t, r.wait(t))
	require.Equal(t, batches*per, ids.distinct(), "the input ended only after the trickle stopped")
}

// TestSourcesEndWhenCaughtUpTogether: two Sources of one pipeline share the option of
// WithEndWhenCaughtUp. One's topic stays quiet for three times the idle time while the other's
// records trickle in, and then gets more records. The inputs end together, once both are
// idle, so those records are read too. With an option for each Source, the quiet one ended
// its input after the idle time and the pipeline never read them (as fleetpipeline
// -exit-when-idle did with a quiet -requests-topic).
func TestSourcesEndWhenCaughtUpTogether(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts, batches, per = 3, 12, 50
	quiet := newTopic(t, brokers, "together-quiet", parts)
	busy := newTopic(t, brokers, "together-busy", parts)
	produceEvents(t, brokers, quiet, parts, 0, per)
	group := testenv.UniqueName(t, "g-together")
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, quiet), also: consumerConfig(brokers, group, busy),
		opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(time.Second)}, ids: ids})
	// The producer's pace is the scenario under test (arrivals 250 ms apart, for 3 s), not a
	// synchronisation.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for b := 1; b <= batches; b++ {
		<-tick.C
		produceEvents(t, brokers, busy, parts, b*per, (b+1)*per)
	}
	produceEvents(t, brokers, quiet, parts, (batches+1)*per, (batches+2)*per)
	require.NoError(t, r.wait(t))
	require.Empty(t, ids.missing((batches+2)*per), "records not read before the inputs ended")
	require.Equal(t, (batches+2)*per, ids.distinct())
}

// crashable drops commits once crashed: what a killed process would have committed. Until
// then it counts the partitions that had a commit past their first record.
type crashable struct {
	*kafka.Source[event]
	crashed *atomic.Bool
	mu      *sync.Mutex
	past    map[int32]bool
}

func (c crashable) Commit(ctx context.Context, pos []stream.Position) error {
	if c.crashed.Load() {
		return nil
	}
	if err := c.Source.Commit(ctx, pos); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pos {
		if p.Offset > 0 {
			c.past[p.Partition] = true
		}
	}
	return nil
}

func (c crashable) committedParts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.past)
}

// TestSourceCrashReplay simulates a crash: after a number of batches, once every partition
// had a commit (commits wait for the event-time windows to close, so how many batches that
// takes depends on how records fall into batches), an output marks the process dead and
// cancels the pipeline. From then on no output records anything and no
// commit reaches Kafka (the Source is wrapped), so Kafka holds exactly what a killed process
// would have committed. The consumer still leaves the group cleanly on the way out, which
// only spares the next instance the session timeout.
func TestSourceCrashReplay(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const n, parts = 60_000, 6
	topic := newTopic(t, brokers, "crash", parts)
	produceEvents(t, brokers, topic, parts, 0, n)
	group := testenv.UniqueName(t, "g-crash")

	ids, res := newIDSet(), newResults()
	dead := new(atomic.Bool)
	var batches atomic.Int64
	crash := make(chan struct{})
	var c crashable
	r1 := startPipeline(t, pipelineSpec{
		cfg: consumerConfig(brokers, group, topic), ids: ids, results: res, dead: dead, buffer: 2000,
		wrap: func(s *kafka.Source[event]) source {
			c = crashable{s, dead, new(sync.Mutex), map[int32]bool{}}
			return c
		},
		onBatch: func(ctx context.Context, batch []event) error {
			if len(batch) > 0 && batches.Add(1) >= 8 && c.committedParts() == parts && !dead.Load() {
				dead.Store(true)
				close(crash)
			}
			return nil
		},
	})
	select {
	case <-crash:
	case <-time.After(waitFor):
		t.Fatal("no crash")
	}
	r1.cancel()
	require.NoError(t, waitErr(t, r1), "the crashed run ends")
	seen := ids.distinct()
	require.Positive(t, seen)
	require.Less(t, seen, n, "the crash came before the end")
	committed := committedOffsets(t, brokers, group, topic, parts)
	t.Logf("crashed after %d ids; committed %v", seen, committed)
	for p, off := range committed {
		require.Positive(t, off, "partition %d: the crashed run had committed part of it", p)
		require.Less(t, off, int64(n/parts), "partition %d: but not all of it", p)
	}

	// The next instance resumes from the committed offsets and finishes as a backfill.
	r2 := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), opts: []kafka.SourceOption{kafka.WithBounded()}, ids: ids, results: res})
	require.NoError(t, r2.wait(t))
	require.Empty(t, ids.missing(n), "every record reached the sink at least once")

	// An uninterrupted run in another group gives the reference results.
	ref := newResults()
	r3 := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, testenv.UniqueName(t, "g-ref"), topic), opts: []kafka.SourceOption{kafka.WithBounded()}, results: ref})
	require.NoError(t, r3.wait(t))
	require.Equal(t, expectedResults(n), ref.snapshot())
	require.Equal(t, ref.snapshot(), res.snapshot(), "both runs together wrote the uninterrupted results")
}

// waitErr waits for a pipeline that was cancelled from inside and maps the cancellation to nil.
func waitErr(t *testing.T, r *running) error {
	t.Helper()
	err := r.wait(t)
	if err != nil && strings.Contains(err.Error(), context.Canceled.Error()) {
		return nil
	}
	return err
}

func TestSourceScaleOutAndIn(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const third, parts = 20_000, 6
	const n = 3 * third
	topic := newTopic(t, brokers, "scale", parts)
	group := testenv.UniqueName(t, "g-scale")
	produceEvents(t, brokers, topic, parts, 0, third)

	ids, res := newIDSet(), newResults()
	idsA, idsB := newIDSet(), newIDSet()
	both := func(own *idSet) func(context.Context, []event) error {
		return func(_ context.Context, b []event) error { own.add(b); return nil }
	}
	a := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: ids, results: res, onBatch: both(idsA)})
	require.Eventually(t, func() bool { return idsA.distinct() >= third/4 && a.owned() == parts }, waitFor, 20*time.Millisecond)

	b := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: ids, results: res, onBatch: both(idsB)})
	require.Eventually(t, func() bool {
		oa, ob := a.owned(), b.owned()
		return ob > 0 && oa > 0 && oa+ob == parts
	}, waitFor, 20*time.Millisecond, "partitions move to the new member")
	t.Logf("after join: A owns %d, B owns %d", a.owned(), b.owned())
	produceEvents(t, brokers, topic, parts, third, 2*third)
	require.Eventually(t, func() bool { return ids.distinct() >= 2*third-100 }, waitFor, 20*time.Millisecond)
	require.Positive(t, idsB.distinct(), "the new member processed records")

	require.ErrorIs(t, a.stop(t), context.Canceled)
	require.Eventually(t, func() bool { return b.owned() == parts }, waitFor, 20*time.Millisecond, "partitions move back when a member leaves")
	produceEvents(t, brokers, topic, parts, 2*third, n)
	produceSentinels(t, brokers, topic, parts)

	want := expectedResults(n)
	require.Eventually(t, func() bool { return ids.distinct() == n }, waitFor, 20*time.Millisecond, "missing %v", ids.missing(n))
	require.Eventually(t, func() bool { return len(res.snapshot()) == len(want) }, waitFor, 20*time.Millisecond)
	require.Equal(t, want, res.snapshot(), "the union of both members' results is a single instance's")

	ref := newResults()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, testenv.UniqueName(t, "g-ref"), topic), opts: []kafka.SourceOption{kafka.WithBounded()}, results: ref})
	require.NoError(t, r.wait(t))
	require.Equal(t, ref.snapshot(), res.snapshot())
	require.NoError(t, ignoreCanceled(b.stop(t)))
	// The sentinel's window (a day later) is still open, so it holds its record uncommitted.
	requireCommitted(t, brokers, group, topic, parts, 1)
}

func ignoreCanceled(err error) error {
	if err != nil && strings.Contains(err.Error(), context.Canceled.Error()) {
		return nil
	}
	return err
}

func TestSourceDeadLetters(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts = 3
	topic := newTopic(t, brokers, "poison", parts)
	createTopic(t, brokers, topic+".dlq", 1)

	valid := func(i int) string {
		return `{"cab_id":"CAB-` + strconv.Itoa(i) + `","ts":"2026-11-25T10:00:00.000Z","lat":41.15,"lon":-8.62,"speed_kmh":30}`
	}
	poison := []string{
		`not json at all`,
		`{"cab_id":"CAB-9","ts":"2026-11-25T10:00:00Z","lat":200,"lon":0}`,
		`{"cab_id":"","ts":"2026-11-25T10:00:00Z","lat":1,"lon":2}`,
	}
	var msgs []*sarama.ProducerMessage
	wantBad := map[string]string{} // "partition/offset" -> value
	wantReasons := map[string]int64{}
	next := make([]int64, parts)
	add := func(p int32, v string, bad bool) {
		m := &sarama.ProducerMessage{Topic: topic, Partition: p, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)}
		if bad {
			// Not JSON cannot be decoded; the others decode but are refused (telemetry's
			// DecodeError says so: InvalidRecord).
			if v == poison[0] {
				wantReasons[stream.ReasonDecode]++
			} else {
				wantReasons[stream.ReasonInvalid]++
			}
			m.Headers = []sarama.RecordHeader{{Key: []byte("trace-id"), Value: []byte("t-" + strconv.Itoa(len(wantBad)))}}
			wantBad[strconv.Itoa(int(p))+"/"+strconv.FormatInt(next[p], 10)] = v
		}
		next[p]++
		msgs = append(msgs, m)
	}
	nValid := 0
	for i := range 300 {
		p := int32(i % parts)
		if i%50 == 7 {
			add(p, poison[i%len(poison)], true)
			continue
		}
		add(p, valid(i), false)
		nValid++
	}
	// The last record of every partition is poison: its offset must still get committed.
	for p := range int32(parts) {
		add(p, poison[int(p)%len(poison)], true)
	}
	produce(t, brokers, msgs)

	group := testenv.UniqueName(t, "g-poison")
	codec := kafka.CodecFunc[telemetry.Event](func(m *kafka.Message) (telemetry.Event, time.Time, error) {
		e, err := telemetry.Decode(m.Value)
		return e, e.Time, err
	})
	src, err := kafka.NewSource(consumerConfig(brokers, group, topic), codec, kafka.WithBounded())
	require.NoError(t, err)
	p, err := stream.New(50 * time.Millisecond)
	require.NoError(t, err)
	var got atomic.Int64
	stream.To(stream.From(p, src), stream.SinkFunc[telemetry.Event](func(_ context.Context, b []telemetry.Event) error {
		got.Add(int64(len(b)))
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, p.Run(ctx), "poison never stops the pipeline")
	require.Equal(t, int64(nValid), got.Load())
	require.Equal(t, int64(len(wantBad)), src.DeadLettered())
	requireCommittedAtEnd(t, brokers, group, topic, parts)

	// Read the dead-letter topic back.
	consumer, err := sarama.NewConsumer(brokers, saramaConfig())
	require.NoError(t, err)
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic+".dlq", 0, sarama.OffsetOldest)
	require.NoError(t, err)
	defer pc.Close()
	reasons := map[string]int64{}
	for range len(wantBad) {
		select {
		case m := <-pc.Messages():
			h := map[string]string{}
			for _, x := range m.Headers {
				h[string(x.Key)] = string(x.Value)
			}
			reasons[h[kafka.HeaderReason]]++
			require.Equal(t, topic, h[kafka.HeaderSourceTopic])
			where := h[kafka.HeaderSourcePartition] + "/" + h[kafka.HeaderSourceOffset]
			want, ok := wantBad[where]
			require.True(t, ok, "unexpected dead letter from %s", where)
			require.Equal(t, want, string(m.Value), "original bytes")
			require.Equal(t, "k", string(m.Key))
			require.Contains(t, h[kafka.HeaderError], "telemetry:")
			require.Contains(t, h, "trace-id", "original headers kept")
			delete(wantBad, where)
		case <-time.After(waitFor):
			t.Fatalf("dead letters missing: %v", wantBad)
		}
	}
	require.Empty(t, wantBad)
	// The source counts them by reason as the dead-letter topic's headers say: the codec
	// returns telemetry.Decode's errors as they are, and the invalid ones say so.
	require.Equal(t, wantReasons, reasons)
	require.Len(t, wantReasons, 2)
	require.Equal(t, reasons, src.Stats().DeadLettersByReason)
}

func TestSourceSCRAM(t *testing.T) {
	t.Parallel()
	sc := testenv.KafkaSCRAM(t)
	plain := testenv.KafkaBrokers(t)
	topic := newTopic(t, plain, "scram", 2)
	auth := kafka.SASL{Mechanism: kafka.Mechanism(sc.Mechanism), User: sc.User, Password: sc.Password}

	prod, err := kafka.NewProducer(kafka.Config{Brokers: sc.Brokers, SASL: auth}, topic, kafka.JSONValue(func(e event) []byte { return []byte(e.Key) }))
	require.NoError(t, err)
	batch := make([]event, 500)
	for i := range batch {
		batch[i] = mkEvent(i)
	}
	require.NoError(t, prod.Write(t.Context(), batch))
	require.NoError(t, prod.Close(t.Context()))
	require.Equal(t, int64(500), prod.Sent())

	cfg := consumerConfig(sc.Brokers, testenv.UniqueName(t, "g-scram"), topic)
	cfg.SASL = auth
	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithBounded()}, ids: ids})
	require.NoError(t, r.wait(t))
	require.Equal(t, 500, ids.distinct())

	t.Run("WrongPassword", func(t *testing.T) {
		const wrong = "not-the-password-3f9a"
		bad := cfg
		bad.SASL.Password = wrong
		src, err := kafka.NewSource(bad, kafka.JSON[event]())
		require.NoError(t, err)
		p, err := stream.New(50 * time.Millisecond)
		require.NoError(t, err)
		stream.To(stream.From(p, src), stream.SinkFunc[event](func(context.Context, []event) error { return nil }))
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		defer cancel()
		err = p.Run(ctx)
		require.Error(t, err)
		require.ErrorIs(t, err, sarama.ErrSASLAuthenticationFailed)
		require.Contains(t, err.Error(), "authentication failed")
		require.Contains(t, err.Error(), sc.User)
		require.NotContains(t, err.Error(), wrong)
		t.Logf("error: %v", err)

		prod, err := kafka.NewProducer(bad, topic, kafka.JSONValue[event](nil))
		require.NoError(t, err)
		err = prod.Write(t.Context(), batch[:1])
		require.ErrorIs(t, err, sarama.ErrSASLAuthenticationFailed)
		require.NotContains(t, err.Error(), wrong)
	})
}

// TestFaultSourceBrokerRestart stops and restarts the shared Kafka broker, so it runs in the
// fault step of make test (see testenv.FaultTest).
func TestFaultSourceBrokerRestart(t *testing.T) {
	testenv.FaultTest(t)
	brokers := testenv.KafkaBrokers(t)
	const half, parts = 20_000, 6
	topic := newTopic(t, brokers, "restart", parts)
	group := testenv.UniqueName(t, "g-restart")
	produceEvents(t, brokers, topic, parts, 0, half)

	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), ids: ids})
	require.Eventually(t, func() bool { return ids.distinct() >= half/2 }, waitFor, 10*time.Millisecond)
	require.True(t, r.p.Stats().Source.FailingSince.IsZero(), "the cluster answers: no outage reported")

	// While the broker is down the Source says so in its stats, and the pipeline's stats
	// carry it (the run loop keeps turning): health checks read it there.
	testenv.StopService(t, "kafka")
	require.Eventually(t, func() bool {
		st := r.p.Stats().Source
		return !st.FailingSince.IsZero() && st.LastError != ""
	}, waitFor, 50*time.Millisecond, "the outage reported in the pipeline's source stats")
	t.Logf("during the outage: %q", r.p.Stats().Source.LastError)
	testenv.StartService(t, "kafka")
	produceEvents(t, brokers, topic, parts, half, 2*half)
	require.Eventually(t, func() bool { return ids.distinct() == 2*half }, 2*waitFor, 20*time.Millisecond,
		"missing after the restart, e.g. %v", ids.missing(2*half))
	requireCommittedAtEnd(t, brokers, group, topic, parts)
	require.Eventually(t, func() bool { return r.p.Stats().Source.FailingSince.IsZero() }, waitFor, 50*time.Millisecond,
		"the outage cleared once the cluster answers")
}

// TestSourceReadCountsDeadLettersAtEnd: the source reports, per partition, its read offset
// and end (SourceStats.Read and End). Undecodable records at a partition's end are read
// (dead-lettered), so the read offset reaches the end although the pipeline's own read
// position (PartitionStats.Next) stops before them: the read lag is 0, not the dead letters.
func TestSourceReadCountsDeadLettersAtEnd(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts, valid, poison = 2, 5, 3
	topic := newTopic(t, brokers, "readend", parts)
	createTopic(t, brokers, topic+".dlq", 1)
	var msgs []*sarama.ProducerMessage
	for p := range int32(parts) {
		for i := range valid + poison {
			v := `{"cab_id":"CAB-1","ts":"2026-11-25T10:00:0` + strconv.Itoa(i) + `Z","lat":41.15,"lon":-8.62}`
			if i >= valid {
				v = `not json`
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder(v)})
		}
	}
	produce(t, brokers, msgs)

	codec := kafka.CodecFunc[telemetry.Event](func(m *kafka.Message) (telemetry.Event, time.Time, error) {
		e, err := telemetry.Decode(m.Value)
		return e, e.Time, err
	})
	src, err := kafka.NewSource(consumerConfig(brokers, testenv.UniqueName(t, "g-readend"), topic), codec)
	require.NoError(t, err)
	p, err := stream.New(50 * time.Millisecond)
	require.NoError(t, err)
	stream.To(stream.From(p, src), stream.SinkFunc[telemetry.Event](func(context.Context, []telemetry.Event) error { return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()

	const end = valid + poison
	require.Eventually(t, func() bool {
		st := p.Stats()
		if len(st.Source.Read) != parts || len(st.PartitionStats) != parts {
			return false
		}
		for _, ps := range st.PartitionStats {
			if ps.Next != valid {
				return false
			}
		}
		for part := range parts {
			name := topic + "/" + strconv.Itoa(part)
			if st.Source.Read[name] != end || st.Source.End[name] != end {
				return false
			}
		}
		return true
	}, waitFor, 20*time.Millisecond, "every partition read to its end, %d, the pipeline to %d: %+v", end, valid, p.Stats())
	require.Equal(t, int64(parts*poison), src.DeadLettered())
}

// TestSourceEndWhenCaughtUpWaitsForOtherPartitions: two Sources of one group share a topic
// of two partitions; records keep arriving in one partition only, more often than the idle
// time. The Source that owns the idle partition must not end while the other partition still
// receives records (its partitions would be ended for good, and what reached them after a
// rebalance would be late); both end once the records stop.
func TestSourceEndWhenCaughtUpWaitsForOtherPartitions(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts = 2
	topic := newTopic(t, brokers, "caughtup-group", parts)
	group := testenv.UniqueName(t, "g-caughtup-group")
	idsA, idsB := newIDSet(), newIDSet()
	idle := kafka.WithEndWhenCaughtUp(time.Second)
	a := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), opts: []kafka.SourceOption{idle}, ids: idsA})
	b := startPipeline(t, pipelineSpec{cfg: consumerConfig(brokers, group, topic), opts: []kafka.SourceOption{idle}, ids: idsB})
	// The producer's pace is the scenario (a record in partition 1 every 250 ms, a quarter of
	// the idle time), not a synchronisation: from the start, so that no Source ends while the
	// other is still joining (on a busy machine that can take longer than the idle time), and
	// for 4 s once each Source owns one partition.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(waitFor)
	sent, after := 0, -1
	for after < 16 {
		<-tick.C
		e := mkEvent(1000 + sent)
		v, err := json.Marshal(e)
		require.NoError(t, err)
		produce(t, brokers, []*sarama.ProducerMessage{{Topic: topic, Partition: 1, Key: sarama.StringEncoder(e.Key), Value: sarama.ByteEncoder(v)}})
		sent++
		require.False(t, a.ended() || b.ended(), "a Source ended while partition 1 still received records (after %d)", sent)
		if after < 0 && a.owned() == 1 && b.owned() == 1 {
			after = 0
		}
		if after >= 0 {
			after++
		}
		require.True(t, after >= 0 || time.Now().Before(deadline), "each Source owns one partition")
	}
	require.NoError(t, a.wait(t))
	require.NoError(t, b.wait(t))
	require.Equal(t, sent, idsA.distinct()+idsB.distinct(), "every record read once")
}
