// The end of the job's dead-letter producer: what it still holds when the job ends is waited
// for within what is left of -shutdown-timeout (closeDeadLetters, stopBudget).

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fleetstream/fleetstream/kafka"
)

// minDeadLetterGrace is the least time the dead-letter producer's close gets, as the library
// gives the outputs' close at least a second after a stop: with none left, a close would
// give up dead letters that a healthy broker was about to acknowledge. The exit past
// -shutdown-timeout (stopOnSignal) still bounds the job's stop.
const minDeadLetterGrace = time.Second

// closeDeadLetters closes the dead-letter producer, waiting at most grace for the dead letters
// still in flight. Those are the dead letters of writes abandoned when their batch was
// cancelled (a stop, an error): their records were not committed, so the next run reads them
// again and writes them again, and nothing is lost by not waiting longer. Without the bound,
// a broker gone silent held the job's exit for the producer's retries (ten of a 30 s read
// timeout and a metadata refresh each).
func closeDeadLetters(ctx context.Context, dlq *kafka.DeadLetterSink, grace time.Duration) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := dlq.Close(cctx); err != nil {
		return fmt.Errorf("dead-letter topic %s: dead letters in flight at the job's end were not acknowledged by Kafka within %v (%w): "+
			"their records were not committed, so the next run reads them and writes their dead letters again", dlq.Topic(), grace, err)
	}
	return nil
}

// pipelineStop is the pipeline's share of -shutdown-timeout, four fifths of it, counted from
// the stop: stream.WithShutdownTimeout bounds the whole of the pipeline's stop (the batch in
// flight, its commit, the sources' stop and the outputs' close) by it, and WithShutdownGrace
// as much lets the batch in flight take most of it (the library keeps the last tenth for
// the rest). The dead-letter producer's close gets what is left (stopBudget). Until the
// library bounded its stop as a whole, the job gave the batch a third of -shutdown-timeout,
// as its commit and the outputs' close could each take as long again (8 s of the default
// 25 s, now up to 18 s); with the library's default grace of 30 s and 30 s for the dead
// letters, a stop could take 90 s and more, where Kubernetes kills a pod 30 s after its
// SIGTERM.
func (c *config) pipelineStop() time.Duration { return c.stopTimeout * 4 / 5 }

// stopBudget is what is left of -shutdown-timeout since ctx ended (a stop).
type stopBudget struct {
	timeout   time.Duration
	mu        sync.Mutex
	stoppedAt time.Time // when ctx ended; zero while it has not
	release   func() bool
}

// newStopBudget starts counting -shutdown-timeout when ctx ends. close releases it.
func newStopBudget(ctx context.Context, timeout time.Duration) *stopBudget {
	b := &stopBudget{timeout: timeout}
	b.release = context.AfterFunc(ctx, func() { b.stopped() })
	return b
}

// stopped returns when ctx ended, noting now if it is the first to see it.
func (b *stopBudget) stopped() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stoppedAt.IsZero() {
		b.stoppedAt = time.Now()
	}
	return b.stoppedAt
}

// left returns what is left of the bound, at least floor: all of it for a run that ended
// by itself or failed (ctx, newStopBudget's, did not end).
func (b *stopBudget) left(ctx context.Context, floor time.Duration) time.Duration {
	if ctx.Err() == nil {
		return max(b.timeout, floor)
	}
	return max(b.timeout-time.Since(b.stopped()), floor)
}

func (b *stopBudget) close() { b.release() }
