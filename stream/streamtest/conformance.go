// The sink conformance suite: SinkSuite, SinkFeatures and RunSinkConformance, the contract
// every fleetstream sink keeps.

package streamtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// SinkSuite describes a sink to RunSinkConformance.
type SinkSuite[T any] struct {
	// New returns a new sink writing to a fresh, empty destination.
	New func(t *testing.T) stream.Sink[T]
	// Value returns the i-th test value. Values for different i have different identities;
	// equal i give equal values.
	Value func(i int) T
	// ID returns a value's identity (its document id, message key, ...).
	ID func(v T) string
	// Stored reads back the identities of everything the sink's destination holds, one entry
	// per stored item, so a duplicate shows up twice.
	Stored func(t *testing.T, sink stream.Sink[T]) []string
	// N is the size of the large batch (default 1000).
	N int
	// Features are the promises the sink keeps beyond the common contract.
	Features SinkFeatures
}

// SinkFeatures says what a sink promises beyond the common contract, the way watermill's
// test suite takes a publisher's features: the suite checks exactly the promise made, and a
// sink never passes a stronger check through a workaround in its test (such as removing
// duplicates in Stored).
type SinkFeatures struct {
	// AtLeastOnce is set for sinks that may store a rewritten value again (a Kafka producer
	// appends to a log). ReplayIsIdempotent then checks that every value is stored at least
	// once and that nothing the sink was not given is stored. Unset, a rewrite must store
	// nothing twice (deterministic ids, as the OpenSearch sink writes).
	AtLeastOnce bool
}

// RunSinkConformance checks the contract every fleetstream sink keeps: empty batches are
// fine, a written batch is stored whole, rewriting (a replay) stores nothing twice (or, for a
// sink with Features.AtLeastOnce, loses nothing), a write
// cancelled by its context returns and does not break the sink, and the sink works as a
// pipeline output whose batches are acknowledged.
func RunSinkConformance[T any](t *testing.T, s SinkSuite[T]) {
	t.Helper()
	n := s.N
	if n <= 0 {
		n = 1000
	}
	values := func(from, to int) []T {
		out := make([]T, 0, to-from)
		for i := from; i < to; i++ {
			out = append(out, s.Value(i))
		}
		return out
	}
	ids := func(vs []T) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = s.ID(v)
		}
		slices.Sort(out)
		return out
	}
	stored := func(t *testing.T, sink stream.Sink[T]) []string {
		got := s.Stored(t, sink)
		slices.Sort(got)
		return got
	}
	closeSink := func(t *testing.T, sink stream.Sink[T]) {
		if c, ok := sink.(stream.Closer); ok {
			if err := c.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	equal := func(t *testing.T, want, got []string) {
		t.Helper()
		if !slices.Equal(want, got) {
			t.Fatalf("stored %d items, want %d (first difference at %d)", len(got), len(want), firstDiff(want, got))
		}
	}

	t.Run("EmptyBatch", func(t *testing.T) {
		sink := s.New(t)
		defer closeSink(t, sink)
		if err := sink.Write(t.Context(), nil); err != nil {
			t.Fatalf("Write(nil): %v", err)
		}
		equal(t, nil, stored(t, sink))
	})
	t.Run("Batch", func(t *testing.T) {
		sink := s.New(t)
		defer closeSink(t, sink)
		vs := values(0, n)
		if err := sink.Write(t.Context(), vs); err != nil {
			t.Fatalf("Write: %v", err)
		}
		equal(t, ids(vs), stored(t, sink))
	})
	t.Run("ReplayIsIdempotent", func(t *testing.T) {
		sink := s.New(t)
		defer closeSink(t, sink)
		first, second := values(0, n), values(n/2, n+n/2)
		for _, b := range [][]T{first, first, second} {
			if err := sink.Write(t.Context(), b); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		want := ids(values(0, n+n/2))
		got := stored(t, sink)
		if s.Features.AtLeastOnce {
			got = slices.Compact(got) // duplicates are allowed; missing or foreign ids are not
		}
		equal(t, want, got)
	})
	t.Run("CancelledWrite", func(t *testing.T) {
		sink := s.New(t)
		defer closeSink(t, sink)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		vs := values(0, 10)
		_ = sink.Write(ctx, vs) // may fail or succeed; it must return
		if err := sink.Write(t.Context(), vs); err != nil {
			t.Fatalf("Write after a cancelled write: %v", err)
		}
		equal(t, ids(vs), stored(t, sink))
	})
	t.Run("PipelineOutput", func(t *testing.T) {
		sink := s.New(t)
		h := New(t, time.Second)
		q, src := NewQueue[T](h)
		stream.To(src, sink)
		const batches = 5
		per := max(n/batches, 1)
		for b := range batches {
			q.AddValues(values(b*per, (b+1)*per)...)
		}
		q.End()
		h.RunUntilDone()
		equal(t, ids(values(0, batches*per)), stored(t, sink))
		if got := q.Committed(0); got != int64(batches*per) {
			t.Fatalf("committed offset %d, want %d", got, batches*per)
		}
		closeSink(t, sink)
	})
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
