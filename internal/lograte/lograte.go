// Package lograte keeps a repeated log line readable when it floods: the first few events are
// logged one by one, then at most one line per interval that says how many were left out.
// A flood of bad input must not drown the other logs, and the counts stay in the stats.
package lograte

import (
	"sync"
	"time"
)

// Limiter decides which of a stream of events to log. It is safe for concurrent use.
type Limiter struct {
	first int
	every time.Duration

	mu         sync.Mutex
	seen       int
	next       time.Time
	suppressed int64
}

// New returns a Limiter that lets the first events through, then one event per interval.
func New(first int, every time.Duration) *Limiter {
	return &Limiter{first: first, every: every}
}

// Allow reports whether the event at now should be logged and, if so, how many events were
// left out since the last one logged.
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen < l.first {
		l.seen++
		l.next = now.Add(l.every)
		return true, 0
	}
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(l.every)
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
