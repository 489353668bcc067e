package stream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// inputBinder hands the test a source's Input and keeps what the pipeline commits.
type inputBinder struct {
	in      *stream.Input[int]
	mu      sync.Mutex
	commits []stream.Position
}

func (b *inputBinder) Bind(in *stream.Input[int])                          { b.in = in }
func (b *inputBinder) Run(ctx context.Context, _ *stream.Input[int]) error { <-ctx.Done(); return nil }
func (b *inputBinder) Commit(_ context.Context, pos []stream.Position) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commits = append(b.commits, pos...)
	return nil
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// windowed returns a pipeline of two sources, each through a processing-time window of
// length batches.
func windowed(t *testing.T, length int, opts ...stream.Option) (p *stream.Pipeline, a, b *inputBinder) {
	t.Helper()
	p, err := stream.New(time.Second, opts...)
	require.NoError(t, err)
	a, b = &inputBinder{}, &inputBinder{}
	for _, x := range []*inputBinder{a, b} {
		w := stream.Window(stream.From[int](p, x), time.Duration(length)*time.Second, time.Second)
		stream.To(w, stream.SinkFunc[int](func(context.Context, []int) error { return nil }))
	}
	return p, a, b
}

// TestInputAccepted: Input.Accepted's channel is closed once a batch took every partition
// handed over before the call and the pipeline did not stop on them; a checkpoint the
// pipeline refuses (ErrOperatorChanged) on one source leaves it open on every source, since
// the whole pipeline stops.
func TestInputAccepted(t *testing.T) {
	// A checkpoint of the first source's partition under a window of 2 batches.
	p, a, _ := windowed(t, 2)
	require.True(t, closed(a.in.Accepted()), "nothing handed over: closed at once")
	a.in.Assign(0)
	for off := range int64(4) {
		require.True(t, a.in.TryPush(stream.Record[int]{Value: int(off), Partition: 0, Offset: off}))
	}
	acc := a.in.Accepted()
	require.False(t, closed(acc), "not taken yet")
	_, err := p.Step(t.Context())
	require.NoError(t, err)
	require.True(t, closed(acc), "taken and accepted")
	require.True(t, closed(a.in.Accepted()))
	_, err = p.Step(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, a.commits)
	committed := a.commits[len(a.commits)-1]
	require.NotEmpty(t, committed.Meta)

	t.Run("refused", func(t *testing.T) {
		p, a, b := windowed(t, 3)
		a.in.Resume(committed)
		b.in.Assign(0)
		accA, accB := a.in.Accepted(), b.in.Accepted()
		_, err := p.Step(t.Context())
		require.ErrorIs(t, err, stream.ErrOperatorChanged)
		require.False(t, closed(accA), "refused")
		require.False(t, closed(accB), "the other source's partition: the pipeline stopped")
	})
	t.Run("accepted", func(t *testing.T) {
		p, a, b := windowed(t, 3, stream.WithColdStartChanged())
		a.in.Resume(committed)
		accA := a.in.Accepted()
		_, err := p.Step(t.Context())
		require.NoError(t, err)
		require.True(t, closed(accA))
		b.in.Assign(0)
		accB := b.in.Accepted()
		require.False(t, closed(accB), "handed over after the batch")
		_, err = p.Step(t.Context())
		require.NoError(t, err)
		require.True(t, closed(accB))
	})
}
