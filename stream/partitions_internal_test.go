package stream

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// originSource is a source that names its partitions' origin (Originator).
type originSource struct{ topic string }

func (originSource) Run(ctx context.Context, _ *Input[int]) error { <-ctx.Done(); return ctx.Err() }
func (originSource) Commit(context.Context, []Position) error     { return nil }
func (o originSource) Origin(part int32) (string, int32, bool) {
	return o.topic, part * 10, part < 3
}

// TestInputOf: the pipeline's logs name a partition's origin ("input=topic/partition") when
// its source can say, in a pipeline of several sources too; they named only the pipeline's
// partition id (67108864 for partition 0 of the second source), which a reader cannot map
// back (a reviewer's finding).
func TestInputOf(t *testing.T) {
	p, err := New(time.Second)
	require.NoError(t, err)
	From[int](p, originSource{"rides"})
	From[int](p, originSource{"requests"})
	require.Equal(t, "rides/20", p.inputOf(globalPart(0, 2)).Value.String())
	require.Equal(t, "requests/10", p.inputOf(globalPart(1, 1)).Value.String())
	require.True(t, p.inputOf(globalPart(1, 5)).Equal(slog.Attr{}), "a partition the source does not know")
	require.True(t, p.inputOf(globalPart(7, 0)).Equal(slog.Attr{}), "no such source")
}
