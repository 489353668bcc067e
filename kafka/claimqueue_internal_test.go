package kafka

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// popFront takes n records from the queue's front as flush does after a push.
func popFront[T any](c *claimLoop[T], n int) {
	clear(c.queue[:n])
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = c.qarr[:0]
	}
}

// TestClaimQueueReusesItsArray: records streaming through a claim's queue (appended at the
// back, pushed from the front, the queue seldom empty) come out in order and whole, and once
// the queue has grown to its working size it takes no new array (makeRoom moves it to the
// front of its array instead), whatever the sizes of the pushes.
func TestClaimQueueReusesItsArray(t *testing.T) {
	c := &claimLoop[string]{}
	rng := rand.New(rand.NewPCG(1, 2))
	next, want := int64(0), int64(0)
	step := func() {
		for range rng.IntN(300) {
			if len(c.queue) >= 1000 { // the hold
				break
			}
			c.enqueue(stream.Record[string]{Value: "v", Offset: next})
			next++
		}
		n := min(len(c.queue), rng.IntN(400))
		for i := range n {
			require.Equal(t, want, c.queue[i].Offset)
			want++
		}
		popFront(c, n)
	}
	for range 200 { // growing to the working size
		step()
	}
	arrays := 0
	last := cap(c.qarr)
	for range 5000 {
		step()
		if cap(c.qarr) != last {
			arrays++
			last = cap(c.qarr)
		}
	}
	require.Greater(t, want, int64(500_000), "records must have streamed through")
	require.Zero(t, arrays, "the queue took a new array after its warm-up")
	// The places behind the queue hold nothing: no value outlives its push.
	for i := range cap(c.qarr) {
		inQueue := i >= cap(c.qarr)-cap(c.queue) && i < cap(c.qarr)-cap(c.queue)+len(c.queue)
		if !inQueue {
			require.Empty(t, c.qarr[:cap(c.qarr)][i].Value, "place %d", i)
		}
	}
}
