package backoff_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/backoff"
)

func TestDelayGrowsAndIsBounded(t *testing.T) {
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{10, time.Second, 2 * time.Second},
		{1000, time.Second, 2 * time.Second},
	} {
		for range 200 {
			d := backoff.Delay(100*time.Millisecond, 2*time.Second, tc.n)
			require.GreaterOrEqual(t, d, tc.min, "attempt %d", tc.n)
			require.LessOrEqual(t, d, tc.max, "attempt %d", tc.n)
		}
	}
}

// TestSleep: Sleep waits the whole time unless done closes first (fake clock: synctest).
func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		require.True(t, backoff.Sleep(make(chan struct{}), 3*time.Second))
		require.Equal(t, 3*time.Second, time.Since(start))

		done := make(chan struct{})
		go func() {
			time.Sleep(time.Second)
			close(done)
		}()
		start = time.Now()
		require.False(t, backoff.Sleep(done, time.Hour))
		require.Equal(t, time.Second, time.Since(start), "cut short when done closed")
	})
}
