// The end of the job's dead-letter producer: what it still holds when the job ends is waited
// for within a bound (closeDeadLetters).

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/kafka"
)

// deadLetterGrace bounds the close of the dead-letter producer at the job's end: the
// pipeline's shutdown grace (stream.WithShutdownGrace's default), which its own outputs get.
const deadLetterGrace = 30 * time.Second

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
