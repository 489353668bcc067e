package stream_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestDefaultLogger: without WithLogger a pipeline logs to slog.Default() as it is when New is
// called (it discarded, and adopters saw none of its warnings); WithLogger replaces it.
func TestDefaultLogger(t *testing.T) {
	before := slog.Default()
	t.Cleanup(func() { slog.SetDefault(before) })
	mine := slog.New(slog.DiscardHandler)
	slog.SetDefault(mine)

	p, err := stream.New(time.Second)
	require.NoError(t, err)
	require.Same(t, mine, p.Logger(), "the default logger is not slog.Default() at New")

	other := slog.New(slog.NewTextHandler(t.Output(), nil))
	p, err = stream.New(time.Second, stream.WithLogger(other))
	require.NoError(t, err)
	require.Same(t, other, p.Logger())
	require.True(t, p.Logger().Enabled(context.Background(), slog.LevelWarn))
}
