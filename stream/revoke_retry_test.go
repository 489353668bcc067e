package stream_test

import (
	"testing"

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
