// Package backoff computes retry delays: exponential growth with jitter, bounded per attempt.
// The pipeline and the connectors share it so that every retry in fleetstream behaves alike.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry attempt n (n >= 1): initial doubled n-1 times, capped
// at max, then jittered uniformly into [d/2, d] so that many clients do not retry in step.
func Delay(initial, max time.Duration, n int) time.Duration {
	d := initial
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d, or until done is closed, and reports whether the whole wait passed.
func Sleep(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return false
	case <-t.C:
		return true
	}
}
