package cputime_test

import (
	"runtime"
	"testing"

	"github.com/fleetstream/fleetstream/internal/cputime"
)

// Work done between two readings shows in the CPU time.
func TestUsedGrows(t *testing.T) {
	d0, ok := cputime.Used()
	if !ok {
		if runtime.GOOS == "linux" {
			t.Fatal("no CPU time on linux")
		}
		t.Skip("the system does not tell the CPU time")
	}
	x := 0
	for range 1000 {
		for i := range 1_000_000 {
			x += i * i
		}
		if d, _ := cputime.Used(); d-d0 >= 20e6 {
			return
		}
	}
	t.Fatalf("a billion multiplications (%d) took under 20 ms of CPU time", x)
}
