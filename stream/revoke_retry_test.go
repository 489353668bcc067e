package stream_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestRevokeWaitsForBatchInFlightDuringRetry: Input.Revoke promises that "the batch in
// flight, if any, finishes first, so its commit reaches the source before the channel
// closes". A revocation that arrives while the batch's outputs are being retried must not
// be applied (its channel closed) while that batch, which holds records of the revoked
// partition, is still unwritten: a Kafka Source takes the closed channel for "the pipeline
// dropped the partition, nothing more comes from its records" and lets the rebalance go on
// (exactly-once: it does not stop the Source). The batch is then written after all, its
// Kafka outputs committed by a later transaction with the offsets of the partitions still
// owned, while the partition's next owner replays the same records: written twice.
func TestRevokeWaitsForBatchInFlightDuringRetry(t *testing.T) {
	h, src, sums := ctlPipeline(t, false)
	down := false
	var written [][]kv
	sums.Fail = func(stream.BatchInfo) error {
		if down {
			return errDown
		}
		return nil
	}
	for _, part := range []int32{0, 1} {
		src.setOwned(part, true)
		src.in.Assign(part)
	}
	require.True(t, src.in.TryPush(ctlRecord(0, 0)))
	require.True(t, src.in.TryPush(ctlRecord(1, 0)))
	h.Step()
	require.True(t, src.in.TryPush(ctlRecord(0, 1)))
	require.True(t, src.in.TryPush(ctlRecord(1, 1)))
	down = true
	_, err := h.TryStep() // batch 2, with partition 1's record at offset 1: its output fails
	require.ErrorIs(t, err, errDown)

	src.setOwned(1, false)
	done := src.in.Revoke(1) // a rebalance takes partition 1 away during the outage
	_, err = h.TryStep()     // the retry fails again
	require.ErrorIs(t, err, errDown)
	select {
	case <-done:
		t.Fatal("the revocation was applied (its channel closed) while the batch in flight, which holds partition 1's records, is still unwritten")
	default:
	}

	down = false
	h.Step() // the retry succeeds: batch 2 is written, partition 1's record included
	written = append(written, sums.Last())
	require.Contains(t, sortedPairs(written[0]), kv{Key: "p1", Value: 1 + 2}, "batch 2 wrote partition 1's record")
	<-done
	// Once the revocation is done, what the batch wrote of partition 1 is committed.
	pos, ok := src.position(1)
	require.True(t, ok)
	require.Equal(t, int64(0), pos.Offset, "the running sum holds the commit at the partition's first record")
	require.Empty(t, src.foreign, "positions committed for partitions not owned")
}

// TestRevokeDuringOutageWaitsForIt: under Run, a revocation that arrives while the batch in
// flight's outputs fail is done only once they succeeded, however long the outage lasts:
// here longer than a consumer group's default rebalance timeout (60 s). The pipeline does
// not give up the revoked partition's part of the batch (package kafka's Source bounds its
// own wait instead: see Input.Revoke). When the outage ends the batch is written with the
// revoked partition's records, committed, and only then is the partition dropped.
func TestRevokeDuringOutageWaitsForIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := stream.New(time.Second, stream.WithIdleTimeout(0), stream.WithMaxOutOfOrderness(0))
		require.NoError(t, err)
		src := newCtlSource()
		var down atomic.Bool
		var mu sync.Mutex
		var written []kv
		stream.ForEachBatch(stream.From(p, stream.Source[kv](src)), func(_ context.Context, _ stream.BatchInfo, vs []kv) error {
			if down.Load() {
				return errDown
			}
			mu.Lock()
			defer mu.Unlock()
			written = append(written, vs...)
			return nil
		})
		writtenNow := func() []kv {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(written)
		}
		ctx, cancel := context.WithCancel(t.Context())
		ran := make(chan error, 1)
		go func() { ran <- p.Run(ctx) }()
		synctest.Wait()
		for _, part := range []int32{0, 1} {
			src.setOwned(part, true)
			src.in.Assign(part)
		}
		down.Store(true)
		require.True(t, src.in.TryPush(ctlRecord(0, 0)))
		require.True(t, src.in.TryPush(ctlRecord(1, 0)))
		time.Sleep(1500 * time.Millisecond) // the batch at 1 s fails, and is retried

		done := src.revokeNoted(1)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("the revocation was done while the batch in flight was unwritten")
		default:
		}
		require.Empty(t, writtenNow())
		retry, ok := p.Retrying()
		require.True(t, ok, "still retrying")
		require.Greater(t, retry.Attempt, 5)

		down.Store(false)
		<-done // at the next attempt (the backoff is at most 10 s)
		require.ElementsMatch(t, []kv{{Key: "p0", Value: 1}, {Key: "p1", Value: 1}}, writtenNow(), "the batch, with the revoked partition's record")
		pos, ok := src.position(1)
		require.True(t, ok, "committed before the revocation was done")
		require.Equal(t, int64(1), pos.Offset)
		require.Empty(t, src.foreign)
		cancel()
		require.ErrorIs(t, <-ran, context.Canceled)
	})
}
