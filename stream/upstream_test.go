package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// at is where a record was read: the value each record of TestUpstream carries.
type at struct {
	Part int32
	Off  int64
}

// upstreamProbe records, for every element, what PartitionContext.UpstreamAt says of its
// offset and event time (got, found) and how often Upstream, by offset alone, named another
// record (wrong) or none (unnamed).
type upstreamProbe struct {
	got            map[at][]stream.Upstream
	found          int
	wrong, unnamed int
}

func (u *upstreamProbe) Process(pc *stream.PartitionContext, in []stream.Elem[stream.Pair[int, at]], out []stream.Elem[stream.Pair[int, at]]) []stream.Elem[stream.Pair[int, at]] {
	for _, e := range in {
		if up, ok := pc.UpstreamAt(e.Offset, e.Time); ok {
			u.got[e.Value.Value] = append(u.got[e.Value.Value], up)
			u.found++
		}
		switch up, ok := pc.Upstream(e.Offset); {
		case !ok:
			u.unnamed++
		case up != stream.Upstream{Partition: e.Value.Value.Part, Offset: e.Value.Value.Off}:
			u.wrong++
		}
	}
	return append(out, in...)
}
func (*upstreamProbe) Retained(int32) (int64, bool) { return 0, false }
func (*upstreamProbe) Drop(int32)                   {}
func (*upstreamProbe) StateSize() int               { return 0 }

// TestUpstream: after a repartition, PartitionContext.UpstreamAt names for every record the
// upstream pipeline partition and offset it was read from (each record carries its own, and
// FlatMap makes two values of some), in batches of several upstream partitions interleaved in
// the exchange; before a repartition it says nothing. In a packed log (kafka.Exchange's
// messages: a batch's records of a partition share one offset) Upstream, by offset alone,
// named every record of a message after its first (helper-134's probe: a late request's dead
// letter named the on-time request beside it); it now names none of them, and UpstreamAt
// tells them apart by event time. Where records of several input records share the offset
// and the event time, UpstreamAt names none either (sameTime).
func TestUpstream(t *testing.T) {
	for _, tc := range []struct {
		name     string
		log      func(int) *streamtest.ExchangeLog[stream.Pair[int, at]]
		sameTime bool
	}{
		{"a message a record", streamtest.NewExchangeLog[stream.Pair[int, at]], false},
		{"packed", streamtest.NewPackedExchangeLog[stream.Pair[int, at]], false},
		{"packed, a batch's records at one event time", streamtest.NewPackedExchangeLog[stream.Pair[int, at]], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
			q, s := streamtest.NewQueue[int](h)
			q.SetPartitions(3)
			before := &upstreamProbe{got: map[at][]stream.Upstream{}}
			keyed := stream.FlatMap(stream.KeyBy(s, func(v int) int { return v }), func(p stream.Pair[int, int], emit func(stream.Pair[int, at])) {
				r := at{Part: int32(p.Value % 3), Off: int64(p.Value / 3)}
				emit(stream.KV(p.Key, r))
				if p.Value%4 == 0 {
					emit(stream.KV(p.Key+1, r))
				}
			})
			stream.Apply(keyed, "before", stream.Operator[stream.Pair[int, at], stream.Pair[int, at]](before))
			_, shuffled := streamtest.NewRepartition(h, keyed, "r", tc.log(2))
			after := &upstreamProbe{got: map[at][]stream.Upstream{}}
			streamtest.Collect(stream.Apply(shuffled, "after", stream.Operator[stream.Pair[int, at], stream.Pair[int, at]](after)))
			want := 0
			for b := range 4 {
				var recs []stream.Record[int]
				for i := range 9 {
					v := b*9 + i // partition v%3, offset v/3
					ts := time.Unix(int64(v), 0)
					if tc.sameTime {
						ts = time.Unix(int64(b), 0)
					}
					recs = append(recs, stream.Record[int]{Value: v, Partition: int32(v % 3), Offset: int64(v / 3), EventTime: ts})
					want++
					if v%4 == 0 {
						want++
					}
				}
				q.AddWithOffsets(recs...)
			}
			q.End()
			h.RunUntilDone()
			require.Zero(t, before.found+before.wrong, "no repartition before it")
			require.Zero(t, after.wrong, "Upstream by offset named another record")
			for r, ups := range after.got {
				for _, up := range ups {
					require.Equal(t, stream.Upstream{Partition: r.Part, Offset: r.Off}, up)
				}
			}
			switch {
			case tc.sameTime:
				require.Less(t, after.found, want, "records of one message and one event time told apart")
			default:
				require.Equal(t, want, after.found, "every value after the repartition")
			}
			if tc.name == "packed" {
				require.Positive(t, after.unnamed, "the packed log put several records at one offset")
			}
		})
	}
}

// TestDeadLetterSetOrigin: a dead letter names the input record when the origin can tell it
// from the repartition's.
func TestDeadLetterSetOrigin(t *testing.T) {
	const rp = 1<<26 | 2 // partition 2 of source 1, the repartition's
	up := &stream.Upstream{Partition: 5, Offset: 41}
	pipeline := func(part int32) (string, int32, bool) { // Pipeline.Origin
		switch src, local := stream.PartitionSource(part); src {
		case 0:
			return "cabs", local, true
		case 1:
			return "p-r-repartition", local, true
		}
		return "", 0, false
	}
	sloppy := func(part int32) (string, int32, bool) { // every id by the repartition's topic
		_, local := stream.PartitionSource(part)
		return "p-r-repartition", local, true
	}
	onlyRepartition := func(part int32) (string, int32, bool) {
		if src, local := stream.PartitionSource(part); src == 1 {
			return "p-r-repartition", local, true
		}
		return "", 0, false
	}
	onlyInput := func(part int32) (string, int32, bool) {
		if src, local := stream.PartitionSource(part); src == 0 {
			return "cabs", local, true
		}
		return "", 0, false
	}
	for _, tc := range []struct {
		name   string
		origin func(int32) (string, int32, bool)
		up     *stream.Upstream
		topic  string
		part   int32
		off    int64
	}{
		{"input", pipeline, up, "cabs", 5, 41},
		{"no upstream", pipeline, nil, "p-r-repartition", 2, 7},
		{"nil origin", nil, up, "", 5, 41},
		{"nil origin, no upstream", nil, nil, "", rp, 7},
		{"origin that ignores the source", sloppy, up, "p-r-repartition", 2, 7},
		{"origin that knows the repartition only", onlyRepartition, up, "p-r-repartition", 2, 7},
		{"origin that knows the input only", onlyInput, up, "cabs", 5, 41},
		{"origin that knows neither", func(int32) (string, int32, bool) { return "", 0, false }, up, "", rp, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl := stream.DeadLetter{Reason: stream.ReasonLate, Topic: "stale", Partition: 9, Offset: 9}
			dl.SetOrigin(tc.origin, rp, 7, tc.up)
			require.Equal(t, stream.DeadLetter{Reason: stream.ReasonLate, Topic: tc.topic, Partition: tc.part, Offset: tc.off}, dl)
		})
	}
}
