package kafka

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJoinOrder: a repartition's consumer waits for the input Sources of its group in this
// process to begin their first session, each of them, and for no one else: not for another
// group, not once they joined or stopped trying, never longer than its bound, and not after
// its context ended.
func TestJoinOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := joinOrder{groups: map[string]*groupJoins{}}
		start := time.Now()
		require.False(t, o.wait(t.Context(), "g", time.Minute), "no input Source: it need not wait")
		require.Zero(t, time.Since(start))

		a, b := o.starting("g"), o.starting("g")
		other := o.starting("h")
		done := make(chan bool)
		go func() { done <- o.wait(t.Context(), "g", time.Minute) }()
		time.Sleep(time.Second) // fake time: the waiter is blocked
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("it joined before the group's input Sources")
		default:
		}
		a()
		a() // idempotent: b still counts
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("it joined before the second input Source")
		default:
		}
		b()
		require.True(t, <-done, "it waited for them")
		require.Equal(t, time.Second, time.Since(start))
		require.False(t, o.wait(t.Context(), "g", time.Minute), "both joined: no wait")

		// Group h's Source never joins: the wait ends at its bound, or with its context.
		start = time.Now()
		require.True(t, o.wait(t.Context(), "h", 3*time.Second))
		require.Equal(t, 3*time.Second, time.Since(start))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		require.True(t, o.wait(ctx, "h", time.Minute))
		require.Equal(t, time.Second, time.Since(start))
		other()
		require.False(t, o.wait(t.Context(), "h", time.Minute))
		require.Empty(t, o.groups, "nothing left behind")
	})
}
