// The option of WithEndWhenCaughtUp, shared by the Sources of one pipeline: their inputs end
// together, once all of them are caught up (the monitor that looks is in caughtup_monitor.go).

package kafka

import (
	"sync"
	"time"
)

// CaughtUp is the SourceOption that WithEndWhenCaughtUp returns. Every Source it is given to
// ends its input at the same moment: when all of them have been read to their high-water marks
// and none of their topics got a record for the idle time. Give one CaughtUp to every Source
// of a pipeline (the telemetry and the ride requests, say). A Source given an option of its
// own ends alone: its input ends while another's records still flow, and what reaches its
// topics afterwards is not read in this run (and is late for the next one). Every Source
// given a CaughtUp must run; the inputs end only once each of them has looked. A CaughtUp
// serves one run: once it has ended its inputs, NewSource refuses it.
type CaughtUp struct {
	idle time.Duration
	err  error

	mu      sync.Mutex
	members []*caughtUpMember
	ended   bool
}

var _ SourceOption = (*CaughtUp)(nil)

// caughtUpMember is one Source's part of a CaughtUp.
type caughtUpMember struct {
	end   func() // ends the Source's input; nil until its Run started
	since time.Time
	at    time.Time // the Source's last look; since is zero if it was not caught up then
}

func (c *CaughtUp) applySource(o *sourceOptions) {
	if c == nil {
		o.errs = append(o.errs, invalid("WithEndWhenCaughtUp", "nil *CaughtUp"))
		return
	}
	if c.err != nil {
		o.errs = append(o.errs, c.err)
		return
	}
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	if ended {
		// Its members are the Sources of the run it ended: a new one would wait for them.
		o.errs = append(o.errs, invalid("WithEndWhenCaughtUp", "the option already ended the inputs of an earlier run; give each run of a pipeline an option of its own"))
		return
	}
	o.caughtUp = c
}

// tick is how often a member looks: every eighth of idle, at most a second apart.
func (c *CaughtUp) tick() time.Duration { return max(min(c.idle/8, time.Second), time.Millisecond) }

// join adds a Source (NewSource).
func (c *CaughtUp) join() *caughtUpMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &caughtUpMember{}
	c.members = append(c.members, m)
	return m
}

// start makes m ready to be ended by end (its Source's Run).
func (c *CaughtUp) start(m *caughtUpMember, end func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.end = end
}

// report records m's look at now: since is when m was first found caught up with its topics'
// marks unchanged since, zero if it was not caught up. It reports whether the inputs ended,
// and ends them if this look completes the condition: every member runs, looked within the
// last two ticks, and has been caught up since a time at least idle ago.
func (c *CaughtUp) report(m *caughtUpMember, since, now time.Time) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return true
	}
	m.since, m.at = since, now
	for _, x := range c.members {
		if x.end == nil || x.since.IsZero() || now.Sub(x.since) < c.idle || now.Sub(x.at) > 2*c.tick() {
			c.mu.Unlock()
			return false
		}
	}
	c.ended = true
	ends := make([]func(), len(c.members))
	for i, x := range c.members {
		ends[i] = x.end
	}
	c.mu.Unlock()
	for _, end := range ends {
		end()
	}
	return true
}
