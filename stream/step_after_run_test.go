package stream_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// closedSink records what it is asked to write after it was closed.
type closedSink struct {
	closed     bool
	afterClose int
}

func (s *closedSink) Write(_ context.Context, batch []int) error {
	if s.closed {
		s.afterClose += len(batch)
	}
	return nil
}

func (s *closedSink) Close(context.Context) error {
	s.closed = true
	return nil
}

// TestStepAfterRunIsRefused: a pipeline runs once. Once Run returned, its sources are
// stopped and its outputs closed, so Step must not run another batch: it wrote to the closed
// sinks, and its commit, with Run's commit context left behind, went on in the background
// after Step returned, although Step commits at once.
func TestStepAfterRunIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second)
		require.NoError(t, err)
		var in *stream.Input[int]
		s := stream.From(p, stream.Source[int](binder(func(i *stream.Input[int]) { in = i })))
		sink := &closedSink{}
		stream.To(s, stream.Sink[int](sink))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		require.ErrorIs(t, p.Run(ctx), context.Canceled)
		require.True(t, sink.closed)

		require.True(t, in.TryPush(stream.Record[int]{Value: 1}))
		_, err = p.Step(t.Context())
		require.ErrorIs(t, err, stream.ErrRunTwice)
		require.Zero(t, sink.afterClose, "records written to a sink after Run closed it")
	})
}
