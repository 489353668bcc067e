package streamtest_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/stream/streamtest"
)

// mapSink stores values by id, the way an index with deterministic ids does.
type mapSink struct {
	mu sync.Mutex
	m  map[string]int
}

func (s *mapSink) Write(ctx context.Context, batch []int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range batch {
		s.m[strconv.Itoa(v)] = v
	}
	return nil
}

func TestSinkConformance(t *testing.T) {
	streamtest.RunSinkConformance(t, streamtest.SinkSuite[int]{
		New:   func(*testing.T) stream.Sink[int] { return &mapSink{m: map[string]int{}} },
		Value: func(i int) int { return i },
		ID:    strconv.Itoa,
		Stored: func(_ *testing.T, s stream.Sink[int]) []string {
			ms := s.(*mapSink)
			ms.mu.Lock()
			defer ms.mu.Unlock()
			var ids []string
			for id := range ms.m {
				ids = append(ids, id)
			}
			return ids
		},
	})
}
