package kafka

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

// records keeps the log records it handles.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// withMessage returns the records of msg.
func (r *records) withMessage(msg string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.recs {
		if rec.Message == msg {
			out = append(out, rec)
		}
	}
	return out
}

func intAttr(rec slog.Record, key string) (v int64, ok bool) {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, ok = a.Value.Int64(), true
			return false
		}
		return true
	})
	return v, ok
}

// A broker outage: sarama reports an error for each of 24 partitions every 2.5 s, for 38 s.
// The log gets a few lines, not one per error, and the lines count every error.
func TestGroupErrorsAreRateLimited(t *testing.T) {
	logs := &records{}
	s, err := NewSource(Config{Brokers: []string{"127.0.0.1:1"}, Group: "g", Topics: []string{"t"}},
		CodecFunc[string](func(m *Message) (string, time.Time, error) { return string(m.Value), time.Time{}, nil }),
		WithLogger(slog.New(logs)))
	require.NoError(t, err)
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	const parts, every, outage = 24, 2500 * time.Millisecond, 38 * time.Second
	errs := 0
	for at := time.Duration(0); at <= outage; at += every {
		for p := range int32(parts) {
			s.logGroupError(t0.Add(at), &sarama.ConsumerError{Topic: "t", Partition: p, Err: errors.New("broker down")})
			errs++
		}
	}
	lines := logs.withMessage("kafka: consumer group error")
	require.NotEmpty(t, lines, "no error logged")
	require.LessOrEqual(t, len(lines), groupLogFirst+int(outage/groupLogEvery)+1, "lines for %d errors", errs)

	// One more after the interval: its line counts the ones left out since the last line.
	s.logGroupError(t0.Add(outage+groupLogEvery), errors.New("broker down"))
	errs++
	lines = logs.withMessage("kafka: consumer group error")
	counted := 0
	for _, l := range lines {
		left, ok := intAttr(l, "not_logged_since_last")
		require.True(t, ok, "line without the count: %v", l)
		counted += 1 + int(left)
	}
	require.Equal(t, errs, counted, "errors logged or counted, of %d in %d lines", errs, len(lines))
}
