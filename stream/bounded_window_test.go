package stream_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// pacedSource pushes records at offsets 0..n-1, one every interval starting half an interval
// in (so each batch takes one), then ends its input. It keeps every commit.
type pacedSource struct {
	n        int64
	interval time.Duration
	mu       sync.Mutex
	commits  []stream.Position
}

func (s *pacedSource) Run(ctx context.Context, in *stream.Input[int64]) error {
	wait := s.interval / 2
	for off := range s.n {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = s.interval
		if err := in.Push(ctx, stream.Record[int64]{Value: off, Offset: off, EventTime: time.Now()}); err != nil {
			return err
		}
	}
	return nil // the input ends
}

func (s *pacedSource) Commit(_ context.Context, pos []stream.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits = append(s.commits, pos...)
	return nil
}

// TestBoundedRunHoldsProcessingTimeWindow: a processing-time window has no end of input (it
// is a number of batches, not of event time), so a bounded run returns nil with its last
// commit held at the oldest record of the window's last batches, as Run's documentation says:
// a next run replays them to rebuild the window.
func TestBoundedRunHoldsProcessingTimeWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second)
		require.NoError(t, err)
		src := &pacedSource{n: 5, interval: time.Second}
		var last []int64
		stream.ForEachBatch(stream.Window(stream.From(p, stream.Source[int64](src)), 3*time.Second, time.Second),
			func(_ context.Context, _ stream.BatchInfo, vs []int64) error {
				last = append(last[:0], vs...)
				return nil
			})
		require.NoError(t, p.Run(t.Context()), "the input ended")
		require.Equal(t, []int64{3, 4}, last, "the last window: the batches of offsets 3 and 4 and the end's")
		require.NotEmpty(t, src.commits)
		end := src.commits[len(src.commits)-1]
		require.Equal(t, int64(3), end.Offset, "held at the window's oldest record, not past the last one (5)")
		require.Equal(t, int64(5), p.Stats().PartitionStats[0].Next, "every record was read")
	})
}
