// A repartition whose upstream source reads an input fewer after a restart.

package stream_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
	"github.com/fleetstream/fleetstream/window"
)

// topicSource is a source of topics of equal partition counts whose partition ids are
// kafka.Source's (topic i's partition p is i<<16 | p): it names its topics
// (InputIdentifier), counts their partitions (PartitionCounter) and maps ids back to them
// (Originator). Tests push its records themselves, before each step.
type topicSource struct {
	in     *stream.Input[keyed]
	topics []string
	parts  int
	mu     sync.Mutex
	commit map[int32]stream.Position
}

func (s *topicSource) Bind(in *stream.Input[keyed]) { s.in = in }
func (s *topicSource) Run(ctx context.Context, _ *stream.Input[keyed]) error {
	<-ctx.Done()
	return ctx.Err()
}
func (s *topicSource) Commit(_ context.Context, pos []stream.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pos {
		s.commit[p.Partition] = p
	}
	return nil
}
func (s *topicSource) PartitionCount() int     { return len(s.topics) * s.parts }
func (s *topicSource) InputIdentity() []string { return s.topics }
func (s *topicSource) Origin(id int32) (string, int32, bool) {
	if i := int(id >> 16); id >= 0 && i < len(s.topics) && int(id&(1<<16-1)) < s.parts {
		return s.topics[i], id & (1<<16 - 1), true
	}
	return "", -1, false
}

// ids returns the partition ids of the source's topics.
func (s *topicSource) ids() []int32 {
	var ids []int32
	for i := range s.topics {
		for p := range s.parts {
			ids = append(ids, int32(i<<16|p))
		}
	}
	return ids
}

// TestRepartitionInputLeftOut: a restart whose upstream source reads a topic fewer (the last
// one left out, which the inputs' check lets through: "one left out at the end is no longer
// read") goes on with the partitions it still reads. The checkpoint's marks of the topic left
// out never move again: they held the downstream watermark where the last run left it, so no
// window closed again, and a bounded run never ended.
func TestRepartitionInputLeftOut(t *testing.T) {
	for _, grown := range []int{0, 1} {
		t.Run(fmt.Sprintf("grown=%d", grown), func(t *testing.T) { testInputLeftOut(t, grown) })
	}
}

func testInputLeftOut(t *testing.T, grown int) {
	log := streamtest.NewExchangeLog[stream.Pair[string, int64]](2)
	const size = 10 * time.Second
	newRun := func(parts int, topics ...string) (*streamtest.Harness, *topicSource, *streamtest.Collector[window.Result[string, int64]]) {
		h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(time.Second))
		src := &topicSource{topics: topics, parts: parts, commit: map[int32]stream.Position{}}
		pairs := stream.Map(stream.From[keyed](h.P, src), func(k keyed) stream.Pair[string, int64] { return stream.KV(k.Key, k.V) })
		_, shuffled := streamtest.NewRepartition(h, pairs, "keys", log)
		sums, err := window.Aggregate(shuffled, func(p stream.Pair[string, int64]) string { return p.Key },
			func(p stream.Pair[string, int64]) int64 { return p.Value }, window.Tumbling(size), window.Sum[int64]())
		require.NoError(t, err)
		return h, src, streamtest.Collect(sums.Results().Filter(func(x window.Result[string, int64]) bool { return x.Final }))
	}
	// Record off of every partition of src: one a second of event time.
	batch := func(src *topicSource, from map[int32]int64, off int64) []stream.Record[keyed] {
		var b []stream.Record[keyed]
		for _, id := range src.ids() {
			if off >= from[id] {
				b = append(b, stream.Record[keyed]{Value: keyed{fmt.Sprint("k", (off+int64(id))%3), 1 + off%7}, Partition: id, Offset: off,
					EventTime: streamtest.Epoch.Add(time.Duration(off) * time.Second)})
			}
		}
		return b
	}

	// Run 1 reads topics "rides" and "extra", unbounded, to 19 s of event time.
	h, src, _ := newRun(2, "rides", "extra")
	for off := range int64(25) {
		if off == 0 {
			for _, id := range src.ids() {
				src.in.Assign(id)
			}
		}
		if off < 20 {
			require.Equal(t, 4, src.in.TryPushBatch(batch(src, nil, off)))
		}
		_, err := h.TryStep()
		require.NoError(t, err)
	}
	from := map[int32]int64{}
	var pos []stream.Position
	for _, id := range []int32{0, 1} {
		cp, ok := src.commit[id]
		require.True(t, ok, "partition %d committed", id)
		from[id] = cp.Offset
		pos = append(pos, cp)
	}

	// Run 2 reads "rides" only, from its commits, to 199 s of event time. While "rides" grew
	// a third partition, read by another instance that has sent nothing yet, the watermark
	// waits for it, as the source's count says: none of the windows closes.
	h, src, final := newRun(2+grown, "rides")
	want := map[string]int64{} // by key and window start, of the windows from 30 s on
	const last = 200
	var stepErr error
	for off := range int64(last + 30) {
		if off == 0 {
			src.in.Resume(pos...)
		}
		if off < last {
			b := batch(src, from, off)
			b = slices.DeleteFunc(b, func(r stream.Record[keyed]) bool { return r.Partition > 1 }) // not this instance's
			for _, r := range b {
				if start := r.EventTime.Truncate(size); start.Sub(streamtest.Epoch) >= 30*time.Second {
					want[fmt.Sprint(r.Value.Key, "@", start.Sub(streamtest.Epoch))] += r.Value.V
				}
			}
			require.Equal(t, len(b), src.in.TryPushBatch(b))
		}
		if _, stepErr = h.TryStep(); stepErr != nil {
			break
		}
	}
	require.NoError(t, stepErr)
	// Unbounded, every window that ends before the partitions' watermark (the last record's
	// time less the out-of-orderness) closed, with the sums of its records.
	wm := time.Duration(last-1)*time.Second - time.Second
	written := func(closed time.Duration) map[string]int64 {
		got := map[string]int64{}
		for _, r := range final.Slice() {
			if at := r.Start.Sub(streamtest.Epoch); at >= 30*time.Second && at+size <= closed {
				got[fmt.Sprint(r.Key, "@", at)] = r.Value
			}
		}
		return got
	}
	closed := map[string]int64{}
	for id, v := range want {
		at, err := time.ParseDuration(id[len("k0@"):])
		require.NoError(t, err)
		if at+size <= wm {
			closed[id] = v
		}
	}
	require.NotEmpty(t, closed)
	if grown > 0 {
		require.Empty(t, written(wm), "windows closed before the new partition was heard from")
		return
	}
	require.Equal(t, closed, written(wm), "the windows from 30 s to %v", wm)
	// And a bounded run ends, every window written.
	src.in.Close()
	done := false
	for range 100 {
		if done, stepErr = h.TryStep(); done || stepErr != nil {
			break
		}
	}
	require.NoError(t, stepErr)
	require.True(t, done, "the run did not end")
	require.Equal(t, want, written(last*time.Second))
}
