package stream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/stretchr/testify/require"
)

// marksProbe records, for each batch of a repartition's partition, the marks the pipeline
// hands its operators and the watermark each record is judged against.
type marksProbe struct {
	marks [][2]int64          // (from, wm) pairs, every batch's in order
	at    map[string][2]int64 // by value: its offset and WatermarkAt(offset)
}

func (m *marksProbe) Process(pc *stream.PartitionContext, in []stream.Elem[stream.Pair[string, int64]], out []stream.Elem[stream.Pair[string, int64]]) []stream.Elem[stream.Pair[string, int64]] {
	if !pc.Merged {
		return out
	}
	for from, wm := range pc.Marks() {
		m.marks = append(m.marks, [2]int64{from, wm})
	}
	for _, e := range in {
		m.at[e.Value.Key] = [2]int64{e.Offset, pc.WatermarkAt(e.Offset)}
	}
	return out
}

func (m *marksProbe) Retained(int32) (int64, bool) { return 0, false }
func (m *marksProbe) Drop(int32)                   {}
func (m *marksProbe) StateSize() int               { return 0 }

// TestMarksOfOneMessageCountTogether: kafka.Exchange packs a Send's records of a partition
// into one message, the marks of every upstream partition among them (not one message per
// mark), and every record of a message has its offset. The marks of one message count
// together from the next offset: Marks gives one point for them, with the watermark after
// all of them, and a record of the message is judged against the marks of the messages
// before it, whichever upstream partition's mark came before it in the message.
func TestMarksOfOneMessageCountTogether(t *testing.T) {
	log := streamtest.NewPackedExchangeLog[stream.Pair[string, int64]](1)
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0))
	q, src := streamtest.NewQueue[keyed](h)
	q.SetPartitions(2)
	pairs := stream.Map(src, func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
	_, shuffled := streamtest.NewRepartition(h, pairs, "keys", log)
	probe := &marksProbe{at: map[string][2]int64{}}
	stream.Apply(shuffled, "probe", stream.Operator[stream.Pair[string, int64], stream.Pair[string, int64]](probe))
	at := func(s int) time.Time { return streamtest.Epoch.Add(time.Duration(s) * time.Second) }
	for b := range 3 {
		var recs []stream.Record[keyed]
		for p := range int32(2) {
			// Partition 0 behind partition 1 in batch 0, ahead of it later: batch 1's
			// marks raise the watermark twice in one message (0 to 5 s, then 10 s).
			s := 20 * b
			if p == 1 {
				s = 5 + 5*b
			}
			recs = append(recs, stream.Record[keyed]{Value: keyed{fmt.Sprintf("b%d-p%d", b, p), 1}, Partition: p, Offset: int64(b), EventTime: at(s)})
		}
		q.Add(recs...)
		h.Run(1)
	}
	h.Run(2)
	recs := log.Records(0)
	require.NotEmpty(t, recs)
	// Each batch's Send is one message: its records share an offset, marks among them.
	offsets := map[int64]bool{}
	for i := range recs {
		offsets[log.Offset(0, i)] = true
	}
	require.Len(t, offsets, 3, "one message per Send: %v", recs)
	// One point per message, at the next offset, with the watermark after all its marks:
	// batch 1's raised it to 5 s, then to 10 s.
	ns := func(s int) int64 { return at(s).UnixNano() }
	require.Equal(t, [][2]int64{{1, ns(0)}, {2, ns(10)}, {3, ns(15)}}, probe.marks)
	// Batch 1's message holds p0's value, p0's mark (the watermark to 5 s), p1's value, p1's
	// mark (to 10 s): p1's value follows p0's mark in the message but is judged, like p0's,
	// against the marks of batch 0's message only.
	p0, p1 := probe.at["b1-p0"], probe.at["b1-p1"]
	require.Equal(t, p0, p1, "the records of one message are judged against the same marks")
	first := probe.at["b0-p1"]
	require.Less(t, first[1], p1[1], "batch 0's marks count from batch 1's message on")
}
