// Repartitions fed by several sources, across restarts.

package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

type twoSourceRun struct {
	h    *streamtest.Harness
	a, b *streamtest.Queue[int64]
	sums *streamtest.Collector[stream.Pair[string, int64]]
}

// newTwoSourceRun: sources a (3 partitions) and b (2 partitions), Union'ed, repartitioned by
// key through log, and summed per key per batch downstream.
func newTwoSourceRun(t *testing.T, log *streamtest.ExchangeLog[stream.Pair[string, int64]]) *twoSourceRun {
	h := streamtest.New(t, time.Second)
	a, as := streamtest.NewQueue[int64](h)
	a.SetPartitions(3)
	b, bs := streamtest.NewQueue[int64](h)
	b.SetPartitions(2)
	key := func(v int64) stream.Pair[string, int64] { return stream.KV(string(rune('a'+v%5)), v) }
	_, shuffled := streamtest.NewRepartition(h, stream.Map(as, key).Union(stream.Map(bs, key)), "two", log)
	return &twoSourceRun{h: h, a: a, b: b, sums: streamtest.Collect(stream.ReduceByKey(shuffled, func(x, y int64) int64 { return x + y }))}
}

func recsOf(part int32, from, n int64) []stream.Record[int64] {
	var out []stream.Record[int64]
	for i := range n {
		out = append(out, stream.Record[int64]{Value: from + i, Partition: part, Offset: from + i, EventTime: time.Unix(from+i, 0)})
	}
	return out
}

// TestRepartitionTwoSourcesRestartAtEnd: after a restart in which one source has nothing
// left to read (every partition resumes at its end, as a topic that was read whole does), the
// repartition still ends once both sources end, and every record is counted once.
func TestRepartitionTwoSourcesRestartAtEnd(t *testing.T) {
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	want := map[string]int64{}
	add := func(rs []stream.Record[int64]) {
		for _, r := range rs {
			want[string(rune('a'+r.Value%5))] += r.Value
		}
	}
	got := map[string]int64{}
	collect := func(r *twoSourceRun) {
		for _, p := range r.sums.Slice() {
			got[p.Key] += p.Value
		}
	}

	// Run 1: both sources, a few batches; b is read whole and committed.
	r := newTwoSourceRun(t, log)
	for p := range int32(3) {
		rs := recsOf(p, 0, 10)
		add(rs)
		r.a.Add(rs...)
	}
	for p := range int32(2) {
		rs := recsOf(p, 0, 4)
		add(rs)
		r.b.Add(rs...)
	}
	r.h.Run(4)
	collect(r)
	var apos, bpos []stream.Position
	for p := range int32(3) {
		pos, ok := r.a.CommittedPosition(p)
		require.True(t, ok)
		apos = append(apos, pos)
	}
	for p := range int32(2) {
		pos, ok := r.b.CommittedPosition(p)
		require.True(t, ok)
		require.EqualValues(t, 4, pos.Offset, "b is committed at its end")
		bpos = append(bpos, pos)
	}

	// Runs 2 and 3: a replays and gets more records (none in run 3), b has nothing left; both
	// end.
	for run := range 2 {
		r = newTwoSourceRun(t, log)
		r.a.Resume(apos...)
		r.b.Resume(bpos...)
		if run == 0 {
			for p := range int32(3) {
				rs := recsOf(p, 10, 5)
				add(rs)
				// The replay from the committed position, then the new records.
				r.a.Add(recsOf(p, apos[p].Offset, 10-apos[p].Offset)...)
				for i := range rs {
					r.a.Add(rs[i]) // a batch each: b ends long before a
				}
			}
		}
		r.a.End()
		r.b.End()
		done := false
		for range 100 {
			if done = r.h.Step(); done {
				break
			}
		}
		require.True(t, done, "run %d: the pipeline did not end", run+2)
		collect(r)
		apos = apos[:0]
		for p := range int32(3) {
			pos, _ := r.a.CommittedPosition(p)
			apos = append(apos, pos)
		}
	}
	require.Equal(t, want, got)
}
