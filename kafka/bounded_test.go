package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestSourceBoundedTwoInstancesHeldCommits: two bounded instances in one group, each with a
// window that holds the commit of its partitions back to the first record of their open
// windows until their input ends. A reads part of the partitions, then B joins and takes
// some of them over. The committed offsets stay behind the ends as long as the windows are
// open, which, before each partition's input ended by itself, they were until the whole
// input ended; and the input of each instance ended only once the group's committed offsets
// of the other's partitions reached their ends: each waited for the other for ever. Both
// runs must end by themselves, with nil, and together give one instance's results; with
// exactly once (the Sources' commits in transactions) too, where A, held past the wait for
// its revoked partitions, stops and is restarted, and the output topic holds each record's
// id once.
func TestSourceBoundedTwoInstancesHeldCommits(t *testing.T) {
	t.Parallel()
	for _, eos := range []bool{false, true} {
		t.Run("exactly-once="+strconv.FormatBool(eos), func(t *testing.T) {
			t.Parallel()
			boundedTwoInstances(t, eos)
		})
	}
}

func boundedTwoInstances(t *testing.T, eos bool) {
	brokers := testenv.KafkaBrokers(t)
	const n, parts = 8000, 4
	topic := newTopic(t, brokers, "bounded-two", parts)
	produceEvents(t, brokers, topic, parts, 0, n)
	out := topic + "-out"
	if eos {
		createTopic(t, brokers, out, parts)
	}
	group := testenv.UniqueName(t, "g-bounded-two")
	cfg := consumerConfig(brokers, group, topic)
	// A held member lets go of a revoked partition after 4/5 of this, without its pipeline.
	cfg.Rebalance.Timeout = 4 * time.Second

	ids, res := newIDSet(), newResults()
	// Both instances' logs, shown if the test fails: the order of rebalances and commits is
	// what a failure of this test turns on.
	var logbuf syncbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the instances' logs:\n%s", logbuf.String())
		}
	})
	spec := func(name string, hold func(context.Context) error) pipelineSpec {
		lg := slog.New(slog.NewTextHandler(&logbuf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("instance", name)
		s := pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithBounded(), kafka.WithLogger(lg)}, ids: ids, results: res,
			popts: []stream.Option{stream.WithLogger(lg)}}
		var prod *kafka.Producer[event]
		if eos {
			// The records' ids go to a topic in the Source's transactions.
			s.opts = append(s.opts, kafka.WithTransactionalID(group+"-"+name))
			s.wrap = func(src *kafka.Source[event]) source {
				prod = idProducer(t, brokers, out, src)
				return src
			}
		}
		s.onBatch = func(ctx context.Context, batch []event) error {
			if len(batch) == 0 {
				return nil
			}
			if hold != nil {
				if err := hold(ctx); err != nil {
					return err
				}
			}
			if prod != nil {
				return prod.Write(ctx, batch)
			}
			return nil
		}
		return s
	}

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	holdFirst := func(ctx context.Context) error {
		once.Do(func() { close(held) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// A's small buffer: it has read at most a few hundred records when its first batch is
	// held, far from the end of any partition.
	sa := spec("a", holdFirst)
	sa.buffer = 200
	a := startPipeline(t, sa)
	select {
	case <-held:
	case err := <-a.done:
		t.Fatalf("A ended before its first batch: %v", err)
	case <-time.After(waitFor):
		t.Fatal("A read nothing")
	}
	require.Less(t, ids.distinct(), n/parts, "A has read only part of the partitions")

	b := startPipeline(t, spec("b", nil))
	// A, held, lets its revoked partitions go after the revocation's wait; B claims them.
	require.Eventually(t, func() bool { return b.owned() > 0 }, waitFor, 20*time.Millisecond, "B owns partitions")
	close(release)

	if eos {
		// A's held batch may hold records of the partitions B took over: its output cannot
		// commit, so A stops; restarted, it replays from the committed checkpoints. Before,
		// A's transaction committed that output while B replayed the same records: about
		// 128 ids twice in the output topic.
		select {
		case err := <-a.done:
			a.done <- err
			require.ErrorIs(t, err, kafka.ErrTransaction, "A stops: the revocation of a partition its held batch may hold timed out")
			require.ErrorContains(t, err, "did not let it go within")
		case <-time.After(waitFor):
			t.Fatal("A, held past the revocation's wait, did not stop")
		}
		a = startPipeline(t, spec("a", nil))
	}

	errs := make(chan error, 2)
	for _, r := range []*running{a, b} {
		go func() {
			select {
			case err := <-r.done:
				r.done <- err
				errs <- err
			case <-time.After(waitFor):
				errs <- errors.New("did not end")
			}
		}()
	}
	for range 2 {
		err := <-errs
		if err != nil {
			t.Logf("ends %v, committed %v; A read %v, B read %v", endOffsets(t, brokers, topic),
				committedOffsets(t, brokers, group, topic, parts), a.src.Stats().Read, b.src.Stats().Read)
		}
		require.NoError(t, err, "each bounded run ends by itself with nil within %v (they waited for each other)", waitFor)
	}
	require.Equal(t, n, ids.distinct(), "every record read, e.g. missing %v", ids.missing(n))
	require.Equal(t, expectedResults(n), res.snapshot(), "the two instances' results are one instance's")
	if eos {
		got := readCommitted(t, brokers, out, parts)
		count := map[string]int{}
		var twice []string
		for _, v := range got {
			if count[v]++; count[v] == 2 {
				twice = append(twice, v)
			}
		}
		require.Empty(t, twice, "ids written twice to the output topic (read_committed)")
		require.Len(t, count, n, "every id in the output topic")
	}
}
