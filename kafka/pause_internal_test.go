package kafka

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// pausingClaim is a fed claim that records, at each Pause, how many records were left in
// its channel.
type pausingClaim struct {
	fedClaim
	mu     *sync.Mutex
	pauses *[]int
}

func (c pausingClaim) Pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.pauses = append(*c.pauses, len(c.msgs))
}

func (c pausingClaim) Resume() {}

// TestClaimPausesWhenItsHoldIsFull: a claim whose input is full keeps taking fetched records
// until its own hold is full, and only then pauses the partition's fetching. (Pausing as soon
// as the input was full paused every claim at once while a batch ran, and sarama's broker
// consumer, with nothing to fetch, then slept 100 ms at a time: drains stalled.)
func TestClaimPausesWhenItsHoldIsFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &committingBinder{}
		var out []int
		p := windowedPipeline(t, b, 1, &out, stream.WithBuffer(10, 0))
		s, err := NewSource(Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"in"}, Group: "g"}, Codec[int](intOrBad{}))
		require.NoError(t, err)
		s.topics["in"] = 0
		s.readAt.Store(-1) // unstamped
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		runDone := make(chan error, 1)
		go func() { runDone <- p.Run(ctx) }()
		synctest.Wait() // the binder has the input

		const hold, fetched = 20, 100
		h := &handler[int]{s: s, in: b.in, runCtx: ctx, revokeWait: 1e9, hold: hold, holdBytes: 1 << 20, registered: map[int32]bool{}}
		h.register(map[string][]int32{"in": {0}}, nil)
		msgs := make(chan *sarama.ConsumerMessage, fetched)
		for off := range int64(fetched) {
			msgs <- &sarama.ConsumerMessage{Topic: "in", Partition: 0, Offset: off, Value: []byte(strconv.Itoa(int(off)))}
		}
		var mu sync.Mutex
		var pauses []int
		claim := pausingClaim{fedClaim{claimAt{topic: "in", part: 0, start: 0}, msgs}, &mu, &pauses}
		done := make(chan error, 1)
		go func() { done <- h.ConsumeClaim(sessionCtx{memberSession{&recordingSession{}}, ctx}, claim) }()
		synctest.Wait() // the batches took every record, 10 at a time

		mu.Lock()
		got := append([]int(nil), pauses...)
		mu.Unlock()
		// Pausing as soon as the input was full paused with 80 left: the claim had taken 20,
		// pushed 10 and held 10. Now it pauses once it holds 20: at most 70 left (fewer
		// when a batch took the input's 10 before, depending on the goroutines' order);
		// then again each time the hold filled, fewer left each time.
		require.NotEmpty(t, got)
		require.LessOrEqual(t, got[0], fetched-10-hold, "pauses %v", got)
		for i := 1; i < len(got); i++ {
			require.Less(t, got[i], got[i-1], "pauses %v", got)
		}
		require.Empty(t, msgs, "every record taken")
		// The pushes stamped when the partition's read offset last moved (the caught-up
		// monitor counts its idle time from it).
		require.GreaterOrEqual(t, s.readAt.Load(), int64(0), "stamped")
		cancel()
		require.NoError(t, <-done)
		require.ErrorIs(t, <-runDone, context.Canceled)
	})
}
