package stream_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// ctlSource is a source whose Input a test drives directly (Assign, Resume, Revoke, End and
// pushes in any order between batches), as a Kafka Source does across rebalances. It records
// the positions committed and whether each came for a partition the test said it owns.
type ctlSource struct {
	in *stream.Input[kv]

	mu        sync.Mutex
	owned     map[int32]bool
	committed map[int32]stream.Position
	foreign   []stream.Position // committed for partitions not owned
}

func newCtlSource() *ctlSource {
	return &ctlSource{owned: map[int32]bool{}, committed: map[int32]stream.Position{}}
}

func (s *ctlSource) Bind(in *stream.Input[kv])                        { s.in = in }
func (*ctlSource) Run(ctx context.Context, _ *stream.Input[kv]) error { <-ctx.Done(); return ctx.Err() }

func (s *ctlSource) Commit(_ context.Context, pos []stream.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range pos {
		if !s.owned[x.Partition] {
			// A Kafka Source ignores it (another member owns the partition); here it is a
			// partition the pipeline keeps although it was revoked.
			s.foreign = append(s.foreign, x)
			continue
		}
		s.committed[x.Partition] = x
	}
	return nil
}

func (s *ctlSource) setOwned(part int32, owned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owned[part] = owned
}

// position is where an assigned partition resumes: its committed position, or offset 0
// (Assign) if nothing was committed.
func (s *ctlSource) position(part int32) (stream.Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.committed[part]
	return p, ok
}

// ctlRecord is record off of partition part: key "p<part>", value off+1, event time
// 1000 s + 10 s * off + part s after the epoch, so that a partition's event time grows with
// its offsets and partitions never tie.
func ctlRecord(part int32, off int64) stream.Record[kv] {
	return stream.Record[kv]{
		Value: kv{Key: "p" + strconv.Itoa(int(part)), Value: int(off) + 1}, Partition: part, Offset: off,
		EventTime: ctlTime(part, off),
	}
}

func ctlTime(part int32, off int64) time.Time {
	return streamtest.Epoch.Add(time.Duration(1000+10*off+int64(part)) * time.Second)
}

// ctlPipeline is a harness whose source is a ctlSource, with a per-partition running sum of
// the values per key (UpdateStateByKey: its state holds commits back to the partition's first
// record, so a replay from the committed offset rebuilds it) collected every batch. The
// watermark is each partition's newest event time (no out-of-orderness, no idleness), so a
// partition the pipeline keeps without records holds it back. With second, the ctlSource is
// the pipeline's second source (its partition ids are not the pipeline's), after a queue that
// stays empty.
func ctlPipeline(t *testing.T, second bool) (*streamtest.Harness, *ctlSource, *streamtest.Collector[kv]) {
	h := streamtest.New(t, time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(0))
	src := newCtlSource()
	var s *stream.Stream[kv]
	if second {
		_, first := streamtest.NewQueue[kv](h)
		s = first.Union(stream.From(h.P, stream.Source[kv](src)))
	} else {
		s = stream.From(h.P, stream.Source[kv](src))
	}
	sums := streamtest.Collect(stream.UpdateStateByKey(s, func(_ string, vs []int, n int, _ bool) (int, bool) {
		for _, v := range vs {
			n += v
		}
		return n, true
	}))
	return h, src, sums
}

// livePartitions returns the partitions the pipeline has, by their source's ids.
func livePartitions(h *streamtest.Harness) []int32 {
	var live []int32
	for _, ps := range h.P.Stats().PartitionStats {
		_, part := stream.PartitionSource(ps.Partition)
		live = append(live, part)
	}
	return live
}

// TestRevokeDuringRetryForgetsEndDue: a partition's end sent with records of it in the batch
// counts with the next batch. If the partition is revoked while that batch's outputs are
// retried, and assigned again, the end was its former claim's: the new claim, which replays
// from the committed position, has not ended. Before, the end was applied to it at the next
// batch without its records (the revocation was applied at the retry, and only a batch's take
// forgot ends due): its watermark went to the end of time before its replay began, so that
// event-time windows would take the replayed records for late ones, and it stopped holding
// the pipeline's watermark back.
func TestRevokeDuringRetryForgetsEndDue(t *testing.T) {
	h, src, sums := ctlPipeline(t, false)
	down := false
	sums.Fail = func(stream.BatchInfo) error {
		if down {
			return errDown
		}
		return nil
	}
	for _, part := range []int32{0, 1} {
		src.setOwned(part, true)
		src.in.Assign(part)
	}
	require.True(t, src.in.TryPush(ctlRecord(0, 0)))
	require.True(t, src.in.TryPush(ctlRecord(1, 0)))
	h.Step()
	require.True(t, src.in.TryPush(ctlRecord(0, 1)))
	require.True(t, src.in.TryPush(ctlRecord(1, 1)))
	src.in.End(1) // with a record of it in the batch: it ends with the next one
	down = true
	_, err := h.TryStep()
	require.ErrorIs(t, err, errDown)

	src.setOwned(1, false)
	done := src.in.Revoke(1)
	down = false
	h.Step() // the retry drops partition 1
	<-done
	require.Equal(t, []int32{0}, livePartitions(h))

	src.setOwned(1, true)
	pos, ok := src.position(1)
	require.True(t, ok)
	src.in.Resume(pos) // its replay has not begun by the next batch
	require.True(t, src.in.TryPush(ctlRecord(0, 2)))
	h.Step()
	st := h.P.Stats()
	require.Len(t, st.PartitionStats, 2)
	require.False(t, st.PartitionStats[1].Ended, "partition 1's new claim has not ended")
	require.Equal(t, ctlTime(0, 1), st.Watermark, "partition 1, assigned again, holds the watermark back")
}
