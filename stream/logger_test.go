package stream_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestDefaultLogger: without WithLogger a pipeline logs nowhere, whatever slog.Default() is
// (an injected logger, no globals: the project's style); WithLogger replaces it.
func TestDefaultLogger(t *testing.T) {
	p, err := stream.New(time.Second)
	require.NoError(t, err)
	require.NotSame(t, slog.Default(), p.Logger(), "the default logger is the process's global")
	require.False(t, p.Logger().Enabled(context.Background(), slog.LevelError), "the default logger does not discard")

	other := slog.New(slog.NewTextHandler(t.Output(), nil))
	p, err = stream.New(time.Second, stream.WithLogger(other))
	require.NoError(t, err)
	require.Same(t, other, p.Logger())
	require.True(t, p.Logger().Enabled(context.Background(), slog.LevelWarn))
}
