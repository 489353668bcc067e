package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
)

// TestBufferConcurrent: writers and a reader at once (run with -race), and every line kept.
func TestBufferConcurrent(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", w, i)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = b.String()
		}
	})
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 400 {
		t.Fatalf("got %d lines, want 400", n)
	}
}
