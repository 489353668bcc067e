package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// timesProbe is a stateful operator that records what SourceTimes gives it, batch by batch.
type timesProbe struct {
	ok    []bool
	times [][2]int64 // offset, event time in seconds after t0
}

func (p *timesProbe) Process(pc *stream.PartitionContext, in []stream.Elem[keyed], out []stream.Elem[keyed]) []stream.Elem[keyed] {
	times, ok := pc.SourceTimes()
	p.ok = append(p.ok, ok)
	if ok {
		for off, t := range times {
			p.times = append(p.times, [2]int64{off, t / int64(time.Second)})
		}
	}
	return append(out, in...)
}
func (*timesProbe) Retained(int32) (int64, bool) { return 0, false }
func (*timesProbe) Drop(int32)                   {}
func (*timesProbe) StateSize() int               { return 0 }

// TestSourceTimes: an operator behind stateless ones (a Filter, a Map) gets every record of
// the partition, those the Filter dropped included, with their event times capped at the
// batch's start plus WithMaxFutureEventTime; one that reads the source directly, or the
// output of a stateful operator, gets nothing.
func TestSourceTimes(t *testing.T) {
	clk := streamtest.NewClock(time.Unix(100, 0))
	h := streamtest.New(t, time.Second, stream.WithClock(clk), stream.WithMaxFutureEventTime(10*time.Second))
	q, src := streamtest.NewQueue[keyed](h)
	probe := func(s *stream.Stream[keyed], name string) *timesProbe {
		p := &timesProbe{}
		stream.Apply(s, name, stream.Operator[keyed, keyed](p))
		return p
	}
	behind := probe(stream.Map(src.Filter(func(k keyed) bool { return k.Key == "a" }), func(k keyed) keyed { return k }), "behind")
	direct := probe(src, "direct")
	afterStateful := probe(stream.Apply(src, "first", stream.Operator[keyed, keyed](&timesProbe{})).Filter(func(keyed) bool { return true }), "after")
	at := func(key string, sec int64) stream.Record[keyed] {
		return stream.Record[keyed]{Value: keyed{Key: key}, EventTime: time.Unix(sec, 0)}
	}
	q.Add(at("a", 101), at("b", 105), at("a", 103), at("b", 500)) // 500 s: past the bound
	h.Run(1)
	require.Equal(t, []bool{true}, behind.ok)
	require.Equal(t, [][2]int64{{0, 101}, {1, 105}, {2, 103}, {3, 110}}, behind.times)
	require.Equal(t, []bool{false}, direct.ok)
	require.Equal(t, []bool{false}, afterStateful.ok)
}

// TestSourceTimesFromReplayCut: in a replay after a resume, an operator behind a Filter gets
// the records from its own replay cut on (SkippedBefore), not those before it that another
// operator's state made the partition replay: its clock starts where the same operator
// over the unfiltered stream would start it.
func TestSourceTimesFromReplayCut(t *testing.T) {
	build := func() (*streamtest.Harness, *streamtest.Queue[keyed], *timesProbe) {
		h := streamtest.New(t, time.Second)
		q, src := streamtest.NewQueue[keyed](h)
		stream.Apply(src, "lastOfKey", stream.Operator[keyed, keyDelta](&lastOfKey{parts: map[int32]map[string][2]int64{}}))
		p := &timesProbe{}
		stream.Apply(src.Filter(func(k keyed) bool { return k.Key == "a" }), "behind", stream.Operator[keyed, keyed](p))
		return h, q, p
	}
	recs := []stream.Record[keyed]{
		{Value: keyed{Key: "held"}, EventTime: time.Unix(1, 0), Offset: 0},
		{Value: keyed{Key: "a"}, EventTime: time.Unix(2, 0), Offset: 1},
		{Value: keyed{Key: "b"}, EventTime: time.Unix(3, 0), Offset: 2},
		{Value: keyed{Key: "b"}, EventTime: time.Unix(4, 0), Offset: 3},
		{Value: keyed{Key: "a"}, EventTime: time.Unix(5, 0), Offset: 4},
	}
	h, q, _ := build()
	q.AddWithOffsets(recs[:3]...)
	q.AddWithOffsets(recs[3:4]...)
	h.Run(2)
	pos, ok := q.CommittedPosition(0)
	require.True(t, ok)
	require.Equal(t, int64(0), pos.Offset, "the key held at offset 0 holds the commit")

	h, q, p := build()
	q.Resume(pos)
	q.AddWithOffsets(recs...)
	h.Run(1)
	require.Equal(t, []bool{true}, p.ok)
	require.Equal(t, [][2]int64{{4, 5}}, p.times, "only the records from the operator's cut (4) on")
}
