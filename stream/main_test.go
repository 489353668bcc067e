package stream_test

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain silences slog.Default(), which the pipelines these tests build without WithLogger
// log to (the package's default): their warnings are expected (commits and outputs that the
// tests fail, stops they cut short) and went to stderr. Tests that check logs pass their own
// logger.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
