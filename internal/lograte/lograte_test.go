package lograte_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/lograte"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l := lograte.New(2, 10*time.Second)
	type step struct {
		at         time.Duration
		ok         bool
		suppressed int64
	}
	for i, s := range []step{
		{0, true, 0}, {time.Second, true, 0}, // the first two
		{2 * time.Second, false, 0}, {5 * time.Second, false, 0}, {10 * time.Second, false, 0},
		{11 * time.Second, true, 3}, // one interval after the last logged
		{12 * time.Second, false, 0},
		{21 * time.Second, true, 1},
		{40 * time.Second, true, 0},
	} {
		ok, suppressed := l.Allow(t0.Add(s.at))
		require.Equal(t, s.ok, ok, "event %d at %v", i, s.at)
		require.Equal(t, s.suppressed, suppressed, "event %d at %v", i, s.at)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l := lograte.New(5, time.Minute)
	var mu sync.Mutex
	logged := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.Allow(t0); ok {
					mu.Lock()
					logged++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 5, logged, "only the first five at one instant")
	ok, suppressed := l.Allow(t0.Add(time.Minute))
	require.True(t, ok)
	require.EqualValues(t, 800-5, suppressed)
}
