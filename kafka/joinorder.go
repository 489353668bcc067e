// The order of first joins: a repartition's consumer joins its group after the Sources of the
// same group in this process started their first session.

package kafka

import (
	"context"
	"sync"
	"time"
)

// firstJoins holds, by consumer group, how many Sources of this process that read input
// topics (not a repartition's) have started running and not yet begun their first session.
//
// A pipeline's input Source and the consumers of its repartitions (NewExchange) are members of
// one consumer group. Whichever joins second makes the group rebalance, and the first member
// learns of it only at its next heartbeat: about 0.3 s in which the second member holds no
// partition (2026-12-05, the fleet job's drain on testenv: 26 of 38 drains). The repartition's
// consumer joined first, having less to prepare, so the input waited, and with it the whole
// pipeline. Under the cooperative-sticky strategy a member keeps its partitions through a
// rebalance that only adds another, so the input joining first loses nothing: it reads while
// the repartition's consumer joins, and the repartition holds nothing to read yet. Under the
// eager strategies the input would give up its partitions for that rebalance instead, so the
// order is left as it comes there.
var firstJoins = joinOrder{groups: map[string]*groupJoins{}}

// maxJoinWait bounds how long a repartition's consumer waits for the input Sources of its
// group to join: the order is an optimisation, never a reason to stall.
const maxJoinWait = 10 * time.Second

type joinOrder struct {
	mu     sync.Mutex
	groups map[string]*groupJoins
}

type groupJoins struct {
	pending int
	changed chan struct{} // closed and replaced whenever pending drops
}

// starting registers an input Source of group that is about to join it; the returned
// function (idempotent) says that it began its first session or stopped trying.
func (o *joinOrder) starting(group string) (joined func()) {
	o.mu.Lock()
	g := o.groups[group]
	if g == nil {
		g = &groupJoins{changed: make(chan struct{})}
		o.groups[group] = g
	}
	g.pending++
	o.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			g.pending--
			close(g.changed)
			g.changed = make(chan struct{})
			if g.pending == 0 {
				delete(o.groups, group)
			}
		})
	}
}

// wait returns once no input Source of group in this process is waiting for its first
// session, after at most max, or when ctx ends. It reports whether it waited for one.
func (o *joinOrder) wait(ctx context.Context, group string, max time.Duration) bool {
	timeout := time.NewTimer(max)
	defer timeout.Stop()
	waited := false
	for {
		o.mu.Lock()
		g := o.groups[group]
		if g == nil {
			o.mu.Unlock()
			return waited
		}
		ch := g.changed
		o.mu.Unlock()
		waited = true
		select {
		case <-ch:
		case <-timeout.C:
			return waited
		case <-ctx.Done():
			return waited
		}
	}
}
