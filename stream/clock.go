// The processing-time clock: the Clock interface and SystemClock, the wall clock.

package stream

import "time"

// Clock is the pipeline's source of processing time. Tests inject a manual clock
// (streamtest.Clock) or run under testing/synctest; nothing in the pipeline sleeps on the wall
// clock directly.
type Clock interface {
	Now() time.Time
	// After waits for the duration to elapse and then sends the current time on the channel.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock is the wall clock.
var SystemClock Clock = realClock{}
