// Stateful operators that read a join's output, across a crash: the rows that a replay emits
// for the first time must reach them (they did not before abb8c1c).

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

// TestReaderOfJoinAfterCrash: a left record L (key k, 100 s) is read by the join and
// committed (the join holds it: the repartition's commit stays at L, and the checkpoint
// records that the reader, holding nothing, starts after L's batch); then the row L makes
// (paired with R at 105 s, or unmatched once records of other keys at 200 s on both sides
// move the watermark past it) is emitted in a batch whose output fails. The restart replays
// L and that record in one batch and the join emits the row again, for the first time as far
// as the reader knows. The row must carry the position where it was made (R's, or the mark's),
// not L's: with L's offset the pipeline skipped it for the reader as a row it had accounted
// for before its start, and a stateful reader (a window counting payments per order) lost it
// silently while the sink got it.
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
			start := func(crash int64) (*streamtest.Harness, *streamtest.Queue[kv], *streamtest.Queue[kv], *[]stream.Elem[join.Joined[string, int, int]], *streamtest.Collector[join.Joined[string, int, int]]) {
				h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
				qa, sa := streamtest.NewQueue[kv](h)
				qb, sb := streamtest.NewQueue[kv](h)
				qa.SetPartitions(1)
				qb.SetPartitions(1)
				_, co := streamtest.NewRepartition(h, join.Tag(sa, sb), "join", log)
				out, err := join.IntervalOn(co, 0, 10*time.Second, join.WithKind(c.kind))
				require.NoError(t, err)
				var got []stream.Elem[join.Joined[string, int, int]]
				stream.Apply(out.Joined(), "reader", stream.Operator[join.Joined[string, int, int], join.Joined[string, int, int]](probe[join.Joined[string, int, int]]{&got}))
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
			require.Equal(t, 1, rowCounts(values(*got))[c.want])

			h, qa2, qb2, got, sink := start(0)
			qa2.Resume(committed(qa, 1)...)
			qb2.Resume(committed(qb, 1)...)
			qa2.End()
			qb2.End()
			h.RunUntilDone()
			require.Equal(t, 1, rowCounts(sink.Slice())[c.want], "the sink gets the row from the replay")
			require.Equal(t, 1, rowCounts(values(*got))[c.want], "the reader gets the row from the replay")
		})
	}
}

// TestReaderOfStalledEnrichAfterRestart: EnrichCoPartitioned's table partition fails to load
// when the partition's first records come, so they are withheld and the commit stays before
// them (as documented); the restart loads the table and the replay enriches them. A stateful
// operator reading the output must get them: it held nothing, so without the operator's
// Withheld (stream.Withholder) its checkpoint said it starts after their batch and the
// replay skipped them for it, though the documentation promises that "the next run or the
// partition's next owner replays and enriches them".
func TestReaderOfStalledEnrichAfterRestart(t *testing.T) {
	tab := newFakePartTable(t, 1)
	tab.parts[0].set("cab-1", at(0), "ana")
	start := func(fail bool) (*streamtest.Harness, *streamtest.Queue[ping], *[]stream.Elem[enriched], *streamtest.Collector[enriched]) {
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
		var got []stream.Elem[enriched]
		stream.Apply(out, "reader", stream.Operator[enriched, enriched](probe[enriched]{&got}))
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
	require.Equal(t, []string{"cab-1/ana#0", "cab-1/ana#1"}, rowsOf(values(*got)), "the reader gets the records withheld from the replay")
}

// TestReplayRowsOfLeftRecord: a right record R1 (105 s) reaches the join before the left
// record L (100 s) it matches, then R1 expires while L is still held (within [0, +10 s]),
// the batches are acknowledged and the process stops; a second partner R2 (108 s) comes
// before or after the stop. The restart replays from the join's commit, which must be early
// enough that L gets all its rows again, in the same order: a reader that keeps the first
// row of each left record (telemetry.TimeToPickup keeps a request's first pickup, by
// request ID) then writes the same row. Before, the commit stayed at L (Inner; LeftOuter
// once R2 had matched it), the replay did not see R1 and emitted (L, R2) first: the
// request's pickup document was overwritten with the wrong trip start.
func TestReplayRowsOfLeftRecord(t *testing.T) {
	for _, kind := range []join.Kind{join.Inner, join.LeftOuter} {
		for _, r2First := range []bool{false, true} {
			name := kind.String() + "/R2-after-stop"
			if r2First {
				name = kind.String() + "/R2-before-stop"
			}
			t.Run(name, func(t *testing.T) {
				log := streamtest.NewExchangeLog[shuffled](1)
				start := func() (*streamtest.Harness, *streamtest.Queue[kv], *streamtest.Queue[kv], *streamtest.Collector[join.Joined[string, int, int]]) {
					h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
					qa, sa := streamtest.NewQueue[kv](h)
					qb, sb := streamtest.NewQueue[kv](h)
					qa.SetPartitions(1)
					qb.SetPartitions(1)
					_, co := streamtest.NewRepartition(h, join.Tag(sa, sb), "join", log)
					out, err := join.IntervalOn(co, 0, 10*time.Second, join.WithKind(kind))
					require.NoError(t, err)
					return h, qa, qb, streamtest.Collect(out.Joined())
				}
				rec := func(key string, id int, sec int64) stream.Record[kv] {
					return stream.Record[kv]{Value: stream.KV(key, id), EventTime: time.Unix(sec, 0)}
				}
				rowsOfL := func(rows []join.Joined[string, int, int]) []string {
					var ids []string
					for _, j := range rows {
						if j.Key == "k" {
							ids = append(ids, rowID(j))
						}
					}
					return ids
				}
				h, qa, qb, rows := start()
				qa.Add(rec("x", 9, 90))
				qb.Add(rec("k", 1, 105)) // R1
				h.Run(2)
				qa.Add(rec("k", 1, 100)) // L
				qb.Add(rec("y", 9, 100))
				h.Run(2)
				qa.Add(rec("x", 8, 107))
				if r2First {
					qb.Add(rec("y", 8, 107), rec("k", 2, 108))
				} else {
					qb.Add(rec("y", 8, 107))
				}
				h.Run(3)
				held := 3 // L and the records at 107 s: R1 expired
				if r2First {
					held++ // and R2
				}
				require.Equal(t, held, h.P.Stats().RetainedState)

				h, qa2, qb2, rows2 := start()
				qa2.Resume(committed(qa, 1)...)
				qb2.Resume(committed(qb, 1)...)
				if !r2First {
					qb2.Add(stream.Record[kv]{Value: stream.KV("k", 2), EventTime: time.Unix(108, 0), Offset: 3})
				}
				qa2.End()
				qb2.End()
				h.RunUntilDone()
				first := rowsOfL(rows.Slice())
				require.Equal(t, "k/1/1", first[0], "%v: the first run's first row of L", kind)
				require.Equal(t, []string{"k/1/1", "k/1/2"}, rowsOfL(rows2.Slice()), "the replay's rows of L")
			})
		}
	}
}
