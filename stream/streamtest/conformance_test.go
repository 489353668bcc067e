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

// logSink appends every value, the way a Kafka topic does: a rewrite stores values again.
type logSink struct {
	mu  sync.Mutex
	log []int
}

func (s *logSink) Write(ctx context.Context, batch []int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, batch...)
	return nil
}

// TestSinkConformanceAtLeastOnce: a sink that stores rewritten values again passes when it
// declares AtLeastOnce, with Stored returning every stored item, duplicates included.
func TestSinkConformanceAtLeastOnce(t *testing.T) {
	streamtest.RunSinkConformance(t, streamtest.SinkSuite[int]{
		New:   func(*testing.T) stream.Sink[int] { return &logSink{} },
		Value: func(i int) int { return i },
		ID:    strconv.Itoa,
		Stored: func(_ *testing.T, s stream.Sink[int]) []string {
			ls := s.(*logSink)
			ls.mu.Lock()
			defer ls.mu.Unlock()
			ids := make([]string, len(ls.log))
			for i, v := range ls.log {
				ids[i] = strconv.Itoa(v)
			}
			return ids
		},
		Features: streamtest.SinkFeatures{AtLeastOnce: true},
	})
}
