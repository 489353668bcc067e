package stream_test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// push puts the records of offsets [from, to) of the source's partition 0 into its input, at
// Epoch+offset seconds, keyed k0, k1, k2 in turn.
func push(t *testing.T, src *topicSource, from, to int64) {
	t.Helper()
	var recs []stream.Record[keyed]
	for o := from; o < to; o++ {
		recs = append(recs, stream.Record[keyed]{Value: keyed{"k" + strconv.FormatInt(o%3, 10), o}, Offset: o, EventTime: streamtest.Epoch.Add(time.Duration(o) * time.Second)})
	}
	require.Equal(t, len(recs), src.in.TryPushBatch(recs))
}

// topicExchange is an in-memory exchange that names its partitions as those of a topic, as
// kafka.Exchange does (<pipeline>-<name>-repartition).
type topicExchange[T any] struct {
	*streamtest.Exchange[T]
	topic string
}

func (e topicExchange[T]) Origin(part int32) (string, int32, bool) { return e.topic, part, true }

type byKeyLog = streamtest.ExchangeLog[stream.Pair[string, int64]]

// newOriginRun builds input topic "demo41" -> Map to pairs -> Repartition "by-key" (topic
// "demo41-by-key-repartition", over log) -> a tumbling window "counts" of 10 s with the
// given grace.
func newOriginRun(t *testing.T, log *byKeyLog, grace time.Duration, opts ...stream.Option) (*streamtest.Harness, *topicSource) {
	t.Helper()
	h := streamtest.New(t, time.Second, append([]stream.Option{stream.WithName("demo41"), stream.WithIdleTimeout(0)}, opts...)...)
	src := &topicSource{topics: []string{"demo41"}, parts: 1, commit: map[int32]stream.Position{}}
	pairs := stream.Map(stream.From[keyed](h.P, src), func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
	ex := streamtest.NewExchange(log)
	h.AddExchange(ex)
	shuffled := stream.Repartition(pairs, "by-key", stream.Exchange[stream.Pair[string, int64]](topicExchange[stream.Pair[string, int64]]{ex, "demo41-by-key-repartition"}))
	w, err := window.Aggregate(shuffled, func(p stream.Pair[string, int64]) string { return p.Key }, func(p stream.Pair[string, int64]) int64 { return p.Value },
		window.Tumbling(10*time.Second), window.Count[int64](), window.WithName("counts"), window.WithGrace(grace))
	require.NoError(t, err)
	streamtest.Collect(w.Results())
	return h, src
}

// TestOperatorChangedNamesTheRepartitionPartition: a job whose window runs after a
// repartition restarts with another grace. The window's state is in the checkpoints of the
// repartition topic's partitions, so ErrOperatorChanged names one of those, through the
// repartition's exchange (Originator), as Pipeline.Origin maps pipeline partition ids. It
// named "partition 0 (demo41/0)", the input's, on which the window never ran: every
// checkpoint records the parameters of every operator, and the input's partition came first.
// WithColdStartChanged still accepts the change.
func TestOperatorChangedNamesTheRepartitionPartition(t *testing.T) {
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	h, src := newOriginRun(t, log, 0)
	src.in.Assign(0)
	for o := int64(0); o < 30; o += 5 {
		push(t, src, o, o+5)
		h.Step()
	}
	h.Run(3) // the repartition's records come back and the windows up to 20 s fire
	require.NotEmpty(t, log.Committed(), "the repartition committed no checkpoint")
	src.mu.Lock()
	pos, ok := src.commit[0]
	src.mu.Unlock()
	require.True(t, ok, "the input committed nothing")
	require.NotEmpty(t, pos.Meta, "the input's commit has no checkpoint: the old naming cannot happen")

	h, src = newOriginRun(t, log, 5*time.Second) // the restart, with another grace
	src.in.Resume(pos)
	push(t, src, pos.Offset, 40)
	src.in.Close()
	var err error
	for range 10 {
		if _, err = h.TryStep(); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, stream.ErrOperatorChanged)
	require.ErrorContains(t, err, `"counts" (now`)
	require.NotContains(t, err.Error(), "demo41/0", "named the input's partition")
	m := regexp.MustCompile(`partition (\d+) \(demo41-by-key-repartition/(\d+)\)`).FindStringSubmatch(err.Error())
	require.NotNil(t, m, "no repartition partition named: %v", err)
	id, _ := strconv.ParseInt(m[1], 10, 32)
	si, local := stream.PartitionSource(int32(id))
	require.Equal(t, 1, si, "the pipeline partition id is not the repartition source's")
	require.Equal(t, m[2], fmt.Sprint(local), "the topic partition is not the pipeline partition's")

	h, src = newOriginRun(t, log, 5*time.Second, stream.WithColdStartChanged())
	src.in.Resume(pos)
	push(t, src, pos.Offset, 40)
	src.in.Close()
	h.RunUntilDone()
}
