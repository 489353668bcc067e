package backoff_test

import (
	"testing"
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
