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

// TestPipelineOrigin: Pipeline.Origin maps a pipeline partition id to its source's topic and
// partition whichever source of the pipeline it belongs to. A source's own Origin takes its
// local ids only, so a window after a repartition that built its late records' dead letters
// with the exchange's Origin (as the docs said) got no topic: the pipeline's id of the
// exchange's partition 1 is 67108865 (helper-119, as a user, against the real services).
func TestPipelineOrigin(t *testing.T) {
	p, err := New(time.Second)
	require.NoError(t, err)
	From[int](p, originSource{"rides"})
	topic, part, ok := p.Origin(2)
	require.True(t, ok)
	require.Equal(t, "rides", topic)
	require.Equal(t, int32(20), part, "the only source's ids are the pipeline's")

	From[int](p, originSource{"rides-repartition"})
	second := globalPart(1, 1)
	_, _, ok = originSource{"rides-repartition"}.Origin(second)
	require.False(t, ok, "the source's own Origin does not know the pipeline's id")
	topic, part, ok = p.Origin(second)
	require.True(t, ok)
	require.Equal(t, "rides-repartition", topic)
	require.Equal(t, int32(10), part)
	topic, part, ok = p.Origin(globalPart(0, 2))
	require.True(t, ok, "the first source's ids stay its own")
	require.Equal(t, "rides", topic)
	require.Equal(t, int32(20), part)
	_, _, ok = p.Origin(globalPart(1, 5))
	require.False(t, ok, "a partition the source does not know")
	_, _, ok = p.Origin(globalPart(7, 0))
	require.False(t, ok, "no such source")
}
