package window_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// Late records go to the job's dead-letter output (a stream.DeadLetterSink: a Kafka topic, a
// file) as dead letters that name their origin, the record and why it was late.
func ExampleLate_DeadLetter() {
	h := streamtest.New(nil, time.Second, stream.WithMaxOutOfOrderness(10*time.Second))
	q, pings := streamtest.NewQueue[ping](h)
	perMinute, err := window.Aggregate(pings,
		func(p ping) string { return p.Cab },
		func(p ping) ping { return p },
		window.Tumbling(time.Minute), window.Count[ping]())
	if err != nil {
		panic(err)
	}
	// origin stands for the source's: kafka.Source.Origin names the topic and partition.
	origin := func(part int32) (string, int32, bool) { return "pings", part, true }
	late := stream.Map(perMinute.Late(), func(l window.Late[ping]) stream.DeadLetter {
		v, err := json.Marshal(l.Value)
		if err != nil {
			panic(err)
		}
		return l.DeadLetter(origin, []byte(l.Value.Cab), v)
	})
	deadLetters := streamtest.Collect(late) // a stream.To(late, deadLetters) in a job

	q.Add(pingAt("10:00:05", "CAB-1", 30), pingAt("10:01:30", "CAB-2", 45))
	q.Add(pingAt("10:00:58", "CAB-2", 52)) // too late: the watermark passed 10:01
	q.End()
	h.RunUntilDone()

	for _, dl := range deadLetters.Slice() {
		fmt.Printf("%s %s/%d@%d %s %s\n%s\n", dl.Reason, dl.Topic, dl.Partition, dl.Offset, dl.Key, dl.Value, dl.Err)
	}
	// Output:
	// late pings/0@2 CAB-2 {"Cab":"CAB-2","Speed":52}
	// window: record at 2026-11-25T10:00:58Z arrived after its window [2026-11-25T10:00:00Z, 2026-11-25T10:01:00Z) had closed
}

func TestLateDeadLetter(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 58, 0, time.UTC)
	l := window.Late[ping]{EventTime: at, Partition: 1<<26 | 3, Offset: 7, Start: at.Truncate(time.Minute), End: at.Truncate(time.Minute).Add(time.Minute), Reason: stream.ReasonLate}
	known := func(part int32) (string, int32, bool) {
		if src, local := stream.PartitionSource(part); src == 1 {
			return "pings", local, true
		}
		return "", 0, false
	}
	for _, tc := range []struct {
		name    string
		l       window.Late[ping]
		origin  func(int32) (string, int32, bool)
		topic   string
		part    int32
		errText string
	}{
		{"late", l, known, "pings", 3, "window: record at 2026-11-25T10:00:58Z arrived after its window [2026-11-25T10:00:00Z, 2026-11-25T10:01:00Z) had closed"},
		{"no origin", l, nil, "", 1<<26 | 3, "arrived after its window"},
		{"unknown partition", window.Late[ping]{Partition: 2, Reason: stream.ReasonLate}, known, "", 2, "arrived after its window"},
		{"key limit", window.Late[ping]{EventTime: at, Reason: stream.ReasonKeyLimit}, nil, "", 0, "window: key limit reached: record at 2026-11-25T10:00:58Z not aggregated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl := tc.l.DeadLetter(tc.origin, []byte("k"), []byte("v"))
			require.Equal(t, tc.l.Reason, dl.Reason)
			require.Equal(t, tc.topic, dl.Topic)
			require.Equal(t, tc.part, dl.Partition)
			require.Equal(t, tc.l.Offset, dl.Offset)
			require.Equal(t, []byte("k"), dl.Key)
			require.Equal(t, []byte("v"), dl.Value)
			require.Contains(t, dl.Err, tc.errText)
		})
	}
}

// TestLateDeadLetterAfterRepartition: a record late in a window after a repartition is dead-
// lettered with the input record's topic, partition and offset (Late.Upstream, from the
// numbers it carried through the exchange), not the repartition's, whose topic is purged as
// soon as it is committed. Before, both dead letters named "fleet-zones-repartition" and the
// exchange's offsets.
func TestLateDeadLetterAfterRepartition(t *testing.T) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Second))
	q, s := streamtest.NewQueue[ev](h)
	q.SetPartitions(2)
	_, zones := streamtest.NewRepartition(h, stream.KeyBy(s, evKey), "zones", streamtest.NewExchangeLog[stream.Pair[string, ev]](1))
	w, err := window.Aggregate(zones,
		func(p stream.Pair[string, ev]) string { return p.Key },
		func(p stream.Pair[string, ev]) float64 { return p.Value.V },
		window.Tumbling(time.Minute), window.Count[float64]())
	require.NoError(t, err)
	late := streamtest.Collect(w.Late())
	// origin stands for Pipeline.Origin over a kafka.Source (source 0) and a kafka.Exchange
	// (source 1, the repartition's).
	origin := func(part int32) (string, int32, bool) {
		switch src, local := stream.PartitionSource(part); src {
		case 0:
			return "cabs", local, true
		case 1:
			return "fleet-zones-repartition", local, true
		}
		return "", 0, false
	}
	rec := func(part int32, off int64, d time.Duration) stream.Record[ev] {
		r := at(part, "z", d, 1)
		r.Offset = off
		return r
	}
	q.AddWithOffsets(rec(0, 40, sec(10)), rec(1, 70, sec(20)))
	q.AddWithOffsets(rec(0, 41, sec(100)), rec(1, 71, sec(100))) // [0, 1m) fires
	q.AddWithOffsets(rec(0, 42, sec(101)), rec(1, 72, sec(15)), rec(0, 43, sec(5)), rec(1, 73, sec(102)))
	q.End()
	h.RunUntilDone()

	type where struct {
		topic  string
		part   int32
		offset int64
	}
	var got []where
	for _, l := range late.Slice() {
		require.NotNil(t, l.Upstream, "late at %v", l.EventTime)
		src, _ := stream.PartitionSource(l.Partition)
		require.Equal(t, 1, src, "Partition and Offset stay the repartition's")
		dl := l.DeadLetter(origin, nil, nil)
		got = append(got, where{dl.Topic, dl.Partition, dl.Offset})
	}
	require.ElementsMatch(t, []where{{"cabs", 1, 72}, {"cabs", 0, 43}}, got)
}
