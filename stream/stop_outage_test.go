package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// lockedBuf is a log sink safe for the pipeline's goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStopDuringOutage (the operator's probe: a SIGTERM during a Kafka outage logged
// "stopping on a permanent error" and led the error with the produce failures): an output
// that fails for a reason that passes until the stop, whose last attempt then gives up
// because its context ended (a Kafka transaction cut off mid-commit marks it Permanent),
// ends the run with the stop as the cause and the outage's error as context, logged as a
// stop, not as a permanent error. A permanent error of another kind at the same point is
// still reported as permanent.
func TestStopDuringOutage(t *testing.T) {
	errTooLarge := errors.New("message too large")
	for _, tc := range []struct {
		name string
		// last is the output's answer once its context ended.
		last      func(ctx context.Context) error
		permanent bool
		want      string // Run's error
		log       string // the line's start
	}{{
		name: "gives up with its context's error, marked permanent",
		last: func(ctx context.Context) error {
			return stream.Permanent(fmt.Errorf("transaction given up: %w", ctx.Err()))
		},
		want: "context canceled (batch 1 was not written: stream: batch 1: 1 output(s) failed: sink down; " +
			"then, stopping: stream: batch 1: 1 output(s) failed: transaction given up: context canceled)",
		log: `level=WARN msg="stream: stopped while the batch's outputs were failing; it was not written (the next run replays it)" batch=1 cause="context canceled"`,
	}, {
		name: "returns its context's error",
		last: func(ctx context.Context) error { return ctx.Err() },
		want: "context canceled (batch 1 was not written: stream: batch 1: 1 output(s) failed: sink down; " +
			"then, stopping: stream: batch 1: 1 output(s) failed: context canceled)",
		log: `level=WARN msg="stream: stopped while the batch's outputs were failing; it was not written (the next run replays it)" batch=1 cause="context canceled"`,
	}, {
		name:      "a permanent error of its own",
		last:      func(context.Context) error { return stream.Permanent(errTooLarge) },
		permanent: true,
		want:      "stream: batch 1: 1 output(s) failed: message too large",
		log:       `level=ERROR msg="stream: stopping on a permanent error"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &lockedBuf{}
				p, err := stream.New(time.Second, stream.WithShutdownGrace(5*time.Second),
					stream.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
				require.NoError(t, err)
				src := &sliceSource{recs: []int{1}, wait: true}
				ctx, cancel := context.WithCancel(t.Context())
				attempts := 0
				stream.ForEachBatch(stream.From(p, stream.Source[int](src)), func(wctx context.Context, _ stream.BatchInfo, _ []int) error {
					if attempts++; attempts < 3 {
						return errDown // the outage: retried
					}
					cancel()      // the operator's SIGTERM, during the third attempt
					<-wctx.Done() // the sink's own retries, until the grace cancels them
					return tc.last(wctx)
				})
				err = p.Run(ctx)
				require.Equal(t, 3, attempts)
				require.Equal(t, tc.permanent, stream.IsPermanent(err), "%v", err)
				require.EqualError(t, err, tc.want)
				require.NotErrorIs(t, err, context.Canceled, "a batch unwritten is not a clean stop")
				if tc.permanent {
					require.ErrorIs(t, err, errTooLarge)
				} else {
					require.ErrorIs(t, err, errDown, "the outage's error is kept")
					require.NotContains(t, logs.String(), "permanent")
				}
				require.Contains(t, logs.String(), tc.log)
				require.Nil(t, src.commits.Load(), "the batch was not acknowledged")
			})
		})
	}
}

// TestStopDuringOutageMixed: at a stop, an output that gave up because of it beside one that
// failed for good is permanent; beside one that failed for a reason that passes it is the
// stop, and the error names both outputs' failures.
func TestStopDuringOutageMixed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		other     error
		permanent bool
	}{
		{"beside an outage", errDown, false},
		{"beside a permanent error", stream.Permanent(errors.New("not authorized")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &lockedBuf{}
				p, err := stream.New(time.Second, stream.WithShutdownGrace(5*time.Second),
					stream.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
				require.NoError(t, err)
				s := stream.From(p, stream.Source[int](&sliceSource{recs: []int{1}, wait: true}))
				ctx, cancel := context.WithCancel(t.Context())
				stream.ForEachBatch(s, func(context.Context, stream.BatchInfo, []int) error {
					cancel()
					return tc.other
				})
				stream.ForEachBatch(s, func(wctx context.Context, _ stream.BatchInfo, _ []int) error {
					<-wctx.Done()
					return stream.Permanent(fmt.Errorf("transaction given up: %w", wctx.Err()))
				})
				err = p.Run(ctx)
				require.Equal(t, tc.permanent, stream.IsPermanent(err), "%v", err)
				require.ErrorContains(t, err, tc.other.Error())
				require.ErrorContains(t, err, "transaction given up: context canceled")
				require.Equal(t, tc.permanent, strings.Contains(logs.String(), `msg="stream: stopping on a permanent error"`), logs.String())
				require.Equal(t, !tc.permanent, strings.HasPrefix(err.Error(), "context canceled (batch 1 was not written: "), "%v", err)
			})
		})
	}
}
