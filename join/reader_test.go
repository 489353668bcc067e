// Stateful operators that read a join's output, across a crash: the rows that a replay emits
// for the first time must reach them. These tests fail: see each one.

package join_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// reader is a stateful operator (a window, a dedup, a tracker) over a stream of T: it notes
// every element it gets and holds nothing.
type reader[T any] struct{ got *[]T }

func (r *reader[T]) Process(_ *stream.PartitionContext, in []stream.Elem[T], out []stream.Elem[T]) []stream.Elem[T] {
	for _, e := range in {
		*r.got = append(*r.got, e.Value)
	}
	return out
}
func (r *reader[T]) Retained(int32) (int64, bool) { return 0, false }
func (r *reader[T]) Drop(int32)                   {}
func (r *reader[T]) StateSize() int               { return 0 }

// TestReaderOfJoinAfterCrash: a left record L (key k, 100 s) is read by the join and
// committed (the join holds it: the repartition's commit stays at L, and the checkpoint
// records that the reader, holding nothing, starts after L's batch); then the row L makes
// (paired with R at 105 s, or unmatched once records of other keys at 200 s on both sides
// move the watermark past it) is emitted in a batch whose output fails. The restart replays L and
// that record in one batch and the join emits the row again, for the first time as far as
// the reader knows, but with L's offset (Joined's element offset is the older record's):
// the pipeline skips it for the reader as a row it had accounted for before its start. The
// sink gets the row; the reader never does.
//
// FAILS: a stateful operator that reads Joined() (a window counting payments per order) loses
// the row silently. See the report: root cause in the pair's and the unmatched row's offset
// (operator.go, pair and unmatched) against the replay skip of stateful readers
// (stream/graph.go, derive).
func TestReaderOfJoinAfterCrash(t *testing.T) {
	for _, c := range []struct {
		name string
		kind join.Kind
		r    stream.Record[kv]
		want string
	}{
		{"pair", join.Inner, stream.Record[kv]{Value: stream.KV("k", 2), EventTime: time.Unix(105, 0)}, "k/1/2"},
		{"unmatched", join.LeftOuter, stream.Record[kv]{Value: stream.KV("z", 2), EventTime: time.Unix(200, 0)}, "k/1/-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := streamtest.NewExchangeLog[shuffled](1)
			start := func(crash int64) (*streamtest.Harness, *streamtest.Queue[kv], *streamtest.Queue[kv], *[]join.Joined[string, int, int], *streamtest.Collector[join.Joined[string, int, int]]) {
				h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
				qa, sa := streamtest.NewQueue[kv](h)
				qb, sb := streamtest.NewQueue[kv](h)
				qa.SetPartitions(1)
				qb.SetPartitions(1)
				_, co := streamtest.NewRepartition(h, join.Tag(sa, sb), "join", log)
				out, err := join.IntervalOn(co, 0, 10*time.Second, join.WithKind(c.kind))
				require.NoError(t, err)
				var got []join.Joined[string, int, int]
				stream.Apply(out.Joined(), "reader", stream.Operator[join.Joined[string, int, int], join.Joined[string, int, int]](&reader[join.Joined[string, int, int]]{&got}))
				sink := streamtest.Collect(out.Joined())
				stream.ForEachBatch(out.Joined(), func(_ context.Context, info stream.BatchInfo, _ []join.Joined[string, int, int]) error {
					if info.Batch == crash {
						return errors.New("crash")
					}
					return nil
				})
				return h, qa, qb, &got, sink
			}
			// batch 1 sends L and a right record of another key (the right side's watermark),
			// batch 2 reads them and commits, batch 3 makes the row and fails.
			h, qa, qb, got, sink := start(3)
			qa.Add(stream.Record[kv]{Value: stream.KV("k", 1), EventTime: time.Unix(100, 0)})
			qb.Add(stream.Record[kv]{Value: stream.KV("y", 1), EventTime: time.Unix(90, 0)})
			qa.Add(stream.Record[kv]{Value: stream.KV("x", 2), EventTime: time.Unix(200, 0)})
			qb.Add(c.r)
			for range 3 {
				_, _ = h.TryStep()
			}
			require.Equal(t, 1, rowCounts(sink.Slice())[c.want], "the first run makes the row in the batch that fails")
			require.Equal(t, 1, rowCounts(*got)[c.want])

			h, qa2, qb2, got, sink := start(0)
			qa2.Resume(committed(qa, 1)...)
			qb2.Resume(committed(qb, 1)...)
			qa2.End()
			qb2.End()
			h.RunUntilDone()
			require.Equal(t, 1, rowCounts(sink.Slice())[c.want], "the sink gets the row from the replay")
			require.Equal(t, 1, rowCounts(*got)[c.want], "the reader gets the row from the replay")
		})
	}
}

// TestReaderOfStalledEnrichAfterRestart: EnrichCoPartitioned's table partition fails to load
// when the partition's first records come, so they are withheld and the commit stays before
// them (as documented); the restart loads the table and the replay enriches them, but a
// stateful operator reading the output skips them: the checkpoint says it starts after
// their batch, since it held nothing (it never got them).
//
// FAILS: the documented promise ("the next run or the partition's next owner replays and
// enriches them") holds for sinks only; a stateful reader loses every withheld record. See
// the report: root cause in the stall's commit hold (table_partitioned.go, Process and
// Retained) against the replay skip of stateful readers (stream/graph.go, derive).
func TestReaderOfStalledEnrichAfterRestart(t *testing.T) {
	tab := newFakePartTable(t, 1)
	tab.parts[0].set("cab-1", at(0), "ana")
	start := func(fail bool) (*streamtest.Harness, *streamtest.Queue[ping], *[]enriched, *streamtest.Collector[enriched]) {
		tab.fail = func(context.Context, int32) error {
			if fail {
				return errors.New("broker unreachable")
			}
			return nil
		}
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
		q, pings := streamtest.NewQueue[ping](h)
		q.SetPartitions(1)
		out, err := join.EnrichCoPartitioned(pings, tab, func(p ping) string { return p.Cab }, mergePing)
		require.NoError(t, err)
		var got []enriched
		stream.Apply(out, "reader", stream.Operator[enriched, enriched](&reader[enriched]{&got}))
		return h, q, &got, streamtest.Collect(out)
	}
	h, q, got, _ := start(true)
	q.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, EventTime: at(1)}, stream.Record[ping]{Value: ping{"cab-1", 1}, EventTime: at(2)})
	h.Run(2)
	require.Empty(t, *got, "the partition stalls")
	pos, ok := q.CommittedPosition(0)
	require.True(t, ok)
	require.Zero(t, pos.Offset, "the commit stays before the records withheld")

	h, q2, got, sink := start(false)
	q2.Resume(pos)
	q2.Add(stream.Record[ping]{Value: ping{"cab-1", 0}, EventTime: at(1), Offset: 0}, stream.Record[ping]{Value: ping{"cab-1", 1}, EventTime: at(2), Offset: 1})
	q2.End()
	h.RunUntilDone()
	require.Equal(t, []string{"cab-1/ana#0", "cab-1/ana#1"}, rowsOf(sink.Slice()), "the sink gets the replayed records")
	require.Equal(t, []string{"cab-1/ana#0", "cab-1/ana#1"}, rowsOf(*got), "the reader gets the records withheld from the replay")
}
