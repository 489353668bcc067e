package join_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/join"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// Records that come too late to be joined go to the job's dead-letter output (a
// stream.DeadLetterSink: a Kafka topic, a file) as dead letters that name the record and
// the join's watermark it came behind.
func ExampleLate_DeadLetter() {
	h := streamtest.New(nil, time.Second, stream.WithIdleTimeout(0))
	qo, orders := streamtest.NewQueue[order](h)
	qp, payments := streamtest.NewQueue[payment](h)
	qo.SetPartitions(1)
	qp.SetPartitions(1)
	byOrder := stream.Map(orders, func(o order) stream.Pair[string, order] { return stream.KV(o.ID, o) })
	byPayment := stream.Map(payments, func(x payment) stream.Pair[string, payment] { return stream.KV(x.OrderID, x) })
	ex := streamtest.NewExchange(streamtest.NewExchangeLog[stream.Pair[string, join.Side[order, payment]]](1))
	h.AddExchange(ex)
	paid, err := join.Interval(byOrder, byPayment, ex, 0, 15*time.Minute)
	if err != nil {
		panic(err)
	}
	late := stream.Map(paid.Late(), func(l join.Late[string, order, payment]) stream.DeadLetter {
		v, err := json.Marshal(l.Side.Left)
		if l.Side.IsRight {
			v, err = json.Marshal(l.Side.Right)
		}
		if err != nil {
			panic(err)
		}
		return l.DeadLetter(nil, []byte(l.Key), v)
	})
	deadLetters := streamtest.Collect(late) // a stream.To(late, deadLetters) in a job

	at := func(min int) time.Time { return time.Date(2026, 11, 25, 10, min, 0, 0, time.UTC) }
	qo.Add(stream.Record[order]{Value: order{"o1", 30}, EventTime: at(0)}, stream.Record[order]{Value: order{"o2", 12}, EventTime: at(30)})
	qp.Add(stream.Record[payment]{Value: payment{"o2", 12}, EventTime: at(31)})
	h.Run(3)
	qp.Add(stream.Record[payment]{Value: payment{"o1", 30}, EventTime: at(3)}) // behind the watermark
	qo.End()
	qp.End()
	h.RunUntilDone()

	for _, dl := range deadLetters.Slice() {
		fmt.Printf("%s %s %s\n%s\n", dl.Reason, dl.Key, dl.Value, dl.Err)
	}
	// Output:
	// late o1 {"OrderID":"o1","Amount":30}
	// join: record at 2026-11-25T10:03:00Z arrived after the join's watermark 2026-11-25T10:31:00Z
}

func TestLateDeadLetter(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 3, 0, 0, time.UTC)
	l := join.Late[string, order, payment]{Key: "o1", EventTime: at, Watermark: at.Add(28 * time.Minute), Partition: 1<<26 | 3, Offset: 7, Reason: stream.ReasonLate}
	origin := func(part int32) (string, int32, bool) {
		if src, local := stream.PartitionSource(part); src == 1 {
			return "orders-join-repartition", local, true
		}
		return "", 0, false
	}
	dl := l.DeadLetter(origin, []byte("o1"), []byte("v"))
	require.Equal(t, stream.DeadLetter{Reason: stream.ReasonLate, Topic: "orders-join-repartition", Partition: 3, Offset: 7, Key: []byte("o1"), Value: []byte("v"),
		Err: "join: record at 2026-11-25T10:03:00Z arrived after the join's watermark 2026-11-25T10:31:00Z"}, dl)
	require.Equal(t, int32(1<<26|3), l.DeadLetter(nil, nil, nil).Partition, "no origin: the pipeline's partition")
	l.Partition = 3
	require.Equal(t, int32(3), l.DeadLetter(origin, nil, nil).Partition, "a partition the origin does not know")
	require.Empty(t, l.DeadLetter(origin, nil, nil).Topic)

	// Read through the repartition: the dead letter names the input record.
	l.Partition, l.Upstream = 1<<26|3, &stream.Upstream{Partition: 2, Offset: 41}
	inputs := func(part int32) (string, int32, bool) {
		if src, local := stream.PartitionSource(part); src == 0 {
			return "payments", local, true
		}
		return origin(part)
	}
	dl = l.DeadLetter(inputs, nil, nil)
	require.Equal(t, "payments", dl.Topic)
	require.EqualValues(t, 2, dl.Partition)
	require.EqualValues(t, 41, dl.Offset)
	dl = l.DeadLetter(nil, nil, nil)
	require.Equal(t, stream.DeadLetter{Reason: stream.ReasonLate, Partition: 2, Offset: 41, Err: dl.Err}, dl, "no origin: the upstream pipeline partition")
}
