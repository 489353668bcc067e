package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// TestRepartitionFirstRecordsAtEnd: a repartition's partitions assigned only after every
// upstream partition ended (a Kafka consumer that joined the group late), whose values and
// end marks then come in one batch, commit what any other commit of theirs would carry: the
// operators' checkpoint (their parameters) and the marks with the inputs' names, at the
// position they started from, with one entry that the end marks read are this run's ("l,"),
// however many batches follow. They committed the start offset with the marks entry alone,
// and one more "l," every batch after ("|x1;l,b;l,b;"): a restart on another input then
// found no names to check and ran as if it were the same (see TestRepartitionInputChanged).
func TestRepartitionFirstRecordsAtEnd(t *testing.T) {
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Second))
	q, src := streamtest.NewQueue[keyed](h)
	q.SetPartitions(2)
	q.SetInputs("rides")
	pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
	ex := &stagedExchange[stream.Pair[string, int64]]{Exchange: streamtest.NewExchange(log), log: log}
	sums, err := window.Aggregate(stream.Repartition(pairs, "keys", ex), func(p stream.Pair[string, int64]) string { return p.Key },
		func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(10*time.Second), window.Sum[int64]())
	require.NoError(t, err)
	final := streamtest.Collect(sums.Results().Filter(func(r window.Result[string, int64]) bool { return r.Final }))
	for p := range int32(2) {
		for i := range int64(3) {
			q.Add(stream.Record[keyed]{Value: keyed{"k" + string(rune('a'+i)), 1}, Partition: p, Offset: i, EventTime: streamtest.Epoch.Add(time.Duration(i) * time.Second)})
		}
	}
	q.End()
	// The upstream runs to its end: every downstream partition holds both upstream
	// partitions' end marks, and nothing of it was read.
	for range 10 {
		h.Step()
	}
	for p := range int32(2) {
		ends := 0
		for _, r := range log.Records(p) {
			if r.Mark && r.End {
				ends++
			}
		}
		require.Equal(t, 2, ends, "partition %d: the upstream partitions' end marks", p)
	}
	require.Empty(t, log.Committed())

	ex.in.Assign(0, 1) // a batch with the partitions and none of their records
	h.Step()
	require.Empty(t, log.Committed())
	ex.pushAll(t) // then their values and end marks in one batch
	for range 5 {
		h.Step()
	}
	got := map[string]int64{}
	for _, r := range final.Slice() {
		got[r.Key] += r.Value
	}
	require.Equal(t, map[string]int64{"ka": 2, "kb": 2, "kc": 2}, got, "every window, once")

	committed := log.Committed()
	require.Len(t, committed, 2)
	for _, cp := range committed {
		ops, marks, ok := strings.Cut(cp.Meta, "|")
		require.True(t, ok, "partition %d: %q", cp.Partition, cp.Meta)
		require.NotEmpty(t, ops, "partition %d: the operators' checkpoint, with their parameters: %q", cp.Partition, cp.Meta)
		require.Contains(t, marks, ";i,", "partition %d: the inputs' names: %q", cp.Partition, cp.Meta)
		require.Equal(t, 1, strings.Count(marks, ";l,"), "partition %d: one end entry: %q", cp.Partition, cp.Meta)
		require.Zero(t, cp.Offset, "partition %d: where it started (the end fired the windows)", cp.Partition)
	}

	// A restart on another input (the same offsets of another topic) stops.
	var inputs []stream.Position
	for p := range int32(2) {
		cp, ok := q.CommittedPosition(p)
		require.True(t, ok)
		inputs = append(inputs, cp)
	}
	h2, q2, _ := repartitionedSums(t, log, 10*time.Second)
	q2.SetInputs("other") // another topic in place of "rides"
	q2.Resume(inputs...)
	q2.End()
	for range 20 {
		done, err := h2.TryStep()
		if err != nil {
			require.ErrorIs(t, err, stream.ErrInputChanged)
			return
		}
		require.False(t, done, "the restart on another input ended without stopping")
	}
	t.Fatal("the restart on another input did not stop")
}

// stagedExchange is an in-memory exchange whose downstream side the test drives: it
// registers partitions (its Input's Assign) and pushes the log's records (pushAll) when
// told, as a Kafka consumer that joins the group late.
type stagedExchange[T any] struct {
	*streamtest.Exchange[T] // Open, Send, Commit
	log                     *streamtest.ExchangeLog[T]
	in                      *stream.Input[stream.Shuffled[T]]
}

// Bind keeps the input for the test (the embedded exchange is never fed).
func (e *stagedExchange[T]) Bind(in *stream.Input[stream.Shuffled[T]]) { e.in = in }

// RegistersPartitions implements stream.PartitionRegistrar: the test assigns the partitions
// after batches ran, so the exchange does not say it registers them before the first batch,
// which the harness would check it was fed for.
func (e *stagedExchange[T]) RegistersPartitions() bool { return false }

func (e *stagedExchange[T]) pushAll(t *testing.T) {
	t.Helper()
	var recs []stream.Record[stream.Shuffled[T]]
	for p := range int32(2) {
		for i, r := range e.log.Records(p) {
			rec := stream.Record[stream.Shuffled[T]]{Value: r, Partition: p, Offset: int64(i), Size: 16}
			if !r.Mark {
				rec.EventTime = time.Unix(0, r.Time)
			}
			recs = append(recs, rec)
		}
	}
	require.Equal(t, len(recs), e.in.TryPushBatch(recs))
}
